//! Sample accuracy, checked with an independent decoder (the FFmpeg CLI): every rendition decodes
//! to the master's length (scaled by the rate ratio) once its edit list is applied, lines up with
//! the master, lossless rungs are bit-exact, and gapless tracks join into the uncut programme.

mod common;

use common::*;
use serde_json::Value;

fn scale(frames: u64, from: u64, to: u64) -> u64 {
    (frames * to + from / 2) / from
}

fn track<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("track {id} in report"))
}

/// Minimum waveform SNR (dB, mid signal) against the master per rung: measured values on the
/// fixtures minus a margin of about 8 dB, so a misaligned, truncated or garbled stream fails by
/// far (one sample of misalignment costs AAC-LC 256k about 15 dB here).
fn min_snr(rendition: &str) -> f64 {
    match rendition {
        "aac-256" => 30.0,  // measured 40-43
        "aac-160" => 28.0,  // 38-41
        "aac-96" => 25.0,   // 35-37
        "heaac-64" => 12.0, // 18-21: SBR rebuilds the top band, not its waveform
        "heaac-32" => 10.0, // 16-19
        "opus-160" => 25.0, // 34-37
        "opus-96" => 20.0,  // 30-33
        // Resampled lossless differs from FFmpeg's soxr in the filter's transition band and by
        // the 16-bit dither; at the master's rate it is bit-exact (tested below).
        _ => 45.0,
    }
}

#[test]
fn every_rendition_has_the_master_length_and_alignment() {
    let out = fixtures_out();
    let report = report(out);
    let mut checked = 0;
    for (id, t, r) in renditions(&report) {
        let (id, t, r) = (id.as_str(), &t, &r);
        let master = root().join(t["source"].as_str().unwrap());
        let master_rate = t["sample_rate"].as_u64().unwrap();
        let master_frames = t["duration_samples"].as_u64().unwrap();
        let channels = t["channels"].as_u64().unwrap() as usize;
        let rid = r["id"].as_str().unwrap();
        let rate = r["sample_rate"].as_u64().unwrap();
        let expected = scale(master_frames, master_rate, rate);
        assert_eq!(
            r["duration_samples"].as_u64().unwrap(),
            expected,
            "{id}/{rid} report"
        );
        let dir = out.join(id);
        let (priming, len) = edit_list(&rendition_dir(&dir, rid).join("init.mp4"));
        assert_eq!(len, expected, "{id}/{rid}: edit list duration");
        assert_eq!(
            priming,
            r["priming_samples"].as_u64().unwrap(),
            "{id}/{rid}: priming"
        );
        let decoded = decode_gapless(&dir, rid, channels);
        assert_eq!(
            decoded.len() as u64,
            expected * channels as u64,
            "{id}/{rid}: decoded"
        );

        // A gapless track is a slice of its programme: its first sample may sit a fraction
        // of a sample before its master's start once resampled, so the reference is the
        // uncut programme, resampled and sliced at the same rounded boundary.
        let reference = match id {
            "qzes62600011" | "qzes62600012" => {
                let whole = reference_f32(uncut_programme(), rate as u32);
                let start = if id == "qzes62600012" {
                    scale(250_001, 48000, rate) as usize * channels
                } else {
                    0
                };
                whole[start..].to_vec()
            }
            _ => reference_f32(&master, rate as u32),
        };
        // On the mid signal: parametric stereo (HE-AAC v2) rebuilds the stereo image, so
        // a single channel is not waveform-coded.
        let (x, refc) = (mid(&decoded, channels), mid(&reference, channels));
        let (lag, corr) = best_lag(&x, &refc, 2100);
        // FFmpeg's SBR decoder runs one sample ahead of Fraunhofer's, whose decoder-side
        // delay (nDelay) the edit list uses; every other rung must be exact.
        let tolerance = if rid.starts_with("heaac") { 1 } else { 0 };
        assert!(
            lag.abs() <= tolerance,
            "{id}/{rid}: output is {lag} samples off the master (corr {corr:.3})"
        );
        // Away from the edges: the reference resamples each file alone, while a gapless
        // track is resampled as part of its continuous programme.
        let edge = 4096.min(x.len() / 4);
        let snr = snr_db(&x[edge..x.len() - edge], &refc[edge..x.len() - edge]);
        assert!(
            snr >= min_snr(rid),
            "{id}/{rid}: SNR {snr:.1} dB below {}",
            min_snr(rid)
        );
        eprintln!("{id}/{rid}: lag {lag}, corr {corr:.4}, snr {snr:.1} dB");
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} renditions checked");
}

