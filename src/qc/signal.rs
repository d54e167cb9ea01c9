//! What the QC page draws, measured from decoded audio as it streams by: a peak envelope with
//! true-peak overs, momentary and short-term loudness over time, and a spectrogram.

use std::sync::Arc;

use ebur128::{EbuR128, Mode};
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use crate::ingest::analysis::{TRUE_PEAK_OVER_DBTP, TRUE_PEAK_WARN_DBTP};

/// Columns of the waveform.
pub const WAVEFORM_COLUMNS: usize = 1000;
/// Columns (time) and rows (frequency) of a spectrogram.
pub const SPECTROGRAM_COLUMNS: usize = 600;
pub const SPECTROGRAM_ROWS: usize = 240;
/// The spectrogram's floor and ceiling, dB relative to a full-scale sine.
pub const SPECTROGRAM_FLOOR_DB: f32 = -120.0;

/// A track's peak envelope: per column, the lowest and highest sample of any channel, and
/// the highest true peak (dBTP).
#[derive(Clone, Debug, Default)]
pub struct Waveform {
    pub columns: Vec<(f32, f32, f64)>,
    pub seconds: f64,
}

impl Waveform {
    /// Columns whose true peak is above the warning level (-1 dBTP): (column, dBTP).
    pub fn overs(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.2 > TRUE_PEAK_WARN_DBTP)
            .map(|(i, c)| (i, c.2))
    }

    pub fn is_over(db: f64) -> bool {
        db > TRUE_PEAK_OVER_DBTP
    }
}

/// Momentary (400 ms) and short-term (3 s) loudness every 100 ms, LUFS.
#[derive(Clone, Debug, Default)]
pub struct LoudnessCurves {
    pub momentary: Vec<(f64, f64)>,
    pub short_term: Vec<(f64, f64)>,
}

/// A spectrogram: `rows` x `columns` levels in dB (row 0 the highest frequency), up to
/// `top_hz`; `None` above the audio's own Nyquist frequency.
#[derive(Clone, Debug)]
pub struct Spectrogram {
    pub levels: Vec<Option<f32>>,
    pub columns: usize,
    pub rows: usize,
    pub top_hz: f64,
    pub seconds: f64,
}

/// Measures one decoded stream; what it measures is chosen at construction.
pub struct Measure {
    channels: usize,
    rate: u32,
    frames: u64,
    position: u64,
    waveform: Option<(EbuR128, Waveform)>,
    loudness: Option<(EbuR128, LoudnessCurves, u64)>,
    stft: Option<Stft>,
}

impl Measure {
    /// `frames`: the stream's length (for the column grid). `top_hz`: the spectrogram's top
    /// (`None`: no spectrogram).
    pub fn new(
        channels: u16,
        rate: u32,
        frames: u64,
        figures: bool,
        top_hz: Option<f64>,
    ) -> Result<Measure, String> {
        let meter =
            |mode| EbuR128::new(u32::from(channels), rate, mode).map_err(|e| format!("meter: {e}"));
        Ok(Measure {
            channels: usize::from(channels.max(1)),
            rate,
            frames: frames.max(1),
            position: 0,
            waveform: if figures {
                Some((
                    meter(Mode::TRUE_PEAK)?,
                    Waveform {
                        columns: Vec::with_capacity(WAVEFORM_COLUMNS),
                        seconds: frames as f64 / f64::from(rate),
                    },
                ))
            } else {
                None
            },
            loudness: if figures {
                Some((meter(Mode::M | Mode::S)?, LoudnessCurves::default(), 0))
            } else {
                None
            },
            stft: top_hz.map(|top| Stft::new(rate, frames, top)),
        })
    }

    /// Feed interleaved samples.
    pub fn push(&mut self, samples: &[f32]) {
        let ch = self.channels;
        let mut rest = samples;
        // Cut the input at waveform column and loudness block boundaries.
        while rest.len() >= ch {
            let n = rest.len() / ch;
            let mut take = n as u64;
            if self.waveform.is_some() {
                let col = self.column();
                let end = ((col as u64 + 1) * self.frames).div_ceil(WAVEFORM_COLUMNS as u64);
                take = take.min(end.saturating_sub(self.position).max(1));
            }
            if let Some((_, _, fed)) = &self.loudness {
                let block = u64::from(self.rate / 10).max(1);
                take = take.min(block - fed % block);
            }
            let (now, later) = rest.split_at(take as usize * ch);
            self.feed(now);
            rest = later;
        }
    }

    fn column(&self) -> usize {
        ((self.position * WAVEFORM_COLUMNS as u64) / self.frames).min(WAVEFORM_COLUMNS as u64 - 1)
            as usize
    }

