//! Streaming analysis of a decoded master: loudness (ITU-R BS.1770-4 / EBU R128 through the
//! `ebur128` crate: integrated loudness, loudness range per EBU Tech 3342, sample and true peak)
//! and the quality checks (digital silence, leading and trailing silence, clipping, DC offset,
//! peaks, duration).
//!
//! Fed the same interleaved `f32` chunks the transcoder sees; memory does not grow with the
//! length of the master beyond ebur128's 10 gating blocks per second.

use std::path::Path;

use ebur128::{EbuR128, Mode};
use serde::{Deserialize, Serialize};

use super::findings::Finding;

/// A sample at or below this magnitude counts as digital silence (1 LSB at 16 bits).
pub const SILENCE_THRESHOLD: f32 = 1.0 / 32768.0;
/// Leading or trailing silence longer than this is reported (seconds).
pub const MAX_EDGE_SILENCE_SECONDS: f64 = 2.0;
/// A sample this close to full scale counts as clipped (within 1 LSB at 16 bits).
pub const CLIP_LEVEL: f32 = 1.0 - 1.0 / 32768.0;
/// Consecutive full-scale samples in one channel that make a clipping run.
pub const CLIP_RUN: u32 = 3;
/// Share of full-scale samples above which clipping refuses the master.
pub const SEVERE_CLIP_SHARE: f64 = 0.01;
/// Mean level (linear) above which a channel has a DC offset (-60 dBFS).
pub const DC_OFFSET_LIMIT: f64 = 0.001;
/// True-peak levels that warn (dBTP).
pub const TRUE_PEAK_WARN_DBTP: f64 = -1.0;
pub const TRUE_PEAK_OVER_DBTP: f64 = 0.0;
/// The loudness gating block (ITU-R BS.1770-4 2.2): a shorter master is refused.
pub const GATING_BLOCK_SECONDS: f64 = 0.4;
/// Tracks shorter or longer than these warn (seconds).
pub const SHORT_TRACK_SECONDS: f64 = 2.0;
pub const LONG_TRACK_SECONDS: f64 = 60.0 * 60.0;
/// ReplayGain 2.0 reference loudness (LUFS).
pub const REPLAYGAIN_REFERENCE_LUFS: f64 = -18.0;

/// Every finding code [`Analyzer::finish`] can give: what a carried measurement's findings
/// are checked against (an unknown code, from another version, means measure again).
pub const FINDING_CODES: &[&str] = &[
    "master.loudness",
    "master.silent",
    "master.leading-silence",
    "master.trailing-silence",
    "master.clipping-severe",
    "master.clipping",
    "master.dc-offset",
    "master.true-peak-over",
    "master.true-peak",
    "master.too-short-to-measure",
    "master.too-short",
    "master.too-long",
];

/// Loudness of a track or an album.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Loudness {
    /// Integrated loudness (LUFS); `None` for digital silence (below the absolute gate).
    pub integrated_lufs: Option<f64>,
    /// Loudness range (LU).
    pub loudness_range_lu: f64,
    /// Highest sample peak over all channels (dBFS); JSON has no infinity, so the peak of
    /// digital silence is written as `null` and read back as minus infinity.
    #[serde(deserialize_with = "peak_db")]
    pub sample_peak_dbfs: f64,
    /// Highest true peak over all channels (dBTP), as the sample peak.
    #[serde(deserialize_with = "peak_db")]
    pub true_peak_dbtp: f64,
    /// ReplayGain 2.0 style gain to -18 LUFS (dB).
    pub replaygain_db: Option<f64>,
}

/// A peak level as JSON holds it: `null` is the level of digital silence.
fn peak_db<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
}