#[test]
fn lossless_renditions_at_the_master_rate_are_bit_exact() {
    let out = fixtures_out();
    let report = report(out);
    let mut checked = 0;
    for (id, t, r) in renditions(&report) {
        let (id, t, r) = (id.as_str(), &t, &r);
        let master = root().join(t["source"].as_str().unwrap());
        let lossless = r["codec"] == "flac" || r["codec"] == "alac";
        if !lossless || r["sample_rate"] != t["sample_rate"] {
            continue;
        }
        if r["bits_per_sample"] != t["bits_per_sample"] {
            continue;
        }
        let rid = r["id"].as_str().unwrap();
        let dir = out.join(id);
        let ours = decode_raw_s32(&join_rendition(&dir, rid));
        let theirs = decode_raw_s32(&master);
        assert_eq!(ours.len(), theirs.len(), "{id}/{rid}: sample count");
        assert!(ours == theirs, "{id}/{rid}: PCM differs from the master");
        checked += 1;
    }
    // cd-stereo + mono (flac-cd, alac-cd), hires + both gapless parts (flac-hires, alac-hires)
    assert_eq!(checked, 10);
}

#[test]
fn gapless_tracks_join_into_the_uncut_programme() {
    let out = fixtures_out();
    let report = report(out);
    let a = track(&report, "qzes62600011");
    let b = track(&report, "qzes62600012");
    assert_eq!(
        a["duration_samples"].as_u64().unwrap() + b["duration_samples"].as_u64().unwrap(),
        576_000,
        "the two parts hold the whole 12 s programme"
    );
    let channels = 2;

    // The uncut programme, pressed as one track, is the reference for every rung.
    let uncut_out = run_once("uncut", &[uncut_programme().to_str().unwrap()]);
    let uncut_dir = uncut_out.join("uncut");

    for r in a["renditions"].as_array().unwrap() {
        let rid = r["id"].as_str().unwrap();
        let mut joined = decode_gapless(&out.join("qzes62600011"), rid, channels);
        joined.extend(decode_gapless(&out.join("qzes62600012"), rid, channels));
        let whole = decode_gapless(&uncut_dir, rid, channels);
        assert_eq!(joined.len(), whole.len(), "{rid}: joined length vs uncut");
        let rate = r["sample_rate"].as_u64().unwrap();
        let join_at = scale(a["duration_samples"].as_u64().unwrap(), 48000, rate) as usize;
        if r["codec"] == "flac" || r["codec"] == "alac" {
            // Resampler and dither state carry across the cut: identical PCM.
            assert!(
                joined == whole,
                "{rid}: joined tracks differ from the uncut programme"
            );
            continue;
        }
        // Lossy: no click at the join. The error around the cut must be of the same order as
        // the error elsewhere.
        // On the mid signal: a click shows in both channels, while parametric stereo rebuilds
        // the stereo image only after its first parameters arrive.
        let (x, y) = (mid(&joined, channels), mid(&whole, channels));
        let err = |from: usize, to: usize| {
            (from..to)
                .map(|i| ((x[i] - y[i]) as f64).powi(2))
                .sum::<f64>()
                / (to - from) as f64
        };
        let at_join = err(join_at - 1024, join_at + 1024);
        let overall = err(4096, x.len() - 4096);
        eprintln!("{rid}: error at the join {at_join:.3e}, overall {overall:.3e}");
        assert!(
            at_join < overall * 4.0 + 1e-7,
            "{rid}: error at the join {at_join:.3e} vs overall {overall:.3e}"
        );
    }
}

