//! Transcode: decide which rungs apply to a master, then turn its PCM into encoded packets.
//!
//! This module owns the signal chain after decoding (resampling, requantizing with dither) and
//! the encoders behind the small [`Encoder`] seam. It does not read masters (`ingest`) or
//! write boxes and manifests (`package`). All FFI lives in `ffmpeg.rs` and `fdk.rs`.

mod dither;
pub mod engine;
mod fdk;
mod ffmpeg;
pub use ffmpeg::{decode_all, DecodedAudio};
mod plan;
mod resample;
pub mod timeline;

pub use dither::Quantizer;
pub use plan::{plan_renditions, PrunedScores, RenditionPlan, Skipped};
pub use resample::{scale_frames, StreamResampler};

use crate::ladder::{AacEncoder, Codec};

#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("rung {rung:?}: cannot open the {codec} encoder: {message}")]
    Open {
        rung: String,
        codec: Codec,
        message: String,
    },
    #[error("rung {rung:?}: {codec} encoder failed: {message}")]
    Encode {
        rung: String,
        codec: Codec,
        message: String,
    },
    #[error("cannot resample {from} Hz to {to} Hz: {message}")]
    Resample { from: u32, to: u32, message: String },
}

/// Interleaved PCM handed to an encoder.
#[derive(Clone, Copy, Debug)]
pub enum Pcm<'a> {
    /// Full scale is 1.0.
    F32(&'a [f32]),
    /// Integers at the encoder's declared bit depth (right-aligned).
    I32(&'a [i32]),
}

/// What an encoder wants to be fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputKind {
    Float,
    Int { bits: u8 },
}

/// One access unit and how many samples (at the stream's rate) it decodes to.
#[derive(Clone, Debug)]
pub struct EncodedPacket {
    pub data: Vec<u8>,
    pub duration: u32,
}

/// What both encoder back-ends keep for the engine: the access units ready to receive, in
/// order, whether the input has ended (so that `finish` flushes once), and which rendition
/// they encode (for errors).
#[derive(Debug)]
pub(crate) struct PacketQueue {
    rung: String,
    codec: Codec,
    packets: std::collections::VecDeque<EncodedPacket>,
    ended: bool,
}

impl PacketQueue {
    pub(crate) fn new(plan: &RenditionPlan) -> PacketQueue {
        PacketQueue {
            rung: plan.rung.id.clone(),
            codec: plan.rung.codec,
            packets: Default::default(),
            ended: false,
        }
    }

    pub(crate) fn push(&mut self, data: Vec<u8>, duration: u32) {
        self.packets.push_back(EncodedPacket { data, duration });
    }

    pub(crate) fn pop(&mut self) -> Option<EncodedPacket> {
        self.packets.pop_front()
    }

    /// Mark the input as ended: true the first time, false after.
    pub(crate) fn end(&mut self) -> bool {
        !std::mem::replace(&mut self.ended, true)
    }

    /// The encoder of this rendition failed.
    pub(crate) fn error(&self, message: String) -> TranscodeError {
        TranscodeError::Encode {
            rung: self.rung.clone(),
            codec: self.codec,
            message,
        }
    }
}

impl TranscodeError {
    /// The encoder of `plan` could not be opened.
    pub(crate) fn open(plan: &RenditionPlan, message: String) -> TranscodeError {
        TranscodeError::Open {
            rung: plan.rung.id.clone(),
            codec: plan.rung.codec,
            message,
        }
    }
}

/// The codec configuration a packager needs to describe the stream.
#[derive(Clone, Debug, PartialEq)]
pub enum DecoderConfig {
    /// MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1).
    Aac { audio_specific_config: Vec<u8> },
    /// Opus identification header fields (RFC 7845 5.1), for the `dOps` box.
    Opus {
        pre_skip: u16,
        input_sample_rate: u32,
        output_gain: i16,
        channel_mapping_family: u8,
        /// stream count, coupled count, mapping (family != 0 only)
        mapping: Vec<u8>,
    },
    /// FLAC STREAMINFO block body, 34 bytes (final, with MD5 and total samples).
    Flac { streaminfo: Vec<u8> },
    /// The `alac` atom libavcodec writes as extradata (36 bytes: size, 'alac', version and
    /// flags, the 24-byte ALACSpecificConfig): the `alac` box of the sample entry, verbatim.
    Alac { magic_cookie: Vec<u8> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct StreamConfig {
    pub codec: Codec,
    /// Rate of the decoded output, also the media timescale.
    pub sample_rate: u32,
    pub channels: u16,
    /// Bits per sample of a lossless stream.
    pub bits_per_sample: Option<u8>,
    /// Samples the decoder outputs before the first sample of the master (encoder delay).
    pub priming: u32,
    pub config: DecoderConfig,
}

/// The encoder seam: send PCM, finish, and receive packets until `None`.
///
/// Mirrors libavcodec's send/receive model: `send` never blocks on output; packets wait in
/// the encoder until received.
pub trait Encoder: Send {
    fn input_kind(&self) -> InputKind;
    /// Samples per access unit at the output rate (a shorter last one may follow).
    fn frame_size(&self) -> u32;
    fn send(&mut self, pcm: Pcm<'_>) -> Result<(), TranscodeError>;
    /// Signal the end of input; remaining packets (with end padding) become receivable.
    fn finish(&mut self) -> Result<(), TranscodeError>;
    fn receive(&mut self) -> Option<EncodedPacket>;
    /// Stream description; final (e.g. FLAC's MD5) only after `finish`.
    fn stream_config(&self) -> StreamConfig;
}

/// Open the encoder a rendition needs.
pub fn open_encoder(plan: &RenditionPlan) -> Result<Box<dyn Encoder>, TranscodeError> {
    match (plan.rung.codec, plan.rung.aac_encoder) {
        (Codec::AacLc, AacEncoder::Fdk) | (Codec::HeAac | Codec::HeAacV2, _) => {
            Ok(Box::new(fdk::FdkEncoder::open(plan)?))
        }
        (Codec::AacLc, AacEncoder::Ffmpeg) | (Codec::Opus | Codec::Flac | Codec::Alac, _) => {
            Ok(Box::new(ffmpeg::FfmpegEncoder::open(plan)?))
        }
    }
}

/// Initialise the FFmpeg libraries once per process (quiet logging).
pub fn init() {
    ffmpeg::init();
}
