//! Ingest: the bad-input corpus (scripts/make-bad-inputs.py) gets its expected codes, loudness
//! agrees with an independent implementation (FFmpeg's ebur128 filter), loudness reaches the
//! init segments' `ludt` boxes, and `pressing run` refuses a bad release before encoding.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

fn validate_json(args: &[&str]) -> (Option<i32>, Value, String) {
    let mut full = vec!["validate", "--json"];
    full.extend_from_slice(args);
    let o = pressing(&full);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let json = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("validate {args:?} printed no JSON ({e}): {stderr}"));
    (o.status.code(), json, stderr)
}

#[test]
fn every_bad_input_gets_its_code_and_nothing_crashes() {
    let corpus = scratch().join("bad-inputs");
    let status = Command::new("python3")
        .arg(root().join("scripts/make-bad-inputs.py"))
        .arg(&corpus)
        .status()
        .expect("python3");
    assert!(status.success());
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("expected.json")).unwrap())
            .unwrap();
    let cases = expected.as_object().unwrap();
    assert!(cases.len() >= 18, "corpus has {} cases", cases.len());
    for (name, want) in cases {
        let dir = corpus.join(name);
        let (code, report, stderr) = validate_json(&[dir.to_str().unwrap()]);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert_eq!(
            code,
            want["exit"].as_i64().map(|c| c as i32),
            "{name}: exit status"
        );
        let findings = report["findings"].as_array().unwrap();
        for c in want["codes"].as_array().unwrap() {
            assert!(
                findings.iter().any(|f| &f["code"] == c),
                "{name}: no {c} among {:?}",
                findings.iter().map(|f| &f["code"]).collect::<Vec<_>>()
            );
        }
        for f in findings {
            for key in ["file", "message", "fix"] {
                assert!(
                    !f[key].as_str().unwrap_or("").is_empty(),
                    "{name}: {key} in {f}"
                );
            }
        }
        let errors = findings.iter().filter(|f| f["severity"] == "error").count();
        assert_eq!(report["errors"].as_u64(), Some(errors as u64));
    }
}

#[test]
fn a_refused_release_is_never_encoded() {
    let dir = scratch().join("refused");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root().join("fixtures/album/01-cd-stereo.wav"),
        dir.join("01-cd-stereo.wav"),
    )
    .unwrap();
    std::fs::write(dir.join("release.json"), "{\"title\": \"x\",,}").unwrap();
    let out = dir.join("out");
    let o = pressing(&["run", "--out", out.to_str().unwrap(), dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("metadata.syntax") && stderr.contains("release.json"),
        "{stderr}"
    );
    assert!(
        !out.exists(),
        "nothing may be written for a refused release"
    );
}

