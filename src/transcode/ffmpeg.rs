//! FFmpeg's encoders (AAC-LC `aac`, `libopus`, `flac`, `alac`) through ffmpeg-next.
//!
//! All of the crate's libavcodec FFI is here; no `AVFrame` or `ffmpeg::Error` leaves this file.
#![allow(unsafe_code)]

use std::sync::Once;

use ff::format::sample::Type as SampleLayout;
use ff::format::Sample as SampleFormat;
use ffmpeg_next as ff;

use super::{
    DecoderConfig, EncodedPacket, Encoder, InputKind, PacketQueue, Pcm, RenditionPlan,
    StreamConfig, TranscodeError,
};
use crate::ladder::Codec;

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Initialisation only registers codecs in FFmpeg 5; failure is not possible there.
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Error);
    });
}

pub struct FfmpegEncoder {
    codec: Codec,
    encoder: ff::encoder::Audio,
    format: SampleFormat,
    channels: usize,
    sample_rate: u32,
    bits: Option<u8>,
    /// Samples per frame the encoder wants (every frame but the last).
    frame_size: usize,
    priming: u32,
    input_kind: InputKind,
    /// Interleaved input not yet handed to the encoder.
    pending_f32: Vec<f32>,
    pending_i32: Vec<i32>,
    next_pts: i64,
    queue: PacketQueue,
}

// SAFETY: the encoder context is owned exclusively by this value and only touched through
// `&mut self`; libavcodec contexts may move between threads when not used concurrently.
unsafe impl Send for FfmpegEncoder {}

fn channel_layout(codec: Codec, channels: u16) -> ff::ChannelLayout {
    match (codec, channels) {
        // A 6-channel master is FL FR FC LFE BL BR (WAVE_FORMAT_EXTENSIBLE's 5.1); libavcodec's
        // ALAC encoder takes exactly that layout, "5.1(back)", and reorders to ALAC's order.
        (Codec::Alac, 6) => ff::ChannelLayout::_5POINT1_BACK,
        _ => ff::ChannelLayout::default(channels as i32),
    }
}

impl FfmpegEncoder {
    pub fn open(plan: &RenditionPlan) -> Result<FfmpegEncoder, TranscodeError> {
        init();
        let codec = plan.rung.codec;
        let open_err = |message: String| TranscodeError::open(plan, message);
        let (name, format, input_kind) = match codec {
            Codec::AacLc => (
                "aac",
                SampleFormat::F32(SampleLayout::Planar),
                InputKind::Float,
            ),
            Codec::Opus => (
                "libopus",
                SampleFormat::F32(SampleLayout::Packed),
                InputKind::Float,
            ),
            Codec::Flac | Codec::Alac => {
                let bits = plan.bits.unwrap_or(16);
                // libavcodec's FLAC encoder takes packed samples, its ALAC encoder planar ones.
                let layout = match codec {
                    Codec::Flac => SampleLayout::Packed,
                    _ => SampleLayout::Planar,
                };
                let format = if bits <= 16 {
                    SampleFormat::I16(layout)
                } else {
                    SampleFormat::I32(layout)
                };
                let name = if codec == Codec::Flac { "flac" } else { "alac" };
                (name, format, InputKind::Int { bits })
            }
            Codec::HeAac | Codec::HeAacV2 => {
                return Err(open_err("FFmpeg 5.1 has no HE-AAC encoder".into()))
            }
        };
        let av_codec = ff::encoder::find_by_name(name)
            .ok_or_else(|| open_err(format!("FFmpeg has no {name:?} encoder")))?;
        let mut enc = ff::codec::Context::new_with_codec(av_codec)
            .encoder()
            .audio()
            .map_err(|e| open_err(e.to_string()))?;
        enc.set_rate(plan.sample_rate as i32);
        enc.set_channel_layout(channel_layout(codec, plan.channels));
        enc.set_channels(plan.channels as i32);
        enc.set_format(format);
        enc.set_time_base(ff::Rational::new(1, plan.sample_rate as i32));
        if let Some(bps) = plan.bitrate {
            enc.set_bit_rate(bps as usize);
        }
        let mut opts = ff::Dictionary::new();
        match codec {
            Codec::AacLc => {
                // The two-loop coder is FFmpeg's best quality search.
                opts.set("aac_coder", "twoloop");
            }
            Codec::Opus => {
                opts.set("application", "audio");
                opts.set("frame_duration", "20");
                // Constrained VBR keeps every segment near the rung's rate, as an ABR ladder needs.
                opts.set("vbr", "constrained");
                if plan.channels > 2 {
                    opts.set("mapping_family", "1");
                }
            }
            Codec::Flac | Codec::Alac => {
                let bits = plan.bits.unwrap_or(16);
                // SAFETY: the context is allocated and not yet opened; the field is a plain int.
                unsafe {
                    (*enc.as_mut_ptr()).bits_per_raw_sample = bits as i32;
                }
                if codec == Codec::Flac {
                    // Blocks of 50 ms (2205 samples at 44.1 kHz, 2400 at 48, 4800 at 96): a
                    // whole number at every common rate, so a segment of whole seconds is whole
                    // blocks (6.000 s, not 4096-sample steps) at every rate; within the
                    // subset's 4608 / 16384 limits up to 192 kHz.
                    if let Some(block) = flac_block_size(plan.sample_rate) {
                        // SAFETY: as above, a plain int field on an unopened context.
                        unsafe {
                            (*enc.as_mut_ptr()).frame_size = block as i32;
                        }
                    }
                }
            }
            _ => {}
        }
        // Reproducible output: no encoder may embed a version string or a timestamp.
        // SAFETY: as above, plain int field on an unopened context.
        unsafe {
            (*enc.as_mut_ptr()).flags |= ff::ffi::AV_CODEC_FLAG_BITEXACT as i32;
        }
        let encoder = enc
            .open_as_with(av_codec, opts)
            .map_err(|e| open_err(e.to_string()))?;
        let frame_size = match encoder.frame_size() {
            0 => 4096,
            n => n as usize,
        };
        // SAFETY: the opened context is valid for reads; initial_padding is a plain int.
        let priming = unsafe { (*encoder.as_ptr()).initial_padding.max(0) as u32 };
        let enc = FfmpegEncoder {
            codec,
            encoder,
            format,
            channels: plan.channels as usize,
            sample_rate: plan.sample_rate,
            bits: plan.bits,
            frame_size,
            priming,
            input_kind,
            pending_f32: Vec::new(),
            pending_i32: Vec::new(),
            next_pts: 0,
            queue: PacketQueue::new(plan),
        };
        // The sample entry copies ALAC's magic cookie verbatim: it must be the `alac` atom.
        let cookie = enc.extradata();
        if codec == Codec::Alac && (cookie.len() != 36 || &cookie[4..8] != b"alac") {
            return Err(open_err(format!(
                "unexpected ALAC magic cookie ({} bytes)",
                cookie.len()
            )));
        }
        Ok(enc)
    }

