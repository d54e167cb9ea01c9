//! Acoustic fingerprints: Chromaprint's (the AcoustID algorithm, `rusty-chromaprint`, a port of
//! libchromaprint 1.5) over the whole master, in the form `fpcalc -length 0` prints, and the
//! comparison that proves a rendition is its master's audio.
//!
//! A fingerprint is one 32-bit item per 1365 samples at 11025 Hz (0.124 s), each bit a
//! classifier's verdict on the chroma image around it. Two decodes of the same audio agree in
//! most bits at the same item; unrelated audio agrees in about half of them (chance). The
//! comparison therefore takes the fraction of equal bits at the best alignment, and the
//! alignment itself: a sample-accurate rendition aligns at item 0.

use serde::{Deserialize, Serialize};

/// Seconds per fingerprint item: 4096-sample frames with 2731 samples of overlap, at 11025 Hz.
pub const ITEM_SECONDS: f64 = 1365.0 / 11025.0;

/// A rendition whose best-aligned fingerprint agrees with its master's in fewer bits than this
/// is not its master's audio. Measured (README, "Fingerprints"): pressing's renditions of the
/// fixtures score 0.967 to 1.000 (HE-AAC v2 at 32 kbit/s lowest; 0.92 on music, as the issue
/// measured); another track 0.53 to 0.64; silence 0.49; chance is 0.5. The threshold sits
/// between the two groups with room on both sides: a poor encode is not a wrong master.
pub const MIN_SIMILARITY: f64 = 0.80;

/// Two masters of one release whose fingerprints agree this well hold the same audio.
pub const DUPLICATE_SIMILARITY: f64 = 0.90;

/// How far (in items, each way) the comparison looks for the best alignment: 2 s.
pub const MAX_OFFSET_ITEMS: i32 = 16;

/// A master's fingerprint, as `fpcalc -length 0` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Whole seconds of audio (fpcalc's `DURATION`).
    pub duration: u64,
    /// The compressed fingerprint in URL-safe base64 without padding (fpcalc's
    /// `FINGERPRINT`), algorithm 2 (fpcalc's default, Chromaprint's TEST2), of the whole track.
    pub fingerprint: String,
    /// The items themselves (fpcalc `-raw`): for comparisons in this process, not written.
    #[serde(skip)]
    pub raw: Vec<u32>,
    /// Thread CPU time spent computing it (0 when carried from an earlier measurement): the
    /// run's `stats.cpu_seconds.fingerprint`.
    #[serde(skip)]
    pub cpu_nanos: u64,
}

#[cfg(feature = "press")]
impl Fingerprint {
    /// The fingerprint of `raw` items for `frames` of audio at `rate`.
    pub fn new(raw: Vec<u32>, frames: u64, rate: u32) -> Fingerprint {
        use base64::Engine;
        let config = rusty_chromaprint::Configuration::preset_test2();
        let compressed = rusty_chromaprint::FingerprintCompressor::from(&config).compress(&raw);
        Fingerprint {
            duration: frames / u64::from(rate.max(1)),
            fingerprint: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(compressed),
            raw,
            cpu_nanos: 0,
        }
    }
}

/// The items of a compressed fingerprint (fpcalc's `FINGERPRINT`): Chromaprint's
/// decompression, the inverse of its compressor. `None` for a string that is not one.
pub fn decompress(text: &str) -> Option<Vec<u32>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()?;
    let header = bytes.get(..4)?;
    let size = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    let body = &bytes[4..];
    let unpack = |bits: usize, offset_bits: usize, i: usize| -> Option<u8> {
        let at = offset_bits + i * bits;
        let byte = at / 8;
        let lo = u16::from(*body.get(byte)?);
        let hi = u16::from(body.get(byte + 1).copied().unwrap_or(0));
        Some((((hi << 8 | lo) >> (at % 8)) & ((1 << bits) - 1)) as u8)
    };
    // The 3-bit "normal" values: each item's set-bit gaps, closed by a 0.
    let mut normal = Vec::new();
    let mut closed = 0;
    while closed < size {
        let v = unpack(3, 0, normal.len())?;
        closed += usize::from(v == 0);
        normal.push(v);
    }
    // The 5-bit "exceptional" values start at the byte after the normal ones.
    let exceptional_at = (normal.len() * 3).div_ceil(8) * 8;
    let mut exceptional = 0;
    let mut items = Vec::with_capacity(size);
    let (mut item, mut last_bit, mut previous) = (0u32, 0u32, 0u32);
    for v in normal {
        if v == 0 {
            previous ^= item;
            items.push(previous);
            item = 0;
            last_bit = 0;
            continue;
        }
        let mut gap = u32::from(v);
        if v == 7 {
            gap += u32::from(unpack(5, exceptional_at, exceptional)?);
            exceptional += 1;
        }
        last_bit += gap;
        if last_bit > 32 {
            return None;
        }
        item |= 1 << (last_bit - 1);
    }
    Some(items)
}

