//! One timeline per switching set: every rendition a player may switch between gets the same
//! encoder delay as the container sees it, and segment boundaries on a grid every frame size of
//! the set divides, so segment N of each rendition starts and ends at the same media time (RFC
//! 8216 6.2.4; DASH-IF IOP segment alignment).
//!
//! The delay is equalised by padding: a rendition whose encoder primes less than the set's
//! largest gets that many leading samples of silence, and the edit list trims them with the
//! encoder's own priming. This module decides the padding and the grid; the packager cuts on it.

use crate::ladder::{Codec, Family};
use crate::transcode::{
    DecoderConfig, EncodedPacket, Encoder, InputKind, Pcm, StreamConfig, TranscodeError,
};

/// What one rendition of a switching set needs to share the set's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetTiming {
    /// Silent samples fed before the master, so the container's priming is the set's.
    pub lead: u32,
    /// Silent samples fed after it, so every encoder's output reaches the set's common end.
    pub tail: u32,
    /// Segment boundaries (and, for lossy codecs, the media end) fall on multiples of this
    /// many samples of decode time.
    pub grid: u64,
    /// The media ends at the first grid multiple at or after the last presented sample
    /// (later packets are padding and dropped); lossless streams end at their last sample.
    pub end_on_grid: bool,
}

/// One rendition as the alignment sees it.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    pub family: Family,
    pub codec: Codec,
    pub rate: u32,
    pub frame: u32,
    pub priming: u32,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The timing of every member, in order. A switching set is a family at one sample rate
/// (`manifest`): its grid is the least common multiple of its frame sizes and its priming the
/// largest. A grid coarser than half a segment leaves each member on its own frame grid.
pub fn align(members: &[Member], segment_seconds: f64) -> Vec<SetTiming> {
    members
        .iter()
        .map(|m| {
            let set: Vec<&Member> = members
                .iter()
                .filter(|o| o.family == m.family && o.rate == m.rate)
                .collect();
            let lossy = !matches!(m.codec, Codec::Flac | Codec::Alac);
            let grid = set.iter().fold(1u64, |g, o| {
                let f = u64::from(o.frame);
                g / gcd(g, f) * f
            });
            if grid as f64 > segment_seconds * f64::from(m.rate) / 2.0 {
                return SetTiming {
                    lead: 0,
                    tail: 0,
                    grid: u64::from(m.frame),
                    end_on_grid: false,
                };
            }
            let priming = set.iter().map(|o| o.priming).max().unwrap_or(0);
            SetTiming {
                lead: priming - m.priming,
                tail: if lossy { grid as u32 } else { 0 },
                grid,
                end_on_grid: lossy,
            }
        })
        .collect()
}

/// An encoder behind leading and trailing silence: the container's priming grows by `lead`.
pub struct Padded {
    inner: Box<dyn Encoder>,
    lead: u32,
    tail: u32,
    started: bool,
}

impl Padded {
    pub fn new(inner: Box<dyn Encoder>, timing: &SetTiming) -> Padded {
        Padded {
            inner,
            lead: timing.lead,
            tail: timing.tail,
            started: false,
        }
    }

    fn silence(&mut self, frames: u32) -> Result<(), TranscodeError> {
        if frames == 0 {
            return Ok(());
        }
        let n = frames as usize * usize::from(self.inner.stream_config().channels);
        match self.inner.input_kind() {
            InputKind::Float => self.inner.send(Pcm::F32(&vec![0.0; n])),
            InputKind::Int { .. } => self.inner.send(Pcm::I32(&vec![0; n])),
        }
    }

    fn start(&mut self) -> Result<(), TranscodeError> {
        if !self.started {
            self.started = true;
            self.silence(self.lead)?;
        }
        Ok(())
    }
}

impl Encoder for Padded {
    fn input_kind(&self) -> InputKind {
        self.inner.input_kind()
    }

    fn frame_size(&self) -> u32 {
        self.inner.frame_size()
    }

    fn send(&mut self, pcm: Pcm<'_>) -> Result<(), TranscodeError> {
        self.start()?;
        self.inner.send(pcm)
    }

    fn finish(&mut self) -> Result<(), TranscodeError> {
        self.start()?;
        self.silence(self.tail)?;
        self.inner.finish()
    }

    fn receive(&mut self) -> Option<EncodedPacket> {
        self.inner.receive()
    }

    fn stream_config(&self) -> StreamConfig {
        let mut s = self.inner.stream_config();
        s.priming += self.lead;
        if let DecoderConfig::Opus { pre_skip, .. } = &mut s.config {
            // dOps' pre-skip is the priming an Opus decoder drops: it grows with the lead.
            *pre_skip = pre_skip.saturating_add(self.lead.min(u32::from(u16::MAX)) as u16);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(codec: Codec, rate: u32, frame: u32, priming: u32) -> Member {
        Member {
            family: codec.family(),
            codec,
            rate,
            frame,
            priming,
        }
    }

    #[test]
    fn the_aac_set_shares_the_largest_priming_and_a_2048_grid() {
        let t = align(
            &[
                member(Codec::AacLc, 44100, 1024, 2048),
                member(Codec::HeAac, 44100, 2048, 5058),
                member(Codec::HeAacV2, 44100, 2048, 7106),
                member(Codec::Opus, 48000, 960, 312),
            ],
            6.0,
        );
        assert_eq!((t[0].lead, t[1].lead, t[2].lead), (5058, 2048, 0));
        assert!(t[..3].iter().all(|t| t.grid == 2048 && t.end_on_grid));
        assert_eq!((t[3].lead, t[3].grid), (0, 960));
    }

    #[test]
    fn a_family_at_two_rates_is_two_sets() {
        let t = align(
            &[
                member(Codec::Flac, 44100, 2205, 0),
                member(Codec::Flac, 96000, 4800, 0),
                member(Codec::Alac, 44100, 4096, 0),
                member(Codec::Alac, 44100, 4096, 0),
            ],
            6.0,
        );
        assert_eq!((t[0].grid, t[1].grid, t[2].grid), (2205, 4800, 4096));
        assert!(t
            .iter()
            .all(|t| t.lead == 0 && t.tail == 0 && !t.end_on_grid));
    }
}
