//! Quality scores (`pressing run --quality`, or a ladder's `prune_quality_margin`): each lossy
//! rendition is scored against its master with ViSQOL v3 in audio mode (MOS-LQO, 1 to about
//! 4.75), on the windows verification decodes (`verify::decode_windows`).
//!
//! The implementation is `audio_samples_qoe`, chosen by measurement: on the 10 conformance
//! pairs of the reference (google/visqol), it agrees within 0.024 MOS where `visqol-rs` is off
//! by up to 1.746 (BENCHMARKS.md, "Quality scores"). Both signals are averaged to mono (as
//! ViSQOL does) and resampled to 48 kHz inside the metric.

use std::num::NonZeroU32;
use std::path::Path;

use audio_samples::AudioSamples;
use audio_samples_qoe::{visqol, VisqolOptions};
use non_empty_slice::NonEmptySlice;

use crate::ingest::MasterReader;
use crate::package::verify::Windows;
use crate::transcode::StreamResampler;

/// A rendition's score: the mean of its windows' (MOS-LQO, 3 decimals) and each window's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    /// ViSQOL v3 audio mode MOS-LQO, the mean of `windows`.
    pub mos: f64,
    /// Each scored window's MOS-LQO, in time order: their spread is the score's noise.
    pub windows: Vec<f64>,
}

/// At most this much of each window is scored: the metric costs about 0.2 s of CPU per second
/// of audio scored (BENCHMARKS.md).
pub const WINDOW_SECONDS: f64 = 4.0;
/// A rendition decoded whole (under 30 s) is cut into this many windows, when each is at least
/// [`MIN_WINDOW_SECONDS`] long.
const WHOLE_PARTS: usize = 3;
/// The shortest window scored: ViSQOL's audio mode compares patches of 30 frames of 20 ms, and
/// a window needs a few of them for its score to mean anything.
pub const MIN_WINDOW_SECONDS: f64 = 1.2;

/// The stretches of a master that scoring compares with, mono (the channels' mean, as ViSQOL
/// compares), at its own rate and at each lower rate a rendition has.
///
/// A rendition is compared with the master at the rendition's rate, resampled by the
/// transcoder's own resampler: the encoder's input. The score then measures what the encoder
/// lost, not what the rung's sample rate leaves out (ViSQOL's audio mode spans 0 to 24 kHz:
/// a 96 kHz fixture with content above 22.05 kHz scores 2.05 against itself resampled to
/// 44.1 kHz, with no encoder at all).
///
/// Only the stretches the renditions' windows need are kept: the master is streamed once,
/// so memory does not grow with its length, rate or channels (a whole 4-minute 24/96 master
/// decoded for scoring took the run's peak from 137 to 551 MB).
pub struct MasterAudio {
    native_rate: u32,
    /// (rate, first frame at that rate, mono samples) per stretch and rate.
    stretches: Vec<(u32, u64, Vec<f32>)>,
}

/// Seconds read around each stretch: the resampler's start and end settle within them.
const PAD_SECONDS: f64 = 0.1;

