//! The catalog record and the catalog notification: everything a music service's catalog needs
//! to list one pressed track.
//!
//! The record (`catalog.json` in the track's package): identifiers and credits from
//! release.json, the master's format, duration and where it is, loudness (track and album, with
//! ReplayGain-style gains), territories, and every rendition with its codec string, tier and
//! measured bit rates, plus the playlists and MPDs to stream it and, when it is bound for a
//! store, the URLs they are served under. It is complete when it is first written: a run
//! bound for a store writes it once with its URLs; a publish of a folder to another
//! destination writes it once more with that destination's URLs. Paths are relative to the
//! output folder, as in the package index. It holds nothing that changes between identical
//! runs.
//!
//! The notification (`schemas/catalog-notification.schema.json`) is built from the record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ingest::analysis::Loudness;
use crate::ingest::metadata::{ReleaseMetadata, Territories, TrackMetadata};
use crate::ladder::{Codec, Family, Tier};
use crate::report::{TierRef, TrackReport};

/// Bumped when a field changes meaning or disappears; new fields do not bump it.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CatalogRecord {
    pub schema_version: u32,
    /// Public URL (or store locator) of every entry manifest and of this record, by key:
    /// filled in when the package is bound for a store.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub urls: BTreeMap<String, String>,
    /// What was pressed: ids, master format, loudness, manifests and renditions.
    #[serde(flatten)]
    pub track: TrackReport,
    /// The track as release.json describes it (title, artists, numbering, explicit), when the
    /// master came with one.
    pub metadata: Option<TrackMetadata>,
    /// The release it belongs to (title, artists, label, UPC, date, territories, rights lines).
    pub release: Option<ReleaseMetadata>,
}

impl CatalogRecord {
    pub fn new(
        track: TrackReport,
        metadata: Option<TrackMetadata>,
        release: Option<ReleaseMetadata>,
        urls: BTreeMap<String, String>,
    ) -> CatalogRecord {
        CatalogRecord {
            schema_version: SCHEMA_VERSION,
            urls,
            track,
            metadata,
            release,
        }
    }

    /// The record as written into the package: pretty JSON with a final newline.
    pub fn to_json(&self) -> Vec<u8> {
        crate::report::to_pretty_json(self)
    }

    pub fn from_json(bytes: &[u8]) -> Result<CatalogRecord, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The URL of a key of the package, when the record knows where it is served.
    fn url(&self, key: &str) -> Option<String> {
        self.urls.get(key).cloned()
    }
}

/// The kind of a notification (`type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationKind {
    #[serde(rename = "track.published")]
    Published,
    #[serde(rename = "track.unpublished")]
    Unpublished,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Published => "track.published",
            NotificationKind::Unpublished => "track.unpublished",
        }
    }
}

/// The body of a catalog notification, field for field as its JSON Schema
/// (`schemas/catalog-notification.schema.json`) describes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Notification {
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    pub schema_version: u32,
    pub release: Option<NotifiedRelease>,
    pub track: NotifiedTrack,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Vec<NotifiedManifest>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_record: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renditions: Option<Vec<NotifiedRendition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness: Option<NotifiedLoudness>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<NotifiedContent>,
    /// The release's front cover, each size with its URL (largest first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<Vec<NotifiedCover>>,
}

