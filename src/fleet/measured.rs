//! Submit's decode pass, carried in the job so that the worker does not decode every master a
//! second time. The worker checks each file's SHA-256 against the job before it runs, so the
//! measurement is of the very bytes it presses; one from another pressing version, or with a
//! finding code this version does not know, is dropped and the worker measures again.
//!
//! Floats travel as their IEEE 754 bits: exact through JSON, infinities (the peak of digital
//! silence) included, so the worker's catalog record is byte-identical to `pressing run`'s.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::ingest::fingerprint::Fingerprint;
use crate::ingest::{Finding, Loudness, Measured, MeasuredTrack, Severity, FINDING_CODES};

/// The version of pressing that measured.
const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMeasurements {
    pub version: String,
    pub tracks: Vec<TrackMeasurement>,
    /// Album loudness, by album index.
    pub albums: Vec<Option<LoudnessBits>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackMeasurement {
    pub id: String,
    pub frames: u64,
    pub loudness: LoudnessBits,
    /// The decode pass's findings (warnings), without their file.
    pub findings: Vec<CarriedFinding>,
    /// The master's fingerprint, its items as little-endian bytes in base64 beside fpcalc's
    /// form (the items are what renditions are compared with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<CarriedFingerprint>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedFingerprint {
    pub duration: u64,
    pub fingerprint: String,
    pub raw: String,
}

impl From<&Fingerprint> for CarriedFingerprint {
    fn from(f: &Fingerprint) -> Self {
        use base64::Engine;
        let bytes: Vec<u8> = f.raw.iter().flat_map(|x| x.to_le_bytes()).collect();
        CarriedFingerprint {
            duration: f.duration,
            fingerprint: f.fingerprint.clone(),
            raw: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }
}

impl CarriedFingerprint {
    fn fingerprint(&self) -> Option<Fingerprint> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.raw)
            .ok()?;
        if bytes.len() % 4 != 0 {
            return None;
        }
        Some(Fingerprint {
            duration: self.duration,
            fingerprint: self.fingerprint.clone(),
            raw: bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            cpu_nanos: 0,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoudnessBits {
    pub integrated_lufs: Option<u64>,
    pub loudness_range_lu: u64,
    pub sample_peak_dbfs: u64,
    pub true_peak_dbtp: u64,
    pub replaygain_db: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedFinding {
    pub code: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub message: String,
    pub fix: String,
}

impl From<&Loudness> for LoudnessBits {
    fn from(l: &Loudness) -> Self {
        LoudnessBits {
            integrated_lufs: l.integrated_lufs.map(f64::to_bits),
            loudness_range_lu: l.loudness_range_lu.to_bits(),
            sample_peak_dbfs: l.sample_peak_dbfs.to_bits(),
            true_peak_dbtp: l.true_peak_dbtp.to_bits(),
            replaygain_db: l.replaygain_db.map(f64::to_bits),
        }
    }
}

impl From<LoudnessBits> for Loudness {
    fn from(b: LoudnessBits) -> Self {
        Loudness {
            integrated_lufs: b.integrated_lufs.map(f64::from_bits),
            loudness_range_lu: f64::from_bits(b.loudness_range_lu),
            sample_peak_dbfs: f64::from_bits(b.sample_peak_dbfs),
            true_peak_dbtp: f64::from_bits(b.true_peak_dbtp),
            replaygain_db: b.replaygain_db.map(f64::from_bits),
        }
    }
}

impl JobMeasurements {
    pub fn new(m: &Measured) -> JobMeasurements {
        let mut tracks: Vec<TrackMeasurement> = m
            .tracks
            .iter()
            .map(|(id, t)| TrackMeasurement {
                id: id.clone(),
                frames: t.frames,
                loudness: (&t.loudness).into(),
                findings: t
                    .findings
                    .iter()
                    .map(|f| CarriedFinding {
                        code: f.code.to_string(),
                        severity: f.severity,
                        location: f.location.clone(),
                        message: f.message.clone(),
                        fix: f.fix.clone(),
                    })
                    .collect(),
                fingerprint: t.fingerprint.as_ref().map(Into::into),
            })
            .collect();
        tracks.sort_by(|a, b| a.id.cmp(&b.id));
        JobMeasurements {
            version: VERSION.to_string(),
            tracks,
            albums: m
                .albums
                .iter()
                .map(|a| a.as_ref().map(Into::into))
                .collect(),
        }
    }

    /// The measurement for this version of pressing; `None` when it must measure again.
    pub fn usable(&self) -> Option<Measured> {
        if self.version != VERSION {
            return None;
        }
        let tracks = self
            .tracks
            .iter()
            .map(|t| {
                let findings = t
                    .findings
                    .iter()
                    .map(|f| {
                        let code = FINDING_CODES.iter().find(|c| **c == f.code)?;
                        Some(Finding {
                            code: std::borrow::Cow::Borrowed(*code),
                            severity: f.severity,
                            file: String::new(),
                            location: f.location.clone(),
                            message: f.message.clone(),
                            fix: f.fix.clone(),
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                let fingerprint = match &t.fingerprint {
                    Some(f) => Some(f.fingerprint()?),
                    None => None,
                };
                Some((
                    t.id.clone(),
                    MeasuredTrack {
                        frames: t.frames,
                        loudness: t.loudness.into(),
                        fingerprint,
                        findings,
                    },
                ))
            })
            .collect::<Option<HashMap<_, _>>>()?;
        let albums = self.albums.iter().map(|a| a.map(Into::into)).collect();
        Some(Measured { tracks, albums })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured() -> Measured {
        let loudness = Loudness {
            integrated_lufs: Some(-14.123_456_789_012_345),
            loudness_range_lu: 0.1 + 0.2,
            sample_peak_dbfs: f64::NEG_INFINITY,
            true_peak_dbtp: -0.000_000_1,
            replaygain_db: None,
        };
        let finding = Finding::warning(
            "master.dc-offset",
            std::path::Path::new(""),
            "DC".into(),
            "fix it",
        )
        .at("channel 1");
        Measured {
            tracks: [(
                "T1".to_string(),
                MeasuredTrack {
                    frames: 48_000,
                    loudness: loudness.clone(),
                    fingerprint: Some(Fingerprint {
                        duration: 1,
                        fingerprint: "AQAAAA".into(),
                        raw: vec![0xdead_beef, 7, u32::MAX],
                        cpu_nanos: 0,
                    }),
                    findings: vec![finding],
                },
            )]
            .into(),
            albums: vec![Some(loudness), None],
        }
    }

    #[test]
    fn a_measurement_comes_back_exactly_through_json() {
        let m = measured();
        let text = serde_json::to_string(&JobMeasurements::new(&m)).unwrap();
        let back: JobMeasurements = serde_json::from_str(&text).unwrap();
        let got = back.usable().expect("same version, known codes");
        assert_eq!(got, m);
        assert!(got.albums[0]
            .as_ref()
            .unwrap()
            .sample_peak_dbfs
            .is_infinite());
    }

    #[test]
    fn another_version_or_an_unknown_code_measures_again() {
        let mut j = JobMeasurements::new(&measured());
        j.version = "0.0.0-other".into();
        assert!(j.usable().is_none());
        let mut j = JobMeasurements::new(&measured());
        j.tracks[0].findings[0].code = "master.new-check".into();
        assert!(j.usable().is_none());
    }
}