    fn feed(&mut self, chunk: &[f32]) {
        let ch = self.channels;
        let frames = (chunk.len() / ch) as u64;
        let col = self.column();
        if let Some((meter, wave)) = &mut self.waveform {
            let _ = meter.add_frames_f32(chunk);
            // The chunk lies in one column (`push` cuts at their edges).
            let tp = (0..ch as u32)
                .filter_map(|c| meter.prev_true_peak(c).ok())
                .fold(0.0f64, f64::max);
            let tp_db = if tp > 0.0 { 20.0 * tp.log10() } else { -200.0 };
            while wave.columns.len() <= col {
                wave.columns.push((0.0, 0.0, -200.0));
            }
            let c = &mut wave.columns[col];
            for &s in chunk {
                c.0 = c.0.min(s);
                c.1 = c.1.max(s);
            }
            c.2 = c.2.max(tp_db);
        }
        if let Some((meter, curves, fed)) = &mut self.loudness {
            let _ = meter.add_frames_f32(chunk);
            *fed += frames;
            if *fed % u64::from(self.rate / 10).max(1) == 0 {
                let t = *fed as f64 / f64::from(self.rate);
                if let Ok(m) = meter.loudness_momentary() {
                    if m.is_finite() && t >= 0.4 {
                        curves.momentary.push((t, m));
                    }
                }
                if let Ok(s) = meter.loudness_shortterm() {
                    if s.is_finite() && t >= 3.0 {
                        curves.short_term.push((t, s));
                    }
                }
            }
        }
        if let Some(stft) = &mut self.stft {
            stft.push(chunk, ch);
        }
        self.position += frames;
    }

    pub fn finish(
        mut self,
    ) -> (
        Option<Waveform>,
        Option<LoudnessCurves>,
        Option<Spectrogram>,
    ) {
        if let Some((_, wave)) = &mut self.waveform {
            wave.columns.resize(WAVEFORM_COLUMNS, (0.0, 0.0, -200.0));
        }
        (
            self.waveform.map(|w| w.1),
            self.loudness.map(|l| l.1),
            self.stft.map(Stft::finish),
        )
    }
}

/// A short-time Fourier transform of the channels' mean, reduced as it goes to the
/// spectrogram's rows (the highest bin in each row's band).
struct Stft {
    rate: u32,
    size: usize,
    hop: u64,
    top_hz: f64,
    seconds: f64,
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    /// Mono samples from absolute index `start`.
    pending: Vec<f32>,
    start: u64,
    next: u64,
    columns: Vec<Vec<Option<f32>>>,
    scratch: Vec<Complex32>,
}

impl Stft {
    fn new(rate: u32, frames: u64, top_hz: f64) -> Stft {
        // About 46 ms windows: 2048 points at 44.1 and 48 kHz, 4096 at 96 kHz.
        let size = (f64::from(rate) * 0.046).round().max(256.0) as usize;
        let size = size.next_power_of_two();
        let fft = FftPlanner::new().plan_fft_forward(size);
        let window = (0..size)
            .map(|i| {
                let x = std::f32::consts::PI * i as f32 / size as f32;
                x.sin() * x.sin()
            })
            .collect();
        Stft {
            rate,
            size,
            hop: (frames / SPECTROGRAM_COLUMNS as u64).max(1),
            top_hz,
            seconds: frames as f64 / f64::from(rate),
            scratch: vec![Complex32::default(); fft.get_inplace_scratch_len()],
            fft,
            window,
            pending: Vec::new(),
            start: 0,
            next: 0,
            columns: Vec::with_capacity(SPECTROGRAM_COLUMNS),
        }
    }

    fn push(&mut self, chunk: &[f32], ch: usize) {
        let scale = 1.0 / ch as f32;
        self.pending.extend(
            chunk
                .chunks_exact(ch)
                .map(|f| f.iter().sum::<f32>() * scale),
        );
        while self.columns.len() < SPECTROGRAM_COLUMNS
            && self.next + self.size as u64 <= self.start + self.pending.len() as u64
        {
            let at = (self.next - self.start) as usize;
            let column = self.column(at);
            self.columns.push(column);
            self.next += self.hop;
        }
        let used = (self.next.min(self.start + self.pending.len() as u64) - self.start) as usize;
        self.pending.drain(..used);
        self.start += used as u64;
    }

