//! Helpers shared by the integration tests: run the real binary, decode with the FFmpeg CLI
//! (an independent decoder), read edit lists with mp4-atom (an independent parser).
#![allow(dead_code)]

pub mod ddex;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn pressing(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pressing"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run pressing")
}

/// Run `pressing run` once per test binary and name, into a fresh folder under target/.
/// This test binary's scratch folder: `CARGO_TARGET_TMPDIR/<binary>` (created). The playback
/// and fleet binaries run beside the others (scripts/test.sh), so no two binaries may share a
/// folder: each presses the fixtures into its own.
pub fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(env!("CARGO_CRATE_NAME"));
    std::fs::create_dir_all(&dir).expect("the test binary's scratch folder");
    dir
}

pub fn run_once(name: &str, args: &[&str]) -> PathBuf {
    let out = scratch().join(name);
    let _ = std::fs::remove_dir_all(&out);
    let out_s = out.to_str().unwrap().to_string();
    let mut full = vec!["run", "--out", &out_s];
    full.extend_from_slice(args);
    let o = pressing(&full);
    assert!(
        o.status.success(),
        "pressing {full:?} failed: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    // Every report the suite writes is held against the schema.
    report(&out);
    out
}

/// The album and gapless fixtures pressed once with the default ladder.
pub fn fixtures_out() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| run_once("fixtures", &["fixtures/album", "fixtures/gapless"]))
}

/// The same fixtures pressed in the single-file form (`--single-file`): one CMAF track file per
/// rendition, addressed by byte ranges.
pub fn single_file_out() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        run_once(
            "fixtures-single-file",
            &["fixtures/album", "fixtures/gapless", "--single-file"],
        )
    })
}

/// Both packaging forms of the fixtures, named: what every player test plays.
pub fn both_forms() -> [(&'static str, &'static Path); 2] {
    [
        ("segments", fixtures_out()),
        ("single-file", single_file_out()),
    ]
}

/// A record checked against the committed schema (`schemas/report.schema.json`): every
/// package index and report a test reads is validated.
fn schema_checked(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let value: serde_json::Value = serde_json::from_str(&text).expect("the record is JSON");
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let schema = SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("schemas/report.schema.json"))
            .expect("schemas/report.schema.json");
        jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("a valid schema")
    });
    let errors: Vec<String> = schema.iter_errors(&value).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{path:?} against the schema: {errors:?}");
    value
}

/// An output folder's package index (`index.json`), schema-checked: what was pressed, with
/// nothing that differs between identical runs (no `stats`, no `publish`).
pub fn report(out: &Path) -> serde_json::Value {
    let value = schema_checked(&out.join("index.json"));
    assert!(value.get("stats").is_none(), "{out:?}/index.json has stats");
    let tracks = value["tracks"].as_array().expect("tracks");
    assert!(tracks.iter().all(|t| t.get("publish").is_none()));
    value
}

/// Where the publish tests have `pressing publish --report` write for a package folder.
pub fn published_path(out: &Path) -> PathBuf {
    out.with_extension("publish.json")
}

/// The report of the last `pressing publish` of a package folder (`published_path`),
/// schema-checked: the index with each track's `publish`.
pub fn published(out: &Path) -> serde_json::Value {
    let value = schema_checked(&published_path(out));
    let tracks = value["tracks"].as_array().expect("tracks");
    assert!(!tracks.is_empty() && tracks.iter().all(|t| t.get("publish").is_some()));
    value
}

