//! Ladders: the TOML files in `ladders/` that list the renditions (rungs) to encode.
//!
//! This module owns parsing and validating a ladder; it does not decide which rungs apply to a
//! given master (that is `transcode::plan`). The format is strict: an unknown key, a duplicate id
//! or an impossible rung is an error that names the file and the line.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Seconds of audio per media segment unless the ladder says otherwise.
pub const DEFAULT_SEGMENT_SECONDS: f64 = 6.0;

/// The highest sample rate any rung may ask for.
pub const MAX_SAMPLE_RATE: u32 = 192_000;

#[derive(Debug, thiserror::Error)]
pub enum LadderError {
    #[error("no built-in ladder {name:?} (built in: {known}; `pressing ladders` lists them, and a ladder file is given by its path, e.g. ./{name}.toml)")]
    Unknown { name: String, known: String },
    #[error("cannot read ladder {path:?}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid ladder {path:?}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid rung in ladder {path:?} at line {line}: {message}")]
    Rung {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Subscription tiers, ordered: a tier may play its own rungs and every lower tier's.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Premium,
    Hifi,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Free, Tier::Premium, Tier::Hifi];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Premium => "premium",
            Tier::Hifi => "hifi",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Codec {
    /// MPEG-4 AAC Low Complexity (AOT 2).
    AacLc,
    /// HE-AAC v1: AAC-LC core plus spectral band replication (AOT 5).
    HeAac,
    /// HE-AAC v2: HE-AAC plus parametric stereo (AOT 29); stereo masters only.
    HeAacV2,
    Opus,
    Flac,
    /// Apple Lossless, for Apple's players (which prefer it to FLAC).
    Alac,
}

impl Codec {
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::AacLc => "aac-lc",
            Codec::HeAac => "he-aac",
            Codec::HeAacV2 => "he-aac-v2",
            Codec::Opus => "opus",
            Codec::Flac => "flac",
            Codec::Alac => "alac",
        }
    }

    pub fn is_lossless(self) -> bool {
        matches!(self, Codec::Flac | Codec::Alac)
    }

    /// The codec family a player may switch within without reconfiguring its decoder chain.
    pub fn family(self) -> Family {
        match self {
            Codec::AacLc | Codec::HeAac | Codec::HeAacV2 => Family::Aac,
            Codec::Opus => Family::Opus,
            Codec::Flac => Family::Lossless,
            Codec::Alac => Family::Alac,
        }
    }

    /// The most channels the codec carries in this pipeline.
    pub fn max_channels(self) -> u16 {
        match self {
            Codec::HeAacV2 => 2,
            // ALAC's only 8-channel layout is 7.1 front-wide (C Lc Rc L R Ls Rs LFE), not the
            // 7.1 surround of an 8-channel master.
            Codec::Alac => 6,
            Codec::AacLc | Codec::HeAac | Codec::Opus | Codec::Flac => 8,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A switching set: renditions a player may move between mid-stream.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Aac,
    Opus,
    /// FLAC.
    Lossless,
    /// ALAC: lossless too, but a different decoder, so a set of its own.
    Alac,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Aac => "aac",
            Family::Opus => "opus",
            Family::Lossless => "lossless",
            Family::Alac => "alac",
        }
    }
}