    fn column(&mut self, at: usize) -> Vec<Option<f32>> {
        let mut buf: Vec<Complex32> = (0..self.size)
            .map(|i| {
                let s = self.pending.get(at + i).copied().unwrap_or(0.0);
                Complex32::new(s * self.window[i], 0.0)
            })
            .collect();
        self.fft.process_with_scratch(&mut buf, &mut self.scratch);
        // A full-scale sine through a Hann window peaks at size / 4.
        let norm = 4.0 / self.size as f32;
        let bin_hz = f64::from(self.rate) / self.size as f64;
        let nyquist = f64::from(self.rate) / 2.0;
        (0..SPECTROGRAM_ROWS)
            .map(|row| {
                let hi_hz = self.top_hz * (SPECTROGRAM_ROWS - row) as f64 / SPECTROGRAM_ROWS as f64;
                let lo_hz =
                    self.top_hz * (SPECTROGRAM_ROWS - row - 1) as f64 / SPECTROGRAM_ROWS as f64;
                if lo_hz >= nyquist {
                    return None;
                }
                let a = (lo_hz / bin_hz).floor() as usize;
                let b = ((hi_hz / bin_hz).ceil() as usize).clamp(a + 1, self.size / 2);
                let peak = buf[a..b].iter().map(|c| c.norm()).fold(0.0f32, f32::max) * norm;
                Some((20.0 * peak.max(1e-9).log10()).max(SPECTROGRAM_FLOOR_DB))
            })
            .collect()
    }

    fn finish(mut self) -> Spectrogram {
        // The tail: windows past the end read silence.
        while self.columns.len() < SPECTROGRAM_COLUMNS && self.next >= self.start {
            let at = (self.next - self.start) as usize;
            if at >= self.pending.len() && !self.columns.is_empty() {
                let last = self.columns.len();
                let fill = self.columns[last - 1]
                    .iter()
                    .map(|v| v.map(|_| SPECTROGRAM_FLOOR_DB))
                    .collect();
                self.columns.push(fill);
            } else {
                let column = self.column(at);
                self.columns.push(column);
            }
            self.next += self.hop;
        }
        let columns = self.columns.len();
        let mut levels = vec![None; columns * SPECTROGRAM_ROWS];
        for (x, col) in self.columns.iter().enumerate() {
            for (y, v) in col.iter().enumerate() {
                levels[y * columns + x] = *v;
            }
        }
        Spectrogram {
            levels,
            columns,
            rows: SPECTROGRAM_ROWS,
            top_hz: self.top_hz,
            seconds: self.seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_is_where_it_should_be_in_every_figure() {
        let rate = 48_000;
        let frames = rate as u64 * 5;
        // A 1 kHz sine at -6 dBFS, with one 0.1 s burst to +1 dBTP-ish in the middle.
        let samples: Vec<f32> = (0..frames)
            .flat_map(|i| {
                let t = i as f32 / rate as f32;
                let a = if (2.5..2.6).contains(&t) { 1.2 } else { 0.5 };
                let s = a * (2.0 * std::f32::consts::PI * 1000.0 * t).sin();
                [s, s]
            })
            .collect();
        let mut m = Measure::new(2, rate, frames, true, Some(24_000.0)).unwrap();
        for chunk in samples.chunks(4096 * 2 + 6) {
            m.push(chunk);
        }
        let (wave, curves, spec) = m.finish();
        let wave = wave.unwrap();
        assert_eq!(wave.columns.len(), WAVEFORM_COLUMNS);
        assert!(
            (wave.columns[100].1 - 0.5).abs() < 0.01,
            "{:?}",
            wave.columns[100]
        );
        assert!((wave.columns[100].0 + 0.5).abs() < 0.01);
        let overs: Vec<usize> = wave.overs().map(|(c, _)| c).collect();
        assert!(
            !overs.is_empty() && overs.iter().all(|&c| (499..=521).contains(&c)),
            "{overs:?}"
        );
        // A -6 dBFS sine on both channels: -6.0 LUFS momentary (BS.1770: a full-scale 1 kHz
        // sine in one channel is -3.01 LUFS; two channels add their powers).
        let curves = curves.unwrap();
        let (_, m1) = curves.momentary[10];
        assert!((m1 - -6.0).abs() < 0.2, "{m1}");
        assert!(curves.short_term.len() > 15);
        let spec = spec.unwrap();
        assert_eq!(
            (spec.columns, spec.rows),
            (SPECTROGRAM_COLUMNS, SPECTROGRAM_ROWS)
        );
        // The row holding 1 kHz is near -6 dB; rows far above are near the floor.
        let row_of =
            |hz: f64| SPECTROGRAM_ROWS - 1 - (hz / 24_000.0 * SPECTROGRAM_ROWS as f64) as usize;
        let at = |row: usize| spec.levels[row * spec.columns + 100].unwrap();
        assert!(
            (at(row_of(1000.0)) - -6.0).abs() < 1.5,
            "{}",
            at(row_of(1000.0))
        );
        assert!(at(row_of(15_000.0)) < -90.0, "{}", at(row_of(15_000.0)));
    }
}
