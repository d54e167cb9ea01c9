//! Fraunhofer FDK AAC encoder (AAC-LC, HE-AAC v1 and v2) through fdk-aac-sys.
//!
//! All of the crate's FDK FFI is here. The encoder is fed 16-bit interleaved PCM (TPDF-dithered
//! upstream) and writes raw access units; its AudioSpecificConfig uses explicit hierarchical
//! signalling so the stream's object type (2, 5 or 29) is visible to players and to `CODECS`.
#![allow(unsafe_code)]

use std::ptr;

use fdk_aac_sys as sys;

use super::{
    DecoderConfig, EncodedPacket, Encoder, InputKind, PacketQueue, Pcm, RenditionPlan,
    StreamConfig, TranscodeError,
};
use crate::ladder::Codec;

pub struct FdkEncoder {
    codec: Codec,
    handle: sys::HANDLE_AACENCODER,
    channels: usize,
    sample_rate: u32,
    /// Output samples per access unit (1024 for AAC-LC, 2048 with SBR).
    frame_size: u32,
    priming: u32,
    asc: Vec<u8>,
    /// Input samples (all channels) per encode call.
    input_chunk: usize,
    pending: Vec<i16>,
    out: Vec<u8>,
    queue: PacketQueue,
}

// SAFETY: the FDK handle is owned exclusively by this value and used only through `&mut self`;
// the library keeps no thread-local state.
unsafe impl Send for FdkEncoder {}

impl Drop for FdkEncoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from aacEncOpen and is closed exactly once.
        unsafe {
            sys::aacEncClose(&mut self.handle);
        }
    }
}

fn channel_mode(channels: u16) -> Option<sys::CHANNEL_MODE> {
    Some(match channels {
        1 => sys::CHANNEL_MODE_MODE_1,
        2 => sys::CHANNEL_MODE_MODE_2,
        6 => sys::CHANNEL_MODE_MODE_1_2_2_1,
        8 => sys::CHANNEL_MODE_MODE_7_1_BACK,
        _ => return None,
    })
}

impl FdkEncoder {
    pub fn open(plan: &RenditionPlan) -> Result<FdkEncoder, TranscodeError> {
        let codec = plan.rung.codec;
        let open_err = |message: String| TranscodeError::open(plan, message);
        let aot = match codec {
            Codec::AacLc => sys::AUDIO_OBJECT_TYPE_AOT_AAC_LC,
            Codec::HeAac => sys::AUDIO_OBJECT_TYPE_AOT_SBR,
            Codec::HeAacV2 => sys::AUDIO_OBJECT_TYPE_AOT_PS,
            other => return Err(open_err(format!("FDK does not encode {other}"))),
        };
        let mode = channel_mode(plan.channels)
            .ok_or_else(|| open_err(format!("no AAC layout for {} channels", plan.channels)))?;
        let bitrate = plan.bitrate.ok_or_else(|| open_err("no bitrate".into()))?;
        let mut handle: sys::HANDLE_AACENCODER = ptr::null_mut();
        // SAFETY: aacEncOpen writes a fresh handle into `handle`.
        let rc = unsafe { sys::aacEncOpen(&mut handle, 0, plan.channels as u32) };
        if rc != sys::AACENC_ERROR_AACENC_OK {
            return Err(open_err(format!("aacEncOpen failed ({rc:#x})")));
        }
        let mut enc = FdkEncoder {
            codec,
            handle,
            channels: plan.channels as usize,
            sample_rate: plan.sample_rate,
            frame_size: 1024,
            priming: 0,
            asc: Vec::new(),
            input_chunk: 0,
            pending: Vec::new(),
            out: Vec::new(),
            queue: PacketQueue::new(plan),
        };
        let params: [(sys::AACENC_PARAM, u32, &str); 9] = [
            (sys::AACENC_PARAM_AACENC_AOT, aot as u32, "object type"),
            (
                sys::AACENC_PARAM_AACENC_SAMPLERATE,
                plan.sample_rate,
                "sample rate",
            ),
            (
                sys::AACENC_PARAM_AACENC_CHANNELMODE,
                mode as u32,
                "channel mode",
            ),
            // WAV channel order (L R C LFE Ls Rs), as symphonia decodes it.
            (sys::AACENC_PARAM_AACENC_CHANNELORDER, 1, "channel order"),
            (sys::AACENC_PARAM_AACENC_BITRATEMODE, 0, "bitrate mode"),
            (sys::AACENC_PARAM_AACENC_BITRATE, bitrate, "bitrate"),
            (sys::AACENC_PARAM_AACENC_TRANSMUX, 0, "raw transport"),
            (sys::AACENC_PARAM_AACENC_AFTERBURNER, 1, "afterburner"),
            // Explicit hierarchical signalling: the ASC starts with AOT 5 or 29.
            (
                sys::AACENC_PARAM_AACENC_SIGNALING_MODE,
                if codec == Codec::AacLc { 0 } else { 2 },
                "signalling mode",
            ),
        ];
        for (param, value, what) in params {
            // SAFETY: valid handle; SetParam copies the value.
            let rc = unsafe { sys::aacEncoder_SetParam(enc.handle, param, value) };
            if rc != sys::AACENC_ERROR_AACENC_OK {
                return Err(open_err(format!("rejected {what} = {value} ({rc:#x})")));
            }
        }
        // SAFETY: a call with null buffers applies the parameters (documented initialisation).
        let rc = unsafe {
            sys::aacEncEncode(
                enc.handle,
                ptr::null(),
                ptr::null(),
                ptr::null(),
                ptr::null_mut(),
            )
        };
        if rc != sys::AACENC_ERROR_AACENC_OK {
            return Err(open_err(format!(
                "parameters rejected ({rc:#x}): check bitrate {bitrate} bit/s for {} channels at {} Hz",
                plan.channels, plan.sample_rate
            )));
        }
        let mut info = std::mem::MaybeUninit::<sys::AACENC_InfoStruct>::zeroed();
        // SAFETY: aacEncInfo fills the struct; zeroed is a valid initial value for it.
        let rc = unsafe { sys::aacEncInfo(enc.handle, info.as_mut_ptr()) };
        if rc != sys::AACENC_ERROR_AACENC_OK {
            return Err(open_err(format!("aacEncInfo failed ({rc:#x})")));
        }
        // SAFETY: filled by the successful call above.
        let info = unsafe { info.assume_init() };
        let sbr = codec != Codec::AacLc;
        // frameLength counts input samples per channel per AU: 1024 for LC, 2048 with SBR.
        enc.frame_size = info.frameLength;
        debug_assert!(!sbr || enc.frame_size == 2048);
        // nDelay is the whole decoder-side delay at the output rate (core + SBR + QMF).
        enc.priming = info.nDelay;
        enc.asc = info.confBuf[..info.confSize as usize].to_vec();
        if codec == Codec::HeAac {
            // Hierarchical signalling (AOT 5) leaves parametric stereo possible, so decoders
            // output a mono HE-AAC stream as stereo; say explicitly that it is absent.
            if let Some(asc) = backward_compatible_sbr_config(&enc.asc) {
                enc.asc = asc;
            }
        }
        enc.input_chunk = info.frameLength as usize * enc.channels;
        enc.out = vec![0u8; info.maxOutBufBytes.max(8192) as usize];
        Ok(enc)
    }

