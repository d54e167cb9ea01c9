//! Content protection (issue 18): the fixtures pressed with keys, in both schemes and both
//! packaging forms, checked with FFmpeg (an independent decrypter and decoder), by walking the
//! boxes by the standard's offsets, and against the clear run of the same fixtures.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::*;

const PREMIUM: (&str, &str) = (
    "00112233445566778899aabbccddeeff",
    "0f0e0d0c0b0a09080706050403020100",
);
const HIFI: (&str, &str) = (
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
    "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
);

fn key_args() -> [String; 4] {
    [
        "--key".into(),
        format!("premium={}:{}", PREMIUM.0, PREMIUM.1),
        "--key".into(),
        format!("hifi={}:{}", HIFI.0, HIFI.1),
    ]
}

/// The fixtures pressed with the two raw keys in `scheme`, in the segment form or the
/// single-file form.
fn protected(scheme: &str, single_file: bool) -> PathBuf {
    let name = format!(
        "protected-{scheme}{}",
        if single_file { "-single" } else { "" }
    );
    let keys = key_args();
    let mut args: Vec<&str> = vec!["fixtures/album", "fixtures/gapless", "--scheme", scheme];
    args.extend(keys.iter().map(String::as_str));
    if single_file {
        args.push("--single-file");
    }
    run_once(&name, &args)
}

fn cbcs() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| protected("cbcs", false))
}

fn cenc() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| protected("cenc", false))
}

fn cbcs_single() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| protected("cbcs", true))
}

fn key_of(tier: &str) -> Option<(&'static str, &'static str)> {
    match tier {
        "premium" => Some(PREMIUM),
        "hifi" => Some(HIFI),
        _ => None,
    }
}

fn uuid(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A rendition as one file: the segment form's init and segments joined, or the track file.
fn whole(track_dir: &Path, rendition: &str) -> PathBuf {
    let dir = rendition_dir(track_dir, rendition);
    if dir.join("media.mp4").exists() {
        dir.join("media.mp4")
    } else {
        join_rendition(track_dir, rendition)
    }
}

/// FFmpeg's decode of every sample (s32), reading from a pipe: FFmpeg 5.1 reads per-sample
/// encryption info wrongly from a seekable fragmented file of more than one fragment (the
/// packets of the first fragment fail with "Incorrect number of samples in encryption info";
/// the same bytes through a pipe decrypt exactly), so every decode here is piped.
fn decode_piped(file: &Path, key: Option<&str>) -> Option<Vec<i32>> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-flags2", "+skip_manual"]);
    if let Some(k) = key {
        cmd.args(["-decryption_key", k]);
    }
    let o = cmd
        .args(["-i", "pipe:0", "-f", "s32le", "-"])
        .stdin(Stdio::from(std::fs::File::open(file).unwrap()))
        .stderr(Stdio::null())
        .output()
        .expect("ffmpeg");
    o.status.success().then(|| {
        o.stdout
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    })
}

