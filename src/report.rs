//! The records of a run, typed both ways.
//!
//! - [`PackageIndex`] (`index.json` at the top of an output folder): what was pressed, track by
//!   track. The same inputs give the same bytes; `pressing publish` reads it back
//!   ([`read_index`]) and turns each entry into the track's artifacts ([`TrackReport::artifacts`]).
//! - [`RunReport`]: the index plus how long the run took and, once published, each track's
//!   publication: what `--report` writes ([`write_report`]) and `--json` prints.
//!
//! Paths are relative to the output folder (and, once published, to the store prefix: the
//! layout is the same). Sample counts are at the rendition's own rate.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ingest::analysis::Loudness;
use crate::ingest::findings::Finding;
use crate::ingest::{MasterFormat, TrackSource};
use crate::ladder::{Codec, Family, Tier};
use crate::layout::{self, Artifact, ArtifactKind};
use crate::manifest::{self, EntryKind, EntryManifest};
use crate::package::{LoudnessInfo, PackagedRendition};
use crate::publish::PublishReport;
use crate::stats::StageSeconds;
use crate::transcode::engine::EncodedTrack;
use crate::transcode::{RenditionPlan, Skipped};

/// How long the run took and where the CPU time went.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunStats {
    pub wall_seconds: f64,
    /// Seconds of master audio pressed.
    pub audio_seconds: f64,
    /// Audio seconds per wall second.
    pub realtime_factor: f64,
    pub threads: usize,
    pub cpu_seconds: StageSeconds,
}

/// What an output folder holds (`index.json`): nothing in it changes between identical runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackageIndex {
    pub ladder: String,
    pub gapless: bool,
    pub segment_seconds: f64,
    /// One track file per rendition (`--single-file`), or segment files.
    #[serde(default)]
    pub single_file: bool,
    pub tracks: Vec<TrackReport>,
    pub skipped: Vec<Skipped>,
    /// Ingest warnings (a release with errors is refused before this index exists).
    pub warnings: Vec<Finding>,
}

/// The report of a run: the package index, the timing, and (`tracks[].publish`) what each
/// track's publication did.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    #[serde(flatten)]
    pub package: PackageIndex,
    /// Timing; the only part of the report that differs between identical runs.
    pub stats: RunStats,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// Each tier's Apple-form multivariant playlist (AAC, ALAC and FLAC in `EXT-X-MEDIA` audio
    /// groups, `manifest::create_tier_playlist`).
    #[serde(default)]
    pub tier_playlists: Vec<TierRef>,
    pub mpds: Vec<TierRef>,
    /// The tiers licensed for offline listening (a player may store them with a persistent
    /// licence): the ladder's `[protection] offline`, empty when nothing is protected.
    #[serde(default)]
    pub offline: Vec<Tier>,
    /// Per tier, where and when it may be offered and whether offline is licensed: a DDEX
    /// release's deals (empty for release.json, which says nothing of deals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub availability: Vec<crate::ingest::ddex::TierAvailability>,
    /// The release's front cover in the sizes a catalog serves (`package::artwork`), largest
    /// first; empty when the release has no cover.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cover: Vec<crate::package::artwork::CoverImage>,
    /// The master's Chromaprint fingerprint, of the whole track (`fpcalc -length 0`'s
    /// `DURATION` and `FINGERPRINT`); absent for a track under ~3 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<crate::ingest::fingerprint::Fingerprint>,
    /// The track's catalog record (`catalog::CatalogRecord`).
    pub catalog: String,
    pub renditions: Vec<RenditionReport>,
    /// What publishing the track did: in a run report after a publish, never in the index.
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub publish: Option<PublishReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlaylistRef {
    pub tier: Tier,
    pub family: Family,
    /// The set's sample rate: a family at two rates is two sets.
    pub sample_rate: u32,
    pub path: String,
}