#[test]
fn a_5_1_master_keeps_its_six_channels_on_every_rung_that_carries_them() {
    let dir = scratch();
    let master = dir.join("surround-51.wav");
    let status = std::process::Command::new("sox")
        .args(["-n", "-r", "48000", "-b", "24", "-c", "6"])
        .arg(&master)
        .args(["synth", "3.3", "sine", "440", "sine", "550", "sine", "660"])
        .args(["sine", "60", "sine", "880", "sine", "990", "vol", "0.5"])
        .status()
        .expect("sox");
    assert!(status.success());
    let out = run_once("surround", &[master.to_str().unwrap()]);
    let report = report(&out);
    let t = &report["tracks"][0];
    let skipped: Vec<_> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rung"].clone())
        .collect();
    assert_eq!(
        skipped,
        vec!["heaac-32"],
        "only parametric stereo refuses 5.1"
    );
    let frames = t["duration_samples"].as_u64().unwrap();
    assert_eq!(frames, 158_400);
    // A bare master has no release.json: its catalog record says so rather than inventing.
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(t["catalog"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert!(record["metadata"].is_null() && record["release"].is_null());
    assert_eq!(record["channels"], 6);
    for r in t["renditions"].as_array().unwrap() {
        let rid = r["id"].as_str().unwrap();
        assert_eq!(r["channels"], 6, "{rid}");
        // A lossy rung's bitrate is per stereo pair: 5.1 gets 2.5x (five full-band channels),
        // and the stream holds it.
        if let Some(target) = r["target_bitrate"].as_u64() {
            let rung = match rid {
                "aac-256" => 256_000,
                "aac-160" | "opus-160" => 160_000,
                "aac-96" | "opus-96" => 96_000,
                "heaac-64" => 64_000,
                other => panic!("unexpected lossy rung {other}"),
            };
            assert_eq!(target, rung * 5 / 2, "{rid}: target");
            let ratio = r["average_bandwidth"].as_f64().unwrap() / target as f64;
            assert!(
                (0.95..=1.10).contains(&ratio),
                "{rid}: {ratio:.3} of target"
            );
        }
        let decoded = decode_gapless(&out.join("surround-51"), rid, 6);
        let rate = r["sample_rate"].as_u64().unwrap();
        assert_eq!(
            decoded.len() as u64,
            scale(frames, 48000, rate) * 6,
            "{rid}: decoded length"
        );
    }
    // Bit-exact in the master's channel order: ALAC stores 5.1 in its own order, so this also
    // checks the layout handed to the encoder.
    let theirs = decode_raw_s32(&master);
    for rid in ["flac-hires", "alac-hires"] {
        let ours = decode_raw_s32(&join_rendition(&out.join("surround-51"), rid));
        assert!(ours == theirs, "{rid} of a 48/24 5.1 master is bit-exact");
    }
}

/// fpcalc's raw fingerprint of a master (`-length 0`: the whole track, as pressing's). fpcalc
/// cannot open sox's AIFF; FFmpeg reads it and pipes the 16-bit samples (the AIFF is 16-bit).
fn fpcalc_raw(master: &std::path::Path, rate: u64, channels: u64) -> (Vec<u32>, String) {
    let mut cmd = std::process::Command::new("fpcalc");
    cmd.args(["-length", "0", "-json"]);
    let o = if master.extension().is_some_and(|e| e == "aiff") {
        let pcm = ffmpeg(&["-i", master.to_str().unwrap(), "-f", "s16le", "-"]);
        let path = scratch().join("fpcalc-input.s16");
        std::fs::write(&path, pcm).unwrap();
        let (r, c) = (rate.to_string(), channels.to_string());
        cmd.args(["-format", "s16le", "-rate", &r, "-channels", &c])
            .arg(&path)
            .output()
    } else {
        cmd.arg(master).output()
    }
    .expect("fpcalc is installed (scripts/setup.sh --test: libchromaprint-tools)");
    let json: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "fpcalc {master:?}: {e}: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    let text = json["fingerprint"].as_str().unwrap().to_string();
    let raw = pressing::ingest::fingerprint::decompress(&text).expect("fpcalc's form decompresses");
    (raw, text)
}

#[test]
fn fingerprints_agree_with_fpcalc() {
    // Measured on the fixtures (README, "Fingerprints"): 0.28-0.47% of the bits differ from
    // fpcalc's, single bits in a few items: rusty-chromaprint computes in f64 with rubato's
    // resampler, libchromaprint in f32 with its own, and a feature near a quantizer threshold
    // falls on the other side.
    let report = report(fixtures_out());
    let (mut exact, mut bits) = (0, 0);
    for t in report["tracks"].as_array().unwrap() {
        let master = root().join(t["source"].as_str().unwrap());
        let fp = &t["fingerprint"];
        let ours = pressing::ingest::fingerprint::decompress(fp["fingerprint"].as_str().unwrap())
            .expect("our fingerprint decompresses");
        let (theirs, text) = fpcalc_raw(
            &master,
            t["sample_rate"].as_u64().unwrap(),
            t["channels"].as_u64().unwrap(),
        );
        assert_eq!(
            fp["duration"].as_u64().unwrap(),
            t["duration_samples"].as_u64().unwrap() / t["sample_rate"].as_u64().unwrap()
        );
        if text == fp["fingerprint"] {
            exact += 1;
            continue;
        }
        // Same length, in time, and under 2% of the bits differ.
        assert!(
            ours.len().abs_diff(theirs.len()) <= 1,
            "{master:?}: {} items, fpcalc {}",
            ours.len(),
            theirs.len()
        );
        let n = ours.len().min(theirs.len());
        let differ: u32 = ours[..n]
            .iter()
            .zip(&theirs[..n])
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        let fraction = f64::from(differ) / (32.0 * n as f64);
        let items: Vec<usize> = (0..n).filter(|&i| ours[i] != theirs[i]).collect();
        eprintln!(
            "{master:?}: {:.2}% of {} bits differ from fpcalc's, in items {items:?} of {n}",
            fraction * 100.0,
            32 * n
        );
        assert!(
            fraction < 0.02,
            "{master:?}: {:.2}% of the bits differ",
            fraction * 100.0
        );
        bits += 1;
    }
    assert_eq!(exact + bits, 5);
    println!("fingerprints: {exact} equal to fpcalc's string, {bits} within 2% of its bits");
}

#[test]
fn a_rendition_that_is_not_its_master_is_caught() {
    use pressing::ingest::fingerprint::{decompress, Fingerprint};
    use pressing::package::verify::{judge, Verdict};
    let out = fixtures_out();
    let report = report(out);
    let master = |id: &str| {
        let text = track(&report, id)["fingerprint"]["fingerprint"]
            .as_str()
            .unwrap()
            .to_string();
        Fingerprint {
            raw: decompress(&text).unwrap(),
            fingerprint: text,
            ..Default::default()
        }
    };
    // Another track: the album's first (the gapless programme's two parts are one periodic
    // synthetic signal, too alike to stand for another song).
    let (one, two) = ("qzes62600011", "qzes62600001");
    let rate_of = |id: &str, rendition: &str| {
        rendition_in(track(&report, id), rendition)["sample_rate"]
            .as_u64()
            .unwrap() as u32
    };
    let mut checked = 0;
    for rendition in ["aac-96", "heaac-32", "opus-96", "flac-cd"] {
        let rate = rate_of(one, rendition);
        let own = decode_gapless(&out.join(one), rendition, 2);
        let other = decode_gapless(&out.join(two), rendition, 2);
        // The rendition itself passes, at offset 0.
        let itself = judge(&master(one), &own, 2, rate);
        assert!(
            matches!(itself, Verdict::Same(m) if m.offset == 0),
            "{rendition}: {itself:?}"
        );
        // Another track's audio.
        let another = judge(&master(one), &other, 2, rate_of(two, rendition));
        assert!(
            matches!(another, Verdict::Differs(m) if m.similarity < 0.7),
            "{rendition} other: {another:?}"
        );
        // Silence of the same length.
        let silence = judge(&master(one), &vec![0.0; own.len()], 2, rate);
        assert!(
            matches!(silence, Verdict::Differs(_)),
            "{rendition} silence: {silence:?}"
        );
        // The same audio half a second late (a broken join): its bits agree at 4 items, and
        // the offset refuses it.
        let late: Vec<f32> = std::iter::repeat_n(0.0, rate as usize)
            .chain(own.iter().copied())
            .take(own.len())
            .collect();
        let v = judge(&master(one), &late, 2, rate);
        assert!(
            matches!(v, Verdict::Differs(m) if m.offset == 4),
            "{rendition} late: {v:?}"
        );
        eprintln!(
            "{rendition}: itself {:?}, another track {:?}, silence {:?}, late {:?}",
            itself.similarity(),
            another.similarity(),
            silence.similarity(),
            v.similarity()
        );
        checked += 4;
    }
    println!("{checked} renditions judged: 4 real, 12 injected (another track, silence, 0.5 s late) refused");
}

/// A master of 30 s or more is judged on three windows of whole segments (start, middle,
/// end), each compared with the master's fingerprint at its own time: every rendition of a
/// 42 s master, in both forms, must agree as well as whole renditions do (a window a few
/// samples off its item edge, or read from the wrong segment, scores near chance and refuses
/// the run).
#[test]
fn a_long_master_is_judged_on_windows_of_each_rendition() {
    let dir = scratch().join("long-master");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let master = dir.join("long.wav");
    let part = root().join("fixtures/album/01-cd-stereo.wav");
    let status = std::process::Command::new("sox")
        .args([&part, &part, &part, &part])
        .arg(&master)
        .status()
        .expect("sox");
    assert!(status.success());
    let mut checked = 0;
    for (form, extra) in [("segments", None), ("single file", Some("--single-file"))] {
        let out = dir.join(format!("out-{}", form.replace(' ', "-")));
        let mut args = vec![
            "run",
            master.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = pressing(&args);
        assert!(
            o.status.success(),
            "{form}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let report = report(&out);
        for r in report["tracks"][0]["renditions"].as_array().unwrap() {
            let s = r["similarity"].as_f64().unwrap();
            assert!(s >= 0.9, "{form} {}: similarity {s}", r["id"]);
            checked += 1;
        }
    }
    println!("{checked} renditions of a 42 s master judged on windows, all at 0.9 or more");
}
