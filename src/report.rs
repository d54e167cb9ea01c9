//! The machine-readable run report (`report.json`): what a script may rely on.
//!
//! Paths are relative to the output folder (and, once published, to the store prefix: the
//! layout is the same). Sample counts are at the rendition's own rate.
//!
//! It also turns a report entry back into the package's artifacts (`artifacts`), which is
//! what `pressing publish` uploads from a folder that an earlier run wrote.

use std::path::Path;

use serde::Serialize;

use crate::ingest::analysis::Loudness;
use crate::ingest::findings::Finding;
use crate::ingest::{MasterFormat, TrackSource};
use crate::ladder::{Codec, Family, Tier};
use crate::layout::{self, Artifact, ArtifactKind};
use crate::manifest::{self, EntryManifest};
use crate::package::{LoudnessInfo, PackagedRendition};
use crate::stats::StageSeconds;
use crate::transcode::engine::EncodedTrack;
use crate::transcode::{RenditionPlan, Skipped};

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
    /// The set's sample rate: a family at two rates is two sets.
    pub sample_rate: u32,
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
    /// The rendition's version folder: a digest of its bytes (see the README's layout).
    pub version: String,
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
    /// Samples the edit list trims at the start: the encoder's delay plus any silence that
    /// brings it to its switching set's priming.
    pub priming_samples: u32,
    /// Samples a gapless decoder returns (the edit list's duration).
    pub duration_samples: u64,
}

/// The report entry of a packaged track.
pub fn track_report(
    source: &TrackSource,
    format: &MasterFormat,
    loudness: Option<&LoudnessInfo>,
    track: &EncodedTrack<PackagedRendition>,
    entries: &[EntryManifest],
) -> TrackReport {
    let id = &source.id;
    let under = |rel: &str| layout::track_key(id, rel);
    let renditions = track
        .renditions
        .iter()
        .map(|(plan, r)| rendition_report(plan, r, &under))
        .collect();
    let mut playlists = Vec::new();
    let mut mpds = Vec::new();
    for e in entries {
        match e.family {
            Some(family) => playlists.push(PlaylistRef {
                tier: e.tier,
                family,
                sample_rate: e.sample_rate.unwrap_or(0),
                path: under(&e.path),
            }),
            None => mpds.push(MpdRef {
                tier: e.tier,
                path: under(&e.path),
            }),
        }
    }
    // The main playlist: the lowest tier's AAC set (plays on every device), else the first.
    let hls = playlists
        .iter()
        .find(|p| p.family == Family::Aac)
        .or(playlists.first())
        .map(|p| p.path.clone());
    let dash = mpds.first().map(|m| m.path.clone());
    TrackReport {
        id: id.clone(),
        source: source.path.display().to_string(),
        isrc: source.isrc.clone(),
        sample_rate: format.sample_rate,
        channels: format.channels,
        bits_per_sample: format.bits_per_sample,
        duration_samples: track.frames,
        duration_seconds: track.frames as f64 / f64::from(format.sample_rate),
        loudness: loudness.map(|l| l.track.clone()),
        album_loudness: loudness.and_then(|l| l.album.clone()),
        hls,
        dash,
        playlists,
        mpds,
        catalog: under(layout::CATALOG_RECORD),
        renditions,
    }
}

fn rendition_report(
    plan: &RenditionPlan,
    r: &PackagedRendition,
    under: &dyn Fn(&str) -> String,
) -> RenditionReport {
    let dir = manifest::rendition_dir(r);
    RenditionReport {
        id: r.id.clone(),
        version: r.version.clone(),
        codec: plan.rung.codec,
        codecs: r.codecs.clone(),
        tier: plan.rung.tier,
        family: plan.rung.codec.family(),
        sample_rate: r.stream.sample_rate,
        channels: r.stream.channels,
        bits_per_sample: r.stream.bits_per_sample,
        target_bitrate: plan.bitrate,
        bandwidth: r.bandwidth,
        average_bandwidth: r.average_bandwidth,
        init: under(&format!("{dir}/{}", r.init_file)),
        playlist: under(&manifest::media_playlist_path(r)),
        segments: r.segments.len(),
        priming_samples: r.stream.priming,
        duration_samples: r.presented_samples,
    }
}

/// Why a report entry does not describe a package.
#[derive(Debug, thiserror::Error)]
#[error("report entry {track:?}: {message} (is this a report.json that pressing run wrote?)")]
pub struct ReportEntryError {
    pub track: String,
    pub message: String,
}

/// A track's artifacts in upload order, from its entry in a report (parsed as JSON, so a
/// report written by `pressing run` earlier is enough); `root` is the folder it was written to.
pub fn artifacts(
    track: &serde_json::Value,
    root: &Path,
) -> Result<Vec<Artifact>, ReportEntryError> {
    let id = track["id"].as_str().unwrap_or("?").to_string();
    let bad = |message: String| ReportEntryError {
        track: id.clone(),
        message,
    };
    let text = |v: &serde_json::Value, field: &str| -> Result<String, ReportEntryError> {
        v[field]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| bad(format!("no string field {field:?}")))
    };
    let list = |field: &str| -> Result<&Vec<serde_json::Value>, ReportEntryError> {
        track[field]
            .as_array()
            .ok_or_else(|| bad(format!("no list {field:?}")))
    };
    let prefix = layout::track_prefix(&id);
    let own = |key: String| -> Result<String, ReportEntryError> {
        // Keys come from a file: refuse any that would leave the track's folder.
        if !key.starts_with(&prefix)
            || key
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(bad(format!("key {key:?} is not under {prefix:?}")));
        }
        Ok(key)
    };
    let artifact = |key: String, kind| -> Result<Artifact, ReportEntryError> {
        let key = own(key)?;
        Ok(Artifact::new(key.clone(), root.join(&key), kind))
    };
    let mut out = Vec::new();
    let mut playlists = Vec::new();
    for r in list("renditions")? {
        let init = text(r, "init")?;
        let dir = init
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .ok_or_else(|| bad(format!("init {init:?} has no folder")))?;
        let count = r["segments"]
            .as_u64()
            .ok_or_else(|| bad("no segment count".into()))?;
        out.push(artifact(init, ArtifactKind::Segment)?);
        for n in 1..=count {
            let key = format!("{dir}/{}", layout::segment_file(n as u32));
            out.push(artifact(key, ArtifactKind::Segment)?);
        }
        playlists.push(artifact(text(r, "playlist")?, ArtifactKind::MediaPlaylist)?);
    }
    out.append(&mut playlists);
    for p in list("playlists")?.iter().chain(list("mpds")?) {
        out.push(artifact(text(p, "path")?, ArtifactKind::EntryManifest)?);
    }
    out.push(artifact(
        text(track, "catalog")?,
        ArtifactKind::CatalogRecord,
    )?);
    Ok(out)
}
