//! Real players: every rendition, multivariant playlist and MPD representation of the pressed
//! fixtures plays to its end in headless Chromium through hls.js and Shaka Player
//! (tests/player/play.mjs, installed by scripts/setup.sh).

mod common;

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
    let summary = stdout.lines().last().unwrap_or_default();
    let passed: usize = summary
        .strip_prefix("playback: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // 5 tracks: 42 media playlists, 31 multivariant playlists, ~100 MPD representations.
    assert!(passed >= 150, "only {passed} playbacks ran: {summary}");
}