#[test]
fn protected_renditions_decrypt_to_exactly_their_clear_twins_and_not_without_the_key() {
    let clear = fixtures_out();
    let mut checked = 0;
    let mut locked = 0;
    let mut clear_same = 0;
    for (form, out) in [
        ("cbcs", cbcs()),
        ("cenc", cenc()),
        ("cbcs single-file", cbcs_single()),
    ] {
        let index = report(out);
        let clear_index = report(clear);
        for (track, _, r) in renditions(&index) {
            let id = r["id"].as_str().unwrap();
            let tier = r["tier"].as_str().unwrap();
            let twin = renditions(&clear_index)
                .into_iter()
                .find(|(t, _, c)| *t == track && c["id"] == r["id"])
                .map(|(_, _, c)| c)
                .expect("the clear run has the rendition");
            match key_of(tier) {
                None => {
                    // A clear tier is what it was: the same bytes, so the same version folder.
                    assert!(
                        r["scheme"].is_null() && r["key_id"].is_null(),
                        "{form} {track}/{id}"
                    );
                    if !form.contains("single") {
                        assert_eq!(r["version"], twin["version"], "{form} {track}/{id}");
                        clear_same += 1;
                    }
                }
                Some((kid, key)) => {
                    let scheme = if form.starts_with("cenc") {
                        "cenc"
                    } else {
                        "cbcs"
                    };
                    assert_eq!(r["scheme"], scheme, "{form} {track}/{id}");
                    assert_eq!(r["key_id"], uuid(kid), "{form} {track}/{id}");
                    let file = whole(&out.join(&track), id);
                    let expected = decode_piped(&join_rendition(&clear.join(&track), id), None)
                        .expect("the clear twin decodes");
                    let got = decode_piped(&file, Some(key));
                    assert!(
                        got.as_ref() == Some(&expected),
                        "{form} {track}/{id}: decrypted {} samples, the clear twin {}",
                        got.as_ref().map_or(0, Vec::len),
                        expected.len()
                    );
                    checked += 1;
                    // Without the key: not the clear audio (or no audio at all).
                    let without = decode_piped(&file, None);
                    assert!(
                        without.as_ref() != Some(&expected),
                        "{form} {track}/{id} plays clear"
                    );
                    locked += 1;
                }
            }
        }
    }
    // 3 runs x 5 tracks: 26 protected renditions per run (aac-256, opus-160 and the lossless
    // rungs each master has), every one checked; 16 clear ones per segment-form run.
    assert_eq!(checked, 78, "protected renditions decrypted");
    assert_eq!(locked, checked);
    assert_eq!(clear_same, 48, "clear renditions compared");
    println!(
        "{checked} protected renditions decrypt to their clear twins' samples (lossless ones bit-exact with the master through the twin), {locked} do not decode clear without the key, {clear_same} clear renditions are byte-identical to the clear run"
    );
}

/// A box in a file: its type, where it starts and its size.
#[derive(Clone, Debug)]
struct BoxAt {
    kind: String,
    at: usize,
    size: usize,
}