    /// Hand every whole frame of pending input (and with `last`, the remainder) to libavcodec.
    fn encode_pending(&mut self, last: bool) -> Result<(), TranscodeError> {
        let ch = self.channels;
        loop {
            let available = match self.input_kind {
                InputKind::Float => self.pending_f32.len() / ch,
                InputKind::Int { .. } => self.pending_i32.len() / ch,
            };
            let frames = if available >= self.frame_size {
                self.frame_size
            } else if last && available > 0 {
                available
            } else {
                break;
            };
            let layout = channel_layout(self.codec, ch as u16);
            let mut frame = ff::frame::Audio::new(self.format, frames, layout);
            frame.set_rate(self.sample_rate);
            frame.set_pts(Some(self.next_pts));
            self.next_pts += frames as i64;
            self.fill_frame(&mut frame, frames);
            self.encoder
                .send_frame(&frame)
                .map_err(|e| self.queue.error(e.to_string()))?;
            self.drain()?;
        }
        Ok(())
    }

    fn fill_frame(&mut self, frame: &mut ff::frame::Audio, frames: usize) {
        let ch = self.channels;
        let n = frames * ch;
        match self.format {
            SampleFormat::F32(SampleLayout::Planar) => {
                fill_planar(frame, &self.pending_f32, ch, frames, |s| s);
                self.pending_f32.drain(..n);
            }
            SampleFormat::F32(SampleLayout::Packed) => {
                packed_mut::<f32>(frame, n).copy_from_slice(&self.pending_f32[..n]);
                self.pending_f32.drain(..n);
            }
            SampleFormat::I16(SampleLayout::Packed) => {
                let dst = packed_mut::<i16>(frame, n);
                for (d, s) in dst.iter_mut().zip(&self.pending_i32[..n]) {
                    *d = *s as i16;
                }
                self.pending_i32.drain(..n);
            }
            SampleFormat::I16(SampleLayout::Planar) => {
                fill_planar(frame, &self.pending_i32, ch, frames, |s| s as i16);
                self.pending_i32.drain(..n);
            }
            SampleFormat::I32(SampleLayout::Planar) => {
                // s32p: libavcodec's ALAC encoder reads the top `bits_per_raw_sample` bits.
                let shift = 32 - u32::from(self.bits.unwrap_or(24));
                fill_planar(frame, &self.pending_i32, ch, frames, |s| s << shift);
                self.pending_i32.drain(..n);
            }
            _ => {
                // s32: libavcodec's FLAC encoder reads the top `bits_per_raw_sample` bits.
                let shift = 32 - u32::from(self.bits.unwrap_or(24));
                let dst = packed_mut::<i32>(frame, n);
                for (d, s) in dst.iter_mut().zip(&self.pending_i32[..n]) {
                    *d = *s << shift;
                }
                self.pending_i32.drain(..n);
            }
        }
    }

