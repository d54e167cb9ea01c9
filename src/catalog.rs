//! The catalog record: everything a music service's catalog needs to list one pressed track.
//!
//! Identifiers and credits from release.json, the master's format and duration, loudness (track
//! and album, with ReplayGain-style gains), territories, and every rendition with its codec
//! string, tier and measured bit rates, plus the playlists and MPDs to stream it. `pressing run`
//! writes it into the track's package as `catalog.json`, so the record lands with the package
//! it describes (and is replaced with it). Paths are relative to the output folder, as in the
//! run report. The record holds nothing that changes between identical runs.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::ingest::metadata::{ReleaseMetadata, TrackMetadata};
use crate::report::TrackReport;

/// Bumped when a field changes meaning or disappears; new fields do not bump it.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct CatalogRecord<'a> {
    pub schema_version: u32,
    /// Public URL (or store locator) of every entry manifest and of this record, by key:
    /// filled in when the package is published.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub urls: BTreeMap<String, String>,
    /// What was pressed: ids, master format, loudness, manifests and renditions.
    #[serde(flatten)]
    pub track: &'a TrackReport,
    /// The track as release.json describes it (title, artists, numbering, explicit), when the
    /// master came with one.
    pub metadata: Option<&'a TrackMetadata>,
    /// The release it belongs to (title, artists, label, UPC, date, territories, rights lines).
    pub release: Option<&'a ReleaseMetadata>,
}

impl<'a> CatalogRecord<'a> {
    pub fn new(
        track: &'a TrackReport,
        metadata: Option<&'a TrackMetadata>,
        release: Option<&'a ReleaseMetadata>,
    ) -> CatalogRecord<'a> {
        CatalogRecord {
            schema_version: SCHEMA_VERSION,
            urls: BTreeMap::new(),
            track,
            metadata,
            release,
        }
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a record always serializes");
        text.push('\n');
        text
    }
}

/// The body of a catalog notification (`schemas/catalog-notification.schema.json`), built from
/// a track's catalog record as written into its package (so `pressing publish` of a folder
/// needs nothing else) and the URLs its objects are served under, by key. `kind` is
/// `track.published` or `track.unpublished`; publish adds `content.package_sha256`.
pub fn notification_body(kind: &str, record: &Value, urls: &BTreeMap<String, String>) -> Value {
    let url = |key: &Value| key.as_str().and_then(|k| urls.get(k)).cloned();
    let meta = &record["metadata"];
    let release = &record["release"];
    let mut manifests = Vec::new();
    for p in record["playlists"].as_array().into_iter().flatten() {
        manifests.push(json!({
            "url": url(&p["path"]), "tier": p["tier"], "family": p["family"],
            "sample_rate": p["sample_rate"], "format": "hls",
        }));
    }
    for m in record["mpds"].as_array().into_iter().flatten() {
        manifests.push(json!({
            "url": url(&m["path"]), "tier": m["tier"], "family": null, "sample_rate": null,
            "format": "dash",
        }));
    }
    let renditions: Vec<Value> = record["renditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let rate = r["sample_rate"].as_f64().unwrap_or(0.0);
            let samples = r["duration_samples"].as_u64().unwrap_or(0);
            json!({
                "id": r["id"], "codec": r["codec"], "codecs": r["codecs"], "tier": r["tier"],
                "family": r["family"], "bandwidth": r["bandwidth"],
                "average_bandwidth": r["average_bandwidth"], "sample_rate": r["sample_rate"],
                "channels": r["channels"], "bits_per_sample": r["bits_per_sample"],
                "duration_samples": samples,
                "duration_seconds": if rate > 0.0 { samples as f64 / rate } else { 0.0 },
                "priming_samples": r["priming_samples"], "version": r["version"],
            })
        })
        .collect();
    let versions: serde_json::Map<String, Value> = renditions
        .iter()
        .filter_map(|r| Some((r["id"].as_str()?.to_string(), r["version"].clone())))
        .collect();
    let release = if release.is_object() {
        json!({
            "upc": release["upc"], "title": release["title"], "artists": release["artists"],
            "label": release["label"], "release_date": release["release_date"],
            "territories": release["territories"],
        })
    } else {
        Value::Null
    };
    json!({
        "type": kind,
        "schema_version": SCHEMA_VERSION,
        "release": release,
        "track": {
            "id": record["id"], "isrc": record["isrc"], "title": meta["title"],
            "version": meta["version"], "artists": meta["artists"],
            "track_number": meta["track_number"], "disc_number": meta["disc_number"],
            "explicit": meta["explicit"], "sample_rate": record["sample_rate"],
            "duration_samples": record["duration_samples"],
            "duration_seconds": record["duration_seconds"],
        },
        "manifests": manifests,
        "catalog_record": url(&record["catalog"]),
        "renditions": renditions,
        "loudness": { "track": record["loudness"], "album": record["album_loudness"] },
        "content": { "renditions": versions },
    })
}