/// Which implementation encodes AAC-LC. HE-AAC always uses Fraunhofer's encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AacEncoder {
    /// Fraunhofer FDK AAC (the default: better quality per bit and faster, see README).
    Fdk,
    /// FFmpeg's native `aac` encoder.
    Ffmpeg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateSpec {
    Fixed(u32),
    /// The master's own rate (lossless hi-res rungs).
    Master,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rung {
    pub id: String,
    pub codec: Codec,
    /// Target bit rate in bit/s; `None` for lossless rungs.
    pub bitrate: Option<u32>,
    pub sample_rate: RateSpec,
    /// Most bits per sample a lossless rung keeps (never more than the master has).
    pub bits: Option<u8>,
    pub tier: Tier,
    /// Most channels this rung carries; a master with more is refused by the rung.
    pub max_channels: u16,
    /// Only applies to masters above 16-bit / 44.1 kHz.
    pub hires_only: bool,
    pub aac_encoder: AacEncoder,
}

#[derive(Clone, Debug)]
pub struct Ladder {
    pub path: PathBuf,
    /// The TOML it was read from (a fleet job carries it, so a worker needs no ladder file).
    pub text: String,
    pub segment_seconds: f64,
    /// One CMAF track file per rendition, addressed by byte ranges (`single_file = true`, or
    /// `pressing run --single-file`), instead of segment files.
    pub single_file: bool,
    /// The `[protection]` table: which tiers are encrypted, how (`None`: every tier clear,
    /// unless raw keys force one).
    pub protection: Option<Protection>,
    /// The DDEX commercial models that allow each tier (`[deals]`; default: free =
    /// AdvertisementSupportedModel or FreeOfChargeModel, premium and hifi = SubscriptionModel).
    pub deal_models: Vec<(Tier, Vec<String>)>,
    /// The `[cover]` table: the front cover's floor and the sizes derived from it.
    pub cover: CoverPolicy,
    /// `prune_quality_margin`: per track, a lossy rung whose quality score is less than this
    /// margin (MOS units) above the next lower kept rung of its family is skipped (`None`: no
    /// pruning). A ladder that prunes has its renditions scored, as `--quality` does.
    pub prune_quality_margin: Option<f64>,
    pub rungs: Vec<Rung>,
}

/// A ladder's `[cover]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverPolicy {
    /// The smallest side a delivered cover may have (3000: Apple's floor and most
    /// distributors').
    #[serde(default = "default_cover_min")]
    pub min_size: u32,
    /// The square sizes published, in pixels (never larger than the delivered cover).
    #[serde(default = "default_cover_sizes")]
    pub sizes: Vec<u32>,
    /// JPEG quality of the derived sizes, 1..=100.
    #[serde(default = "default_cover_quality")]
    pub quality: u8,
}

impl Default for CoverPolicy {
    fn default() -> CoverPolicy {
        CoverPolicy {
            min_size: default_cover_min(),
            sizes: default_cover_sizes(),
            quality: default_cover_quality(),
        }
    }
}

fn default_cover_min() -> u32 {
    3000
}

fn default_cover_sizes() -> Vec<u32> {
    vec![3000, 1200, 600, 300]
}

fn default_cover_quality() -> u8 {
    90
}

/// A ladder's `[protection]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protection {
    /// `cbcs` (the default) or `cenc`; `--scheme` overrides it.
    #[serde(default = "default_scheme")]
    pub scheme: crate::protect::Scheme,
    /// The encrypted tiers (default: premium and hifi; free stays clear unless listed).
    #[serde(default = "default_protected_tiers")]
    pub tiers: Vec<Tier>,
    /// The tiers a listener may download for offline listening (the catalog record says so;
    /// a player stores them with a persistent licence). Default: the protected tiers.
    pub offline: Option<Vec<Tier>>,
    /// The DRM systems asked of a key server, beside ClearKey (default: widevine, playready,
    /// fairplay).
    #[serde(default = "default_systems")]
    pub systems: Vec<DrmName>,
}

impl Protection {
    /// The tiers listed for offline listening.
    pub fn offline_tiers(&self) -> Vec<Tier> {
        self.offline.clone().unwrap_or_else(|| self.tiers.clone())
    }
}

/// A DRM system by name, as a ladder lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrmName {
    Widevine,
    Playready,
    Fairplay,
}

impl DrmName {
    pub fn system_id(self) -> [u8; 16] {
        match self {
            DrmName::Widevine => crate::protect::WIDEVINE,
            DrmName::Playready => crate::protect::PLAYREADY,
            DrmName::Fairplay => crate::protect::FAIRPLAY,
        }
    }
}

fn default_scheme() -> crate::protect::Scheme {
    crate::protect::Scheme::Cbcs
}

fn default_protected_tiers() -> Vec<Tier> {
    vec![Tier::Premium, Tier::Hifi]
}

fn default_systems() -> Vec<DrmName> {
    vec![DrmName::Widevine, DrmName::Playready, DrmName::Fairplay]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LadderFile {
    segment_duration: Option<f64>,
    #[serde(default)]
    single_file: bool,
    protection: Option<Protection>,
    deals: Option<DealsFile>,
    #[serde(default)]
    cover: CoverPolicy,
    prune_quality_margin: Option<f64>,
    #[serde(default)]
    rung: Vec<toml::Spanned<RungFile>>,
}

/// `[deals]`: the commercial models that allow each tier.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DealsFile {
    free: Option<Vec<String>>,
    premium: Option<Vec<String>>,
    hifi: Option<Vec<String>>,
}

