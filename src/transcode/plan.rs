//! Which rungs of a ladder apply to a master, and at what rate, depth and channel count.
//!
//! Rules: never upsample (Opus, which only runs at 48 kHz, is the exception), never raise the
//! bit depth, never invent channels. A rung that cannot apply is skipped with a reason.
//!
//! A lossy rung's bitrate is a stereo figure: a surround rendition gets it per pair of
//! full-bandwidth channels (the LFE channel rides free), so a 5.1 master on a 96 kbit/s rung is
//! encoded at 240 kbit/s, not squeezed into 96. Mono keeps the rung's bitrate.

use crate::ingest::{MasterFormat, SampleKind};
use crate::ladder::{Codec, Ladder, RateSpec, Rung};

#[derive(Clone, Debug, PartialEq)]
pub struct RenditionPlan {
    pub rung: Rung,
    pub sample_rate: u32,
    pub channels: u16,
    /// Bits per sample of a lossless rendition.
    pub bits: Option<u8>,
    /// Bit/s a lossy encoder targets: the rung's, scaled for surround (see the module docs).
    pub bitrate: Option<u32>,
}

/// A stereo bitrate scaled to `channels`: per pair of full-bandwidth channels above stereo.
pub fn scaled_bitrate(stereo: u32, channels: u16) -> u32 {
    let full_band = match channels {
        6 | 8 => channels - 1, // 5.1 and 7.1: the LFE channel is not counted
        c => c,
    };
    if full_band <= 2 {
        stereo
    } else {
        (u64::from(stereo) * u64::from(full_band) / 2) as u32
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    pub track: String,
    pub rung: String,
    pub reason: String,
    /// A rung pruned for its quality score (the ladder's `prune_quality_margin`): its score
    /// and the kept rung's it was measured against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<PrunedScores>,
}

/// Why a pruned rung was skipped, in numbers (ViSQOL MOS-LQO, `package::quality`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PrunedScores {
    /// The skipped rung's score.
    pub quality: f64,
    /// The next lower kept rung of its family.
    pub below: String,
    /// That rung's score.
    pub below_quality: f64,
}

/// Channel counts with a standard layout in every codec we write (mono, stereo, 5.1, 7.1).
const LAYOUTS: [u16; 4] = [1, 2, 6, 8];

pub fn plan_renditions(
    track: &str,
    master: &MasterFormat,
    ladder: &Ladder,
) -> (Vec<RenditionPlan>, Vec<Skipped>) {
    let mut plans = Vec::new();
    let mut skipped = Vec::new();
    for rung in &ladder.rungs {
        match plan_one(master, rung) {
            Ok(plan) => plans.push(plan),
            Err(reason) => skipped.push(Skipped {
                scores: None,
                track: track.to_string(),
                rung: rung.id.clone(),
                reason,
            }),
        }
    }
    (plans, skipped)
}

