//! Ingest: find the masters of a release, read its `release.json`, and decode masters with
//! symphonia as a stream of bounded chunks.
//!
//! This module owns everything about the input side: which files are masters, their order,
//! their format, and turning them into interleaved `f32` PCM. It does not resample, dither or
//! encode (that is `transcode`). Quality checks and loudness will live here too.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::limits;

pub mod analysis;
pub mod cover;
pub mod ddex;
pub mod findings;
pub mod fingerprint;
pub mod metadata;
pub mod validate;

pub use analysis::{Loudness, FINDING_CODES};
pub use findings::{Finding, Severity};
pub use validate::{validate, Measured, MeasuredTrack, ValidateOptions, ValidationReport};

/// File extensions taken as masters when a folder is given.
/// Lossy formats are listed too, so that a folder holding them is refused by name rather than
/// silently ignored.
const MASTER_EXTENSIONS: [&str; 14] = [
    "wav", "wave", "bwf", "rf64", "flac", "aif", "aiff", "aifc", "mp3", "m4a", "aac", "ogg",
    "opus", "mp4",
];

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read {path:?}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path:?} is not a file or folder (give a master file or a release folder)")]
    NotFound { path: PathBuf },
    #[error("no masters found in {path:?} (expected .wav, .flac or .aiff files)")]
    NoMasters { path: PathBuf },
    #[error("{path:?}: unsupported file type (expected WAV, BWF, RF64, FLAC or AIFF)")]
    Unsupported { path: PathBuf },
    #[error("{path:?}: cannot decode: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("{path:?}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path:?}: header declares {declared} frames but {decoded} decode (the file is truncated or its header lies; re-export the master)")]
    Truncated {
        path: PathBuf,
        declared: u64,
        decoded: u64,
    },
    #[error("{path:?}: no audio frames (the file is empty or its data chunk is missing)")]
    Empty { path: PathBuf },
    #[error("{path:?}: invalid release metadata: {message}")]
    Metadata { path: PathBuf, message: String },
    #[error(
        "{path:?}: {what} {found} is over the limit of {limit} (refused to protect the pipeline)"
    )]
    Limit {
        path: PathBuf,
        what: &'static str,
        found: u64,
        limit: u64,
    },
    #[error("gapless release: {path:?} is {found} but the first track is {expected} (a gapless programme needs one sample rate and channel count)")]
    GaplessMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

/// How the master stores samples, which decides how far a lossless rung may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleKind {
    Int,
    Float,
}

impl IngestError {
    /// Stable code of the finding this error becomes.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Io { .. } => "master.unreadable",
            IngestError::NotFound { .. } => "input.not-found",
            IngestError::NoMasters { .. } => "input.no-masters",
            IngestError::Unsupported { .. } => "master.not-audio",
            IngestError::Decode { .. } => "master.corrupt",
            IngestError::Format { .. } => "master.format",
            IngestError::Truncated { .. } => "master.truncated",
            IngestError::Empty { .. } => "master.empty",
            IngestError::Metadata { .. } => "metadata.invalid",
            IngestError::Limit { what, .. } => match *what {
                limits::WHAT_SIZE => "master.limit-size",
                limits::WHAT_DURATION => "master.limit-duration",
                _ => "master.limit-channels",
            },
            IngestError::GaplessMismatch { .. } => "release.gapless-mismatch",
        }
    }

    fn path(&self) -> &Path {
        match self {
            IngestError::Io { path, .. }
            | IngestError::NotFound { path }
            | IngestError::NoMasters { path }
            | IngestError::Unsupported { path }
            | IngestError::Decode { path, .. }
            | IngestError::Format { path, .. }
            | IngestError::Truncated { path, .. }
            | IngestError::Empty { path }
            | IngestError::Metadata { path, .. }
            | IngestError::Limit { path, .. }
            | IngestError::GaplessMismatch { path, .. } => path,
        }
    }

    /// The error as a finding (always an error), with a fix.
    pub fn to_finding(&self) -> findings::Finding {
        let fix = match self {
            IngestError::Io { .. } => "check the path and its permissions",
            IngestError::NotFound { .. } => "give a master file or a release folder",
            IngestError::NoMasters { .. } => "put the WAV, FLAC or AIFF masters in the folder",
            IngestError::Unsupported { .. } => "deliver WAV (BWF/RF64), FLAC or AIFF",
            IngestError::Decode { .. }
            | IngestError::Truncated { .. }
            | IngestError::Empty { .. } => "re-export or re-deliver the master",
            IngestError::Format { .. } => "re-export the master in a supported format",
            IngestError::Metadata { .. } => "fix release.json",
            IngestError::Limit { .. } => "split the master or check that it is the right file",
            IngestError::GaplessMismatch { .. } => {
                "deliver every track of a gapless programme at one rate and channel count"
            }
        };
        findings::Finding::error(self.code(), self.path(), self.to_string(), fix)
    }
}