impl MasterAudio {
    /// Read `spans` (seconds, from the master's start) of the master at `path`, and resample
    /// them to each of `rates` below its own.
    pub fn read(path: &Path, spans: &[(f64, f64)], rates: &[u32]) -> Result<MasterAudio, String> {
        let mut reader = MasterReader::open(path, false).map_err(|e| e.to_string())?;
        let (channels, rate) = (reader.format().channels, reader.format().sample_rate);
        let mut lower: Vec<u32> = rates.iter().copied().filter(|&r| r < rate).collect();
        lower.sort_unstable();
        lower.dedup();
        // A stretch starts on a frame that falls on a whole frame at every lower rate, so that
        // its resampled copies start on whole frames too.
        let step = lower
            .iter()
            .map(|&r| u64::from(rate / gcd(rate, r)))
            .fold(1, lcm);
        let mut wanted: Vec<(u64, u64)> = spans
            .iter()
            .map(|&(a, b)| {
                let first = (((a - PAD_SECONDS).max(0.0) * f64::from(rate)) as u64) / step * step;
                let end = ((b + PAD_SECONDS) * f64::from(rate)).ceil() as u64;
                (first, end)
            })
            .collect();
        wanted.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (a, b) in wanted {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let mut buffers: Vec<Vec<f32>> = vec![Vec::new(); merged.len()];
        let ch = usize::from(channels.max(1));
        let mut at = 0u64;
        while let Some(chunk) = reader.next_chunk().map_err(|e| e.to_string())? {
            let frames = (chunk.len() / ch) as u64;
            for ((a, b), buf) in merged.iter().zip(&mut buffers) {
                let (from, to) = ((*a).max(at), (*b).min(at + frames));
                if from < to {
                    let part = &chunk[((from - at) as usize * ch)..((to - at) as usize * ch)];
                    buf.extend(to_mono(part, channels));
                }
            }
            at += frames;
            if merged.last().is_some_and(|(_, b)| at >= *b) {
                break;
            }
        }
        let mut stretches = Vec::with_capacity(merged.len() * (1 + lower.len()));
        for ((first, _), mono) in merged.into_iter().zip(buffers) {
            for &to in &lower {
                let mut r = StreamResampler::new(rate, to, 1).map_err(|e| e.to_string())?;
                let mut out = Vec::with_capacity(mono.len() * to as usize / rate as usize + 1);
                r.process(&mono, &mut out).map_err(|e| e.to_string())?;
                r.finish(&mut out).map_err(|e| e.to_string())?;
                stretches.push((to, first * u64::from(to) / u64::from(rate), out));
            }
            stretches.push((rate, first, mono));
        }
        Ok(MasterAudio {
            native_rate: rate,
            stretches,
        })
    }

    /// The master's samples for a rendition's frames `first..first + frames` at `rate`: at
    /// that rate when the master was resampled to it, else at the master's own (its rate is
    /// returned with them). `None`: not read, a fault of the caller's spans.
    fn reference(&self, rate: u32, first: u64, frames: u64) -> Option<(u32, &[f32])> {
        let (rate, first, end) = if self.stretches.iter().any(|(r, ..)| *r == rate) {
            (rate, first, first + frames)
        } else {
            let scale =
                |x: u64| (x as f64 * f64::from(self.native_rate) / f64::from(rate)).round() as u64;
            (self.native_rate, scale(first), scale(first + frames))
        };
        // Clipped at the stretch's end: a rendition may outlast its master by a rounded frame
        // or two, which the metric's alignment absorbs.
        self.stretches.iter().find_map(|(r, start, samples)| {
            let stop = start + samples.len() as u64;
            (*r == rate && *start <= first && first < stop).then(|| {
                (
                    rate,
                    &samples[(first - start) as usize..(end.min(stop) - start) as usize],
                )
            })
        })
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: u64, b: u64) -> u64 {
    a / u64::from(gcd(a as u32, b as u32)) * b
}

/// The master's stretches (seconds) a rendition's scored windows need.
pub fn needed_seconds(w: &Windows) -> Vec<(f64, f64)> {
    let rate = f64::from(w.sample_rate);
    scored_spans(w)
        .into_iter()
        .map(|(_, first, frames)| (first as f64 / rate, (first + frames as u64) as f64 / rate))
        .collect()
}

fn to_mono(samples: &[f32], channels: u16) -> Vec<f32> {
    let ch = usize::from(channels.max(1));
    if ch == 1 {
        return samples.to_vec();
    }
    let scale = 1.0 / ch as f32;
    samples
        .chunks_exact(ch)
        .map(|f| f.iter().sum::<f32>() * scale)
        .collect()
}

/// The windows of a rendition that are scored, as (first sample, frames) in the rendition's
/// presented samples: up to [`WINDOW_SECONDS`] of each decoded window, or of three equal parts
/// of a rendition decoded whole.
fn scored_spans(w: &Windows) -> Vec<(usize, u64, usize)> {
    let ch = usize::from(w.channels.max(1));
    let rate = f64::from(w.sample_rate);
    let cap = (WINDOW_SECONDS * rate) as usize;
    let min = (MIN_WINDOW_SECONDS * rate) as usize;
    let mut spans = Vec::new();
    for (i, (first, samples)) in w.windows.iter().enumerate() {
        let frames = samples.len() / ch;
        if w.whole {
            let parts = (frames / min.max(1)).clamp(1, WHOLE_PARTS);
            let part = frames / parts;
            for p in 0..parts {
                spans.push((i, (p * part) as u64, part.min(cap)));
            }
        } else {
            spans.push((i, *first, frames.min(cap)));
        }
    }
    spans.retain(|&(_, _, frames)| frames >= min);
    spans
}

/// Score a rendition's decoded windows against its master (`None`: no window long enough).
pub fn score(w: &Windows, master: &MasterAudio) -> Result<Option<Quality>, String> {
    let ch = usize::from(w.channels.max(1));
    let opts = VisqolOptions::audio();
    let mut windows = Vec::new();
    for (i, first, frames) in scored_spans(w) {
        let (window_first, samples) = &w.windows[i];
        let offset = (first - if w.whole { 0 } else { *window_first }) as usize;
        let degraded = to_mono(&samples[offset * ch..(offset + frames) * ch], w.channels);
        let Some((master_rate, reference)) = master.reference(w.sample_rate, first, frames as u64)
        else {
            return Err(format!(
                "the master's samples for frames {first}..{} were not read",
                first + frames as u64
            ));
        };
        let (Some(reference), Some(degraded)) = (
            NonEmptySlice::new(reference),
            NonEmptySlice::new(&degraded[..]),
        ) else {
            continue;
        };
        let rate = |r: u32| NonZeroU32::new(r).ok_or("a sample rate of 0");
        let reference = AudioSamples::new_mono_from_slice(reference, rate(master_rate)?);
        let degraded = AudioSamples::new_mono_from_slice(degraded, rate(w.sample_rate)?);
        let mos = visqol(&reference, degraded, &opts)
            .map_err(|e| format!("ViSQOL cannot score a window at sample {first}: {e}"))?;
        windows.push(round3(mos));
    }
    if windows.is_empty() {
        return Ok(None);
    }
    let mos = round3(windows.iter().sum::<f64>() / windows.len() as f64);
    Ok(Some(Quality { mos, windows }))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f64, rate: u32, channels: u16) -> Vec<f32> {
        let n = (seconds * f64::from(rate)) as usize;
        (0..n)
            .flat_map(|i| {
                let t = i as f64 / f64::from(rate);
                let x = (0.3 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                    + 0.2 * (2.0 * std::f64::consts::PI * 3520.0 * t).sin()
                    + 0.1 * (2.0 * std::f64::consts::PI * 9000.0 * t).sin())
                    as f32;
                std::iter::repeat_n(x, usize::from(channels))
            })
            .collect()
    }

    #[test]
    fn a_whole_rendition_is_scored_on_three_parts_of_at_most_four_seconds() {
        let w = Windows {
            channels: 2,
            sample_rate: 1000,
            windows: vec![(0, vec![0.0; 2 * 15_000])],
            whole: true,
        };
        assert_eq!(
            scored_spans(&w),
            [(0, 0, 4000), (0, 5000, 4000), (0, 10_000, 4000)]
        );
        let short = Windows {
            windows: vec![(0, vec![0.0; 2 * 2000])],
            ..w
        };
        assert_eq!(scored_spans(&short), [(0, 0, 2000)]);
    }

    #[test]
    fn a_copy_scores_high_and_a_low_pass_scores_lower() {
        let master = tone(3.0, 48_000, 2);
        let m = MasterAudio {
            native_rate: 48_000,
            stretches: vec![(48_000, 0, to_mono(&master, 2))],
        };
        let same = Windows {
            channels: 2,
            sample_rate: 48_000,
            windows: vec![(0, master.clone())],
            whole: true,
        };
        let copy = score(&same, &m).unwrap().unwrap();
        // Without the 9 kHz partial: what a low-pass encoder leaves.
        let dull: Vec<f32> = tone(3.0, 48_000, 1)
            .iter()
            .enumerate()
            .flat_map(|(i, _)| {
                let t = i as f64 / 48_000.0;
                let x = (0.3 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                    + 0.2 * (2.0 * std::f64::consts::PI * 3520.0 * t).sin())
                    as f32;
                [x, x]
            })
            .collect();
        let lowpass = score(
            &Windows {
                windows: vec![(0, dull)],
                ..same
            },
            &m,
        )
        .unwrap()
        .unwrap();
        assert!(copy.mos > 4.5, "{copy:?}");
        assert!(lowpass.mos < copy.mos - 0.2, "{lowpass:?} vs {copy:?}");
        assert_eq!(copy.windows.len(), 2);
    }
}