fn db(linear: f64) -> f64 {
    if linear > 0.0 {
        20.0 * linear.log10()
    } else {
        f64::NEG_INFINITY
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The loudness meter of an [`Analyzer`], detachable so that it can run on its own thread
/// (it is most of the analysis cost: true peak oversamples every channel).
pub struct Meter {
    inner: EbuR128,
    error: Option<String>,
}

impl Meter {
    pub fn push(&mut self, samples: &[f32]) {
        if let Err(e) = self.inner.add_frames_f32(samples) {
            self.error.get_or_insert(e.to_string());
        }
    }
}

/// Analyses one master as it is decoded.
pub struct Analyzer {
    channels: usize,
    rate: u32,
    /// `None` while detached.
    meter: Option<Meter>,
    frames: u64,
    first_sound: Option<u64>,
    last_sound: u64,
    dc_sum: Vec<f64>,
    full_scale: u64,
    runs: Vec<u32>,
    clip_runs: u64,
    first_clip: Option<u64>,
}

impl Analyzer {
    pub fn new(channels: u16, rate: u32) -> Result<Analyzer, String> {
        let meter = EbuR128::new(
            u32::from(channels),
            rate,
            Mode::I | Mode::LRA | Mode::SAMPLE_PEAK | Mode::TRUE_PEAK,
        )
        .map_err(|e| format!("loudness meter: {e}"))?;
        Ok(Analyzer {
            channels: channels as usize,
            rate,
            meter: Some(Meter {
                inner: meter,
                error: None,
            }),
            frames: 0,
            first_sound: None,
            last_sound: 0,
            dc_sum: vec![0.0; channels as usize],
            full_scale: 0,
            runs: vec![0; channels as usize],
            clip_runs: 0,
            first_clip: None,
        })
    }

    /// Take the loudness meter out, to feed it the same samples elsewhere; give it back with
    /// [`Analyzer::attach_meter`] before [`Analyzer::finish`].
    pub fn detach_meter(&mut self) -> Option<Meter> {
        self.meter.take()
    }

    pub fn attach_meter(&mut self, meter: Meter) {
        self.meter = Some(meter);
    }

    /// Feed interleaved samples (to the meter too, when it is attached).
    pub fn push(&mut self, samples: &[f32]) {
        if let Some(meter) = &mut self.meter {
            meter.push(samples);
        }
        for (i, frame) in samples.chunks_exact(self.channels).enumerate() {
            let pos = self.frames + i as u64;
            let mut sound = false;
            for (c, &s) in frame.iter().enumerate() {
                self.dc_sum[c] += f64::from(s);
                let a = s.abs();
                sound |= a > SILENCE_THRESHOLD;
                if a >= CLIP_LEVEL {
                    self.full_scale += 1;
                    self.runs[c] += 1;
                    if self.runs[c] == CLIP_RUN {
                        self.clip_runs += 1;
                        self.first_clip.get_or_insert(pos + 1 - u64::from(CLIP_RUN));
                    }
                } else {
                    self.runs[c] = 0;
                }
            }
            if sound {
                self.first_sound.get_or_insert(pos);
                self.last_sound = pos;
            }
        }
        self.frames += (samples.len() / self.channels) as u64;
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The measurements and the findings for `file`. The meter is returned for album loudness.
    ///
    /// # Panics
    /// If the meter is detached.
    pub fn finish(self, file: &Path) -> (Loudness, Vec<Finding>, EbuR128) {
        let mut findings = Vec::new();
        let seconds = |f: u64| f as f64 / f64::from(self.rate);
        let Meter {
            inner: meter,
            error: meter_error,
        } = self.meter.expect("the meter is attached before finish");
        let integrated = meter.loudness_global().ok().and_then(finite);
        let lra = meter.loudness_range().ok().and_then(finite).unwrap_or(0.0);
        let (mut sp, mut tp) = (0.0f64, 0.0f64);
        for c in 0..self.channels as u32 {
            sp = sp.max(meter.sample_peak(c).unwrap_or(0.0));
            tp = tp.max(meter.true_peak(c).unwrap_or(0.0));
        }
        let loudness = Loudness {
            integrated_lufs: integrated,
            loudness_range_lu: lra,
            sample_peak_dbfs: db(sp),
            true_peak_dbtp: db(tp),
            replaygain_db: integrated.map(|l| REPLAYGAIN_REFERENCE_LUFS - l),
        };
        if let Some(e) = meter_error {
            findings.push(Finding::error(
                "master.loudness",
                file,
                format!("loudness could not be measured: {e}"),
                "report this master to the pressing maintainers",
            ));
        }
        let duration = seconds(self.frames);
        match self.first_sound {
            None => findings.push(Finding::error(
                "master.silent",
                file,
                format!("the whole master ({duration:.1} s) is digital silence"),
                "deliver the right file; a silent master is always a mistake",
            )),
            Some(first) => {
                let lead = seconds(first);
                if lead > MAX_EDGE_SILENCE_SECONDS {
                    findings.push(
                        Finding::warning(
                            "master.leading-silence",
                            file,
                            format!("{lead:.2} s of digital silence before the first sound (more than {MAX_EDGE_SILENCE_SECONDS} s)"),
                            "trim the head unless the silence is intended",
                        )
                        .at(format!("samples 0..{first}")),
                    );
                }
                let tail = seconds(self.frames - 1 - self.last_sound);
                if tail > MAX_EDGE_SILENCE_SECONDS {
                    findings.push(
                        Finding::warning(
                            "master.trailing-silence",
                            file,
                            format!("{tail:.2} s of digital silence after the last sound (more than {MAX_EDGE_SILENCE_SECONDS} s)"),
                            "trim the tail unless the silence is intended",
                        )
                        .at(format!("samples {}..{}", self.last_sound + 1, self.frames)),
                    );
                }
            }
        }
        let total = self.frames * self.channels as u64;
        if total > 0 {
            let share = self.full_scale as f64 / total as f64;
            if share > SEVERE_CLIP_SHARE {
                findings.push(
                    Finding::error(
                        "master.clipping-severe",
                        file,
                        format!(
                            "{:.2}% of samples are at full scale (more than {:.0}%)",
                            share * 100.0,
                            SEVERE_CLIP_SHARE * 100.0
                        ),
                        "deliver a master without limiting into clipping",
                    )
                    .at(format!(
                        "first run at sample {}",
                        self.first_clip.unwrap_or(0)
                    )),
                );
            } else if self.clip_runs > 0 {
                findings.push(
                    Finding::warning(
                        "master.clipping",
                        file,
                        format!(
                            "{} run(s) of {CLIP_RUN} or more consecutive full-scale samples",
                            self.clip_runs
                        ),
                        "check the master for clipped peaks",
                    )
                    .at(format!(
                        "first run at sample {}",
                        self.first_clip.unwrap_or(0)
                    )),
                );
            }
            for (c, sum) in self.dc_sum.iter().enumerate() {
                let mean = sum / self.frames as f64;
                if mean.abs() > DC_OFFSET_LIMIT {
                    findings.push(Finding::warning(
                        "master.dc-offset",
                        file,
                        format!(
                            "channel {c} has a DC offset of {:.1} dBFS (limit {:.0} dBFS)",
                            db(mean.abs()),
                            db(DC_OFFSET_LIMIT)
                        ),
                        "apply a DC-blocking high-pass filter in mastering",
                    ));
                }
            }
        }
        let tp_db = loudness.true_peak_dbtp;
        if tp_db > TRUE_PEAK_OVER_DBTP {
            findings.push(Finding::warning(
                "master.true-peak-over",
                file,
                format!("true peak {tp_db:+.2} dBTP is above 0 dBTP: lossy renditions will clip"),
                "lower the master's ceiling to -1 dBTP",
            ));
        } else if tp_db > TRUE_PEAK_WARN_DBTP {
            findings.push(Finding::warning(
                "master.true-peak",
                file,
                format!("true peak {tp_db:+.2} dBTP is above {TRUE_PEAK_WARN_DBTP} dBTP"),
                "leave 1 dB of headroom for lossy codecs",
            ));
        }
        if duration < GATING_BLOCK_SECONDS {
            // BS.1770 gates on 400 ms blocks: a shorter master has no defined loudness.
            findings.push(Finding::error(
                "master.too-short-to-measure",
                file,
                format!(
                    "{:.0} ms long: shorter than one {:.0} ms loudness gating block (ITU-R BS.1770-4), so its loudness is undefined",
                    duration * 1000.0,
                    GATING_BLOCK_SECONDS * 1000.0
                ),
                "deliver the complete master (at least 0.4 s; a track under 2 s is also flagged as short)",
            ));
        } else if duration < SHORT_TRACK_SECONDS {
            findings.push(Finding::warning(
                "master.too-short",
                file,
                format!("{duration:.2} s long (shorter than {SHORT_TRACK_SECONDS} s)"),
                "check that the file is complete",
            ));
        } else if duration > LONG_TRACK_SECONDS {
            findings.push(Finding::warning(
                "master.too-long",
                file,
                format!(
                    "{:.1} min long (longer than {:.0} min)",
                    duration / 60.0,
                    LONG_TRACK_SECONDS / 60.0
                ),
                "check that tracks were not joined by mistake",
            ));
        }
        (loudness, findings, retire(meter))
    }
}

/// Shrink a finished meter to what album loudness reads: its gating-block and short-term
/// histories and its peaks. A meter with a short-term window holds 3 s of f64 audio per
/// channel (4.6 MB at 96 kHz stereo); kept for every track of an album until the album is
/// measured, that grew memory with the track count. `change_parameters` reallocates that
/// buffer at the new rate and keeps the histories and peaks (it only drops the unfinished
/// block, which a finished meter no longer needs); the unit test
/// `a_retired_meter_gives_the_same_album_loudness` holds the crate to that.
fn retire(mut meter: EbuR128) -> EbuR128 {
    const LOWEST_RATE: u32 = 16; // the crate's minimum
    let channels = meter.channels();
    let _ = meter.change_parameters(channels, LOWEST_RATE);
    meter
}

/// Album loudness over the meters of its tracks (gating over all blocks, EBU R128).
pub fn album_loudness<'a>(meters: impl Iterator<Item = &'a EbuR128> + Clone) -> Loudness {
    let integrated = EbuR128::loudness_global_multiple(meters.clone())
        .ok()
        .and_then(finite);
    let lra = EbuR128::loudness_range_multiple(meters.clone())
        .ok()
        .and_then(finite)
        .unwrap_or(0.0);
    let (mut sp, mut tp) = (0.0f64, 0.0f64);
    for m in meters {
        for c in 0..m.channels() {
            sp = sp.max(
                m.prev_sample_peak(c)
                    .unwrap_or(0.0)
                    .max(m.sample_peak(c).unwrap_or(0.0)),
            );
            tp = tp.max(
                m.prev_true_peak(c)
                    .unwrap_or(0.0)
                    .max(m.true_peak(c).unwrap_or(0.0)),
            );
        }
    }
    Loudness {
        integrated_lufs: integrated,
        loudness_range_lu: lra,
        sample_peak_dbfs: db(sp),
        true_peak_dbtp: db(tp),
        replaygain_db: integrated.map(|l| REPLAYGAIN_REFERENCE_LUFS - l),
    }
}

#[cfg(test)]
mod tests {
    //! The EBU Tech 3341 / 3342 cases that can be synthesised from their published
    //! descriptions: 1 kHz sines at given levels, in sequences, on stereo channels.
    use super::*;

    #[test]
    fn every_finding_code_of_the_analyzer_is_listed() {
        let source = include_str!("analysis.rs");
        let end = source.find("#[cfg(test)]").unwrap();
        let mut codes: Vec<&str> = source[..end]
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| s.starts_with("master.") && !s.contains(' '))
            .collect();
        codes.sort();
        codes.dedup();
        let mut listed = super::FINDING_CODES.to_vec();
        listed.sort();
        assert_eq!(codes, listed);
    }

    const RATE: u32 = 48000;

    /// Stereo 1 kHz sine at `dbfs` (peak level of each channel) for `seconds`.
    fn sine(dbfs: f64, seconds: f64, phase: &mut f64) -> Vec<f32> {
        let amp = 10f64.powf(dbfs / 20.0);
        let n = (seconds * f64::from(RATE)) as usize;
        let mut out = Vec::with_capacity(n * 2);
        for _ in 0..n {
            let v = (amp * phase.sin()) as f32;
            out.extend([v, v]);
            *phase += 2.0 * std::f64::consts::PI * 1000.0 / f64::from(RATE);
        }
        out
    }

    fn measure(parts: &[(f64, f64)]) -> Loudness {
        let mut a = Analyzer::new(2, RATE).unwrap();
        let mut phase = 0.0;
        for &(dbfs, secs) in parts {
            a.push(&sine(dbfs, secs, &mut phase));
        }
        a.finish(Path::new("test.wav")).0
    }

    fn assert_close(found: f64, expected: f64, tol: f64, what: &str) {
        assert!(
            (found - expected).abs() <= tol,
            "{what}: {found:.3}, expected {expected} +- {tol}"
        );
    }

    #[test]
    fn a_retired_meter_gives_the_same_album_loudness() {
        let tracks: Vec<Vec<f32>> = [(-20.0, 8.0), (-30.0, 5.0), (-14.0, 6.0)]
            .iter()
            .map(|&(dbfs, secs)| sine(dbfs, secs, &mut 0.0))
            .collect();
        let meters = |retired: bool| -> Vec<EbuR128> {
            tracks
                .iter()
                .map(|t| {
                    let mut a = Analyzer::new(2, RATE).unwrap();
                    a.push(t);
                    let meter = a.meter.take().unwrap().inner;
                    if retired {
                        retire(meter)
                    } else {
                        meter
                    }
                })
                .collect()
        };
        let (full, retired) = (meters(false), meters(true));
        assert!(retired[0].rate() < 100, "the audio buffer is dropped");
        let a = album_loudness(full.iter());
        let b = album_loudness(retired.iter());
        assert_eq!(a, b);
        assert!(a.integrated_lufs.is_some() && a.loudness_range_lu > 1.0);
    }

    #[test]
    fn ebu_3341_case_1_and_2_steady_sines() {
        // -23 dBFS and -33 dBFS stereo 1 kHz sines read -23.0 and -33.0 LUFS.
        let l = measure(&[(-23.0, 20.0)]);
        assert_close(l.integrated_lufs.unwrap(), -23.0, 0.1, "case 1");
        let l = measure(&[(-33.0, 20.0)]);
        assert_close(l.integrated_lufs.unwrap(), -33.0, 0.1, "case 2");
    }

    #[test]
    fn ebu_3341_case_3_and_4_gating() {
        // Case 3: -36, -23, -36 dBFS for 10, 60, 10 s: -23.0 LUFS (relative gate).
        let l = measure(&[(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)]);
        assert_close(l.integrated_lufs.unwrap(), -23.0, 0.1, "case 3");
        // Case 4: -72, -36, -23, -36, -72 dBFS for 10, 10, 60, 10, 10 s: -23.0 LUFS.
        let l = measure(&[
            (-72.0, 10.0),
            (-36.0, 10.0),
            (-23.0, 60.0),
            (-36.0, 10.0),
            (-72.0, 10.0),
        ]);
        assert_close(l.integrated_lufs.unwrap(), -23.0, 0.1, "case 4");
    }

    #[test]
    fn ebu_3342_loudness_range_cases() {
        // Cases 1-3: 20 s at -20 dBFS then 20 s at -30, -15 and -40 dBFS: LRA 10, 5 and 20 LU.
        let l = measure(&[(-20.0, 20.0), (-30.0, 20.0)]);
        assert_close(l.loudness_range_lu, 10.0, 0.1, "3342 case 1");
        let l = measure(&[(-20.0, 20.0), (-15.0, 20.0)]);
        assert_close(l.loudness_range_lu, 5.0, 0.1, "3342 case 2");
        let l = measure(&[(-40.0, 20.0), (-20.0, 20.0)]);
        assert_close(l.loudness_range_lu, 20.0, 0.1, "3342 case 3");
        // Case 4: -50, -35, -20, -35, -50 dBFS for 20 s each: LRA 15 LU.
        let l = measure(&[
            (-50.0, 20.0),
            (-35.0, 20.0),
            (-20.0, 20.0),
            (-35.0, 20.0),
            (-50.0, 20.0),
        ]);
        assert_close(l.loudness_range_lu, 15.0, 0.1, "3342 case 4");
    }

    #[test]
    fn true_peak_finds_the_peak_between_samples() {
        // A sine at a quarter of the rate, 45 degrees off the sample grid: every sample sits
        // 3.01 dB below the waveform's peak of -6 dBFS.
        let amp = 10f64.powf(-6.0 / 20.0);
        let n = RATE as usize * 3;
        let samples: Vec<f32> = (0..n)
            .flat_map(|i| {
                let v = (amp
                    * (std::f64::consts::FRAC_PI_2 * i as f64 + std::f64::consts::FRAC_PI_4).sin())
                    as f32;
                [v, v]
            })
            .collect();
        let mut a = Analyzer::new(2, RATE).unwrap();
        a.push(&samples);
        let (l, _, _) = a.finish(Path::new("t.wav"));
        assert_close(l.sample_peak_dbfs, -9.01, 0.05, "sample peak");
        assert_close(l.true_peak_dbtp, -6.0, 0.5, "true peak");
    }

    #[test]
    fn silence_clipping_and_dc_are_found() {
        let mut a = Analyzer::new(1, RATE).unwrap();
        a.push(&vec![0.0; RATE as usize * 3]);
        let (l, f, _) = a.finish(Path::new("s.wav"));
        assert!(l.integrated_lufs.is_none());
        assert!(f.iter().any(|f| f.code == "master.silent" && f.is_error()));

        let mut a = Analyzer::new(1, RATE).unwrap();
        let mut x: Vec<f32> = (0..RATE * 4)
            .map(|i| ((i as f32) * 0.05).sin() * 1.5)
            .collect();
        for v in &mut x {
            *v = v.clamp(-1.0, 1.0);
        }
        a.push(&x);
        let (_, f, _) = a.finish(Path::new("c.wav"));
        assert!(
            f.iter()
                .any(|f| f.code == "master.clipping-severe" && f.is_error()),
            "{f:?}"
        );

        let mut a = Analyzer::new(1, RATE).unwrap();
        let x: Vec<f32> = (0..RATE * 4)
            .map(|i| ((i as f32) * 0.05).sin() * 0.3 + 0.01)
            .collect();
        a.push(&x);
        let (_, f, _) = a.finish(Path::new("d.wav"));
        assert!(f.iter().any(|f| f.code == "master.dc-offset"), "{f:?}");
        assert!(!f.iter().any(|f| f.is_error()), "{f:?}");
    }

    #[test]
    fn edge_silence_names_the_samples() {
        let mut a = Analyzer::new(1, RATE).unwrap();
        a.push(&vec![0.0; RATE as usize * 3]);
        a.push(
            &(0..RATE * 2)
                .map(|i| ((i as f32) * 0.05 + 1.0).sin() * 0.3)
                .collect::<Vec<_>>(),
        );
        let (_, f, _) = a.finish(Path::new("e.wav"));
        let lead = f
            .iter()
            .find(|f| f.code == "master.leading-silence")
            .expect("leading");
        assert_eq!(lead.location.as_deref(), Some("samples 0..144000"));
    }
}