/// One size of the front cover in a notification.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotifiedCover {
    pub url: Option<String>,
    pub width: u32,
    pub height: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotifiedRelease {
    pub upc: Option<String>,
    pub title: Option<String>,
    pub artists: Vec<String>,
    pub label: Option<String>,
    pub release_date: Option<String>,
    pub territories: Territories,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotifiedTrack {
    pub id: String,
    /// Absent from the takedown of a track whose catalog record is gone.
    #[serde(flatten)]
    pub details: Option<TrackDetails>,
}

/// What the notification says of a track whose catalog record was found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrackDetails {
    pub isrc: Option<String>,
    pub title: Option<String>,
    pub version: Option<String>,
    pub artists: Option<Vec<String>>,
    pub track_number: Option<u64>,
    pub disc_number: Option<u64>,
    pub explicit: Option<bool>,
    pub sample_rate: u32,
    pub duration_samples: u64,
    pub duration_seconds: f64,
    /// The tiers licensed for offline listening (`[protection] offline`).
    #[serde(default)]
    pub offline: Vec<Tier>,
    /// Per tier, where and when it may be offered (a DDEX release's deals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub availability: Vec<crate::ingest::ddex::TierAvailability>,
    /// The master's Chromaprint fingerprint (fpcalc's form, of the whole track): what a
    /// catalog compares to find duplicates and wrong masters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<crate::ingest::fingerprint::Fingerprint>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManifestFormat {
    Hls,
    Dash,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotifiedManifest {
    pub url: Option<String>,
    pub tier: Tier,
    pub family: Option<Family>,
    pub sample_rate: Option<u32>,
    pub format: ManifestFormat,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotifiedRendition {
    pub id: String,
    pub codec: Codec,
    pub codecs: String,
    pub tier: Tier,
    pub family: Family,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: Option<u8>,
    pub duration_samples: u64,
    pub duration_seconds: f64,
    pub priming_samples: u32,
    pub version: String,
    /// Common Encryption scheme, `null` when clear.
    #[serde(default)]
    pub scheme: Option<crate::protect::Scheme>,
    /// The content key's id (UUID form), `null` when clear: what a licence service serves.
    #[serde(default)]
    pub key_id: Option<crate::protect::KeyId>,
    /// How well the rendition's fingerprint agrees with its master's (0..1).
    #[serde(default)]
    pub similarity: Option<f64>,
    /// Its quality score (ViSQOL MOS-LQO) when the run scored it (`--quality`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::package::quality::Quality>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotifiedLoudness {
    pub track: Option<Loudness>,
    pub album: Option<Loudness>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotifiedContent {
    /// The version folder of every rendition, by rendition id.
    pub renditions: BTreeMap<String, String>,
    /// A digest of the entry manifests and the catalog record (publish sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_sha256: Option<String>,
}

impl Notification {
    /// The notification of a track from its catalog record; the record's URLs say where its
    /// manifests are served.
    pub fn of_record(kind: NotificationKind, record: &CatalogRecord) -> Notification {
        let t = &record.track;
        let meta = record.metadata.as_ref();
        let mut manifests: Vec<NotifiedManifest> = t
            .playlists
            .iter()
            .map(|p| NotifiedManifest {
                url: record.url(&p.path),
                tier: p.tier,
                family: Some(p.family),
                sample_rate: Some(p.sample_rate),
                format: ManifestFormat::Hls,
            })
            .collect();
        // A tier's Apple-form playlist (HLS over several families) and its MPD: no family or
        // rate of their own.
        let whole_tier = |m: &TierRef, format| NotifiedManifest {
            url: record.url(&m.path),
            tier: m.tier,
            family: None,
            sample_rate: None,
            format,
        };
        manifests.extend(
            t.tier_playlists
                .iter()
                .map(|p| whole_tier(p, ManifestFormat::Hls)),
        );
        manifests.extend(t.mpds.iter().map(|m| whole_tier(m, ManifestFormat::Dash)));
        let renditions: Vec<NotifiedRendition> = t
            .renditions
            .iter()
            .map(|r| NotifiedRendition {
                id: r.id.clone(),
                codec: r.codec,
                codecs: r.codecs.clone(),
                tier: r.tier,
                family: r.family,
                bandwidth: r.bandwidth,
                average_bandwidth: r.average_bandwidth,
                sample_rate: r.sample_rate,
                channels: r.channels,
                bits_per_sample: r.bits_per_sample,
                duration_samples: r.duration_samples,
                duration_seconds: if r.sample_rate > 0 {
                    r.duration_samples as f64 / f64::from(r.sample_rate)
                } else {
                    0.0
                },
                priming_samples: r.priming_samples,
                version: r.version.clone(),
                scheme: r.scheme,
                key_id: r.key_id,
                similarity: r.similarity,
                quality: r.quality.clone(),
            })
            .collect();
        Notification {
            kind,
            schema_version: SCHEMA_VERSION,
            release: record.release.as_ref().map(|r| NotifiedRelease {
                upc: r.upc.clone(),
                title: r.title.clone(),
                artists: r.artists.clone(),
                label: r.label.clone(),
                release_date: r.release_date.clone(),
                territories: r.territories.clone(),
            }),
            track: NotifiedTrack {
                id: t.id.clone(),
                details: Some(TrackDetails {
                    isrc: t.isrc.clone(),
                    title: meta.and_then(|m| m.title.clone()),
                    version: meta.and_then(|m| m.version.clone()),
                    artists: meta.map(|m| m.artists.clone()),
                    track_number: meta.and_then(|m| m.track_number),
                    disc_number: meta.map(|m| m.disc_number),
                    explicit: meta.map(|m| m.explicit),
                    sample_rate: t.sample_rate,
                    duration_samples: t.duration_samples,
                    duration_seconds: t.duration_seconds,
                    offline: t.offline.clone(),
                    availability: t.availability.clone(),
                    fingerprint: t.fingerprint.clone(),
                }),
            },
            manifests: Some(manifests),
            catalog_record: Some(record.url(&t.catalog)),
            content: Some(NotifiedContent {
                renditions: renditions
                    .iter()
                    .map(|r| (r.id.clone(), r.version.clone()))
                    .collect(),
                package_sha256: None,
            }),
            renditions: Some(renditions),
            loudness: Some(NotifiedLoudness {
                track: t.loudness.clone(),
                album: t.album_loudness.clone(),
            }),
            cover: (!t.cover.is_empty()).then(|| {
                t.cover
                    .iter()
                    .map(|c| NotifiedCover {
                        url: record.url(&c.path),
                        width: c.width,
                        height: c.height,
                    })
                    .collect()
            }),
        }
    }

    /// The takedown of a track whose catalog record is gone: its id alone.
    pub fn bare(kind: NotificationKind, track: &str) -> Notification {
        Notification {
            kind,
            schema_version: SCHEMA_VERSION,
            release: None,
            track: NotifiedTrack {
                id: track.to_string(),
                details: None,
            },
            manifests: None,
            catalog_record: None,
            renditions: None,
            loudness: None,
            content: None,
            cover: None,
        }
    }

    /// Set the digest of the package it announces.
    pub fn with_package_sha256(mut self, digest: &str) -> Notification {
        if let Some(c) = &mut self.content {
            c.package_sha256 = Some(digest.to_string());
        }
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a notification serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> jsonschema::Validator {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/catalog-notification.schema.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    /// The takedown of a track whose record was gone sent `{type, schema_version}` alone,
    /// which its schema refuses (`release` and `track` are required).
    #[test]
    fn a_takedown_without_a_catalog_record_is_schema_valid() {
        let n = Notification::bare(NotificationKind::Unpublished, "qzes62600001");
        let v: serde_json::Value = serde_json::from_slice(&n.to_bytes()).unwrap();
        let errors: Vec<String> = schema().iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(v["type"], "track.unpublished");
        assert_eq!(v["track"], serde_json::json!({ "id": "qzes62600001" }));
        assert!(v["release"].is_null());
    }

    /// A record read back from its bytes gives the same bytes, and its notification is
    /// schema-valid with the record's URLs and the package digest.
    #[test]
    fn a_record_round_trips_and_notifies_with_its_urls() {
        let report: TrackReport = serde_json::from_value(serde_json::json!({
            "id": "qz", "source": "a.wav", "isrc": "QZES62600001", "sample_rate": 48000,
            "channels": 2, "bits_per_sample": 24, "duration_samples": 480000,
            "duration_seconds": 10.0,
            "loudness": { "integrated_lufs": -14.2, "loudness_range_lu": 5.5,
                          "sample_peak_dbfs": -1.5, "true_peak_dbtp": -1.0,
                          "replaygain_db": -3.8 },
            "album_loudness": null, "hls": "qz/free-aac.m3u8", "dash": "qz/free.mpd",
            "playlists": [{ "tier": "free", "family": "aac", "sample_rate": 44100,
                            "path": "qz/free-aac.m3u8" }],
            "mpds": [{ "tier": "free", "path": "qz/free.mpd" }],
            "catalog": "qz/catalog.json",
            "renditions": [{ "id": "aac-64", "version": "0123456789abcdef", "codec": "aac-lc",
                "codecs": "mp4a.40.2", "tier": "free", "family": "aac", "sample_rate": 44100,
                "channels": 2, "target_bitrate": 64000, "bandwidth": 70000,
                "average_bandwidth": 64000, "init": "qz/aac-64/0123456789abcdef/init.mp4",
                "playlist": "qz/aac-64/0123456789abcdef/index.m3u8", "segments": 2,
                "priming_samples": 2048, "duration_samples": 441000 }]
        }))
        .unwrap();
        // Digital silence: its peaks are minus infinity, which JSON writes as null.
        let silence: Loudness = serde_json::from_str(
            r#"{"integrated_lufs": null, "loudness_range_lu": 0.0, "sample_peak_dbfs": null,
                "true_peak_dbtp": null, "replaygain_db": null}"#,
        )
        .unwrap();
        assert_eq!(silence.sample_peak_dbfs, f64::NEG_INFINITY);
        assert_eq!(silence.true_peak_dbtp, f64::NEG_INFINITY);
        let urls: BTreeMap<String, String> = ["qz/free-aac.m3u8", "qz/free.mpd", "qz/catalog.json"]
            .iter()
            .map(|k| (k.to_string(), format!("https://cdn.example/{k}")))
            .collect();
        let record = CatalogRecord::new(report, None, None, urls);
        let bytes = record.to_json();
        let again = CatalogRecord::from_json(&bytes).unwrap();
        assert!(
            again.to_json() == bytes,
            "the record changed on the way back"
        );
        let n = Notification::of_record(NotificationKind::Published, &again)
            .with_package_sha256(&"ab".repeat(32));
        let v: serde_json::Value = serde_json::from_slice(&n.to_bytes()).unwrap();
        let errors: Vec<String> = schema().iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            v["manifests"][0]["url"],
            "https://cdn.example/qz/free-aac.m3u8"
        );
        assert_eq!(v["manifests"][1]["format"], "dash");
        assert_eq!(v["catalog_record"], "https://cdn.example/qz/catalog.json");
        assert_eq!(v["track"]["isrc"], "QZES62600001");
        assert_eq!(v["track"]["title"], serde_json::Value::Null);
        assert_eq!(v["content"]["renditions"]["aac-64"], "0123456789abcdef");
        assert_eq!(v["content"]["package_sha256"], "ab".repeat(32));
        assert_eq!(v["renditions"][0]["duration_seconds"], 10.0);
    }
}
