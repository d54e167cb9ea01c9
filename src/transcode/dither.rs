//! Requantizing float PCM to integers, with TPDF dither when precision is really lost.
//!
//! TPDF: the sum of two independent uniform variables of +-0.5 LSB each (triangular, +-1 LSB
//! peak), added before rounding; it decorrelates the quantization error from the signal, so
//! fades and reverb tails stay free of distortion. The generator is seeded with a constant so
//! the same input gives the same bytes, and its state runs on across the tracks of a gapless
//! programme.
//!
//! Dither is skipped when the input is already on the target grid (a 16-bit master to a 16-bit
//! rendition at its own rate): that path is bit-exact.

/// Converts interleaved float samples to integers at `bits` depth.
pub struct Quantizer {
    bits: u8,
    dither: bool,
    rng: fastrand::Rng,
}

/// Seed of every dither generator: a constant, for byte-identical output.
const SEED: u64 = 0x7072_6573_7369_6e67;

impl Quantizer {
    pub fn new(bits: u8, dither: bool) -> Quantizer {
        Quantizer {
            bits,
            dither,
            rng: fastrand::Rng::with_seed(SEED),
        }
    }

    pub fn bits(&self) -> u8 {
        self.bits
    }

    pub fn dithers(&self) -> bool {
        self.dither
    }

    pub fn process(&mut self, input: &[f32], out: &mut Vec<i32>) {
        let scale = (1i64 << (self.bits - 1)) as f64;
        let max = scale - 1.0;
        let min = -scale;
        out.reserve(input.len());
        if self.dither {
            for &s in input {
                let tpdf = self.rng.f64() - self.rng.f64();
                let v = (s as f64 * scale + tpdf).round().clamp(min, max);
                out.push(v as i32);
            }
        } else {
            for &s in input {
                out.push((s as f64 * scale).round().clamp(min, max) as i32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_grid_input_round_trips_exactly_without_dither() {
        let ints: Vec<i32> = vec![-32768, -1, 0, 1, 12345, 32767];
        let floats: Vec<f32> = ints.iter().map(|&v| v as f32 / 32768.0).collect();
        let mut out = Vec::new();
        Quantizer::new(16, false).process(&floats, &mut out);
        assert_eq!(out, ints);
    }

    #[test]
    fn tpdf_error_is_bounded_and_unbiased() {
        let input: Vec<f32> = (0..100_000)
            .map(|i| ((i % 1000) as f32 / 1000.0 - 0.5) * 0.3)
            .collect();
        let mut out = Vec::new();
        Quantizer::new(16, true).process(&input, &mut out);
        let mut sum = 0.0;
        for (o, i) in out.iter().zip(&input) {
            let e = *o as f64 - *i as f64 * 32768.0;
            assert!(e.abs() <= 1.5, "error {e} LSB");
            sum += e;
        }
        assert!(
            (sum / input.len() as f64).abs() < 0.02,
            "mean error {}",
            sum / input.len() as f64
        );
    }

    #[test]
    fn same_input_same_output() {
        let input: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).sin() * 0.9).collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        Quantizer::new(24, true).process(&input, &mut a);
        Quantizer::new(24, true).process(&input, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn full_scale_clamps() {
        let mut out = Vec::new();
        Quantizer::new(16, true).process(&[1.0, -1.0, 2.0], &mut out);
        assert_eq!(out, vec![32767, -32768, 32767]);
    }
}