fn deal_models(file: Option<DealsFile>) -> Vec<(Tier, Vec<String>)> {
    let f = file.unwrap_or(DealsFile {
        free: None,
        premium: None,
        hifi: None,
    });
    let or = |v: Option<Vec<String>>, d: &[&str]| {
        v.unwrap_or_else(|| d.iter().map(|s| s.to_string()).collect())
    };
    vec![
        (
            Tier::Free,
            or(
                f.free,
                &["AdvertisementSupportedModel", "FreeOfChargeModel"],
            ),
        ),
        (Tier::Premium, or(f.premium, &["SubscriptionModel"])),
        (Tier::Hifi, or(f.hifi, &["SubscriptionModel"])),
    ]
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RateFile {
    Hz(u32),
    Word(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RungFile {
    id: String,
    codec: Codec,
    /// kbit/s
    bitrate: Option<u32>,
    sample_rate: RateFile,
    bits: Option<u8>,
    tier: Tier,
    channels: Option<u16>,
    #[serde(default)]
    hires_only: bool,
    encoder: Option<AacEncoder>,
}

/// Sample rates an MPEG-4 AAC stream can signal by index (ISO/IEC 14496-3 1.6.3.4).
const AAC_RATES: [u32; 12] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000,
];

/// The ladders built into the binary (`--ladder NAME`): name, what it is for, its TOML.
pub const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "music",
        "the default: AAC-LC, HE-AAC v1/v2, Opus, FLAC and ALAC over free, premium and hifi",
        include_str!("../ladders/music.toml"),
    ),
    (
        "bench",
        "the benchmark's: the ten rungs the FFmpeg CLI can encode too",
        include_str!("../ladders/bench.toml"),
    ),
];

impl Ladder {
    /// A built-in ladder by name, or a TOML file: a value that names a built-in and is not an
    /// existing file is the built-in (a `.toml` path or one with a `/` is always a file).
    pub fn load(spec: &str) -> Result<Ladder, LadderError> {
        let is_path = spec.contains('/') || spec.ends_with(".toml") || Path::new(spec).is_file();
        if !is_path {
            if let Some(text) = Ladder::builtin_text(spec) {
                return Ladder::parse(Path::new(spec), text);
            }
            return Err(LadderError::Unknown {
                name: spec.to_string(),
                known: BUILTIN.iter().map(|b| b.0).collect::<Vec<_>>().join(", "),
            });
        }
        Ladder::from_path(Path::new(spec))
    }

