//! The catalog record: everything a music service's catalog needs to list one pressed track.
//!
//! Identifiers and credits from release.json, the master's format and duration, loudness (track
//! and album, with ReplayGain-style gains), territories, and every rendition with its codec
//! string, tier and measured bit rates, plus the playlists and MPDs to stream it. `pressing run`
//! writes it into the track's package as `catalog.json`, so the record lands with the package
//! it describes (and is replaced with it). Paths are relative to the output folder, as in the
//! run report. The record holds nothing that changes between identical runs.

use serde::Serialize;

use crate::ingest::metadata::{ReleaseMetadata, TrackMetadata};
use crate::report::TrackReport;

/// The record's file name in each track's package.
pub const RECORD_FILE: &str = "catalog.json";

/// Bumped when a field changes meaning or disappears; new fields do not bump it.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct CatalogRecord<'a> {
    pub schema_version: u32,
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
