//! Streaming, delay-compensated sample-rate conversion with rubato.
//!
//! Filter: rubato's synchronous FFT resampler (`rubato::Fft`) with a Blackman-Harris (2)
//! windowed anti-aliasing filter over FFT blocks of at least [`BLOCK_FRAMES`] input frames. At
//! 96 kHz -> 44.1 kHz that is a ~2 k-tap filter with a transition band of roughly 200 Hz below
//! the output Nyquist; the ratio is exact (no drift) because the converter is synchronous.
//!
//! The resampler's own delay is trimmed, so output frame `n` is aligned with input time
//! `n / out_rate`, and the total output is exactly `round(input_frames * out / in)`: across a
//! gapless programme, a track boundary at input frame `S` falls at output frame `round(S * r)`.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::TranscodeError;

/// Minimum FFT block, in input frames: sets the filter's steepness.
pub const BLOCK_FRAMES: usize = 4096;

pub struct StreamResampler {
    from: u32,
    to: u32,
    channels: usize,
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    delay_left: usize,
    frames_in: u64,
    frames_out: u64,
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `round(frames * to / from)`, in integers, halves rounding up.
pub fn scale_frames(frames: u64, from: u32, to: u32) -> u64 {
    ((frames as u128 * to as u128 + from as u128 / 2) / from as u128) as u64
}

impl StreamResampler {
    pub fn new(from: u32, to: u32, channels: u16) -> Result<StreamResampler, TranscodeError> {
        let inner = if from == to {
            None
        } else {
            // Blocks are whole multiples of the rates' smallest common block. The resampler's
            // delay is half the output block, so that block must be even for the delay to be a
            // whole number of samples (96 kHz -> 44.1 kHz would otherwise be half a sample off).
            let gcd = gcd(from, to);
            let (min_in, min_out) = ((from / gcd) as usize, (to / gcd) as usize);
            let mut blocks = BLOCK_FRAMES.div_ceil(min_in);
            if (blocks * min_out) % 2 == 1 {
                blocks += 1;
            }
            let fft = Fft::<f32>::new_custom(
                from as usize,
                to as usize,
                blocks * min_in,
                1,
                channels as usize,
                rubato::WindowFunction::BlackmanHarris2,
                FixedSync::Both,
            )
            .map_err(|e| TranscodeError::Resample {
                from,
                to,
                message: e.to_string(),
            })?;
            Some(fft)
        };
        let delay_left = inner.as_ref().map_or(0, |r| r.output_delay());
        Ok(StreamResampler {
            from,
            to,
            channels: channels as usize,
            inner,
            pending: Vec::new(),
            scratch: Vec::new(),
            delay_left,
            frames_in: 0,
            frames_out: 0,
        })
    }

    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// Resample interleaved `input`, appending aligned output to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), TranscodeError> {
        self.frames_in += (input.len() / self.channels) as u64;
        if self.inner.is_none() {
            out.extend_from_slice(input);
            self.frames_out += (input.len() / self.channels) as u64;
            return Ok(());
        }
        self.pending.extend_from_slice(input);
        self.run(out, false)
    }

    /// Flush: emit the remaining output so the total is `round(frames_in * to / from)`.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), TranscodeError> {
        if self.inner.is_none() {
            return Ok(());
        }
        self.run(out, true)
    }

    fn run(&mut self, out: &mut Vec<f32>, flush: bool) -> Result<(), TranscodeError> {
        let ch = self.channels;
        let (from, to) = (self.from, self.to);
        let err = |e: rubato::ResampleError| TranscodeError::Resample {
            from,
            to,
            message: e.to_string(),
        };
        let Some(rs) = self.inner.as_mut() else {
            return Ok(());
        };
        let need = rs.input_frames_next();
        let max_out = rs.output_frames_max();
        self.scratch.resize(max_out * ch, 0.0);
        let target = scale_frames(self.frames_in, self.from, self.to);
        let mut consumed = 0usize;
        loop {
            let available = self.pending.len() / ch - consumed;
            let partial = if available >= need {
                None
            } else if flush && self.frames_out < target {
                Some(available)
            } else {
                break;
            };
            let input = InterleavedSlice::new(&self.pending[consumed * ch..], ch, available)
                .map_err(|e| TranscodeError::Resample {
                    from,
                    to,
                    message: e.to_string(),
                })?;
            let mut output = InterleavedSlice::new_mut(&mut self.scratch[..], ch, max_out)
                .map_err(|e| TranscodeError::Resample {
                    from,
                    to,
                    message: e.to_string(),
                })?;
            let indexing = Indexing {
                input_offset: 0,
                output_offset: 0,
                partial_len: partial,
                active_channels_mask: None,
            };
            let (n_in, n_out) = rs
                .process_into_buffer(&input, &mut output, Some(&indexing))
                .map_err(err)?;
            consumed += n_in.min(available);
            let skip = self.delay_left.min(n_out);
            self.delay_left -= skip;
            let mut frames = n_out - skip;
            if flush {
                frames = frames.min((target - self.frames_out) as usize);
            }
            out.extend_from_slice(&self.scratch[skip * ch..(skip + frames) * ch]);
            self.frames_out += frames as u64;
        }
        self.pending.drain(..consumed * ch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f64, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| {
                (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32 * 0.5
            })
            .collect()
    }

    fn run(from: u32, to: u32, input: &[f32], chunk: usize) -> Vec<f32> {
        let mut rs = StreamResampler::new(from, to, 1).unwrap();
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            rs.process(c, &mut out).unwrap();
        }
        rs.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn output_length_is_the_rounded_ratio_for_every_rate_pair() {
        for (from, to) in [
            (44100, 48000),
            (96000, 44100),
            (96000, 48000),
            (48000, 44100),
            (192000, 44100),
            (88200, 44100),
        ] {
            for frames in [1usize, 777, 44_101, 100_003] {
                let out = run(from, to, &vec![0.1; frames], 3000);
                assert_eq!(
                    out.len() as u64,
                    scale_frames(frames as u64, from, to),
                    "{from}->{to} {frames}"
                );
            }
        }
    }

    #[test]
    fn output_is_aligned_with_input_time_for_every_rate_pair() {
        // A 1 kHz tone resampled must keep its phase: compare with the ideal tone at the new
        // rate. Half a sample of misalignment gives ~25 dB here; aligned output gives > 90 dB.
        for (from, to) in [
            (96000, 44100),
            (44100, 48000),
            (48000, 44100),
            (192000, 48000),
            (88200, 44100),
        ] {
            let input = sine(from, 1000.0, from as usize);
            let out = run(from, to, &input, 5000);
            let ideal = sine(to, 1000.0, out.len());
            let mid = &out[10000..30000];
            let err: f64 = mid
                .iter()
                .zip(&ideal[10000..30000])
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                / mid.len() as f64;
            let snr = 10.0 * (0.125 / err).log10();
            assert!(snr > 90.0, "{from}->{to}: resampled tone SNR {snr:.1} dB");
        }
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let input = sine(44100, 440.0, 30000);
        assert_eq!(
            run(44100, 48000, &input, 1000),
            run(44100, 48000, &input, 7777)
        );
    }

    #[test]
    fn equal_rates_pass_through() {
        let input = sine(44100, 440.0, 1000);
        assert_eq!(run(44100, 44100, &input, 100), input);
    }
}