/// The format of a master as its container declares it.
#[derive(Clone, Debug, PartialEq)]
pub struct MasterFormat {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: u8,
    pub kind: SampleKind,
    /// Frames the header declares, when it does.
    pub declared_frames: Option<u64>,
    /// Codec of the master: "pcm", "flac", "alac", or a lossy codec's name.
    pub codec: &'static str,
    /// The container's size fields are 0xFFFFFFFF (written while streaming).
    pub streaming_header: bool,
}

impl MasterFormat {
    /// More than CD quality: deeper than 16 bits or faster than 44.1 kHz.
    pub fn is_lossy(&self) -> bool {
        !matches!(self.codec, "pcm" | "flac" | "alac")
    }

    pub fn is_hires(&self) -> bool {
        self.bits_per_sample > 16 || self.sample_rate > 44100 || self.kind == SampleKind::Float
    }

    pub fn describe(&self) -> String {
        format!(
            "{} Hz, {} ch, {}-bit {}",
            self.sample_rate,
            self.channels,
            self.bits_per_sample,
            match self.kind {
                SampleKind::Int => "integer",
                SampleKind::Float => "float",
            }
        )
    }
}

/// One track of a release, in programme order.
#[derive(Clone, Debug)]
pub struct TrackSource {
    /// Stable id used for the output folder and the report: the ISRC when known, else the file stem.
    pub id: String,
    pub path: PathBuf,
    pub isrc: Option<String>,
    /// The album (input folder or release.json) the track came from: an index into
    /// [`Release::albums`].
    pub album: usize,
    /// What release.json says of the track, when there is one.
    pub metadata: Option<metadata::TrackMetadata>,
    /// The master's format, as validation decoded it (`None` until then, or if it did not
    /// decode): later stages take it from here instead of reopening the file.
    pub format: Option<MasterFormat>,
}

/// What `ingest` hands to `transcode`: the tracks in order, grouped into programmes. A
/// programme of several tracks is gapless: one continuous signal cut at track boundaries.
#[derive(Clone, Debug)]
pub struct Release {
    pub tracks: Vec<TrackSource>,
    /// Indices into `tracks`, in order; every track is in exactly one programme.
    pub programmes: Vec<Vec<usize>>,
    /// Per album (one per input, or one for a `--metadata` file): its release.json, when there
    /// is one.
    pub albums: Vec<Option<metadata::ReleaseMetadata>>,
}

impl Release {
    pub fn is_gapless(&self) -> bool {
        self.programmes.iter().any(|p| p.len() > 1)
    }
}

pub(crate) fn list_masters(dir: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let entries = std::fs::read_dir(dir).map_err(|source| IngestError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| IngestError::Io {
                path: dir.to_owned(),
                source,
            })?
            .path();
        let is_master = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| MASTER_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if is_master && path.is_file() {
            out.push(path);
        }
    }
    Ok(out)
}

/// Lowercase ASCII letters, digits and '-' only, so an id is always a safe path component.
pub(crate) fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "track".into()
    } else {
        out
    }
}

/// Streams a master as interleaved `f32` chunks (full scale = 1.0), one decoded packet at a time.
pub struct MasterReader {
    path: PathBuf,
    format: MasterFormat,
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    buf: Vec<f32>,
    frames_read: u64,
}