/// FFmpeg's ebur128 summary: (integrated LUFS, LRA LU, true peak dBTP).
fn ffmpeg_ebur128(file: &Path) -> (f64, f64, f64) {
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-nostats", "-i"])
        .arg(file)
        .args(["-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&o.stderr);
    let summary = &text[text.rfind("Summary:").expect("ebur128 summary")..];
    let value = |key: &str| -> f64 {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (value("I:"), value("LRA:"), value("Peak:"))
}

#[test]
fn loudness_agrees_with_ffmpeg_ebur128_within_a_tenth_of_a_lu() {
    let (code, report, stderr) = validate_json(&["fixtures/album", "fixtures/gapless"]);
    assert_eq!(code, Some(0), "{stderr}");
    for t in report["tracks"].as_array().unwrap() {
        let file = root().join(t["file"].as_str().unwrap());
        let l = &t["loudness"];
        let ours = l["integrated_lufs"].as_f64().unwrap();
        let (i, lra, tp) = ffmpeg_ebur128(&file);
        // FFmpeg prints one decimal: agreement within 0.1 LU allows for its rounding.
        assert!(
            (ours - i).abs() <= 0.1,
            "{file:?}: integrated {ours:.2} vs FFmpeg {i}"
        );
        // LRA rests on 3 s short-term windows: below ~10 s there are too few for two
        // implementations to agree (the EBU 3342 cases in the unit tests pin it exactly).
        let seconds = t["duration_samples"].as_f64().unwrap() / t["sample_rate"].as_f64().unwrap();
        let our_lra = l["loudness_range_lu"].as_f64().unwrap();
        if seconds >= 10.0 {
            assert!(
                (our_lra - lra).abs() <= 0.1,
                "{file:?}: LRA {our_lra:.2} vs FFmpeg {lra}"
            );
        }
        let our_tp = l["true_peak_dbtp"].as_f64().unwrap();
        assert!(
            (our_tp - tp).abs() <= 0.3,
            "{file:?}: true peak {our_tp:.2} vs FFmpeg {tp}"
        );
        let gain = l["replaygain_db"].as_f64().unwrap();
        assert!(
            (gain - (-18.0 - ours)).abs() < 1e-9,
            "ReplayGain is -18 LUFS minus loudness"
        );
    }
    for a in report["albums"].as_array().unwrap() {
        assert!(
            a["loudness"]["integrated_lufs"].as_f64().is_some(),
            "album loudness: {a}"
        );
    }
}

/// (program loudness LUFS, true peak dBTP) from the first `tlou` or `alou` in an init segment.
fn ludt_values(init: &[u8], fourcc: &[u8; 4]) -> (f64, f64) {
    let at = init
        .windows(4)
        .position(|w| w == fourcc)
        .expect("loudness box");
    let body = &init[at + 8..]; // after type and version/flags
    let word = u32::from_be_bytes(body[2..6].try_into().unwrap());
    let tp = 20.0 - f64::from((word >> 8) & 0xfff) / 32.0;
    let count = body[6] as usize;
    let m = (0..count)
        .map(|k| &body[7 + 3 * k..10 + 3 * k])
        .find(|m| m[0] == 1)
        .expect("program loudness measurement");
    (-57.75 + f64::from(m[1]) / 4.0, tp)
}

#[test]
fn init_segments_carry_track_and_album_loudness() {
    let out = fixtures_out();
    let report = report(out);
    let mut checked = 0;
    for (_, t, r) in renditions(&report) {
        let lufs = t["loudness"]["integrated_lufs"].as_f64().unwrap();
        let tp = t["loudness"]["true_peak_dbtp"].as_f64().unwrap();
        let album = t["album_loudness"]["integrated_lufs"].as_f64().unwrap();
        let init = std::fs::read(out.join(r["init"].as_str().unwrap())).unwrap();
        let (l, p) = ludt_values(&init, b"tlou");
        assert!(
            (l - lufs).abs() <= 0.125,
            "{}: tlou {l} vs {lufs}",
            r["init"]
        );
        assert!(
            (p - tp).abs() <= 1.0 / 64.0,
            "{}: true peak {p} vs {tp}",
            r["init"]
        );
        let (a, _) = ludt_values(&init, b"alou");
        assert!(
            (a - album).abs() <= 0.125,
            "{}: alou {a} vs {album}",
            r["init"]
        );
        checked += 1;
    }
    // Every init segment in the package carries its loudness, and there are some.
    let inits = files_named(out, |n| n == "init.mp4").len();
    assert_eq!(checked, inits, "init segments checked vs on disk");
    assert!(checked >= 40, "only {checked} init segments checked");
}

/// A music-like master with dynamics (a quiet verse, a loud chorus with tremolo, a fade-out)
/// and a two-part album whose parts are one continuous signal: integrated loudness and LRA
/// agree with FFmpeg's ebur128 within 0.1 LU, and album loudness over the two parts agrees
/// with FFmpeg on the uncut programme (only the few blocks straddling the cut differ).
#[test]
fn loudness_of_a_dynamic_master_and_of_an_album_agrees_with_ffmpeg() {
    let dir = scratch().join("dynamic");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let master = dir.join("dynamic.wav");
    let part = |name: &str, args: &[&str]| {
        let path = dir.join(name);
        let status = Command::new("sox")
            .args(["-n", "-r", "48000", "-b", "24", "-c", "2"])
            .arg(&path)
            .args(args)
            .status()
            .expect("sox is installed (scripts/setup.sh)");
        assert!(status.success());
        path
    };
    let verse = part(
        "verse.wav",
        &["synth", "12", "pinknoise", "sine", "220", "vol", "0.05"],
    );
    let chorus = part(
        "chorus.wav",
        &[
            "synth",
            "16",
            "pinknoise",
            "sine",
            "330-660",
            "tremolo",
            "4",
            "60",
            "vol",
            "0.4",
        ],
    );
    let outro = part(
        "outro.wav",
        &[
            "synth",
            "12",
            "pinknoise",
            "sine",
            "440",
            "vol",
            "0.3",
            "fade",
            "0",
            "12",
            "11",
        ],
    );
    let status = Command::new("sox")
        .args([&verse, &chorus, &outro])
        .arg(&master)
        .status()
        .unwrap();
    assert!(status.success());
    for p in [&verse, &chorus, &outro] {
        std::fs::remove_file(p).unwrap();
    }
    let (code, report, stderr) = validate_json(&[dir.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let l = &report["tracks"][0]["loudness"];
    let (i, lra, _) = ffmpeg_ebur128(&master);
    let ours = l["integrated_lufs"].as_f64().unwrap();
    let our_lra = l["loudness_range_lu"].as_f64().unwrap();
    assert!(
        (ours - i).abs() <= 0.1,
        "integrated {ours:.2} vs FFmpeg {i}"
    );
    assert!(lra > 5.0, "the master has dynamics (LRA {lra})");
    assert!(
        (our_lra - lra).abs() <= 0.1,
        "LRA {our_lra:.2} vs FFmpeg {lra}"
    );

    let (code, report, stderr) = validate_json(&["fixtures/gapless"]);
    assert_eq!(code, Some(0), "{stderr}");
    let album = &report["albums"][0]["loudness"];
    let (i, _, tp) = ffmpeg_ebur128(uncut_programme());
    let ours = album["integrated_lufs"].as_f64().unwrap();
    assert!(
        (ours - i).abs() <= 0.1,
        "album {ours:.2} vs FFmpeg {i} uncut"
    );
    let our_tp = album["true_peak_dbtp"].as_f64().unwrap();
    assert!(
        (our_tp - tp).abs() <= 0.3,
        "album true peak {our_tp:.2} vs {tp}"
    );
}

#[test]
fn two_bare_masters_with_one_file_stem_are_two_files_to_validate_but_one_output_folder_to_run() {
    let dir = scratch().join("same-stem");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (wav, flac) = (dir.join("a.wav"), dir.join("a.flac"));
    for (path, freq) in [(&wav, "440"), (&flac, "660")] {
        let o = Command::new("sox")
            .args(["-n", "-r", "44100", "-b", "16", "-c", "2"])
            .arg(path)
            .args(["synth", "3", "sine", freq, "vol", "0.5"])
            .output()
            .unwrap();
        assert!(o.status.success());
    }
    let (code, report, stderr) = validate_json(&[wav.to_str().unwrap(), flac.to_str().unwrap()]);
    assert_eq!(code, Some(0), "validate refused: {stderr}");
    assert_eq!(report["tracks"].as_array().unwrap().len(), 2);
    assert!(report["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| !t["loudness"].is_null()));
    let out = dir.join("out");
    let o = pressing(&[
        "run",
        wav.to_str().unwrap(),
        flac.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(65));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("release.duplicate-id") && err.contains("rename one of the files"),
        "{err}"
    );
    assert!(!out.join("a").exists());
}

/// A reader that stops early (`| head`, `| grep -q`) closes the pipe before the data is written:
/// every command that prints data still exits 0, quietly, instead of panicking on the broken pipe.
#[test]
fn data_into_a_closed_pipe_ends_quietly() {
    for args in [
        &["completions", "bash"][..],
        &["man"],
        &["ladders"],
        &["ladders", "show", "music"],
        &["validate", "--json", "fixtures/album/01-cd-stereo.wav"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(env!("CARGO_BIN_EXE_pressing"))
            .args(args)
            .current_dir(root())
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "pressing {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "pressing {args:?}: {stderr}");
    }
}

/// One master delivered twice under two names (and two formats) is a warning naming both, from
/// `validate` and from `run`; the album's three different masters raise none.
#[test]
fn two_tracks_with_the_same_audio_are_a_warning_naming_both() {
    let dir = scratch().join("same-audio");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.wav"), dir.join("b.flac"));
    for path in [&a, &b] {
        let o = Command::new("sox")
            .arg(root().join("fixtures/album/01-cd-stereo.wav"))
            .arg(path)
            .output()
            .unwrap();
        assert!(o.status.success());
    }
    let duplicates = |findings: &Value| -> Vec<String> {
        findings
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "release.duplicate-audio")
            .map(|f| f["message"].as_str().unwrap().to_string())
            .collect()
    };
    let (code, report, stderr) = validate_json(&[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, Some(0), "a warning does not refuse: {stderr}");
    let found = duplicates(&report["findings"]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("a.wav") && found[0].contains("b.flac") && found[0].contains("100%"),
        "{found:?}"
    );
    // Each track's fingerprint is in the report, in fpcalc's form.
    for t in report["tracks"].as_array().unwrap() {
        assert_eq!(t["fingerprint"]["duration"], 10);
        assert!(t["fingerprint"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("AQAA"));
    }
    let out = dir.join("out");
    let o = pressing(&[
        "run",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(duplicates(&index["warnings"]).len(), 1);
    // Different masters: none.
    let (_, album, _) = validate_json(&["fixtures/album", "fixtures/gapless"]);
    assert!(duplicates(&album["findings"]).is_empty());
    println!("duplicate audio: 1 warning for a copied master (validate and run), 0 for 5 different masters");
}