    fn drain(&mut self) -> Result<(), TranscodeError> {
        let mut packet = ff::Packet::empty();
        loop {
            match self.encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    let Some(data) = packet.data() else { continue };
                    if data.is_empty() {
                        continue;
                    }
                    // AAC and Opus frames always decode to a full frame; the edit list trims
                    // the end padding. FLAC's and ALAC's last frames are short and say so.
                    let duration = match self.codec {
                        Codec::Flac | Codec::Alac => packet.duration() as u32,
                        _ => self.frame_size as u32,
                    };
                    self.queue.push(data.to_vec(), duration);
                }
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => break,
                Err(ff::Error::Eof) => break,
                Err(e) => return Err(self.queue.error(e.to_string())),
            }
        }
        Ok(())
    }

    fn extradata(&self) -> Vec<u8> {
        // SAFETY: extradata is either null or `extradata_size` valid bytes owned by the context.
        unsafe {
            let ctx = self.encoder.as_ptr();
            if (*ctx).extradata.is_null() || (*ctx).extradata_size <= 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts((*ctx).extradata, (*ctx).extradata_size as usize)
                    .to_vec()
            }
        }
    }
}

/// Spread the first `frames` frames of interleaved `src` over a planar frame's channels.
fn fill_planar<S: Copy, T: ff::frame::audio::Sample>(
    frame: &mut ff::frame::Audio,
    src: &[S],
    ch: usize,
    frames: usize,
    convert: impl Fn(S) -> T,
) {
    for c in 0..ch {
        let plane = &mut frame.plane_mut::<T>(c)[..frames];
        for (i, s) in plane.iter_mut().enumerate() {
            *s = convert(src[i * ch + c]);
        }
    }
}

/// The interleaved plane of a packed frame as a typed slice of `n` samples.
fn packed_mut<T: ff::frame::audio::Sample>(frame: &mut ff::frame::Audio, n: usize) -> &mut [T] {
    let bytes = &mut frame.data_mut(0)[..n * std::mem::size_of::<T>()];
    // SAFETY: the frame buffer was allocated by libavutil for this sample format, aligned for
    // it, and holds at least `n` samples; the byte slice borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut T, n) }
}

impl Encoder for FfmpegEncoder {
    fn input_kind(&self) -> InputKind {
        self.input_kind
    }

    fn frame_size(&self) -> u32 {
        self.frame_size as u32
    }

    fn send(&mut self, pcm: Pcm<'_>) -> Result<(), TranscodeError> {
        match pcm {
            Pcm::F32(s) => self.pending_f32.extend_from_slice(s),
            Pcm::I32(s) => self.pending_i32.extend_from_slice(s),
        }
        self.encode_pending(false)
    }

    fn finish(&mut self) -> Result<(), TranscodeError> {
        if !self.queue.end() {
            return Ok(());
        }
        self.encode_pending(true)?;
        self.encoder
            .send_eof()
            .map_err(|e| self.queue.error(e.to_string()))?;
        self.drain()
    }

    fn receive(&mut self) -> Option<EncodedPacket> {
        self.queue.pop()
    }

    fn stream_config(&self) -> StreamConfig {
        let extra = self.extradata();
        let config = match self.codec {
            Codec::Opus => opus_config(&extra, self.priming),
            Codec::Flac => DecoderConfig::Flac {
                // libavcodec's FLAC extradata is the bare 34-byte STREAMINFO; after the flush it
                // carries the MD5 and total sample count.
                streaminfo: extra,
            },
            Codec::Alac => DecoderConfig::Alac {
                magic_cookie: extra,
            },
            _ => DecoderConfig::Aac {
                audio_specific_config: extra,
            },
        };
        StreamConfig {
            codec: self.codec,
            sample_rate: self.sample_rate,
            channels: self.channels as u16,
            bits_per_sample: self.bits,
            priming: self.priming,
            config,
        }
    }
}

