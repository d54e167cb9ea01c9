//! Publishing against a real S3-compatible store (SeaweedFS on loopback) and a real catalog
//! receiver: every object with its bytes, headers and checksum; upload order; players and
//! FFmpeg straight from the store; idempotent re-publish; immutable keys across a changed
//! master; a store outage halfway and the resumed run; signed, schema-valid notifications with
//! retries and rejections; clear errors and exit codes; takedowns.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_s3::types::{ChecksumMode, CorsConfiguration, CorsRule};
use common::servers::*;
use common::*;
use serde_json::Value;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `pressing publish DIR s3://media/PREFIX` with the store's flags and `extra`.
fn publish(dir: &Path, prefix: &str, extra: &[&str]) -> std::process::Output {
    let dest = format!("s3://{BUCKET}/{prefix}");
    let flags = weed().flags();
    let report = published_path(dir);
    let mut args = vec![
        "publish",
        dir.to_str().unwrap(),
        &dest,
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend(flags.iter().map(String::as_str));
    args.extend_from_slice(extra);
    pressing_with_store(&args)
}

/// Every key the package of `report` must put under its prefix (local layout = store layout).
/// The release indexes a publish of `out` writes (`layout::release_index`): one per release
/// with a UPC, named by it.
fn release_keys(out: &std::path::Path, report: &Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for t in report["tracks"].as_array().unwrap() {
        let record: Value = serde_json::from_slice(
            &std::fs::read(out.join(t["catalog"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        if let Some(upc) = record["release"]["upc"].as_str() {
            keys.insert(pressing::layout::release_index(upc));
        }
    }
    keys
}

fn package_keys(report: &Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for t in report["tracks"].as_array().unwrap() {
        for r in t["renditions"].as_array().unwrap() {
            let init = r["init"].as_str().unwrap();
            let dir = init.rsplit_once('/').unwrap().0;
            keys.insert(init.to_string());
            keys.insert(r["playlist"].as_str().unwrap().to_string());
            // The single-file form: `init` is the whole rendition.
            for n in (1..=r["segments"].as_u64().unwrap()).filter(|_| r["single_file"] != true) {
                keys.insert(format!("{dir}/seg-{n:05}.m4s"));
            }
        }
        for p in t["playlists"]
            .as_array()
            .unwrap()
            .iter()
            .chain(t["tier_playlists"].as_array().unwrap())
            .chain(t["mpds"].as_array().unwrap())
        {
            keys.insert(p["path"].as_str().unwrap().to_string());
        }
        keys.insert(t["catalog"].as_str().unwrap().to_string());
    }
    keys
}

fn crc32c_b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32;
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// A two-rung ladder (AAC-LC and FLAC), written once per call site under target/.
fn small_ladder(name: &str) -> PathBuf {
    let ladder = scratch().join(format!("{name}.toml"));
    std::fs::write(
        &ladder,
        "[[rung]]\nid = \"aac-96\"\ncodec = \"aac-lc\"\nbitrate = 96\nsample_rate = 44100\ntier = \"free\"\n\n\
         [[rung]]\nid = \"flac-cd\"\ncodec = \"flac\"\nbits = 16\nsample_rate = 44100\ntier = \"hifi\"\n",
    )
    .unwrap();
    ladder
}

/// A small package of its own: the gapless pair with the two-rung ladder.
fn small_package(name: &str) -> PathBuf {
    let ladder = small_ladder(name);
    run_once(
        name,
        &["fixtures/gapless", "--ladder", ladder.to_str().unwrap()],
    )
}

#[test]
fn the_fixtures_publish_whole_play_from_the_store_and_republish_as_a_no_op() {
    publish_whole_and_play("fixtures", &[]);
}

/// The single-file form: one object per rendition (and its playlist), played from the store
/// through range requests.
#[test]
fn the_single_file_form_publishes_whole_plays_by_ranges_from_the_store_and_republishes_as_a_no_op()
{
    publish_whole_and_play("fixtures-single-file", &["--single-file"]);
}

/// Press the fixtures (with `form` flags), publish them under `prefix`, check every object,
/// the report, the notifications, play from the store's endpoint, publish again as a no-op.
fn publish_whole_and_play(prefix: &str, form: &[&str]) {
    let store = weed();
    let mut args = vec!["fixtures/album", "fixtures/gapless"];
    args.extend_from_slice(form);
    let out = run_once(&format!("publish-{prefix}"), &args);
    let public = format!("{}/{BUCKET}/{prefix}", store.endpoint);
    let receiver = Receiver::start(&[]);
    let o = publish(
        &out,
        prefix,
        &["--public-url", &public, "--catalog-url", &receiver.url],
    );
    assert!(o.status.success(), "publish failed: {}", stderr(&o));
    let report = published(&out);
    let tracks = report["tracks"].as_array().unwrap();

    // The listing holds exactly the package and one delivery record per track.
    let mut expected = package_keys(&report);
    for t in tracks {
        expected.insert(format!("{}/notification.json", t["id"].as_str().unwrap()));
    }
    // And each release's index, listing its tracks.
    let releases = release_keys(&out, &report);
    assert_eq!(releases.len(), 2, "{releases:?}");
    for key in &releases {
        let index: Value = serde_json::from_slice(&store.get(prefix, key)).unwrap();
        assert!(
            !index["tracks"].as_array().unwrap().is_empty(),
            "{key}: {index}"
        );
    }
    expected.extend(releases);
    let listed: BTreeSet<String> = store.keys(prefix).into_iter().collect();
    assert_eq!(listed, expected);

    // Every object: bytes, Content-Type, Cache-Control and the CRC32C the store kept.
    let (rt, client) = store.client();
    for key in package_keys(&report) {
        let local = std::fs::read(out.join(&key)).unwrap();
        let got = rt
            .block_on(
                client
                    .get_object()
                    .bucket(BUCKET)
                    .key(format!("{prefix}/{key}"))
                    .checksum_mode(ChecksumMode::Enabled)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let (ct, cc) = (
            got.content_type().unwrap_or_default().to_string(),
            got.cache_control().unwrap_or_default().to_string(),
        );
        let crc = got.checksum_crc32_c().map(str::to_string);
        let bytes = rt.block_on(got.body.collect()).unwrap().into_bytes();
        assert!(bytes == local, "{key}: bytes differ");
        let want_ct = match key.rsplit_once('.').unwrap().1 {
            "m3u8" => "application/vnd.apple.mpegurl",
            "mpd" => "application/dash+xml",
            "json" => "application/json",
            _ => "audio/mp4",
        };
        assert_eq!(ct, want_ct, "{key}: Content-Type");
        // Objects under a version folder (three path parts or more) are immutable.
        let immutable = key.matches('/').count() >= 3;
        let want_cc = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=60"
        };
        assert_eq!(cc, want_cc, "{key}: Cache-Control");
        assert_eq!(crc, Some(crc32c_b64(&local)), "{key}: stored CRC32C");
    }

    // The single-file form through the store: each media playlist's byte ranges (the header
    // and every fragment) are the local file's bytes.
    let mut ranges = 0;
    for t in tracks.iter().filter(|_| !form.is_empty()) {
        for r in t["renditions"].as_array().unwrap() {
            let playlist = r["playlist"].as_str().unwrap();
            let text = std::fs::read(out.join(playlist)).unwrap();
            let Ok(m3u8_rs::Playlist::MediaPlaylist(m)) = m3u8_rs::parse_playlist_res(&text) else {
                panic!("{playlist}: not a media playlist")
            };
            let file = r["init"].as_str().unwrap();
            let local = std::fs::read(out.join(file)).unwrap();
            let map = m.segments[0]
                .map
                .as_ref()
                .and_then(|m| m.byte_range.clone());
            for b in map
                .into_iter()
                .chain(m.segments.iter().filter_map(|s| s.byte_range.clone()))
            {
                let (first, len) = (b.offset.unwrap() as usize, b.length as usize);
                let got = rt
                    .block_on(
                        client
                            .get_object()
                            .bucket(BUCKET)
                            .key(format!("{prefix}/{file}"))
                            .range(format!("bytes={first}-{}", first + len - 1))
                            .send(),
                    )
                    .unwrap_or_else(|e| panic!("{file} {first}+{len}: {e}"));
                let bytes = rt.block_on(got.body.collect()).unwrap().into_bytes();
                assert!(
                    bytes == local[first..first + len],
                    "{file}: range {first}+{len}"
                );
                ranges += 1;
            }
        }
    }
    assert!(
        form.is_empty() || ranges >= 100,
        "{ranges} ranges read from the store"
    );

    // The report's publish entry, and the catalog record's URLs.
    let mut objects = 0;
    for t in tracks {
        let p = &t["publish"];
        assert_eq!(p["destination"], format!("s3://{BUCKET}/{prefix}"));
        assert_eq!(p["skipped"], 0);
        objects += p["uploaded"].as_u64().unwrap();
        assert_eq!(p["notification"]["status"], "delivered");
        assert_eq!(p["notification"]["attempts"], 1);
        let hls = t["hls"].as_str().unwrap();
        assert_eq!(p["urls"][hls], format!("{public}/{hls}"));
        let record: Value = serde_json::from_slice(
            &std::fs::read(out.join(t["catalog"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(record["urls"][hls], format!("{public}/{hls}"));
    }
    assert_eq!(objects as usize, package_keys(&report).len());

    // One signed, schema-valid document per track, naming the manifests' public URLs.
    let got = receiver.received();
    assert_eq!(got.len(), tracks.len());
    let schema = notification_schema();
    for (r, t) in got.iter().zip(tracks) {
        assert!(r.signature_ok, "{}: bad signature", r.id);
        if let Err(e) = schema.validate(&r.body) {
            panic!("{}: not schema-valid: {e}", r.id);
        }
        assert_eq!(r.body["type"], "track.published");
        assert_eq!(r.body["track"]["id"], t["id"]);
        assert_eq!(
            r.id,
            t["publish"]["notification"]["webhook_id"].as_str().unwrap()
        );
        let urls: Vec<&str> = r.body["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["url"].as_str().unwrap())
            .collect();
        assert!(urls.contains(&format!("{public}/{}", t["dash"].as_str().unwrap()).as_str()));
    }

    // Players straight from the store's HTTP endpoint (cross-origin, as behind a CDN).
    let cors = CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .allowed_methods("GET")
                .allowed_methods("HEAD")
                .allowed_origins("*")
                .allowed_headers("*")
                .max_age_seconds(3600)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    rt.block_on(
        client
            .put_bucket_cors()
            .bucket(BUCKET)
            .cors_configuration(cors)
            .send(),
    )
    .expect("set the bucket's CORS rule");
    let player = root().join("tests/player");
    let o = Command::new("node")
        .arg(player.join("play.mjs"))
        .arg(&out)
        .arg(out.join("index.json"))
        .env("MEDIA_BASE", &public)
        .env("PLAY_SET", "entry")
        .output()
        .expect("node is installed (scripts/setup.sh)");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "playback from the store failed:\n{stdout}\n{}",
        stderr(&o)
    );
    let (played, summary) = playbacks_passed(&stdout);
    assert!(
        played >= 40,
        "only {played} playbacks from the store: {summary}"
    );

    // FFmpeg reads the same URLs: every track's main HLS and DASH entry, decoded whole.
    for t in tracks {
        for key in [t["hls"].as_str().unwrap(), t["dash"].as_str().unwrap()] {
            let pcm = ffmpeg(&["-i", &format!("{public}/{key}"), "-f", "s32le", "-"]);
            assert!(
                !pcm.is_empty(),
                "{key}: FFmpeg decoded nothing from the store"
            );
        }
    }

    // The same package again: nothing uploaded, nothing notified, one listing per track, and
    // no catalog record written again (it holds this destination's URLs already).
    let records: Vec<(std::path::PathBuf, std::time::SystemTime)> = tracks
        .iter()
        .map(|t| {
            let path = out.join(t["catalog"].as_str().unwrap());
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            (path, modified)
        })
        .collect();
    let o = publish(
        &out,
        prefix,
        &["--public-url", &public, "--catalog-url", &receiver.url],
    );
    assert!(o.status.success(), "second publish failed: {}", stderr(&o));
    let again = published(&out);
    for (path, modified) in &records {
        let now = std::fs::metadata(path).unwrap().modified().unwrap();
        assert_eq!(now, *modified, "{path:?} written again by a no-op publish");
    }
    for t in again["tracks"].as_array().unwrap() {
        let p = &t["publish"];
        assert_eq!(p["uploaded"], 0, "{}: uploaded again", t["id"]);
        assert_eq!(p["bytes"], 0);
        assert_eq!(p["notification"]["attempts"], 0);
        assert_eq!(p["notification"]["status"], "delivered");
        // One listing and one read of the delivery record.
        assert_eq!(p["requests"], 2, "{}: requests", t["id"]);
    }
    assert_eq!(
        receiver.received().len(),
        tracks.len(),
        "a second notification was sent"
    );
}

/// A bare master of `seconds` of a tone at `freq`, 44.1 kHz stereo.
fn tone(dir: &Path, name: &str, freq: u32, seconds: u32) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    let o = Command::new("sox")
        .args(["-n", "-r", "44100", "-b", "16", "-c", "2"])
        .arg(&path)
        .args([
            "synth",
            &seconds.to_string(),
            "sine",
            &freq.to_string(),
            "vol",
            "0.5",
        ])
        .output()
        .expect("sox is installed (scripts/setup.sh)");
    assert!(o.status.success(), "sox: {}", stderr(&o));
    path
}

#[test]
fn a_changed_master_gets_new_immutable_keys_and_the_old_ones_are_never_overwritten() {
    let store = weed();
    let prefix = "changed";
    let work = scratch().join("publish-changed");
    let _ = std::fs::remove_dir_all(&work);
    let ladder = small_ladder("publish-changed");
    let first_master = tone(&work.join("a"), "song.wav", 440, 8);
    let first = run_once(
        "publish-changed-1",
        &[
            first_master.to_str().unwrap(),
            "--ladder",
            ladder.to_str().unwrap(),
        ],
    );
    assert!(publish(&first, prefix, &[]).status.success());
    let r1 = report(&first);
    let old_keys = package_keys(&r1);
    let old: Vec<(String, Vec<u8>)> = old_keys
        .iter()
        .filter(|k| k.matches('/').count() >= 3)
        .map(|k| (k.clone(), std::fs::read(first.join(k)).unwrap()))
        .collect();

    let second_master = tone(&work.join("b"), "song.wav", 660, 8);
    let second = run_once(
        "publish-changed-2",
        &[
            second_master.to_str().unwrap(),
            "--ladder",
            ladder.to_str().unwrap(),
        ],
    );
    let o = publish(&second, prefix, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r2 = report(&second);
    for (a, b) in r1["tracks"][0]["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(r2["tracks"][0]["renditions"].as_array().unwrap())
    {
        assert_ne!(
            a["version"], b["version"],
            "{}: same version for new bytes",
            a["id"]
        );
    }
    // Entry manifests name only objects of the new versions, and those exist.
    let listed: BTreeSet<String> = store.keys(prefix).into_iter().collect();
    let get = |key: &str| store.get(prefix, key);
    let t = &r2["tracks"][0];
    let versions: Vec<&str> = t["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    for p in t["playlists"].as_array().unwrap() {
        let key = p["path"].as_str().unwrap();
        let text = String::from_utf8(get(key)).unwrap();
        for uri in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let full = format!("{}/{uri}", t["id"].as_str().unwrap());
            assert!(listed.contains(&full), "{key} names missing {full}");
            assert!(
                versions.iter().any(|v| uri.contains(v)),
                "{key} names an old version: {uri}"
            );
        }
    }
    for m in t["mpds"].as_array().unwrap() {
        let text = String::from_utf8(get(m["path"].as_str().unwrap())).unwrap();
        for r in r1["tracks"][0]["renditions"].as_array().unwrap() {
            assert!(
                !text.contains(r["version"].as_str().unwrap()),
                "MPD names an old version"
            );
        }
    }
    // The old immutable objects are still there, byte for byte (without --prune).
    for (key, bytes) in &old {
        assert!(get(key) == *bytes, "{key} was overwritten");
    }

    // --prune removes them, and only them.
    let o = publish(&second, prefix, &["--prune"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after: BTreeSet<String> = store.keys(prefix).into_iter().collect();
    let mut want = package_keys(&r2);
    want.extend(
        after
            .iter()
            .filter(|k| k.ends_with("notification.json") || k.starts_with("releases/"))
            .cloned(),
    );
    assert_eq!(after, want);
}

#[test]
fn a_store_outage_halfway_fails_clearly_and_the_rerun_uploads_only_what_is_missing() {
    // A store of its own: this test stops it. Segments of 30 s of 96 kHz/24-bit noise as FLAC
    // are about 15 MB, so with a 5 MiB threshold every segment goes multipart.
    let store = Weed::start("outage");
    let work = scratch().join("publish-outage-src");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let master = work.join("noise.wav");
    let o = Command::new("sox")
        .args(["-n", "-r", "96000", "-b", "24", "-c", "2"])
        .arg(&master)
        .args(["synth", "90", "whitenoise", "vol", "0.2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "sox: {}", stderr(&o));
    let ladder = work.join("big.toml");
    std::fs::write(
        &ladder,
        "segment_duration = 30.0\n[[rung]]\nid = \"flac-hires\"\ncodec = \"flac\"\nbits = 24\nsample_rate = \"master\"\ntier = \"hifi\"\n",
    )
    .unwrap();
    let out = run_once(
        "publish-outage",
        &[
            master.to_str().unwrap(),
            "--ladder",
            ladder.to_str().unwrap(),
        ],
    );
    let total = package_keys(&report(&out)).len();
    let flags = store.flags();
    let args = |prefix: &str| -> Vec<String> {
        let mut a = vec![
            "publish".to_string(),
            out.display().to_string(),
            format!("s3://{BUCKET}/{prefix}"),
            "--upload-concurrency".into(),
            "1".into(),
            "--multipart-threshold".into(),
            "5MiB".into(),
            "--report".into(),
            published_path(&out).display().to_string(),
        ];
        a.extend(flags.iter().cloned());
        a
    };
    let bin = env!("CARGO_BIN_EXE_pressing");
    let spawn = |prefix: &str| {
        Command::new(bin)
            .args(args(prefix))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Stop the store while a multipart upload is in flight (a few tries: uploads on loopback
    // are quick, and the window is one part).
    let mut caught = None;
    for attempt in 0..4 {
        let prefix = format!("outage-{attempt}");
        let child = spawn(&prefix);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut in_flight = false;
        while std::time::Instant::now() < deadline {
            if store.incomplete_uploads() > 0 && !store.keys(&prefix).is_empty() {
                in_flight = true;
                store.kill();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let o = child.wait_with_output().unwrap();
        if in_flight {
            caught = Some((prefix, o));
            break;
        }
        // The upload finished before the store could be stopped: try a fresh prefix.
    }
    let (prefix, o) = caught.expect("never caught a multipart upload in flight");
    assert_eq!(o.status.code(), Some(69), "exit status: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("s3://{BUCKET}/{prefix}")), "{err}");
    assert!(err.contains("key \""), "the error names no key: {err}");
    assert!(!err.contains(SECRET_KEY), "a secret in the output");

    store.restart();
    let before = store.keys(&prefix).len();
    assert!(
        before >= 1 && before < total,
        "{before} of {total} objects before the re-run"
    );
    let o = Command::new(bin)
        .args(args(&prefix))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(o.status.success(), "re-run failed: {}", stderr(&o));
    let p = &published(&out)["tracks"][0]["publish"];
    assert_eq!(
        p["skipped"].as_u64().unwrap() as usize,
        before,
        "re-run skipped"
    );
    assert_eq!(
        p["uploaded"].as_u64().unwrap() as usize,
        total - before,
        "re-run uploaded"
    );
    assert_eq!(store.keys(&prefix).len(), total);
    assert_eq!(
        store.incomplete_uploads(),
        0,
        "incomplete multipart uploads remain"
    );
    // The multipart objects are whole: their bytes are the local files'.
    for key in package_keys(&report(&out)) {
        let bytes = store.get(&prefix, &key);
        assert!(bytes == std::fs::read(out.join(&key)).unwrap(), "{key}");
    }
    store.kill();
}

#[test]
fn the_receiver_gets_retries_on_503_and_a_400_is_reported_as_rejected() {
    let out = small_package("publish-receiver");
    let flaky = Receiver::start(&[503, 503]);
    let o = publish(&out, "receiver-ok", &["--catalog-url", &flaky.url]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = published(&out);
    let tracks = r["tracks"].as_array().unwrap();
    // The first track took three requests (503, 503, 200), the second one.
    assert_eq!(tracks[0]["publish"]["notification"]["attempts"], 3);
    assert_eq!(tracks[0]["publish"]["notification"]["status"], "delivered");
    assert_eq!(tracks[1]["publish"]["notification"]["attempts"], 1);
    let got = flaky.received();
    assert_eq!(got.len(), 4);
    // A retry is the same notification: one id, one body.
    assert!(got[..3]
        .iter()
        .all(|g| g.id == got[0].id && g.body == got[0].body && g.signature_ok));
    let schema = notification_schema();
    for g in &got {
        assert!(
            schema.validate(&g.body).is_ok(),
            "{:?}",
            schema.validate(&g.body)
        );
    }

    let refusing = Receiver::start(&[400, 400, 400]);
    let o = publish(&out, "receiver-rejected", &["--catalog-url", &refusing.url]);
    assert_eq!(o.status.code(), Some(76), "{}", stderr(&o));
    assert!(stderr(&o).contains("rejected"));
    let r = published(&out);
    assert_eq!(
        r["tracks"][0]["publish"]["notification"]["status"],
        "rejected"
    );
    assert_eq!(r["tracks"][0]["publish"]["notification"]["attempts"], 1);
    // The publication stays.
    assert!(weed().keys("receiver-rejected").len() >= package_keys(&r).len());
}

#[test]
fn bad_store_settings_give_clear_errors_and_their_exit_codes_without_secrets() {
    let out = small_package("publish-bad-store");
    let dest = format!("s3://{BUCKET}/bad");
    let dir = out.to_str().unwrap();
    let run = |dest: &str, endpoint: &str, env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pressing"));
        c.args([
            "publish",
            dir,
            dest,
            "--endpoint-url",
            endpoint,
            "--path-style",
        ])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let good = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ];
    let wrong_secret = "wrong-secret-value-that-must-not-leak";
    let o = run(
        &dest,
        &weed().endpoint,
        &[
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", wrong_secret),
        ],
    );
    let all = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
    assert_eq!(o.status.code(), Some(77), "wrong credentials: {all}");
    assert!(
        all.contains("s3://media/bad") && all.contains("credentials"),
        "{all}"
    );
    assert!(
        !all.contains(wrong_secret) && !all.contains(SECRET_KEY),
        "a secret leaked: {all}"
    );

    let o = run("s3://no-such-bucket/x", &weed().endpoint, &good);
    assert_eq!(o.status.code(), Some(69), "missing bucket: {}", stderr(&o));
    assert!(
        stderr(&o).contains("s3://no-such-bucket/x") && stderr(&o).contains("NoSuchBucket"),
        "{}",
        stderr(&o)
    );

    // Port 9 on loopback: nothing listens there.
    let o = run(&dest, "http://127.0.0.1:9", &good);
    assert_eq!(
        o.status.code(),
        Some(69),
        "unreachable endpoint: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("cannot reach the store"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains(SECRET_KEY));
}

#[test]
fn unpublish_leaves_no_object_of_the_track_and_notifies_once() {
    let out = small_package("publish-unpublish");
    let receiver = Receiver::start(&[]);
    assert!(publish(&out, "takedown", &["--catalog-url", &receiver.url])
        .status
        .success());
    let r = report(&out);
    let gone = r["tracks"][0]["id"].as_str().unwrap();
    let kept = r["tracks"][1]["id"].as_str().unwrap();
    let mut args = vec![
        "unpublish".to_string(),
        format!("s3://{BUCKET}/takedown"),
        gone.to_string(),
    ];
    args.extend(weed().flags());
    args.extend(["--catalog-url".to_string(), receiver.url.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = pressing_with_store(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let keys = weed().keys("takedown");
    assert!(
        keys.iter().all(|k| !k.starts_with(&format!("{gone}/"))),
        "left: {keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.starts_with(&format!("{kept}/"))),
        "took down the other track"
    );
    let got = receiver.received();
    let takedowns: Vec<_> = got
        .iter()
        .filter(|g| g.body["type"] == "track.unpublished")
        .collect();
    assert_eq!(takedowns.len(), 1);
    assert!(takedowns[0].signature_ok);
    assert_eq!(takedowns[0].body["track"]["id"], gone);
    let schema = notification_schema();
    let valid = schema.validate(&takedowns[0].body);
    assert!(valid.is_ok(), "{valid:?}");
    // Again: nothing left, nothing sent.
    let o = pressing_with_store(&args);
    assert!(
        o.status.success() && stderr(&o).contains("nothing under"),
        "{}",
        stderr(&o)
    );
    assert_eq!(receiver.received().len(), got.len());
}