/// Every box of `b` from `at` to `end`, descending into the containers that hold the
/// protection boxes (ISO/IEC 14496-12 and 23001-7 layouts).
fn walk(b: &[u8], mut at: usize, end: usize, out: &mut Vec<BoxAt>) {
    while at + 8 <= end {
        let size = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&b[at + 4..at + 8]).to_string();
        assert!(
            size >= 8 && at + size <= end,
            "box {kind} at {at}: size {size}"
        );
        out.push(BoxAt {
            kind: kind.clone(),
            at,
            size,
        });
        let body = match kind.as_str() {
            "moov" | "trak" | "mdia" | "minf" | "stbl" | "sinf" | "schi" | "moof" | "traf"
            | "mvex" => Some(at + 8),
            "stsd" => Some(at + 16),
            "enca" => Some(at + 36),
            _ => None,
        };
        if let Some(body) = body {
            walk(b, body, at + size, out);
        }
        at += size;
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn protected_boxes_hold_what_common_encryption_asks_and_ivs_never_repeat_under_a_key() {
    let mut inits = 0;
    let mut fragments = 0;
    let mut samples = 0;
    for (scheme, out) in [("cbcs", cbcs()), ("cenc", cenc()), ("cbcs", cbcs_single())] {
        let index = report(out);
        // Every IV (cenc: per sample; cbcs: the constant IV) by key id: never twice.
        let mut ivs: HashMap<String, HashSet<Vec<u8>>> = HashMap::new();
        for (track, _, r) in renditions(&index) {
            let Some((kid, _)) = key_of(r["tier"].as_str().unwrap()) else {
                continue;
            };
            let id = r["id"].as_str().unwrap();
            let bytes = std::fs::read(whole(&out.join(&track), id)).unwrap();
            let mut boxes = Vec::new();
            walk(&bytes, 0, bytes.len(), &mut boxes);
            let find = |k: &str| {
                boxes
                    .iter()
                    .find(|x| x.kind == k)
                    .unwrap_or_else(|| panic!("{track}/{id}: no {k}"))
            };
            // enca, frma with the original format, schm, tenc.
            let enca = find("enca");
            let frma = find("frma");
            let original = &bytes[frma.at + 8..frma.at + 12];
            let expected_format: &[u8] = match r["codec"].as_str().unwrap() {
                "opus" => b"Opus",
                "flac" => b"fLaC",
                "alac" => b"alac",
                _ => b"mp4a",
            };
            assert_eq!(original, expected_format, "{track}/{id} frma");
            assert!(frma.at > enca.at && frma.at < enca.at + enca.size);
            let schm = find("schm");
            assert_eq!(
                &bytes[schm.at + 12..schm.at + 16],
                scheme.as_bytes(),
                "{track}/{id} schm"
            );
            assert_eq!(u32_at(&bytes, schm.at + 16), 0x0001_0000);
            let tenc = find("tenc");
            let t = &bytes[tenc.at + 8..tenc.at + tenc.size];
            let iv_size = t[7];
            assert_eq!(t[6], 1, "{track}/{id} default_isProtected");
            assert_eq!(hex(&t[8..24]), kid, "{track}/{id} default_KID");
            if scheme == "cbcs" {
                assert_eq!(t[0], 1, "cbcs tenc is version 1 (it carries the pattern)");
                assert_eq!(t[5], 0, "audio: crypt_byte_block = skip_byte_block = 0");
                assert_eq!((iv_size, t[24]), (0, 16), "a 16-byte constant IV");
                let fresh = ivs
                    .entry(kid.into())
                    .or_default()
                    .insert(t[25..41].to_vec());
                assert!(
                    fresh,
                    "{track}/{id}: its constant IV is another rendition's under {kid}"
                );
            } else {
                assert_eq!(
                    (t[0], iv_size),
                    (0, 16),
                    "cenc tenc: version 0, 16-byte IVs"
                );
            }
            // pssh: ClearKey (W3C common) with the key id.
            let pssh = find("pssh");
            assert_eq!(
                hex(&bytes[pssh.at + 12..pssh.at + 28]),
                "1077efecc0b24d02ace33c1e52e2fb4b"
            );
            assert_eq!(u32_at(&bytes, pssh.at + 28), 1);
            assert_eq!(hex(&bytes[pssh.at + 32..pssh.at + 48]), kid);
            inits += 1;
            // Each fragment: cenc's saiz/saio/senc cover every sample of its trun exactly.
            for moof in boxes.iter().filter(|x| x.kind == "moof") {
                let inside = |k: &str| {
                    boxes
                        .iter()
                        .find(|x| x.kind == k && x.at > moof.at && x.at < moof.at + moof.size)
                };
                let trun = inside("trun").expect("trun");
                let count = u32_at(&bytes, trun.at + 12);
                samples += count as usize;
                fragments += 1;
                let senc = inside("senc");
                if scheme == "cbcs" {
                    assert!(
                        senc.is_none() && inside("saiz").is_none(),
                        "cbcs: constant IV, no sample auxiliary information"
                    );
                    continue;
                }
                let (senc, saiz, saio) = (
                    senc.expect("senc"),
                    inside("saiz").expect("saiz"),
                    inside("saio").expect("saio"),
                );
                assert_eq!(
                    u32_at(&bytes, senc.at + 8) & 0xff_ffff,
                    0,
                    "senc without subsamples"
                );
                assert_eq!(u32_at(&bytes, senc.at + 12), count, "senc sample_count");
                assert_eq!(
                    senc.size,
                    16 + 16 * count as usize,
                    "senc: one 16-byte IV per sample"
                );
                assert_eq!(
                    (bytes[saiz.at + 12], u32_at(&bytes, saiz.at + 13)),
                    (16, count),
                    "saiz"
                );
                assert_eq!(u32_at(&bytes, saio.at + 12), 1, "saio entry_count");
                let offset = u32_at(&bytes, saio.at + 16) as usize;
                assert_eq!(
                    moof.at + offset,
                    senc.at + 16,
                    "saio points at the first IV"
                );
                let set = ivs.entry(kid.into()).or_default();
                for i in 0..count as usize {
                    let iv = bytes[senc.at + 16 + 16 * i..senc.at + 32 + 16 * i].to_vec();
                    assert!(set.insert(iv), "{track}/{id}: an IV repeats under {kid}");
                }
            }
        }
    }
    assert!(
        inits == 78 && fragments > inits && samples > 10_000,
        "{inits} {fragments} {samples}"
    );
    println!("{inits} protected init segments, {fragments} fragments, {samples} samples: boxes as 23001-7 has them, no IV twice under a key");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn manifests_signal_the_keys_and_never_mix_clear_and_protected_renditions() {
    let mut sets = 0;
    let mut playlists = 0;
    for (scheme, out) in [("cbcs", cbcs()), ("cenc", cenc()), ("cbcs", cbcs_single())] {
        let index = report(out);
        let method = if scheme == "cbcs" {
            "SAMPLE-AES"
        } else {
            "SAMPLE-AES-CTR"
        };
        for t in index["tracks"].as_array().unwrap() {
            let by_id: BTreeMap<&str, &serde_json::Value> = t["renditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["id"].as_str().unwrap(), r))
                .collect();
            for m in t["mpds"].as_array().unwrap() {
                let path = out.join(m["path"].as_str().unwrap());
                let text = std::fs::read_to_string(&path).unwrap();
                let mpd = dash_mpd_core::parse(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
                for a in &mpd.periods[0].adaptations {
                    let kids: HashSet<Option<String>> = a
                        .representations
                        .iter()
                        .map(|r| {
                            by_id[r.id.as_deref().unwrap()]["key_id"]
                                .as_str()
                                .map(String::from)
                        })
                        .collect();
                    assert_eq!(
                        kids.len(),
                        1,
                        "{path:?}: a set mixes protections or keys: {kids:?}"
                    );
                    let kid = kids.into_iter().next().unwrap();
                    let cp = &a.ContentProtection;
                    match kid {
                        None => assert!(cp.is_empty(), "{path:?}: a clear set signals protection"),
                        Some(kid) => {
                            assert_eq!(cp[0].schemeIdUri, "urn:mpeg:dash:mp4protection:2011");
                            assert_eq!(cp[0].value.as_deref(), Some(scheme));
                            assert_eq!(cp[0].default_KID.as_deref(), Some(kid.as_str()));
                            assert!(cp.iter().any(|c| c.schemeIdUri
                                == "urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"
                                && !c.cenc_pssh.is_empty()));
                        }
                    }
                    sets += 1;
                }
            }
            for r in by_id.values() {
                let text =
                    std::fs::read_to_string(out.join(r["playlist"].as_str().unwrap())).unwrap();
                let keys: Vec<&str> = text
                    .lines()
                    .filter(|l| l.starts_with("#EXT-X-KEY:"))
                    .collect();
                match r["key_id"].as_str() {
                    None => assert!(keys.is_empty()),
                    Some(kid) => {
                        let hex_kid = kid.replace('-', "").to_uppercase();
                        // ClearKey, Widevine (a pssh from the key id) and, for cbcs, FairPlay.
                        let formats: Vec<&str> = keys
                            .iter()
                            .map(|k| {
                                k.split("KEYFORMAT=\"")
                                    .nth(1)
                                    .unwrap()
                                    .split('"')
                                    .next()
                                    .unwrap()
                            })
                            .collect();
                        let mut expected = vec![
                            "org.w3.clearkey",
                            "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
                        ];
                        if scheme == "cbcs" {
                            expected.push("com.apple.streamingkeydelivery");
                        }
                        assert_eq!(formats, expected, "{text}");
                        for k in &keys {
                            assert!(k.contains(&format!("METHOD={method},")), "{k}");
                            assert!(k.contains(&format!("KEYID=0x{hex_kid}")), "{k}");
                        }
                        let map = text.find("#EXT-X-MAP").unwrap();
                        assert!(
                            text.find("#EXT-X-KEY").unwrap() < map,
                            "the key precedes the map"
                        );
                    }
                }
                playlists += 1;
            }
            // Every multivariant playlist: its variants share one protection, and a protected
            // one names its key in EXT-X-SESSION-KEY.
            for p in t["playlists"]
                .as_array()
                .unwrap()
                .iter()
                .chain(t["tier_playlists"].as_array().unwrap())
            {
                let text = std::fs::read_to_string(out.join(p["path"].as_str().unwrap())).unwrap();
                let variants: Vec<&str> =
                    text.lines().filter(|l| l.ends_with("index.m3u8")).collect();
                let protected: Vec<bool> = variants
                    .iter()
                    .map(|v| by_id[v.split('/').next().unwrap()]["key_id"].is_string())
                    .collect();
                let is_set = p.get("family").is_some();
                if is_set {
                    assert!(protected.iter().all(|&x| x == protected[0]), "{text}");
                }
                let session = text
                    .lines()
                    .filter(|l| l.starts_with("#EXT-X-SESSION-KEY:"))
                    .count();
                assert_eq!(session > 0, protected.iter().any(|&x| x), "{text}");
                playlists += 1;
            }
        }
    }
    assert!(
        sets >= 30 && playlists >= 100,
        "{sets} sets, {playlists} playlists"
    );
    println!("{sets} DASH sets and {playlists} HLS playlists signal their protection; no set mixes clear and protected");
}

#[test]
fn protected_packages_reproduce_byte_for_byte_and_hold_no_key() {
    let again = run_once(
        "protected-cbcs-again",
        &{
            let keys = key_args();
            let mut a: Vec<String> = ["fixtures/album", "fixtures/gapless", "--scheme", "cbcs"]
                .map(String::from)
                .to_vec();
            a.extend(keys);
            a
        }
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    let a = report(cbcs());
    let b = report(&again);
    assert_eq!(a, b, "the same inputs and keys give the same index");
    let files = files_named(cbcs(), |_| true);
    let mut compared = 0;
    let secrets: Vec<Vec<u8>> = [PREMIUM.1, HIFI.1]
        .iter()
        .flat_map(|k| {
            let bytes: Vec<u8> = (0..16)
                .map(|i| u8::from_str_radix(&k[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            [k.as_bytes().to_vec(), k.to_uppercase().into_bytes(), bytes]
        })
        .collect();
    for f in &files {
        let rel = f.strip_prefix(cbcs()).unwrap();
        let x = std::fs::read(f).unwrap();
        assert_eq!(
            x,
            std::fs::read(again.join(rel)).unwrap(),
            "{rel:?} differs"
        );
        for s in &secrets {
            assert!(
                !x.windows(s.len()).any(|w| w == s.as_slice()),
                "{rel:?} holds a content key"
            );
        }
        compared += 1;
    }
    assert!(compared > 200, "{compared} files");
    println!(
        "{compared} files identical across two protected runs; none holds a key (as hex or bytes)"
    );
}

#[test]
fn a_cpix_document_gives_keys_per_track_and_tier_and_bad_ones_name_the_field() {
    use base64::Engine as _;
    let b64 = |h: &str| {
        let bytes: Vec<u8> = (0..16)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let track_key = (
        "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
    );
    let doc = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">
  <cpix:ContentKeyList>
    <cpix:ContentKey kid="{}"><cpix:Data><pskc:Secret><pskc:PlainValue>{}</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey>
    <cpix:ContentKey kid="{}"><cpix:Data><pskc:Secret><pskc:PlainValue>{}</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey>
    <cpix:ContentKey kid="{}"><cpix:Data><pskc:Secret><pskc:PlainValue>{}</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey>
  </cpix:ContentKeyList>
  <cpix:DRMSystemList>
    <cpix:DRMSystem kid="{}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed">
      <cpix:PSSH>AAAAMnBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABISEAARIjNEVWZ3iJmqu8zd7v8=</cpix:PSSH>
    </cpix:DRMSystem>
  </cpix:DRMSystemList>
  <cpix:ContentKeyUsageRuleList>
    <cpix:ContentKeyUsageRule kid="{}" intendedTrackType="premium"/>
    <cpix:ContentKeyUsageRule kid="{}" intendedTrackType="hifi"/>
    <cpix:ContentKeyUsageRule kid="{}" intendedTrackType="premium"><cpix:LabelFilter label="qzes62600002"/></cpix:ContentKeyUsageRule>
  </cpix:ContentKeyUsageRuleList>
</cpix:CPIX>"#,
        uuid(PREMIUM.0),
        b64(PREMIUM.1),
        uuid(HIFI.0),
        b64(HIFI.1),
        uuid(track_key.0),
        b64(track_key.1),
        uuid(PREMIUM.0),
        uuid(PREMIUM.0),
        uuid(HIFI.0),
        uuid(track_key.0),
    );
    let dir = scratch().join("cpix");
    std::fs::create_dir_all(&dir).unwrap();
    let cpix = dir.join("keys.cpix.xml");
    std::fs::write(&cpix, &doc).unwrap();
    let ladder = dir.join("protected.toml");
    let music = std::fs::read_to_string(root().join("ladders/music.toml")).unwrap();
    std::fs::write(&ladder, format!("{music}\n[protection]\nscheme = \"cenc\"\ntiers = [\"premium\", \"hifi\"]\noffline = [\"hifi\"]\n")).unwrap();
    let out = run_once(
        "protected-cpix",
        &[
            "fixtures/album",
            "--ladder",
            ladder.to_str().unwrap(),
            "--cpix",
            cpix.to_str().unwrap(),
        ],
    );
    let index = report(&out);
    let mut checked = 0;
    for (track, t, r) in renditions(&index) {
        assert_eq!(t["offline"], serde_json::json!(["hifi"]));
        let expected = match (r["tier"].as_str().unwrap(), track.as_str()) {
            ("premium", "qzes62600002") => Some(uuid(track_key.0)),
            ("premium", _) => Some(uuid(PREMIUM.0)),
            ("hifi", _) => Some(uuid(HIFI.0)),
            _ => None,
        };
        assert_eq!(
            r["key_id"].as_str().map(String::from),
            expected,
            "{track}/{}",
            r["id"]
        );
        if expected.is_some() {
            assert_eq!(r["scheme"], "cenc");
            checked += 1;
        }
    }
    // The Widevine PSSH the document gave is in the premium MPD and the init segment.
    let mpd = std::fs::read_to_string(out.join("qzes62600001/premium.mpd")).unwrap();
    assert!(
        mpd.contains("urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"),
        "{mpd}"
    );
    assert!(checked >= 12, "{checked} protected renditions");

    // Bad documents and keys: exit 65, the file and the field named, no key value printed.
    let bad = |name: &str, text: String, expect: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let o = pressing(&[
            "run",
            "fixtures/album",
            "--ladder",
            ladder.to_str().unwrap(),
            "--cpix",
            path.to_str().unwrap(),
            "--out",
            dir.join("bad-out").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(65), "{name}: {err}");
        assert!(err.contains(name) && err.contains(expect), "{name}: {err}");
        for secret in [b64(PREMIUM.1), b64(HIFI.1), PREMIUM.1.to_string()] {
            assert!(
                !err.contains(&secret),
                "{name}: the error shows a key: {err}"
            );
        }
    };
    bad(
        "short.xml",
        doc.replacen(&b64(PREMIUM.1), "AAECAw==", 1),
        "PlainValue holds 4 bytes",
    );
    bad(
        "unknown.xml",
        doc.replace(
            &format!("kid=\"{}\" intendedTrackType=\"hifi\"", uuid(HIFI.0)),
            &format!(
                "kid=\"{}\" intendedTrackType=\"hifi\"",
                uuid("deadbeefdeadbeefdeadbeefdeadbeef")
            ),
        ),
        "is not in ContentKeyList",
    );
    bad(
        "unused.xml",
        doc.replace(
            &format!(
                "<cpix:ContentKeyUsageRule kid=\"{}\" intendedTrackType=\"hifi\"/>",
                uuid(HIFI.0)
            ),
            "",
        ),
        "a key for no tier",
    );
    bad(
        "tier.xml",
        doc.replace("intendedTrackType=\"hifi\"", "intendedTrackType=\"gold\""),
        "intendedTrackType=\"gold\"",
    );
    // A raw key of the wrong length: the flag named, the key not echoed.
    let o = pressing(&[
        "run",
        "fixtures/album",
        "--key",
        "premium=00112233445566778899aabbccddeeff:0f0e0d0c",
        "--out",
        dir.join("bad-out").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(65), "{err}");
    assert!(
        err.contains("--key") && err.contains("not 32 hex digits") && !err.contains("0f0e0d0c"),
        "{err}"
    );
    println!("{checked} renditions keyed from a CPIX document (per tier, one track per label); 5 bad documents and keys refused naming the field");
}