/// Parse the OpusHead libopus wrote (RFC 7845 5.1) into the fields of `dOps`.
fn opus_config(head: &[u8], priming: u32) -> DecoderConfig {
    let le16 = |i: usize| head.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let le32 = |i: usize| {
        head.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let family = head.get(18).copied().unwrap_or(0);
    DecoderConfig::Opus {
        pre_skip: le16(10).unwrap_or(priming as u16),
        input_sample_rate: le32(12).unwrap_or(48000),
        output_gain: le16(16).unwrap_or(0) as i16,
        channel_mapping_family: family,
        mapping: if family != 0 {
            head.get(19..).unwrap_or_default().to_vec()
        } else {
            Vec::new()
        },
    }
}

/// A FLAC block of 50 ms at `rate`, when that is a whole number of samples FLAC allows.
fn flac_block_size(rate: u32) -> Option<u32> {
    (rate.is_multiple_of(20) && (16..=65535).contains(&(rate / 20))).then_some(rate / 20)
}

/// Audio decoded by FFmpeg: interleaved `f32`, every sample the bitstream holds.
pub struct DecodedAudio {
    pub samples: Vec<f32>,
    pub channels: u16,
    pub sample_rate: u32,
}

/// Decode the first audio stream of `url` (a file, or FFmpeg's `concat:` of an init segment
/// and its media segments) without any trimming: priming and padding stay in (libavcodec's
/// `skip_manual`; FFmpeg 5.1 ignores edit lists in fragmented MP4), for the caller to apply
/// the edit list. `decryption_key` (16 bytes) decrypts a Common Encryption stream; it is
/// passed to FFmpeg only, never printed.
pub fn decode_all(url: &str, decryption_key: Option<&[u8; 16]>) -> Result<DecodedAudio, String> {
    init();
    let mut options = ff::Dictionary::new();
    if let Some(key) = decryption_key {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        options.set("decryption_key", &hex);
    }
    let mut input = ff::format::input_with_dictionary(&url, options)
        .map_err(|e| format!("cannot open: {e}"))?;
    let stream = input
        .streams()
        .best(ff::media::Type::Audio)
        .ok_or("no audio stream")?;
    let index = stream.index();
    let context = ff::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| format!("decoder parameters: {e}"))?;
    let codec = ff::decoder::find(context.id()).ok_or("no decoder for the stream's codec")?;
    let mut decoder_options = ff::Dictionary::new();
    decoder_options.set("flags2", "+skip_manual");
    let mut decoder = context
        .decoder()
        .open_as_with(codec, decoder_options)
        .and_then(|d| d.audio())
        .map_err(|e| format!("cannot open the decoder: {e}"))?;
    let mut out = DecodedAudio {
        samples: Vec::new(),
        channels: 0,
        sample_rate: 0,
    };
    let mut frame = ff::frame::Audio::empty();
    let mut drain = |decoder: &mut ff::decoder::Audio, out: &mut DecodedAudio| {
        while decoder.receive_frame(&mut frame).is_ok() {
            append_frame(&frame, out)?;
        }
        Ok::<(), String>(())
    };
    for (stream, packet) in input.packets() {
        if stream.index() != index {
            continue;
        }
        decoder
            .send_packet(&packet)
            .map_err(|e| format!("cannot decode packet at {:?}: {e}", packet.pts()))?;
        drain(&mut decoder, &mut out)?;
    }
    decoder
        .send_eof()
        .map_err(|e| format!("cannot finish decoding: {e}"))?;
    drain(&mut decoder, &mut out)?;
    Ok(out)
}

/// Append one decoded frame to `out` as interleaved `f32`.
fn append_frame(frame: &ff::frame::Audio, out: &mut DecodedAudio) -> Result<(), String> {
    let channels = usize::from(frame.channels());
    let n = frame.samples();
    if out.channels == 0 {
        out.channels = frame.channels();
        out.sample_rate = frame.rate();
    } else if out.channels != frame.channels() {
        return Err(format!(
            "the channel count changes from {} to {} mid-stream",
            out.channels,
            frame.channels()
        ));
    }
    let start = out.samples.len();
    out.samples.resize(start + n * channels, 0.0);
    let dst = &mut out.samples[start..];
    // Each plane's samples as f32: planar formats have a plane per channel, packed ones one.
    let planar = frame.is_planar();
    let planes = if planar { channels } else { 1 };
    let per_plane = if planar { n } else { n * channels };
    for p in 0..planes {
        let bytes = frame.data(p);
        let write = |i: usize| if planar { i * channels + p } else { i };
        match frame.format() {
            SampleFormat::F32(_) => {
                for (i, b) in bytes.chunks_exact(4).take(per_plane).enumerate() {
                    dst[write(i)] = f32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            SampleFormat::I16(_) => {
                for (i, b) in bytes.chunks_exact(2).take(per_plane).enumerate() {
                    dst[write(i)] = f32::from(i16::from_ne_bytes([b[0], b[1]])) / 32768.0;
                }
            }
            SampleFormat::I32(_) => {
                for (i, b) in bytes.chunks_exact(4).take(per_plane).enumerate() {
                    let v = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                    dst[write(i)] = (f64::from(v) / 2_147_483_648.0) as f32;
                }
            }
            other => return Err(format!("the decoder's sample format {other:?} is not read")),
        }
    }
    Ok(())
}