/// How well two fingerprints agree at their best alignment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    /// The fraction of equal bits, 0..1 (0.5 is chance).
    pub similarity: f64,
    /// Items `other` lags `reference` by at the best alignment (0: in time).
    pub offset: i32,
}

/// Compare `other` with `reference` at every alignment within `max_offset` items; `None` when
/// they have no items in common (a track too short to fingerprint: under ~3 s).
pub fn best_match(reference: &[u32], other: &[u32], max_offset: i32) -> Option<Match> {
    let mut best: Option<Match> = None;
    let mut in_time: Option<Match> = None;
    let shortest = reference.len().min(other.len());
    for offset in -max_offset..=max_offset {
        // Pairs (reference[i], other[i + offset]).
        let (r, o) = if offset >= 0 {
            (reference, other.get(offset as usize..).unwrap_or(&[]))
        } else {
            (reference.get((-offset) as usize..).unwrap_or(&[]), other)
        };
        let n = r.len().min(o.len());
        // An alignment must overlap most of the shorter fingerprint, or a few lucky items at
        // the edge would win.
        if n == 0 || n * 4 < shortest * 3 {
            continue;
        }
        let differ: u32 = r[..n]
            .iter()
            .zip(&o[..n])
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        let similarity = 1.0 - f64::from(differ) / (32.0 * n as f64);
        if best.is_none_or(|b| similarity > b.similarity) {
            best = Some(Match { similarity, offset });
        }
        if offset == 0 {
            in_time = Some(Match { similarity, offset });
        }
    }
    // Audio that does not change (a held tone, silence) agrees with itself at every
    // alignment: in time wins unless another alignment is clearly better.
    match (in_time, best) {
        (Some(t), Some(b)) if t.similarity >= b.similarity - IN_TIME_MARGIN => Some(t),
        _ => best,
    }
}

/// How much better (in the fraction of equal bits) another alignment must be than item 0 to
/// be taken as the best.
const IN_TIME_MARGIN: f64 = 0.02;

/// Fingerprints interleaved `f32` samples as they are decoded.
#[cfg(feature = "press")]
pub struct Fingerprinter {
    inner: rusty_chromaprint::Fingerprinter,
    channels: usize,
    rate: u32,
    frames: u64,
    /// Integer masters deeper than 16 bits are truncated to 16 (what FFmpeg's s32 to s16
    /// conversion does for `fpcalc`); float and 16-bit masters are rounded (exact for 16-bit).
    truncate: bool,
    buf: Vec<i16>,
    cpu: std::time::Duration,
}

#[cfg(feature = "press")]
impl Fingerprinter {
    /// `truncate`: the samples come from integers deeper than 16 bits.
    pub fn new(channels: u16, rate: u32, truncate: bool) -> Result<Fingerprinter, String> {
        let config = rusty_chromaprint::Configuration::preset_test2();
        let mut inner = rusty_chromaprint::Fingerprinter::new(&config);
        inner.start(rate, u32::from(channels)).map_err(|e| {
            format!("the fingerprinter cannot take {channels} ch at {rate} Hz: {e:?}")
        })?;
        Ok(Fingerprinter {
            inner,
            channels: usize::from(channels.max(1)),
            rate,
            frames: 0,
            truncate,
            buf: Vec::new(),
            cpu: std::time::Duration::ZERO,
        })
    }