    /// Hand pending input to the encoder from the front; with `all`, also a short remainder.
    fn feed(&mut self, all: bool) -> Result<(), TranscodeError> {
        let mut offset = 0;
        loop {
            let left = self.pending.len() - offset;
            if left == 0 || (!all && left < self.input_chunk) {
                break;
            }
            let (consumed, produced) = self.call(offset, Some(left))?;
            offset += consumed;
            if consumed == 0 && !produced {
                break;
            }
        }
        self.pending.drain(..offset);
        Ok(())
    }

    /// One aacEncEncode call on `pending[offset..]`; `input = None` flushes.
    /// Returns (samples consumed, whether an access unit came out).
    fn call(
        &mut self,
        offset: usize,
        input: Option<usize>,
    ) -> Result<(usize, bool), TranscodeError> {
        let mut in_ptr = self.pending[offset..].as_mut_ptr() as *mut std::ffi::c_void;
        let mut in_id: i32 = sys::AACENC_BufferIdentifier_IN_AUDIO_DATA as i32;
        let mut in_size: i32 = (input.unwrap_or(0) * 2) as i32;
        let mut in_el: i32 = 2;
        let in_desc = sys::AACENC_BufDesc {
            numBufs: 1,
            bufs: &mut in_ptr,
            bufferIdentifiers: &mut in_id,
            bufSizes: &mut in_size,
            bufElSizes: &mut in_el,
        };
        let mut out_ptr = self.out.as_mut_ptr() as *mut std::ffi::c_void;
        let mut out_id: i32 = sys::AACENC_BufferIdentifier_OUT_BITSTREAM_DATA as i32;
        let mut out_size: i32 = self.out.len() as i32;
        let mut out_el: i32 = 1;
        let out_desc = sys::AACENC_BufDesc {
            numBufs: 1,
            bufs: &mut out_ptr,
            bufferIdentifiers: &mut out_id,
            bufSizes: &mut out_size,
            bufElSizes: &mut out_el,
        };
        let in_args = sys::AACENC_InArgs {
            numInSamples: match input {
                Some(n) => n as i32,
                None => -1,
            },
            numAncBytes: 0,
        };
        // SAFETY: all-zero is a valid OutArgs.
        let mut out_args: sys::AACENC_OutArgs = unsafe { std::mem::zeroed() };
        // SAFETY: the descriptors point at live buffers of the sizes given (`pending[offset..]`
        // holds `input` samples; `out` is maxOutBufBytes long); the handle is valid.
        let rc =
            unsafe { sys::aacEncEncode(self.handle, &in_desc, &out_desc, &in_args, &mut out_args) };
        if rc == sys::AACENC_ERROR_AACENC_ENCODE_EOF {
            return Ok((0, false));
        }
        if rc != sys::AACENC_ERROR_AACENC_OK {
            return Err(self.queue.error(format!("aacEncEncode failed ({rc:#x})")));
        }
        let n = out_args.numOutBytes.max(0) as usize;
        if n > 0 {
            self.queue.push(self.out[..n].to_vec(), self.frame_size);
        }
        Ok((out_args.numInSamples.max(0) as usize, n > 0))
    }
}

