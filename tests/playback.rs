//! Real players: every rendition, multivariant playlist and MPD representation of the pressed
//! fixtures plays to its end in headless Chromium through hls.js and Shaka Player
//! (tests/player/play.mjs, installed by scripts/setup.sh), and through FFmpeg's own HLS and
//! DASH demuxers to exactly the samples of the rendition's segments.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn every_variant_plays_to_the_end_in_hls_js_and_shaka() {
    let player = root().join("tests/player");
    assert!(
        player.join("node_modules/hls.js").is_dir()
            && player.join("node_modules/shaka-player").is_dir(),
        "the player test needs tests/player/node_modules: run scripts/setup.sh"
    );
    let out = fixtures_out();
    let o = Command::new("node")
        .arg(player.join("play.mjs"))
        .arg(out)
        .arg(out.join("report.json"))
        .output()
        .expect("node is installed (scripts/setup.sh)");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let failures: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("\"ok\":false"))
        .collect();
    assert!(
        o.status.success() && failures.is_empty(),
        "playback failed:\n{}\n{}",
        failures.join("\n"),
        String::from_utf8_lossy(&o.stderr)
    );
    // Only ALAC may be skipped (Chromium has no ALAC decoder; tests/audio.rs decodes it with
    // FFmpeg, bit-exact): a skip of anything else would hide a rendition nobody played.
    let skips: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("\"skipped\""))
        .collect();
    assert!(
        skips.iter().all(|l| l.contains("cannot decode alac")),
        "unexpected skips:\n{}",
        skips.join("\n")
    );
    let (passed, summary) = playbacks_passed(&stdout);
    // 5 tracks: 50 media playlists, 40 multivariant playlists, 108 MPD representations; 177
    // play, the 21 ALAC ones are skipped.
    assert!(passed >= 150, "only {passed} playbacks ran: {summary}");
}

/// Raw (untrimmed) s32 samples of `input` through FFmpeg, optionally one mapped stream.
fn decode_via(input: &Path, map: Option<usize>) -> Vec<u8> {
    let mut args = vec!["-flags2", "+skip_manual", "-i", input.to_str().unwrap()];
    let map = map.map(|i| format!("0:a:{i}"));
    if let Some(m) = &map {
        args.extend(["-map", m]);
    }
    args.extend(["-f", "s32le", "-"]);
    ffmpeg(&args)
}

#[test]
fn ffmpeg_plays_every_playlist_and_mpd_to_the_samples_of_the_segments() {
    let out = fixtures_out();
    let report = report(out);
    let mut played = 0;
    for t in report["tracks"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        let dir = out.join(id);
        // Each rendition's segments, joined and decoded: what every path must deliver.
        let mut reference: HashMap<String, Vec<u8>> = HashMap::new();
        for r in t["renditions"].as_array().unwrap() {
            let rid = r["id"].as_str().unwrap();
            let joined = decode_via(&join_rendition(&dir, rid), None);
            assert!(!joined.is_empty(), "{id}/{rid}: nothing decoded");
            let via_hls = decode_via(&out.join(r["playlist"].as_str().unwrap()), None);
            assert!(via_hls == joined, "{id}/{rid}: media playlist differs");
            reference.insert(rid.to_string(), joined);
            played += 1;
        }
        for p in t["playlists"].as_array().unwrap() {
            let path = out.join(p["path"].as_str().unwrap());
            let text = std::fs::read(&path).unwrap();
            let Ok(m3u8_rs::Playlist::MasterPlaylist(mv)) = m3u8_rs::parse_playlist_res(&text)
            else {
                panic!("{path:?}: not a multivariant playlist")
            };
            // FFmpeg opens every variant as a stream, in playlist order.
            for (i, v) in mv.variants.iter().enumerate() {
                let rid = v.uri.split('/').next().unwrap();
                assert!(
                    decode_via(&path, Some(i)) == reference[rid],
                    "{path:?} variant {rid}"
                );
                played += 1;
            }
        }
        for m in t["mpds"].as_array().unwrap() {
            let path = out.join(m["path"].as_str().unwrap());
            let mpd = dash_mpd_core::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
            // FFmpeg's DASH demuxer makes one stream per representation, in document order.
            let reps = mpd.periods[0]
                .adaptations
                .iter()
                .flat_map(|a| &a.representations);
            for (i, rep) in reps.enumerate() {
                let rid = rep.id.as_deref().unwrap();
                assert!(
                    decode_via(&path, Some(i)) == reference[rid],
                    "{path:?} representation {rid}"
                );
                played += 1;
            }
        }
    }
    // 5 tracks: 50 media playlists, 108 variants, 108 representations (ALAC included).
    assert_eq!(played, 266);
}