    pub fn push(&mut self, samples: &[f32]) {
        let start = cpu_time::ThreadTime::try_now().ok();
        self.buf.clear();
        // Round half to even (FFmpeg's lrintf) without a libm call per sample: adding and
        // taking away 1.5 * 2^52 leaves a double rounded to an integer in the default
        // rounding mode. Truncation (FFmpeg's s32 to s16 shift) is that, less one where it
        // rounded up. Both vectorise.
        const MAGIC: f64 = 6_755_399_441_055_744.0;
        if self.truncate {
            self.buf.extend(samples.iter().map(|&s| {
                let x = f64::from(s) * 32768.0;
                let r = (x + MAGIC) - MAGIC;
                let r = if r > x { r - 1.0 } else { r };
                r.clamp(-32768.0, 32767.0) as i16
            }));
        } else {
            self.buf.extend(samples.iter().map(|&s| {
                let x = f64::from(s) * 32768.0;
                ((x + MAGIC) - MAGIC).clamp(-32768.0, 32767.0) as i16
            }));
        }
        self.inner.consume(&self.buf);
        self.frames += (samples.len() / self.channels) as u64;
        if let Some(start) = start {
            self.cpu += start.elapsed();
        }
    }

    pub fn finish(mut self) -> Fingerprint {
        let start = cpu_time::ThreadTime::try_now().ok();
        self.inner.finish();
        let mut fp = Fingerprint::new(self.inner.fingerprint().to_vec(), self.frames, self.rate);
        fp.cpu_nanos =
            (self.cpu + start.map(|s| s.elapsed()).unwrap_or_default()).as_nanos() as u64;
        fp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_alignment_is_found_and_scored() {
        let mut state = 0x1234_5678u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let a: Vec<u32> = (0..200).map(|_| next()).collect();
        let b: Vec<u32> = (0..200).map(|_| next()).collect();
        let same = best_match(&a, &a, 16).unwrap();
        // A held tone agrees with itself everywhere: in time wins.
        let held = vec![0x0f0f_0f0f; 100];
        assert_eq!(best_match(&held, &held, 16).unwrap().offset, 0);
        assert_eq!((same.similarity, same.offset), (1.0, 0));
        // `other` starts 3 items later: it lags by -3.
        let shifted = best_match(&a, &a[3..], 16).unwrap();
        assert_eq!((shifted.similarity, shifted.offset), (1.0, -3));
        let late: Vec<u32> = b[..5].iter().chain(&a).copied().collect();
        assert_eq!(best_match(&a, &late, 16).unwrap().offset, 5);
        // Unrelated items agree in about half their bits.
        let other = best_match(&a, &b, 16).unwrap();
        assert!(
            (0.45..0.56).contains(&other.similarity),
            "{}",
            other.similarity
        );
        // One flipped bit in every item: 31/32.
        let flipped: Vec<u32> = a.iter().map(|x| x ^ 1).collect();
        assert_eq!(best_match(&a, &flipped, 0).unwrap().similarity, 31.0 / 32.0);
        assert_eq!(best_match(&a, &[], 16), None);
    }

    #[cfg(feature = "press")]
    #[test]
    fn a_compressed_fingerprint_decompresses_to_its_items() {
        let items: Vec<u32> = (0..500u32)
            .map(|i| i.wrapping_mul(0x9e37_79b9) ^ (i << 7))
            .chain([0, u32::MAX, 1 << 31, 1])
            .collect();
        let fp = Fingerprint::new(items.clone(), 44_100 * 61, 44_100);
        assert_eq!(fp.duration, 61);
        assert!(fp.fingerprint.starts_with("AQAB"), "{}", fp.fingerprint);
        assert_eq!(decompress(&fp.fingerprint), Some(items));
        assert_eq!(decompress("AQ"), None);
        assert_eq!(decompress("not base64!"), None);
    }
}
