//! CPU time per pipeline stage, for the report and the throughput benchmark.
//!
//! Thread CPU time (not wall time) is summed per stage from every worker, so the figures say
//! where the machine's cycles went whatever the parallelism; process CPU time covers the
//! validation pass, which runs alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cpu_time::{ProcessTime, ThreadTime};
use serde::{Deserialize, Serialize};

use crate::ladder::Codec;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The ingest pass: full decode, checks and loudness of every master.
    Validate,
    /// Decoding masters for the transcode pass.
    Decode,
    Resample,
    /// Requantizing with dither.
    Quantize,
    Encode(Codec),
    /// Segmenting, box writing and segment files.
    Package,
    /// Decoding every packaged rendition again and comparing its fingerprint with its master's.
    Verify,
    /// The masters' fingerprints (computed during validation, beside the loudness meter).
    Fingerprint,
    /// Quality scores (`--quality`): decoding each master again and ViSQOL on every lossy
    /// rendition's windows.
    Quality,
}

const STAGES: usize = 14;

fn index(stage: Stage) -> usize {
    match stage {
        Stage::Validate => 0,
        Stage::Decode => 1,
        Stage::Resample => 2,
        Stage::Quantize => 3,
        Stage::Encode(Codec::AacLc) => 4,
        Stage::Encode(Codec::HeAac) => 5,
        Stage::Encode(Codec::HeAacV2) => 6,
        Stage::Encode(Codec::Opus) => 7,
        Stage::Encode(Codec::Flac) => 8,
        Stage::Encode(Codec::Alac) => 9,
        Stage::Package => 10,
        Stage::Verify => 11,
        Stage::Fingerprint => 12,
        Stage::Quality => 13,
    }
}

/// Accumulates CPU time per stage; shared by every worker.
#[derive(Default)]
pub struct StageClock {
    nanos: [AtomicU64; STAGES],
}

impl StageClock {
    /// Run `f` on this thread and charge its thread CPU time to `stage`.
    pub fn time<T>(&self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let start = ThreadTime::try_now().ok();
        let out = f();
        if let Some(start) = start {
            self.add(stage, start.elapsed());
        }
        out
    }

    /// Run `f`, which may use every core, and charge the process's CPU time to `stage`.
    pub fn time_process<T>(&self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let start = ProcessTime::try_now().ok();
        let out = f();
        if let Some(start) = start {
            self.add(stage, start.elapsed());
        }
        out
    }

    pub fn add(&self, stage: Stage, d: Duration) {
        self.nanos[index(stage)].fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Charge `d` of what `from` measured to `to` instead (work that ran inside another
    /// stage's timing).
    pub fn charge_to(&self, from: Stage, to: Stage, d: Duration) {
        let d = d.as_nanos() as u64;
        let _ = self.nanos[index(from)].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(d))
        });
        self.add(to, Duration::from_nanos(d));
    }

    pub fn report(&self) -> StageSeconds {
        let s = |i: usize| self.nanos[i].load(Ordering::Relaxed) as f64 / 1e9;
        StageSeconds {
            validate: s(0),
            decode: s(1),
            resample: s(2),
            quantize: s(3),
            encode_aac_lc: s(4),
            encode_he_aac: s(5),
            encode_he_aac_v2: s(6),
            encode_opus: s(7),
            encode_flac: s(8),
            encode_alac: s(9),
            package: s(10),
            verify: s(11),
            fingerprint: s(12),
            quality: s(13),
            total: (0..STAGES).map(s).sum(),
        }
    }
}

/// CPU seconds per stage, summed over all threads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageSeconds {
    pub validate: f64,
    pub decode: f64,
    pub resample: f64,
    pub quantize: f64,
    pub encode_aac_lc: f64,
    pub encode_he_aac: f64,
    pub encode_he_aac_v2: f64,
    pub encode_opus: f64,
    pub encode_flac: f64,
    pub encode_alac: f64,
    pub package: f64,
    #[serde(default)]
    pub verify: f64,
    #[serde(default)]
    pub fingerprint: f64,
    #[serde(default)]
    pub quality: f64,
    pub total: f64,
}