/// An entry manifest of a whole tier: its MPD or its Apple-form playlist.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TierRef {
    pub tier: Tier,
    pub path: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits_per_sample: Option<u8>,
    /// Bit/s the lossy encoder targeted: the rung's, scaled for surround.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_bitrate: Option<u32>,
    /// Peak segment bit rate, bit/s (HLS BANDWIDTH, DASH @bandwidth).
    pub bandwidth: u64,
    /// Mean bit rate, bit/s (HLS AVERAGE-BANDWIDTH).
    pub average_bandwidth: u64,
    /// The init segment, or in the single-file form the track file (init, `sidx`, fragments).
    pub init: String,
    /// The single-file form: `init` is the whole rendition, its fragments addressed by byte
    /// ranges.
    #[serde(default)]
    pub single_file: bool,
    pub playlist: String,
    /// Media segments, or the track file's fragments.
    pub segments: usize,
    /// Samples the edit list trims at the start: the encoder's delay plus any silence that
    /// brings it to its switching set's priming.
    pub priming_samples: u32,
    /// Samples a gapless decoder returns (the edit list's duration).
    pub duration_samples: u64,
    /// Common Encryption scheme (`null`: clear).
    #[serde(default)]
    pub scheme: Option<crate::protect::Scheme>,
    /// The content key's id, UUID form (`null`: clear): what a licence service needs to know.
    /// The key itself is written nowhere.
    #[serde(default)]
    pub key_id: Option<crate::protect::KeyId>,
    /// The fraction of equal bits of this rendition's fingerprint (decoded from its files,
    /// edit list applied) and its master's at the best alignment, 0..1, to 3 decimals; `null`
    /// for a track too short to fingerprint.
    #[serde(default)]
    pub similarity: Option<f64>,
    /// The rendition's quality score against its master (`--quality`; lossy renditions only):
    /// ViSQOL v3 audio mode MOS-LQO, the mean over windows, and each window's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::package::quality::Quality>,
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
    let mut tier_playlists = Vec::new();
    let mut mpds = Vec::new();
    for e in entries {
        let tier_ref = || TierRef {
            tier: e.tier,
            path: under(&e.path),
        };
        match (e.kind, e.family) {
            (EntryKind::SetPlaylist, Some(family)) => playlists.push(PlaylistRef {
                tier: e.tier,
                family,
                sample_rate: e.sample_rate.unwrap_or(0),
                path: under(&e.path),
            }),
            (EntryKind::TierPlaylist, _) => tier_playlists.push(tier_ref()),
            _ => mpds.push(tier_ref()),
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
        tier_playlists,
        mpds,
        offline: Vec::new(),
        availability: Vec::new(),
        cover: Vec::new(),
        fingerprint: None,
        catalog: under(layout::CATALOG_RECORD),
        renditions,
        publish: None,
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
        single_file: r.track_file.is_some(),
        playlist: under(&manifest::media_playlist_path(r)),
        segments: r.segments.len(),
        priming_samples: r.stream.priming,
        duration_samples: r.presented_samples,
        scheme: r.protection.as_ref().map(|p| p.scheme),
        key_id: r.protection.as_ref().map(|p| p.key.kid),
        similarity: None,
        quality: None,
    }
}

impl TrackReport {
    /// The track's artifacts in upload order; `root` is the folder the index is in. Keys come
    /// from a file, so any that would leave the track's folder are refused.
    pub fn artifacts(&self, root: &Path) -> Result<Vec<Artifact>, crate::Error> {
        let bad = |message: String| crate::Error::Input {
            path: root.join(layout::INDEX),
            message: format!("track {:?}: {message}", self.id),
            fix: "give the folder `pressing run --out` wrote",
        };
        let prefix = layout::track_prefix(&self.id);
        let artifact = |key: &str, kind| -> Result<Artifact, crate::Error> {
            if !layout::is_under(&prefix, key) {
                return Err(bad(format!("key {key:?} is not under {prefix:?}")));
            }
            Ok(Artifact::new(key.to_string(), root.join(key), kind))
        };
        let mut out = Vec::new();
        for c in &self.cover {
            out.push(artifact(&c.path, ArtifactKind::Artwork)?);
        }
        let mut playlists = Vec::new();
        for r in &self.renditions {
            let (dir, _) = r
                .init
                .rsplit_once('/')
                .ok_or_else(|| bad(format!("init {:?} has no folder", r.init)))?;
            out.push(artifact(&r.init, ArtifactKind::Segment)?);
            for n in (1..=r.segments).filter(|_| !r.single_file) {
                let key = format!("{dir}/{}", layout::segment_file(n as u32));
                out.push(artifact(&key, ArtifactKind::Segment)?);
            }
            playlists.push(artifact(&r.playlist, ArtifactKind::MediaPlaylist)?);
        }
        out.append(&mut playlists);
        for path in self
            .playlists
            .iter()
            .map(|p| &p.path)
            .chain(self.tier_playlists.iter().map(|p| &p.path))
            .chain(self.mpds.iter().map(|m| &m.path))
        {
            out.push(artifact(path, ArtifactKind::EntryManifest)?);
        }
        out.push(artifact(&self.catalog, ArtifactKind::CatalogRecord)?);
        Ok(out)
    }
}

/// A record as pressing writes it: pretty JSON with a final newline.
pub fn to_pretty_json(value: &impl Serialize) -> Vec<u8> {
    let mut text = serde_json::to_vec_pretty(value).expect("records serialise");
    text.push(b'\n');
    text
}

/// Write a record (`to_pretty_json`) to a file.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), crate::Error> {
    std::fs::write(path, to_pretty_json(value)).map_err(|source| crate::Error::Output {
        path: path.to_owned(),
        source,
    })
}

/// Write a package's index into its output folder.
pub fn write_index(out: &Path, index: &PackageIndex) -> Result<(), crate::Error> {
    write_json(&out.join(layout::INDEX), index)
}