/// Every file under `dir` whose name `keep` accepts: what a test compares its checks with.
pub fn files_named(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{d:?}: {e}")) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().and_then(|n| n.to_str()).is_some_and(&keep) {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// How much of the large matrices (every playlist through every player, every FFmpeg path) a
/// run plays: all of it with `PRESSING_TEST_FULL=1` (`scripts/test.sh --full`), else one in
/// `SAMPLE_EVERY` of each stratum, chosen by `PRESSING_TEST_SEED` (scripts/test.sh passes the
/// commit): the same commit plays the same sample, and successive commits rotate through all.
pub struct Sampling {
    pub every: usize,
    pub seed: u64,
}

/// One in four of each stratum by default: every player meets every codec family each run.
pub const SAMPLE_EVERY: usize = 4;

pub fn sampling() -> Sampling {
    let full = std::env::var("PRESSING_TEST_FULL").is_ok_and(|v| !v.is_empty() && v != "0");
    let seed = std::env::var("PRESSING_TEST_SEED")
        .ok()
        .map(|s| fnv1a(&s) as u64)
        .unwrap_or(0);
    Sampling {
        every: if full { 1 } else { SAMPLE_EVERY },
        seed,
    }
}

/// FNV-1a (32 bits): the sample's hash, the same in `tests/player/play.mjs`.
pub fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl Sampling {
    /// The items of a matrix this run checks: within each stratum (what must be covered on
    /// every run: a player and a codec family, say) the items are ordered by the hash of their
    /// name, and `ceil(len / every)` of them are kept, `every` apart (wrapping) from an offset
    /// the seed picks: each stratum keeps the same count whatever the seed, so a run checks at
    /// least `ceil(matrix / every)` items, and at least one of each stratum.
    pub fn pick<T>(
        &self,
        items: Vec<T>,
        name: impl Fn(&T) -> String,
        stratum: impl Fn(&T) -> String,
    ) -> Vec<T> {
        if self.every <= 1 {
            return items;
        }
        let mut groups: std::collections::BTreeMap<String, Vec<(u32, usize)>> = Default::default();
        for (i, item) in items.iter().enumerate() {
            groups
                .entry(stratum(item))
                .or_default()
                .push((fnv1a(&name(item)), i));
        }
        let mut keep = vec![false; items.len()];
        for group in groups.values_mut() {
            group.sort();
            let offset = (self.seed as usize) % self.every;
            for k in 0..group.len().div_ceil(self.every) {
                keep[group[(offset + k * self.every) % group.len()].1] = true;
            }
        }
        items
            .into_iter()
            .zip(keep)
            .filter_map(|(item, k)| k.then_some(item))
            .collect()
    }

    /// The same sampling with a seed of its own for `salt` (a packaging form, say), so two
    /// forms of one matrix play different samples of it.
    pub fn salted(&self, salt: &str) -> Sampling {
        Sampling {
            every: self.every,
            seed: self.seed ^ u64::from(fnv1a(salt)),
        }
    }

    /// The environment that gives `tests/player/play.mjs` the same sampling.
    pub fn player_env(&self) -> [(&'static str, String); 2] {
        [
            ("PLAY_SAMPLE", self.every.to_string()),
            ("PLAY_SEED", self.seed.to_string()),
        ]
    }
}

/// Every rendition of an index, with its track's id and entry: the walk most checks make.
pub fn renditions(
    index: &serde_json::Value,
) -> Vec<(String, serde_json::Value, serde_json::Value)> {
    let mut out = Vec::new();
    for t in index["tracks"].as_array().unwrap() {
        for r in t["renditions"].as_array().unwrap() {
            out.push((t["id"].as_str().unwrap().to_string(), t.clone(), r.clone()));
        }
    }
    out
}

/// A rendition's folder: its one version folder (`<track>/<rendition>/<version>/`).
pub fn rendition_dir(track_dir: &Path, rendition: &str) -> PathBuf {
    let versions: Vec<PathBuf> = std::fs::read_dir(track_dir.join(rendition))
        .unwrap_or_else(|e| panic!("{track_dir:?}/{rendition}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(versions.len(), 1, "{track_dir:?}/{rendition}: {versions:?}");
    versions.into_iter().next().unwrap()
}

/// A rendition folder's media segment files, in order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "m4s"))
        .collect();
    segs.sort();
    segs
}

/// Concatenate a rendition's init and media segments into one fMP4 file.
pub fn join_rendition(track_dir: &Path, rendition: &str) -> PathBuf {
    let dir = rendition_dir(track_dir, rendition);
    let mut bytes = std::fs::read(dir.join("init.mp4")).expect("init.mp4");
    for s in segment_files(&dir) {
        bytes.extend(std::fs::read(s).unwrap());
    }
    // A file of its own per call, outside the output tree: tests run in parallel threads and
    // may join the same rendition at once, and the reproducibility test walks the output tree.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let scratch = scratch().join("joined");
    std::fs::create_dir_all(&scratch).unwrap();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = scratch.join(format!("{}-{n}-{rendition}.mp4", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

pub fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (scripts/setup.sh)");
    assert!(
        o.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// Decode every sample the bitstream holds, priming and padding included (FFmpeg 5.1 ignores
/// edit lists in fragmented MP4 anyway; `skip_manual` stops decoder-side trimming too).
/// `channels` forces the output layout: FFmpeg decodes mono HE-AAC as stereo (it assumes
/// implicit parametric stereo), and identical channels fold back to mono exactly.
pub fn decode_raw_f32(path: &Path, channels: usize) -> Vec<f32> {
    // pan copies channels without the -3 dB gain of FFmpeg's default downmix.
    let mut args = vec!["-flags2", "+skip_manual", "-i", path.to_str().unwrap()];
    if channels == 1 {
        args.extend(["-af", "pan=mono|c0=c0"]);
    }
    args.extend(["-f", "f32le", "-"]);
    let bytes = ffmpeg(&args);
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Decode to integers (s32, left-aligned), for bit-exact comparisons.
pub fn decode_raw_s32(path: &Path) -> Vec<i32> {
    let bytes = ffmpeg(&[
        "-flags2",
        "+skip_manual",
        "-i",
        path.to_str().unwrap(),
        "-f",
        "s32le",
        "-",
    ]);
    bytes
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// A master decoded by FFmpeg, resampled with soxr (linear phase, delay-compensated) when
/// `rate` differs from its own.
pub fn reference_f32(master: &Path, rate: u32) -> Vec<f32> {
    let af = format!("aresample={rate}:resampler=soxr:precision=28");
    let bytes = ffmpeg(&[
        "-i",
        master.to_str().unwrap(),
        "-af",
        &af,
        "-f",
        "f32le",
        "-",
    ]);
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// (media_time, segment_duration) of the single edit in an init segment, read with mp4-atom.
pub fn edit_list(init: &Path) -> (u64, u64) {
    use mp4_atom::{Decode, Ftyp, Moov};
    let bytes = std::fs::read(init).unwrap();
    let mut cur = std::io::Cursor::new(bytes.as_slice());
    Ftyp::decode(&mut cur).expect("ftyp");
    let moov = Moov::decode(&mut cur).expect("moov");
    let elst = moov.trak[0]
        .edts
        .as_ref()
        .and_then(|e| e.elst.as_ref())
        .expect("elst");
    assert_eq!(elst.entries.len(), 1);
    let e = &elst.entries[0];
    (
        e.media_time.expect("media_time is not an empty edit") as u64,
        e.segment_duration,
    )
}

/// Decode a rendition and apply its edit list: what a gapless player outputs (interleaved).
pub fn decode_gapless(track_dir: &Path, rendition: &str, channels: usize) -> Vec<f32> {
    let joined = join_rendition(track_dir, rendition);
    let raw = decode_raw_f32(&joined, channels);
    let (skip, len) = edit_list(&rendition_dir(track_dir, rendition).join("init.mp4"));
    let (a, b) = (skip as usize * channels, (skip + len) as usize * channels);
    assert!(
        b <= raw.len(),
        "{rendition}: edit list ends at {} frames but {} decode",
        skip + len,
        raw.len() / channels
    );
    raw[a..b].to_vec()
}

/// The mean of all channels of interleaved samples.
pub fn mid(samples: &[f32], channels: usize) -> Vec<f32> {
    samples
        .chunks_exact(channels)
        .map(|f| f.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// The lag (in samples) at which `x` best matches `reference`, searched in +-`max_lag` over a
/// window in the middle, with normalised correlation.
pub fn best_lag(x: &[f32], reference: &[f32], max_lag: usize) -> (i64, f64) {
    let n = x.len().min(reference.len());
    let win = 8192.min(n.saturating_sub(2 * max_lag + 1));
    let start = (n - win) / 2;
    let mut best = (0i64, f64::MIN);
    for lag in -(max_lag as i64)..=(max_lag as i64) {
        let (mut dot, mut ex, mut er) = (0.0f64, 0.0f64, 0.0f64);
        let shifted = &x[(start as i64 + lag) as usize..];
        for (a, b) in shifted.iter().zip(&reference[start..start + win]) {
            let (a, b) = (*a as f64, *b as f64);
            dot += a * b;
            ex += a * a;
            er += b * b;
        }
        let c = dot / (ex.sqrt() * er.sqrt() + 1e-12);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

/// Signal-to-error ratio of `x` against `reference`, in dB, over their common length.
pub fn snr_db(x: &[f32], reference: &[f32]) -> f64 {
    let n = x.len().min(reference.len());
    let (mut s, mut e) = (0.0f64, 0.0f64);
    for i in 0..n {
        s += (reference[i] as f64).powi(2);
        e += (x[i] as f64 - reference[i] as f64).powi(2);
    }
    10.0 * (s / (e + 1e-20)).log10()
}

/// A track's rendition in a report, by id.
pub fn rendition_in<'a>(track: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    track["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("rendition {id} in {}", track["id"]))
}

/// The gapless fixture's two parts joined into one 24-bit WAV: the uncut programme.
pub fn uncut_programme() -> &'static Path {
    static WAV: OnceLock<PathBuf> = OnceLock::new();
    WAV.get_or_init(|| {
        let wav = scratch().join("uncut.wav");
        let status = Command::new("sox")
            .arg(root().join("fixtures/gapless/01-part-one.flac"))
            .arg(root().join("fixtures/gapless/02-part-two.flac"))
            .arg(&wav)
            .status()
            .expect("sox is installed (scripts/setup.sh)");
        assert!(status.success());
        wav
    })
}

/// The count of passed playbacks in tests/player/play.mjs's last line
/// (`playback: N passed, ...`), and that line.
/// The player's matrix: (playbacks it would make in full, playbacks it made this run).
pub fn playback_matrix(stdout: &str) -> (usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("{\"matrix\""))
        .expect("play.mjs prints its matrix");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    (
        v["matrix"].as_u64().unwrap() as usize,
        v["playing"].as_u64().unwrap() as usize,
    )
}

pub fn playbacks_passed(stdout: &str) -> (usize, &str) {
    let summary = stdout.lines().last().unwrap_or_default();
    let passed = summary
        .strip_prefix("playback: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (passed, summary)
}