    /// The TOML of a built-in ladder.
    pub fn builtin_text(name: &str) -> Option<&'static str> {
        BUILTIN.iter().find(|b| b.0 == name).map(|b| b.2)
    }

    pub fn from_path(path: &Path) -> Result<Ladder, LadderError> {
        let text = std::fs::read_to_string(path).map_err(|source| LadderError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ladder::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Ladder, LadderError> {
        let file: LadderFile = toml::from_str(text).map_err(|e| LadderError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let segment_seconds = file.segment_duration.unwrap_or(DEFAULT_SEGMENT_SECONDS);
        if !(1.0..=30.0).contains(&segment_seconds) {
            return Err(LadderError::Syntax {
                path: path.to_owned(),
                message: format!(
                    "segment_duration = {segment_seconds} (expected 1.0..=30.0 seconds)"
                ),
            });
        }
        let cover = &file.cover;
        if !(1..=100).contains(&cover.quality)
            || cover.sizes.is_empty()
            || cover
                .sizes
                .iter()
                .any(|&s| !(16..=crate::limits::MAX_COVER_SIDE).contains(&s))
        {
            return Err(LadderError::Syntax {
                path: path.to_owned(),
                message: format!(
                    "[cover] sizes = {:?}, quality = {} (expected sizes of 16 to {} pixels, at least one, and a quality of 1 to 100)",
                    cover.sizes,
                    cover.quality,
                    crate::limits::MAX_COVER_SIDE
                ),
            });
        }
        if let Some(m) = file.prune_quality_margin {
            if !(m.is_finite() && (0.0..=4.0).contains(&m)) {
                return Err(LadderError::Syntax {
                    path: path.to_owned(),
                    message: format!(
                        "prune_quality_margin = {m} (expected a margin in MOS units from 0 to 4, such as 0.1, or no key to keep every rung)"
                    ),
                });
            }
        }
        if file.rung.is_empty() {
            return Err(LadderError::Syntax {
                path: path.to_owned(),
                message: "no [[rung]] tables (expected at least one)".into(),
            });
        }
        let mut rungs: Vec<Rung> = Vec::with_capacity(file.rung.len());
        for spanned in file.rung {
            let line = 1 + text[..spanned.span().start].matches('\n').count();
            let rung = check_rung(spanned.into_inner()).map_err(|message| LadderError::Rung {
                path: path.to_owned(),
                line,
                message,
            })?;
            if rungs.iter().any(|r| r.id == rung.id) {
                return Err(LadderError::Rung {
                    path: path.to_owned(),
                    line,
                    message: format!("duplicate rung id {:?} (ids must be unique)", rung.id),
                });
            }
            rungs.push(rung);
        }
        Ok(Ladder {
            path: path.to_owned(),
            text: text.to_string(),
            segment_seconds,
            single_file: file.single_file,
            protection: file.protection,
            deal_models: deal_models(file.deals),
            cover: file.cover,
            prune_quality_margin: file.prune_quality_margin,
            rungs,
        })
    }
}

fn check_rung(r: RungFile) -> Result<Rung, String> {
    let id_ok = !r.id.is_empty()
        && r.id.len() <= 32
        && r.id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if r.id == crate::layout::COVER_DIR {
        return Err(format!(
            "id {:?} is the front cover's folder in a track folder (choose another id)",
            r.id
        ));
    }
    if !id_ok {
        return Err(format!(
            "id {:?} (expected 1 to 32 characters of a-z, 0-9 and '-')",
            r.id
        ));
    }
    let id = r.id;
    let sample_rate = match r.sample_rate {
        RateFile::Hz(hz) => RateSpec::Fixed(hz),
        RateFile::Word(w) if w == "master" => RateSpec::Master,
        RateFile::Word(w) => {
            return Err(format!(
                "rung {id:?}: sample_rate = {w:?} (expected a rate in Hz or \"master\")"
            ))
        }
    };
    let lossless = r.codec.is_lossless();
    let bitrate = match (lossless, r.bitrate) {
        (true, Some(_)) => {
            return Err(format!(
                "rung {id:?}: bitrate on a lossless {} rung (remove it)",
                r.codec
            ))
        }
        (true, None) => None,
        (false, None) => {
            return Err(format!(
                "rung {id:?}: {} needs a bitrate in kbit/s",
                r.codec
            ))
        }
        (false, Some(kbps)) => {
            let range = match r.codec {
                Codec::AacLc => 16..=512,
                Codec::HeAac => 16..=128,
                Codec::HeAacV2 => 8..=64,
                Codec::Opus => 6..=510,
                Codec::Flac | Codec::Alac => unreachable!("lossless handled above"),
            };
            if !range.contains(&kbps) {
                return Err(format!(
                    "rung {id:?}: bitrate {kbps} kbit/s for {} (expected {}..={})",
                    r.codec,
                    range.start(),
                    range.end()
                ));
            }
            Some(kbps * 1000)
        }
    };
    match (lossless, r.bits) {
        (false, Some(b)) => {
            return Err(format!(
                "rung {id:?}: bits = {b} on a lossy {} rung (remove it)",
                r.codec
            ))
        }
        (true, None) => return Err(format!("rung {id:?}: {} needs bits = 16 or 24", r.codec)),
        (true, Some(b)) if b != 16 && b != 24 => {
            return Err(format!("rung {id:?}: bits = {b} (expected 16 or 24)"))
        }
        _ => {}
    }
    match (r.codec, sample_rate) {
        (Codec::Opus, RateSpec::Fixed(48000)) => {}
        (Codec::Opus, other) => {
            return Err(format!(
                "rung {id:?}: opus at {other:?} (Opus streams run at 48000 Hz)"
            ))
        }
        (Codec::Flac | Codec::Alac, RateSpec::Fixed(hz))
            if !(8000..=MAX_SAMPLE_RATE).contains(&hz) =>
        {
            return Err(format!(
                "rung {id:?}: sample_rate {hz} (expected 8000..={MAX_SAMPLE_RATE})"
            ))
        }
        (Codec::Flac | Codec::Alac, _) => {}
        (_, RateSpec::Master) => {
            return Err(format!(
                "rung {id:?}: sample_rate = \"master\" is for lossless rungs only"
            ))
        }
        (Codec::AacLc, RateSpec::Fixed(hz)) if !AAC_RATES.contains(&hz) => {
            return Err(format!(
                "rung {id:?}: sample_rate {hz} is not an AAC rate (expected one of {AAC_RATES:?})"
            ))
        }
        (Codec::HeAac | Codec::HeAacV2, RateSpec::Fixed(hz))
            if ![32000, 44100, 48000].contains(&hz) =>
        {
            return Err(format!(
                "rung {id:?}: sample_rate {hz} for HE-AAC (expected 32000, 44100 or 48000)"
            ))
        }
        _ => {}
    }
    let max_channels = match r.channels {
        None => r.codec.max_channels(),
        Some(c) if (1..=r.codec.max_channels()).contains(&c) => c,
        Some(c) => {
            return Err(format!(
                "rung {id:?}: channels = {c} (expected 1..={} for {})",
                r.codec.max_channels(),
                r.codec
            ))
        }
    };
    let aac_encoder = match (r.codec, r.encoder) {
        (Codec::AacLc, e) => e.unwrap_or(AacEncoder::Fdk),
        (_, None) => AacEncoder::Fdk,
        (codec, Some(_)) => {
            return Err(format!(
                "rung {id:?}: encoder is only selectable for aac-lc, not {codec}"
            ))
        }
    };
    if r.hires_only && !lossless {
        return Err(format!("rung {id:?}: hires_only is for lossless rungs"));
    }
    Ok(Rung {
        id,
        codec: r.codec,
        bitrate,
        sample_rate,
        bits: r.bits,
        tier: r.tier,
        max_channels,
        hires_only: r.hires_only,
        aac_encoder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_ladders_parse_and_equal_their_files() {
        for (name, _, _) in BUILTIN {
            let built_in = Ladder::load(name).unwrap();
            let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("ladders/{name}.toml"));
            let from_file = Ladder::from_path(&file).unwrap();
            assert_eq!(built_in.rungs.len(), from_file.rungs.len(), "{name}");
            assert_eq!(built_in.path, Path::new(name));
        }
        let err = Ladder::load("nope").unwrap_err().to_string();
        assert!(
            err.contains("music") && err.contains("pressing ladders"),
            "{err}"
        );
        assert!(matches!(
            Ladder::load("nope.toml"),
            Err(LadderError::Read { .. })
        ));
    }

    fn parse(text: &str) -> Result<Ladder, LadderError> {
        Ladder::parse(Path::new("test.toml"), text)
    }

    #[test]
    fn bundled_music_ladder_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ladders/music.toml");
        let ladder = Ladder::from_path(&path).unwrap();
        let ids: Vec<_> = ladder.rungs.iter().map(|r| r.id.as_str()).collect();
        for want in [
            "aac-256",
            "aac-160",
            "aac-96",
            "heaac-64",
            "heaac-32",
            "opus-160",
            "opus-96",
            "flac-cd",
            "flac-hires",
            "alac-cd",
            "alac-hires",
        ] {
            assert!(ids.contains(&want), "{want} missing from {ids:?}");
        }
        assert_eq!(ladder.segment_seconds, 6.0);
    }

    #[test]
    fn a_prune_margin_is_read_and_checked() {
        let rung = "[[rung]]\nid = \"a\"\ncodec = \"aac-lc\"\nbitrate = 96\nsample_rate = 44100\ntier = \"free\"\n";
        assert_eq!(parse(rung).unwrap().prune_quality_margin, None);
        let ladder = parse(&format!("prune_quality_margin = 0.1\n{rung}")).unwrap();
        assert_eq!(ladder.prune_quality_margin, Some(0.1));
        for bad in ["-0.1", "5.0", "nan"] {
            let err = parse(&format!("prune_quality_margin = {bad}\n{rung}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("prune_quality_margin"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_key_names_the_line() {
        let err = parse(
            "[[rung]]\nid = \"a\"\ncodec = \"aac-lc\"\nbitrate = 96\nsample_rate = 44100\ntier = \"free\"\nbitrat = 3\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 7"), "{err}");
        assert!(err.contains("bitrat"), "{err}");
    }

    #[test]
    fn impossible_rungs_are_refused_with_their_line() {
        let text = "[[rung]]\nid = \"ok\"\ncodec = \"flac\"\nbits = 16\nsample_rate = 44100\ntier = \"hifi\"\n\n[[rung]]\nid = \"bad\"\ncodec = \"opus\"\nbitrate = 96\nsample_rate = 44100\ntier = \"free\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("line 8"), "{err}");
        assert!(err.contains("48000"), "{err}");
    }

    #[test]
    fn duplicate_ids_and_lossless_bitrates_are_errors() {
        let dup = "[[rung]]\nid = \"a\"\ncodec = \"flac\"\nbits = 16\nsample_rate = 44100\ntier = \"hifi\"\n[[rung]]\nid = \"a\"\ncodec = \"flac\"\nbits = 24\nsample_rate = \"master\"\ntier = \"hifi\"\n";
        assert!(parse(dup).unwrap_err().to_string().contains("duplicate"));
        let br = "[[rung]]\nid = \"a\"\ncodec = \"flac\"\nbits = 16\nbitrate = 900\nsample_rate = 44100\ntier = \"hifi\"\n";
        assert!(parse(br).unwrap_err().to_string().contains("lossless"));
    }

    #[test]
    fn tiers_are_ordered() {
        assert!(Tier::Free < Tier::Premium && Tier::Premium < Tier::Hifi);
    }
}