/// Read the index of an output folder that `pressing run` wrote.
pub fn read_index(dir: &Path) -> Result<PackageIndex, crate::Error> {
    let path = dir.join(layout::INDEX);
    let fix = "give the folder `pressing run --out` wrote";
    let text = std::fs::read_to_string(&path).map_err(|source| crate::Error::Input {
        path: path.clone(),
        message: format!("cannot read: {source}"),
        fix,
    })?;
    let index: PackageIndex = serde_json::from_str(&text).map_err(|e| crate::Error::Input {
        path: path.clone(),
        message: format!("not a package index: {e}"),
        fix,
    })?;
    if index.tracks.is_empty() {
        return Err(crate::Error::Input {
            path,
            message: "the index lists no track".into(),
            fix,
        });
    }
    Ok(index)
}

/// Write a run's report where `--report` asked for it.
pub fn write_report(path: &Path, report: &RunReport) -> Result<(), crate::Error> {
    write_json(path, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-rendition entry as an index holds it, with `key` as its catalog record.
    fn entry(catalog: &str) -> TrackReport {
        let json = format!(
            r#"{{"id": "qz", "source": "a.wav", "isrc": null, "sample_rate": 44100,
            "channels": 2, "bits_per_sample": 16, "duration_samples": 441000,
            "duration_seconds": 10.0, "loudness": null, "album_loudness": null,
            "hls": "qz/free-aac.m3u8", "dash": "qz/free.mpd",
            "playlists": [{{"tier": "free", "family": "aac", "sample_rate": 44100,
                            "path": "qz/free-aac.m3u8"}}],
            "mpds": [{{"tier": "free", "path": "qz/free.mpd"}}],
            "catalog": "{catalog}",
            "renditions": [{{"id": "aac-64", "version": "0123456789abcdef", "codec": "aac-lc",
                "codecs": "mp4a.40.2", "tier": "free", "family": "aac", "sample_rate": 44100,
                "channels": 2, "target_bitrate": 64000, "bandwidth": 70000,
                "average_bandwidth": 64000, "init": "qz/aac-64/0123456789abcdef/init.mp4",
                "playlist": "qz/aac-64/0123456789abcdef/index.m3u8", "segments": 2,
                "priming_samples": 2048, "duration_samples": 441000}}]}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn an_index_entry_turns_into_its_artifacts_in_upload_order() {
        let a = entry("qz/catalog.json")
            .artifacts(Path::new("/pkg"))
            .unwrap();
        let keys: Vec<(&str, ArtifactKind)> = a.iter().map(|a| (a.key.as_str(), a.kind)).collect();
        assert_eq!(
            keys,
            [
                ("qz/aac-64/0123456789abcdef/init.mp4", ArtifactKind::Segment),
                (
                    "qz/aac-64/0123456789abcdef/seg-00001.m4s",
                    ArtifactKind::Segment
                ),
                (
                    "qz/aac-64/0123456789abcdef/seg-00002.m4s",
                    ArtifactKind::Segment
                ),
                (
                    "qz/aac-64/0123456789abcdef/index.m3u8",
                    ArtifactKind::MediaPlaylist
                ),
                ("qz/free-aac.m3u8", ArtifactKind::EntryManifest),
                ("qz/free.mpd", ArtifactKind::EntryManifest),
                ("qz/catalog.json", ArtifactKind::CatalogRecord),
            ]
        );
        assert_eq!(
            a[0].path,
            Path::new("/pkg/qz/aac-64/0123456789abcdef/init.mp4")
        );
    }

    #[test]
    fn a_single_file_rendition_is_one_object_then_its_playlist() {
        let mut t = entry("qz/catalog.json");
        let r = &mut t.renditions[0];
        r.single_file = true;
        r.init = "qz/aac-64/0123456789abcdef/media.mp4".into();
        t.tier_playlists = vec![TierRef {
            tier: Tier::Free,
            path: "qz/free.m3u8".into(),
        }];
        let a = t.artifacts(Path::new("/pkg")).unwrap();
        let keys: Vec<(&str, ArtifactKind)> = a.iter().map(|a| (a.key.as_str(), a.kind)).collect();
        assert_eq!(
            keys,
            [
                (
                    "qz/aac-64/0123456789abcdef/media.mp4",
                    ArtifactKind::Segment
                ),
                (
                    "qz/aac-64/0123456789abcdef/index.m3u8",
                    ArtifactKind::MediaPlaylist
                ),
                ("qz/free-aac.m3u8", ArtifactKind::EntryManifest),
                ("qz/free.m3u8", ArtifactKind::EntryManifest),
                ("qz/free.mpd", ArtifactKind::EntryManifest),
                ("qz/catalog.json", ArtifactKind::CatalogRecord),
            ]
        );
    }

    #[test]
    fn an_index_key_that_leaves_its_track_folder_is_refused() {
        for bad in [
            "qz/../other/catalog.json",
            "other/catalog.json",
            "/etc/passwd",
            "qz//x",
        ] {
            let e = entry(bad).artifacts(Path::new("/pkg")).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("is not under") && text.contains(bad),
                "{bad}: {text}"
            );
            assert_eq!(e.exit_code(), crate::exit::BAD_INPUT);
        }
    }
}