impl Encoder for FdkEncoder {
    fn input_kind(&self) -> InputKind {
        InputKind::Int { bits: 16 }
    }

    fn frame_size(&self) -> u32 {
        self.frame_size
    }

    fn send(&mut self, pcm: Pcm<'_>) -> Result<(), TranscodeError> {
        match pcm {
            Pcm::I32(s) => self.pending.extend(s.iter().map(|&v| v as i16)),
            Pcm::F32(_) => return Err(self.queue.error("FDK takes 16-bit input".into())),
        }
        self.feed(false)
    }

    fn finish(&mut self) -> Result<(), TranscodeError> {
        if !self.queue.end() {
            return Ok(());
        }
        if self.codec != Codec::AacLc {
            // The encoder's flush stops once its own delay line is empty, before a decoder's
            // SBR/PS synthesis has released the last real samples (measured: the final ~800
            // samples of an HE-AAC v2 track decode damaged). One frame of silence carries them
            // out; the edit list trims it.
            let silence = self.frame_size as usize * self.channels;
            self.pending.resize(self.pending.len() + silence, 0);
        }
        self.feed(true)?;
        for _ in 0..64 {
            let (_, produced) = self.call(0, None)?;
            if !produced {
                return Ok(());
            }
        }
        Err(self.queue.error("flush did not end after 64 calls".into()))
    }

    fn receive(&mut self) -> Option<EncodedPacket> {
        self.queue.pop()
    }

    fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            codec: self.codec,
            sample_rate: self.sample_rate,
            channels: self.channels as u16,
            bits_per_sample: None,
            priming: self.priming,
            config: DecoderConfig::Aac {
                audio_specific_config: self.asc.clone(),
            },
        }
    }
}

/// An HE-AAC v1 AudioSpecificConfig in backward-compatible explicit signalling (ISO/IEC 14496-3
/// 1.6.5.2, 1.6.2.1): the AAC-LC core (AOT 2, core rate, channels, GASpecificConfig), then
/// the sync extension 0x2b7 naming SBR (AOT 5, sbrPresentFlag 1, the output rate), then the
/// sync extension 0x548 with psPresentFlag 0, so a decoder knows no parametric stereo follows
/// and a mono stream stays mono. Rebuilt from the encoder's hierarchical config (AOT 5, core
/// rate index, channel configuration, output rate index, AOT 2, GASpecificConfig); `None`
/// when that config is not the plain form this handles (escaped rates, a PCE, extensions).
fn backward_compatible_sbr_config(hierarchical: &[u8]) -> Option<Vec<u8>> {
    let bits = |at: usize, n: usize| -> Option<u32> {
        (at + n <= hierarchical.len() * 8).then(|| {
            (at..at + n).fold(0, |v, i| {
                (v << 1) | u32::from((hierarchical[i / 8] >> (7 - i % 8)) & 1)
            })
        })
    };
    let (aot, core_rate, channels, out_rate, core_aot, ga) = (
        bits(0, 5)?,
        bits(5, 4)?,
        bits(9, 4)?,
        bits(13, 4)?,
        bits(17, 5)?,
        bits(22, 3)?,
    );
    if aot != 5 || core_aot != 2 || core_rate == 15 || out_rate == 15 || channels == 0 || ga != 0 {
        return None;
    }
    let fields: [(u32, usize); 10] = [
        (2, 5),
        (core_rate, 4),
        (channels, 4),
        (0, 3), // frameLengthFlag, dependsOnCoreCoder, extensionFlag
        (0x2b7, 11),
        (5, 5),
        (1, 1), // sbrPresentFlag
        (out_rate, 4),
        (0x548, 11),
        (0, 1), // psPresentFlag
    ];
    let mut out = Vec::new();
    let mut used = 0usize;
    for (value, n) in fields {
        for i in (0..n).rev() {
            if used.is_multiple_of(8) {
                out.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            *out.last_mut().expect("pushed") |= bit << (7 - used % 8);
            used += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn he_aac_config_says_sbr_present_and_ps_absent() {
        // Hierarchical: AOT 5, core 22050 Hz (index 7), mono, output 44100 Hz (4), AOT 2, GA 000.
        let hierarchical = [0x2b, 0x8a, 0x08, 0x00];
        let asc = backward_compatible_sbr_config(&hierarchical).unwrap();
        // 00010 0111 0001 000 | 01010110111 00101 1 0100 | 10101001000 0 (+ padding)
        assert_eq!(asc, vec![0x13, 0x88, 0x56, 0xe5, 0xa5, 0x48, 0x00]);
        assert_eq!(backward_compatible_sbr_config(&[0x12, 0x10]), None);
    }
}
