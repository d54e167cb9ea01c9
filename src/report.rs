//! The machine-readable run report (`report.json`): what a script may rely on.
//!
//! Paths are relative to the output folder. Sample counts are at the rendition's own rate.

use serde::Serialize;

use crate::ingest::analysis::Loudness;
use crate::ingest::findings::Finding;
use crate::ladder::{Codec, Family, Tier};
use crate::stats::StageSeconds;
use crate::transcode::Skipped;

/// How long the run took and where the CPU time went.
#[derive(Debug, Serialize)]
pub struct RunStats {
    pub wall_seconds: f64,
    /// Seconds of master audio pressed.
    pub audio_seconds: f64,
    /// Audio seconds per wall second.
    pub realtime_factor: f64,
    pub threads: usize,
    pub cpu_seconds: StageSeconds,
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub ladder: String,
    pub gapless: bool,
    pub segment_seconds: f64,
    pub tracks: Vec<TrackReport>,
    pub skipped: Vec<Skipped>,
    /// Ingest warnings (a release with errors is refused before this report exists).
    pub warnings: Vec<Finding>,
    /// Timing; the only part of the report that differs between identical runs.
    pub stats: RunStats,
}

#[derive(Debug, Serialize)]
pub struct TrackReport {
    pub id: String,
    pub source: String,
    pub isrc: Option<String>,
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: u8,
    /// Frames of the master.
    pub duration_samples: u64,
    pub duration_seconds: f64,
    /// ITU-R BS.1770-4 / EBU R128 loudness of the master, with its ReplayGain-style gain.
    pub loudness: Option<Loudness>,
    /// Loudness of the album (the release folder) the track belongs to.
    pub album_loudness: Option<Loudness>,
    /// The main multivariant playlist: the lowest tier's AAC set.
    pub hls: Option<String>,
    /// The lowest tier's MPD.
    pub dash: Option<String>,
    pub playlists: Vec<PlaylistRef>,
    pub mpds: Vec<MpdRef>,
    /// The track's catalog record (`catalog::CatalogRecord`).
    pub catalog: String,
    pub renditions: Vec<RenditionReport>,
}

#[derive(Debug, Serialize)]
pub struct PlaylistRef {
    pub tier: Tier,
    pub family: Family,
    pub path: String,
}

#[derive(Debug, Serialize)]
pub struct MpdRef {
    pub tier: Tier,
    pub path: String,
}

#[derive(Debug, Serialize)]
pub struct RenditionReport {
    pub id: String,
    pub codec: Codec,
    /// RFC 6381 codecs string, as in the manifests.
    pub codecs: String,
    pub tier: Tier,
    pub family: Family,
    pub sample_rate: u32,
    pub channels: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_sample: Option<u8>,
    /// Bit/s the lossy encoder targeted: the rung's, scaled for surround.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_bitrate: Option<u32>,
    /// Peak segment bit rate, bit/s (HLS BANDWIDTH, DASH @bandwidth).
    pub bandwidth: u64,
    /// Mean bit rate, bit/s (HLS AVERAGE-BANDWIDTH).
    pub average_bandwidth: u64,
    pub init: String,
    pub playlist: String,
    pub segments: usize,
    /// Encoder delay the edit list trims, in samples.
    pub priming_samples: u32,
    /// Samples a gapless decoder returns (the edit list's duration).
    pub duration_samples: u64,
}