fn plan_one(master: &MasterFormat, rung: &Rung) -> Result<RenditionPlan, String> {
    if rung.hires_only && !master.is_hires() {
        return Err(format!(
            "master is not hi-res ({}-bit / {} Hz); the CD rung covers it",
            master.bits_per_sample, master.sample_rate
        ));
    }
    let sample_rate = match rung.sample_rate {
        RateSpec::Master => master.sample_rate,
        RateSpec::Fixed(hz) => hz,
    };
    if sample_rate > master.sample_rate && rung.codec != Codec::Opus {
        return Err(format!(
            "would upsample ({} Hz master, {} Hz rung)",
            master.sample_rate, sample_rate
        ));
    }
    let channels = master.channels;
    if channels > rung.max_channels {
        return Err(format!(
            "{channels}-channel master, rung carries at most {} (never downmixed silently)",
            rung.max_channels
        ));
    }
    if rung.codec == Codec::HeAacV2 && channels != 2 {
        return Err(format!(
            "HE-AAC v2 (parametric stereo) needs a stereo master, this one has {channels} channel(s)"
        ));
    }
    if !LAYOUTS.contains(&channels) {
        return Err(format!(
            "{channels}-channel master has no standard layout (expected mono, stereo, 5.1 or 7.1)"
        ));
    }
    let master_bits = match master.kind {
        SampleKind::Float => 32,
        SampleKind::Int => master.bits_per_sample,
    };
    // A lossless rung keeps at most its own depth and never more than the master has.
    let bits = rung.bits.map(|max| max.min(master_bits));
    if let Some(b) = bits {
        if b < 16 {
            return Err(format!(
                "{b}-bit master is below the 16-bit floor of lossless rungs"
            ));
        }
    }
    Ok(RenditionPlan {
        rung: rung.clone(),
        sample_rate,
        channels,
        bits,
        bitrate: rung.bitrate.map(|b| scaled_bitrate(b, channels)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn ladder() -> Ladder {
        Ladder::from_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("ladders/music.toml"))
            .unwrap()
    }

    fn master(rate: u32, ch: u16, bits: u8) -> MasterFormat {
        MasterFormat {
            sample_rate: rate,
            channels: ch,
            bits_per_sample: bits,
            kind: SampleKind::Int,
            declared_frames: None,
            codec: "pcm",
            streaming_header: false,
        }
    }

    fn ids(plans: &[RenditionPlan]) -> Vec<&str> {
        plans.iter().map(|p| p.rung.id.as_str()).collect()
    }

    #[test]
    fn cd_master_skips_hires_and_keeps_16_bits() {
        let (plans, skipped) = plan_renditions("t", &master(44100, 2, 16), &ladder());
        assert!(!ids(&plans).contains(&"flac-hires"));
        let skipped: Vec<_> = skipped.iter().map(|s| s.rung.as_str()).collect();
        assert_eq!(skipped, ["flac-hires", "alac-hires"]);
        let cd = plans.iter().find(|p| p.rung.id == "flac-cd").unwrap();
        assert_eq!((cd.sample_rate, cd.bits), (44100, Some(16)));
        let opus = plans.iter().find(|p| p.rung.id == "opus-96").unwrap();
        assert_eq!(opus.sample_rate, 48000, "opus is the one allowed upsample");
    }

    #[test]
    fn hires_master_keeps_its_rate_at_24_bits() {
        let (plans, skipped) = plan_renditions("t", &master(96000, 2, 24), &ladder());
        assert!(skipped.is_empty(), "{skipped:?}");
        let hr = plans.iter().find(|p| p.rung.id == "flac-hires").unwrap();
        assert_eq!((hr.sample_rate, hr.bits), (96000, Some(24)));
    }

    #[test]
    fn mono_master_stays_mono_and_skips_parametric_stereo() {
        let (plans, skipped) = plan_renditions("t", &master(44100, 1, 16), &ladder());
        assert!(plans.iter().all(|p| p.channels == 1));
        assert!(skipped
            .iter()
            .any(|s| s.rung == "heaac-32" && s.reason.contains("stereo")));
    }

    #[test]
    fn low_rate_master_is_never_upsampled() {
        let (plans, skipped) = plan_renditions("t", &master(32000, 2, 16), &ladder());
        assert!(plans
            .iter()
            .all(|p| p.sample_rate <= 32000 || p.rung.codec == Codec::Opus));
        assert!(skipped.iter().any(|s| s.reason.contains("would upsample")));
    }

    #[test]
    fn hires_16_bit_master_is_not_raised_to_24() {
        let (plans, _) = plan_renditions("t", &master(96000, 2, 16), &ladder());
        let hr = plans.iter().find(|p| p.rung.id == "flac-hires").unwrap();
        assert_eq!(hr.bits, Some(16));
    }

    #[test]
    fn surround_bitrates_scale_per_pair_of_full_band_channels() {
        assert_eq!(scaled_bitrate(96_000, 1), 96_000);
        assert_eq!(scaled_bitrate(96_000, 2), 96_000);
        assert_eq!(scaled_bitrate(96_000, 6), 240_000);
        assert_eq!(scaled_bitrate(256_000, 8), 896_000);
        let (plans, _) = plan_renditions("t", &master(48000, 6, 24), &ladder());
        let aac = plans.iter().find(|p| p.rung.id == "aac-96").unwrap();
        assert_eq!(aac.bitrate, Some(240_000));
        let flac = plans.iter().find(|p| p.rung.id == "flac-cd").unwrap();
        assert_eq!(flac.bitrate, None);
    }

    #[test]
    fn surround_7_1_keeps_eight_channels_except_where_a_codec_cannot_carry_them() {
        let (plans, skipped) = plan_renditions("t", &master(48000, 8, 24), &ladder());
        assert!(plans.iter().all(|p| p.channels == 8));
        let skipped: Vec<_> = skipped.iter().map(|s| s.rung.as_str()).collect();
        // ALAC's 8-channel layout is 7.1 front-wide; parametric stereo is stereo only.
        assert_eq!(skipped, ["heaac-32", "alac-cd", "alac-hires"]);
        let (plans, _) = plan_renditions("t", &master(48000, 6, 24), &ladder());
        assert!(ids(&plans).contains(&"alac-hires"), "5.1 fits ALAC");
    }
}