impl MasterReader {
    /// Open a master; with `verify`, the decoder checks embedded checksums (FLAC's MD5).
    pub fn open(path: &Path, verify: bool) -> Result<MasterReader, IngestError> {
        let mut file = File::open(path).map_err(|source| IngestError::Io {
            path: path.to_owned(),
            source,
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > limits::MAX_MASTER_BYTES {
            return Err(IngestError::Limit {
                path: path.to_owned(),
                what: limits::WHAT_SIZE,
                found: size,
                limit: limits::MAX_MASTER_BYTES,
            });
        }
        let mut head = [0u8; 4096];
        let n = read_head(&mut file, &mut head);
        use std::io::Seek;
        file.rewind().map_err(|source| IngestError::Io {
            path: path.to_owned(),
            source,
        })?;
        MasterReader::from_source(path, Box::new(file), &head[..n], verify)
    }

    /// Read a master from memory (fuzzing, tests); `name` is used in messages and as a hint.
    pub fn from_bytes(
        name: &Path,
        bytes: Vec<u8>,
        verify: bool,
    ) -> Result<MasterReader, IngestError> {
        let head = bytes[..bytes.len().min(4096)].to_vec();
        MasterReader::from_source(name, Box::new(std::io::Cursor::new(bytes)), &head, verify)
    }

    fn from_source(
        path: &Path,
        source: Box<dyn symphonia::core::io::MediaSource>,
        head: &[u8],
        verify: bool,
    ) -> Result<MasterReader, IngestError> {
        let streaming_header = is_streaming_header(head);
        let mss = MediaSourceStream::new(source, Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let reader = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|_| IngestError::Unsupported {
                path: path.to_owned(),
            })?;
        let track = reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| IngestError::Format {
                path: path.to_owned(),
                message: "no audio track".into(),
            })?;
        let track_id = track.id;
        let declared_frames = track.num_frames;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| IngestError::Format {
                path: path.to_owned(),
                message: "no audio codec parameters".into(),
            })?
            .clone();
        let format_err = |message: String| IngestError::Format {
            path: path.to_owned(),
            message,
        };
        let sample_rate = params
            .sample_rate
            .ok_or_else(|| format_err("no sample rate in header".into()))?;
        let channels = params
            .channels
            .as_ref()
            .map(|c| c.count())
            .ok_or_else(|| format_err("no channel count in header".into()))?;
        if channels == 0 || channels > limits::MAX_CHANNELS as usize {
            return Err(IngestError::Limit {
                path: path.to_owned(),
                what: limits::WHAT_CHANNELS,
                found: channels as u64,
                limit: limits::MAX_CHANNELS as u64,
            });
        }
        if !(limits::MIN_SAMPLE_RATE..=limits::MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(format_err(format!(
                "sample rate {sample_rate} Hz (expected {}..={} Hz)",
                limits::MIN_SAMPLE_RATE,
                limits::MAX_SAMPLE_RATE
            )));
        }
        use symphonia::core::audio::sample::SampleFormat as Sf;
        let kind = match params.sample_format {
            Some(Sf::F32 | Sf::F64) => SampleKind::Float,
            _ => SampleKind::Int,
        };
        let bits = params
            .bits_per_sample
            .or(params.bits_per_coded_sample)
            .unwrap_or(match kind {
                SampleKind::Float => 32,
                SampleKind::Int => 16,
            });
        if !(8..=32).contains(&bits) {
            return Err(format_err(format!(
                "{bits} bits per sample (expected 8..=32)"
            )));
        }
        let codec = codec_name(params.codec);
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default().verify(verify))
            .map_err(|e| IngestError::Decode {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        Ok(MasterReader {
            path: path.to_owned(),
            format: MasterFormat {
                sample_rate,
                channels: channels as u16,
                bits_per_sample: bits as u8,
                kind,
                declared_frames,
                codec,
                streaming_header,
            },
            reader,
            decoder,
            track_id,
            buf: Vec::new(),
            frames_read: 0,
        })
    }

    pub fn format(&self) -> &MasterFormat {
        &self.format
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames decoded so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// The next decoded chunk (interleaved), or `None` at the end of the master. A corrupt
    /// packet is an error: a master must decode cleanly from start to end.
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>, IngestError> {
        loop {
            let packet = match self.reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return self.end(),
                Err(symphonia::core::errors::Error::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    return self.end()
                }
                Err(e) => {
                    return Err(IngestError::Decode {
                        path: self.path.clone(),
                        message: format!("{e} after {} frames", self.frames_read),
                    })
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoded = self
                .decoder
                .decode(&packet)
                .map_err(|e| IngestError::Decode {
                    path: self.path.clone(),
                    message: format!("{e} at frame {}", self.frames_read),
                })?;
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            self.buf.resize(decoded.samples_interleaved(), 0.0);
            decoded.copy_to_slice_interleaved(&mut self.buf[..]);
            self.frames_read += frames as u64;
            let max_frames = limits::MAX_DURATION_SECONDS * self.format.sample_rate as u64;
            if self.frames_read > max_frames {
                return Err(IngestError::Limit {
                    path: self.path.clone(),
                    what: limits::WHAT_DURATION,
                    found: self.frames_read,
                    limit: max_frames,
                });
            }
            return Ok(Some(&self.buf));
        }
    }

    fn end(&mut self) -> Result<Option<&[f32]>, IngestError> {
        if self.frames_read == 0 {
            return Err(IngestError::Empty {
                path: self.path.clone(),
            });
        }
        // A streaming header's sizes are placeholders, not a declaration.
        match self.format.declared_frames {
            Some(declared) if declared != self.frames_read && !self.format.streaming_header => {
                Err(IngestError::Truncated {
                    path: self.path.clone(),
                    declared,
                    decoded: self.frames_read,
                })
            }
            _ => Ok(None),
        }
    }

    /// After the last chunk: whether the embedded checksum matched (`None`: none to check).
    pub fn verification(&mut self) -> Option<bool> {
        self.decoder.finalize().verify_ok
    }
}

fn codec_name(id: symphonia::core::codecs::audio::AudioCodecId) -> &'static str {
    use symphonia::core::codecs::audio::well_known::*;
    match id {
        CODEC_ID_FLAC => "flac",
        CODEC_ID_ALAC => "alac",
        CODEC_ID_MP1 => "mp1",
        CODEC_ID_MP2 => "mp2",
        CODEC_ID_MP3 => "mp3",
        CODEC_ID_AAC => "aac",
        CODEC_ID_VORBIS => "vorbis",
        CODEC_ID_OPUS => "opus",
        _ => "pcm",
    }
}

/// Fill `buf` from the start of `file` as far as it goes; returns the bytes read.
fn read_head(file: &mut File, buf: &mut [u8]) -> usize {
    use std::io::Read;
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// Whether a RIFF/WAVE or AIFF header carries the 0xFFFFFFFF sizes a streaming writer leaves
/// (the RIFF size, or the `data` chunk's). RF64 uses 0xFFFFFFFF by design and is not flagged.
fn is_streaming_header(head: &[u8]) -> bool {
    if head.len() < 12 {
        return false;
    }
    let u32le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    match &head[..4] {
        b"RIFF" => {
            if u32le(&head[4..8]) == u32::MAX {
                return true;
            }
            let mut pos = 12;
            while pos + 8 <= head.len() {
                let size = u32le(&head[pos + 4..pos + 8]);
                if &head[pos..pos + 4] == b"data" {
                    return size == u32::MAX;
                }
                pos = pos.saturating_add(8 + size as usize + (size as usize & 1));
            }
            false
        }
        b"FORM" => u32::from_be_bytes([head[4], head[5], head[6], head[7]]) == u32::MAX,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_path_components() {
        assert_eq!(slug("US-RC1-76-07839"), "us-rc1-76-07839");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("Träck 01 (Final).wav"), "tr-ck-01-final-wav");
        assert_eq!(slug("///"), "track");
    }
}
