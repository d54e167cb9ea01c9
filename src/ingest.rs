//! Ingest: find the masters of a release, read its `release.json`, and decode masters with
//! symphonia as a stream of bounded chunks.
//!
//! This module owns everything about the input side: which files are masters, their order,
//! their format, and turning them into interleaved `f32` PCM. It does not resample, dither or
//! encode (that is `transcode`). Quality checks and loudness will live here too.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::limits;

/// File extensions taken as masters when a folder is given.
const MASTER_EXTENSIONS: [&str; 8] = ["wav", "wave", "bwf", "rf64", "flac", "aif", "aiff", "aifc"];

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

/// The format of a master as its container declares it.
#[derive(Clone, Debug, PartialEq)]
pub struct MasterFormat {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: u8,
    pub kind: SampleKind,
    /// Frames the header declares, when it does.
    pub declared_frames: Option<u64>,
}

impl MasterFormat {
    /// More than CD quality: deeper than 16 bits or faster than 44.1 kHz.
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
    pub title: Option<String>,
}

/// What `ingest` hands to `transcode`: the tracks in order, grouped into programmes. A
/// programme of several tracks is gapless: one continuous signal cut at track boundaries.
#[derive(Clone, Debug)]
pub struct Release {
    pub tracks: Vec<TrackSource>,
    /// Indices into `tracks`, in order; every track is in exactly one programme.
    pub programmes: Vec<Vec<usize>>,
}

impl Release {
    pub fn is_gapless(&self) -> bool {
        self.programmes.iter().any(|p| p.len() > 1)
    }
}

/// The subset of `release.json` the pipeline uses today.
#[derive(Debug, Default, Deserialize)]
struct ReleaseFile {
    #[serde(default)]
    gapless: bool,
    #[serde(default)]
    tracks: Vec<ReleaseTrackFile>,
}

#[derive(Debug, Deserialize)]
struct ReleaseTrackFile {
    file: String,
    isrc: Option<String>,
    title: Option<String>,
}

/// Collect the release from the command line's inputs: master files and release folders.
/// A folder's `release.json`, when present, gives the track order, ids and whether the folder
/// is gapless; otherwise masters are taken in file-name order. `all_gapless` makes every input,
/// in order, one programme.
pub fn discover(inputs: &[PathBuf], all_gapless: bool) -> Result<Release, IngestError> {
    let mut tracks = Vec::new();
    let mut programmes: Vec<Vec<usize>> = Vec::new();
    for input in inputs {
        let first = tracks.len();
        let mut gapless = false;
        let meta = std::fs::metadata(input).map_err(|_| IngestError::NotFound {
            path: input.clone(),
        })?;
        if meta.is_dir() {
            let json = input.join("release.json");
            if json.is_file() {
                let (mut found, flag) = read_release_json(&json, input)?;
                gapless = flag;
                tracks.append(&mut found);
            } else {
                let mut files = list_masters(input)?;
                if files.is_empty() {
                    return Err(IngestError::NoMasters {
                        path: input.clone(),
                    });
                }
                files.sort();
                tracks.extend(files.into_iter().map(|p| track_from_path(p, None, None)));
            }
        } else {
            tracks.push(track_from_path(input.clone(), None, None));
        }
        if gapless {
            programmes.push((first..tracks.len()).collect());
        } else {
            programmes.extend((first..tracks.len()).map(|i| vec![i]));
        }
    }
    if all_gapless {
        programmes = vec![(0..tracks.len()).collect()];
    }
    for (i, t) in tracks.iter().enumerate() {
        if let Some(other) = tracks[..i].iter().find(|o| o.id == t.id) {
            return Err(IngestError::Metadata {
                path: t.path.clone(),
                message: format!(
                    "track id {:?} is also the id of {:?} (give each track its own ISRC or file name)",
                    t.id, other.path
                ),
            });
        }
    }
    Ok(Release { tracks, programmes })
}

fn list_masters(dir: &Path) -> Result<Vec<PathBuf>, IngestError> {
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

fn read_release_json(json: &Path, dir: &Path) -> Result<(Vec<TrackSource>, bool), IngestError> {
    let text = std::fs::read_to_string(json).map_err(|source| IngestError::Io {
        path: json.to_owned(),
        source,
    })?;
    let file: ReleaseFile = serde_json::from_str(&text).map_err(|e| IngestError::Metadata {
        path: json.to_owned(),
        message: e.to_string(),
    })?;
    if file.tracks.is_empty() {
        return Err(IngestError::Metadata {
            path: json.to_owned(),
            message: "tracks is empty (list every master as {\"file\": ...})".into(),
        });
    }
    let mut tracks = Vec::with_capacity(file.tracks.len());
    for (i, t) in file.tracks.into_iter().enumerate() {
        let path = dir.join(&t.file);
        if !path.is_file() {
            return Err(IngestError::Metadata {
                path: json.to_owned(),
                message: format!(
                    "tracks[{i}].file {:?} does not exist in {dir:?} (fix the name or add the master)",
                    t.file
                ),
            });
        }
        tracks.push(track_from_path(path, t.isrc, t.title));
    }
    Ok((tracks, file.gapless))
}

fn track_from_path(path: PathBuf, isrc: Option<String>, title: Option<String>) -> TrackSource {
    let id = match &isrc {
        Some(isrc) => slug(&isrc.replace('-', "")),
        None => slug(
            &path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };
    TrackSource {
        id,
        path,
        isrc,
        title,
    }
}

/// Lowercase ASCII letters, digits and '-' only, so an id is always a safe path component.
fn slug(s: &str) -> String {
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
    pub fn open(path: &Path) -> Result<MasterReader, IngestError> {
        let file = File::open(path).map_err(|source| IngestError::Io {
            path: path.to_owned(),
            source,
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > limits::MAX_MASTER_BYTES {
            return Err(IngestError::Limit {
                path: path.to_owned(),
                what: "file size (bytes)",
                found: size,
                limit: limits::MAX_MASTER_BYTES,
            });
        }
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
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
                what: "channel count",
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
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
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
                    what: "duration (frames)",
                    found: self.frames_read,
                    limit: max_frames,
                });
            }
            return Ok(Some(&self.buf));
        }
    }

    fn end(&mut self) -> Result<Option<&[f32]>, IngestError> {
        if self.frames_read == 0 {
            return Err(IngestError::Format {
                path: self.path.clone(),
                message: "no audio frames (the file is empty or its data chunk is missing)".into(),
            });
        }
        if let Some(declared) = self.format.declared_frames {
            if declared != self.frames_read {
                return Err(IngestError::Format {
                    path: self.path.clone(),
                    message: format!(
                        "header declares {declared} frames but {} decode (the file is truncated or its header is wrong; re-export the master)",
                        self.frames_read
                    ),
                });
            }
        }
        Ok(None)
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
