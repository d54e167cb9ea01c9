//! Releases as DDEX ERN 4.3 NewReleaseMessages (issue 19): messages written here for the
//! fixtures' masters, in the DDEX batch layout (the message, the files under resources/),
//! through `validate` and `run`; deals deciding tiers and availability; bad messages refused
//! with their codes and element paths.

mod common;

use std::path::Path;

use common::ddex::*;
use common::*;
use serde_json::Value;

/// `pressing validate --json` of a folder: (exit code, findings).
fn validate(dir: &Path) -> (i32, Vec<Value>) {
    let o = pressing(&["validate", "--json", dir.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    let findings = v["findings"].as_array().cloned().unwrap_or_default();
    (o.status.code().unwrap_or(-1), findings)
}

#[test]
fn an_ern_release_presses_like_release_json_with_its_deals_deciding_tiers() {
    let dir = batch("album", &[SUBSCRIPTION_WORLDWIDE, ADS_GB_FR], |x| x);
    let (code, findings) = validate(&dir);
    assert_eq!(code, 0, "{findings:?}");
    let out = run_once("ddex-album", &[dir.to_str().unwrap()]);
    let index = report(&out);
    let tracks = index["tracks"].as_array().unwrap();
    let ids: Vec<&str> = tracks.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["qzes62600101", "qzes62600102"]);
    let mut checked = 0;
    for t in tracks {
        let record: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(t["catalog"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        let release = &record["release"];
        assert_eq!(release["title"], "Two Discs");
        assert_eq!(release["upc"], "5012345678900");
        assert_eq!(release["label"], "Pressing Records & Co");
        assert_eq!(release["release_date"], "2026-12-12");
        assert_eq!(release["territories"]["worldwide"], true);
        assert_eq!(release["message"]["message_id"], "MSG-album");
        assert_eq!(release["message"]["sender"], "Fixture Distribution");
        assert_eq!(release["message"]["test"], false);
        assert_eq!(release["deals"].as_array().unwrap().len(), 2);
        let meta = &record["metadata"];
        let second = t["id"] == "qzes62600102";
        assert_eq!(meta["disc_number"], if second { 2 } else { 1 });
        assert_eq!(meta["track_number"], 1);
        assert_eq!(meta["explicit"], second);
        assert_eq!(meta["version"], "Remastered");
        assert_eq!(meta["artists"], serde_json::json!(["The Fixtures"]));
        // Availability: free where the ad-supported deal is (GB, FR, until 2099-12-31);
        // premium and hifi worldwide, open-ended, offline licensed.
        let a = t["availability"].as_array().unwrap();
        let tiers: Vec<&str> = a.iter().map(|x| x["tier"].as_str().unwrap()).collect();
        assert_eq!(tiers, ["free", "premium", "hifi"]);
        assert_eq!(a[0]["territories"], serde_json::json!(["FR", "GB"]));
        assert_eq!(
            (a[0]["end"].as_str(), a[0]["offline"].as_bool()),
            (Some("2099-12-31"), Some(false))
        );
        assert_eq!(
            (
                a[1]["worldwide"].as_bool(),
                a[1]["end"].is_null(),
                a[1]["offline"].as_bool()
            ),
            (Some(true), true, Some(true))
        );
        assert_eq!(record["availability"], t["availability"]);
        checked += 1;
    }
    assert_eq!(checked, 2);

    // Deals without the ad-supported model: free is not packaged, and says why.
    let dir = batch("subscription-only", &[SUBSCRIPTION_WORLDWIDE], |x| x);
    let out = run_once("ddex-subscription-only", &[dir.to_str().unwrap()]);
    let index = report(&out);
    for (track, _, r) in renditions(&index) {
        assert_ne!(r["tier"], "free", "{track}/{}", r["id"]);
    }
    let skipped = index["skipped"].as_array().unwrap();
    let free_skips = skipped
        .iter()
        .filter(|s| {
            s["reason"]
                .as_str()
                .unwrap()
                .contains("no deal allows tier free")
        })
        .count();
    assert!(free_skips >= 8, "{skipped:?}");
    // No deal at all: nothing is packaged, exit 65, said clearly.
    let dir = batch("no-deals", &[], |x| x);
    let o = pressing(&[
        "run",
        dir.to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(65), "{err}");
    assert!(
        err.contains("no deal of the release allows any tier"),
        "{err}"
    );
    println!("2 tracks of an ERN album pressed with their deals' availability; a subscription-only release skipped {free_skips} free rungs; a release without deals refused");
}

/// A change to a message's text.
type Edit = Box<dyn Fn(String) -> String>;

#[test]
fn bad_messages_are_refused_with_their_code_and_element_path() {
    let cases: Vec<(&str, Edit, &str, &str)> = vec![
        (
            "doctype",
            Box::new(|x: String| x.replacen("<ern:NewReleaseMessage", "<!DOCTYPE x [<!ENTITY boom \"boom\">]>\n<ern:NewReleaseMessage", 1)),
            "ddex.doctype",
            "line 2",
        ),
        (
            "ern-382",
            Box::new(|x: String| x.replace("http://ddex.net/xml/ern/43", "http://ddex.net/xml/ern/382")),
            "ddex.version",
            "NewReleaseMessage",
        ),
        (
            "isrc",
            Box::new(|x: String| x.replace("QZES62600102", "QZ-ES6-26-0010")),
            "metadata.isrc",
            "ResourceList/SoundRecording[2]/SoundRecordingEdition/ResourceId/ISRC",
        ),
        (
            "icpn",
            Box::new(|x: String| x.replace("5012345678900", "5012345678901")),
            "metadata.upc",
            "ReleaseList/Release[1]/ReleaseId/ICPN",
        ),
        (
            "hash",
            Box::new(|x: String| {
                let at = x.find("<HashSumValue>").unwrap() + "<HashSumValue>".len();
                format!("{}{}{}", &x[..at], "0".repeat(64), &x[at + 64..])
            }),
            "ddex.hash",
            "ResourceList/SoundRecording[1]/SoundRecordingEdition/TechnicalDetails/DeliveryFile/File/HashSum",
        ),
        (
            "reference",
            Box::new(|x: String| x.replace("<ReleaseResourceReference>A2</ReleaseResourceReference>", "<ReleaseResourceReference>A9</ReleaseResourceReference>")),
            "ddex.reference",
            "ReleaseList/Release[1]/ResourceGroup/ResourceGroup[2]/ResourceGroupContentItem[1]/ReleaseResourceReference",
        ),
        (
            "party",
            Box::new(|x: String| x.replace("<ReleaseLabelReference>P2</ReleaseLabelReference>", "<ReleaseLabelReference>P7</ReleaseLabelReference>")),
            "ddex.reference",
            "ReleaseList/Release[1]/ReleaseLabelReference",
        ),
        (
            "territory",
            Box::new(|x: String| x.replace("<TerritoryCode>FR</TerritoryCode>", "<TerritoryCode>UK</TerritoryCode>")),
            "ddex.territory",
            "DealList/ReleaseDeal/Deal[2]/DealTerms/TerritoryCode",
        ),
        (
            "numbering",
            Box::new(|x: String| x.replacen("<SequenceNumber>2</SequenceNumber>", "<SequenceNumber>1</SequenceNumber>", 1)),
            "metadata.track-number",
            "ResourceGroupContentItem",
        ),
        (
            "uri",
            Box::new(|x: String| x.replace("<URI>resources/A1.wav</URI>", "<URI>../../etc/passwd</URI>")),
            "ddex.uri",
            "ResourceList/SoundRecording[1]/SoundRecordingEdition/TechnicalDetails/DeliveryFile/File/URI",
        ),
        (
            "duration",
            Box::new(|x: String| x.replace("PT0M6.5S", "PT0M9S")),
            "ddex.duration",
            "ResourceList/SoundRecording[2]/Duration",
        ),
        (
            "syntax",
            Box::new(|x: String| x.replace("</PartyList>", "</PartyLst>")),
            "ddex.syntax",
            "line",
        ),
    ];
    let mut refused = 0;
    for (name, edit, code, location) in cases {
        let dir = batch(
            &format!("bad-{name}"),
            &[SUBSCRIPTION_WORLDWIDE, ADS_GB_FR],
            edit,
        );
        let (exit, findings) = validate(&dir);
        assert_eq!(exit, 65, "{name}: {findings:?}");
        let hit = findings.iter().find(|f| f["code"] == code);
        let hit = hit.unwrap_or_else(|| panic!("{name}: no {code} in {findings:?}"));
        assert!(
            hit["location"].as_str().unwrap_or("").contains(location),
            "{name}: {hit}"
        );
        assert!(
            hit["file"].as_str().unwrap().ends_with("ern.xml"),
            "{name}: {hit}"
        );
        assert!(!hit["fix"].as_str().unwrap().is_empty());
        refused += 1;
    }
    // Both an ERN message and a release.json: an error naming both.
    let dir = batch("both", &[SUBSCRIPTION_WORLDWIDE], |x| x);
    std::fs::copy(
        root().join("fixtures/album/release.json"),
        dir.join("release.json"),
    )
    .unwrap();
    let (exit, findings) = validate(&dir);
    assert_eq!(exit, 65);
    let both = findings
        .iter()
        .find(|f| f["code"] == "release.two-metadata")
        .expect("two-metadata");
    let message = both["message"].as_str().unwrap();
    assert!(
        message.contains("ern.xml") && message.contains("release.json"),
        "{message}"
    );
    println!(
        "{} bad messages refused with their code and element path",
        refused + 1
    );
}

#[test]
fn a_test_message_is_pressed_but_published_only_when_asked() {
    let dir = batch("test-message", &[SUBSCRIPTION_WORLDWIDE], |x| {
        x.replace(
            "<MessageControlType>LiveMessage</MessageControlType>",
            "<MessageControlType>TestMessage</MessageControlType>",
        )
    });
    let out = run_once("ddex-test-message", &[dir.to_str().unwrap()]);
    let dest = dir.join("store");
    let o = pressing(&["publish", out.to_str().unwrap(), dest.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(65), "{err}");
    assert!(
        err.contains("TestMessage") && err.contains("--publish-test-message"),
        "{err}"
    );
    assert!(
        !dest.exists() || files_named(&dest, |_| true).is_empty(),
        "something was published"
    );
    let o = pressing(&[
        "publish",
        out.to_str().unwrap(),
        dest.to_str().unwrap(),
        "--publish-test-message",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let published = files_named(&dest, |n| n == "catalog.json").len();
    assert_eq!(published, 2);
    println!("a TestMessage release: refused by publish (nothing uploaded), published with --publish-test-message ({published} records)");
}

/// A PurgeReleaseMessage names only the release: `unpublish --ddex` finds its tracks in the
/// store's release index and takes every one down, then the index.
#[test]
fn a_purge_release_message_takes_every_track_of_the_release_down() {
    let dir = batch("purge", &[SUBSCRIPTION_WORLDWIDE, ADS_GB_FR], |x| x);
    let out = run_once("ddex-purge", &[dir.to_str().unwrap()]);
    let store = dir.join("store");
    let o = pressing(&["publish", out.to_str().unwrap(), store.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let index_path = store.join("releases/5012345678900.json");
    let index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    assert_eq!(
        index["tracks"],
        serde_json::json!(["qzes62600101", "qzes62600102"])
    );
    // An updated message whose deals no longer allow free (the ad-supported deal is gone),
    // published over it: free's entry manifests and its rungs' folders are withdrawn, the
    // other tiers stay.
    let first = report(&out);
    let free_rungs: std::collections::BTreeSet<String> = renditions(&first)
        .into_iter()
        .filter(|(_, _, r)| r["tier"] == "free")
        .map(|(_, _, r)| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!free_rungs.is_empty());
    let update = batch("purge-update", &[SUBSCRIPTION_WORLDWIDE], |x| x);
    let updated = run_once("ddex-purge-update", &[update.to_str().unwrap()]);
    let published = update.join("published.json");
    let o = pressing(&[
        "publish",
        updated.to_str().unwrap(),
        store.to_str().unwrap(),
        "--report",
        published.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p: Value = serde_json::from_slice(&std::fs::read(&published).unwrap()).unwrap();
    let mut withdrawn = 0;
    for t in p["tracks"].as_array().unwrap() {
        withdrawn += t["publish"]["withdrawn"].as_u64().unwrap();
    }
    let mut kept = 0;
    for track in ["qzes62600101", "qzes62600102"] {
        for f in files_named(&store.join(track), |_| true) {
            let rel = f
                .strip_prefix(store.join(track))
                .unwrap()
                .to_string_lossy()
                .to_string();
            assert!(
                !rel.starts_with("free"),
                "{track}/{rel} left after free was withdrawn"
            );
            let folder = rel.split('/').next().unwrap();
            assert!(
                !free_rungs.contains(folder),
                "{track}/{rel}: a free rung left"
            );
            kept += 1;
        }
        assert!(store.join(track).join("premium.mpd").is_file());
        assert!(store.join(track).join("hifi.m3u8").is_file());
    }
    assert!(withdrawn >= 8, "{withdrawn} objects withdrawn");
    let purge = |name: &str, id: &str| {
        let path = dir.join(name);
        std::fs::write(&path, purge_message(id)).unwrap();
        path
    };
    // A purge that names the release by GRid alone: refused, nothing taken down.
    let grid = purge("purge-grid.xml", "<GRid>A1UCASE0000000401X</GRid>");
    let o = pressing(&[
        "unpublish",
        store.to_str().unwrap(),
        "--ddex",
        grid.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(65), "{err}");
    assert!(err.contains("GRid") && err.contains("ICPN"), "{err}");
    assert!(store.join("qzes62600101/catalog.json").is_file());
    // By ICPN: both tracks and the index gone, nothing else of the release left.
    let icpn = purge("purge.xml", "<ICPN>5012345678900</ICPN>");
    let o = pressing(&[
        "unpublish",
        store.to_str().unwrap(),
        "--ddex",
        icpn.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let left = files_named(&store, |_| true);
    assert!(left.is_empty(), "left after the purge: {left:?}");
    // An update whose deals have all ended takes the release down as a purge does; one that
    // still allows a tier takes nothing down (it is pressed and published instead).
    let o = pressing(&["publish", out.to_str().unwrap(), store.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let unpublish = |message: &Path| {
        pressing(&[
            "unpublish",
            store.to_str().unwrap(),
            "--ddex",
            message.to_str().unwrap(),
        ])
    };
    let o = unpublish(&update.join("ern.xml"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(65), "{err}");
    assert!(err.contains("still allow"), "{err}");
    assert!(store.join("qzes62600101/catalog.json").is_file());
    let ended = batch("purge-ended", &[ENDED_2020], |x| x);
    let o = unpublish(&ended.join("ern.xml"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let left = files_named(&store, |_| true);
    assert!(left.is_empty(), "left after the ended update: {left:?}");
    println!(
        "an update without the ad-supported deal withdrew {withdrawn} objects of free ({} rungs) and kept {kept}; a PurgeReleaseMessage took down 2 tracks and the release index, and so did an update whose deals ended; a GRid-only purge and an update still allowing tiers took nothing down",
        free_rungs.len()
    );
}

/// A release.json may give deals too (in the shape the record shows them): then they decide
/// the tiers, as a DDEX message's do; a bad deal is refused at its field.
#[test]
fn release_json_deals_decide_tiers_like_ddex_ones() {
    let dir = scratch().join("ddex").join("release-json-deals");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["01-cd-stereo.wav", "02-hires.flac", "03-mono.aiff"] {
        std::fs::copy(root().join("fixtures/album").join(f), dir.join(f)).unwrap();
    }
    let mut release: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/album/release.json")).unwrap(),
    )
    .unwrap();
    release["deals"] = serde_json::json!([{
        "commercial_models": ["SubscriptionModel"],
        "use_types": ["OnDemandStream"],
        "territories": ["GB", "US"],
        "start": "2026-01-01"
    }]);
    std::fs::write(dir.join("release.json"), release.to_string()).unwrap();
    let out = run_once("release-json-deals", &[dir.to_str().unwrap()]);
    let index = report(&out);
    let mut checked = 0;
    for t in index["tracks"].as_array().unwrap() {
        let tiers: Vec<&str> = t["availability"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["tier"].as_str().unwrap())
            .collect();
        assert_eq!(tiers, ["premium", "hifi"], "{}", t["id"]);
        assert_eq!(
            t["availability"][0]["territories"],
            serde_json::json!(["GB", "US"])
        );
        for r in t["renditions"].as_array().unwrap() {
            assert_ne!(r["tier"], "free", "{}/{}", t["id"], r["id"]);
        }
        checked += 1;
    }
    assert_eq!(checked, 3);
    release["deals"][0]["territories"] = serde_json::json!(["UK"]);
    std::fs::write(dir.join("release.json"), release.to_string()).unwrap();
    let (code, findings) = validate(&dir);
    assert_eq!(code, 65, "{findings:?}");
    let bad = findings
        .iter()
        .find(|f| f["code"] == "metadata.territory")
        .expect("territory");
    assert_eq!(bad["location"], "deals[0]");
    println!("a release.json's deals: 3 tracks without free rungs, availability in GB and US; a bad territory refused at deals[0]");
}

/// The colours of a test cover's quadrants (top left, top right, bottom left, bottom right).
const QUADRANTS: [[u8; 3]; 4] = [[200, 30, 30], [30, 200, 30], [30, 30, 200], [240, 240, 240]];

/// A cover of four coloured quadrants, `w` x `h` pixels.
fn quadrants(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb(QUADRANTS[usize::from(x >= w / 2) + 2 * usize::from(y >= h / 2)])
    })
}

/// A PNG whose header declares `side` x `side` pixels and holds none: a decompression bomb's
/// shape, a few dozen bytes.
fn png_bomb(side: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        let body: Vec<u8> = kind.iter().chain(data).copied().collect();
        c.extend(&body);
        c.extend(crc32(&body).to_be_bytes());
        c
    };
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend(side.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// The derived sizes of a track's report: each file decodes as an RGB JPEG of its size whose
/// quadrants keep their colours; returns (sizes, version folder).
fn check_cover_sizes(out: &Path, t: &Value) -> (Vec<u64>, String) {
    let cover = t["cover"].as_array().expect("a cover");
    let mut sizes = Vec::new();
    let mut versions = std::collections::BTreeSet::new();
    for c in cover {
        let path = out.join(c["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, c["bytes"].as_u64().unwrap());
        assert_eq!(
            image::guess_format(&bytes).unwrap(),
            image::ImageFormat::Jpeg
        );
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!(img.color(), image::ColorType::Rgb8, "{path:?}");
        let side = c["width"].as_u64().unwrap() as u32;
        assert_eq!((img.width(), img.height()), (side, side), "{path:?}");
        assert_eq!(c["height"], c["width"]);
        let img = img.to_rgb8();
        for (q, want) in QUADRANTS.iter().enumerate() {
            let (x, y) = (
                side / 4 + side / 2 * (q as u32 % 2),
                side / 4 + side / 2 * (q as u32 / 2),
            );
            let got = img.get_pixel(x, y).0;
            for ch in 0..3 {
                assert!(
                    got[ch].abs_diff(want[ch]) <= 10,
                    "{path:?} quadrant {q}: {got:?}, expected {want:?}"
                );
            }
        }
        let rel = c["path"].as_str().unwrap();
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(
            (parts[1], parts[3]),
            ("cover", format!("{side}.jpg").as_str())
        );
        versions.insert(parts[2].to_string());
        sizes.push(u64::from(side));
    }
    assert_eq!(versions.len(), 1, "one version folder: {versions:?}");
    (sizes, versions.into_iter().next().unwrap())
}

/// A release folder of the fixtures' album (release.json and its three masters).
fn album_folder(name: &str) -> std::path::PathBuf {
    let dir = scratch().join("covers").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "release.json",
        "01-cd-stereo.wav",
        "02-hires.flac",
        "03-mono.aiff",
    ] {
        std::fs::copy(root().join("fixtures/album").join(f), dir.join(f)).unwrap();
    }
    dir
}

#[test]
fn a_front_cover_is_checked_and_published_in_the_sizes_a_catalog_serves() {
    let mut checked = 0;
    // DDEX: a 3000 x 3000 PNG, FrontCoverImage linked from the top-level ResourceGroup.
    let src = scratch().join("cover-3000.png");
    quadrants(3000, 3000).save(&src).unwrap();
    let sha = sha256(&src);
    let dir = batch("cover", &[SUBSCRIPTION_WORLDWIDE], |x| {
        add_cover(x, "resources/cover.png", &sha)
    });
    std::fs::copy(&src, dir.join("resources/cover.png")).unwrap();
    let (code, findings) = validate(&dir);
    assert_eq!(code, 0, "{findings:?}");
    let out = run_once("ddex-cover", &[dir.to_str().unwrap()]);
    let index = report(&out);
    let mut versions = Vec::new();
    for t in index["tracks"].as_array().unwrap() {
        let (sizes, version) = check_cover_sizes(&out, t);
        assert_eq!(sizes, [3000, 1200, 600, 300]);
        versions.push(version);
        let record: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(t["catalog"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(record["cover"], t["cover"]);
        checked += sizes.len();
    }
    // Both tracks carry the same bytes (content-keyed: one version).
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0], versions[1]);
    // The message's HashSum of the cover is checked too.
    let dir = batch("cover-hash", &[SUBSCRIPTION_WORLDWIDE], |x| {
        add_cover(x, "resources/cover.png", &"0".repeat(64))
    });
    std::fs::copy(&src, dir.join("resources/cover.png")).unwrap();
    let (code, findings) = validate(&dir);
    assert_eq!(code, 65);
    assert!(
        findings.iter().any(|f| f["code"] == "ddex.hash"
            && f["location"]
                .as_str()
                .is_some_and(|l| l.ends_with("TechnicalDetails/File/HashSum"))),
        "{findings:?}"
    );

    // release.json with cover.jpg beside it, larger than 3000: every size is a reduction.
    let dir = album_folder("json-3200");
    quadrants(3200, 3200).save(dir.join("cover.jpg")).unwrap();
    let out = run_once("cover-json-3200", &[dir.to_str().unwrap()]);
    for t in report(&out)["tracks"].as_array().unwrap() {
        let (sizes, _) = check_cover_sizes(&out, t);
        assert_eq!(sizes, [3000, 1200, 600, 300]);
        checked += sizes.len();
    }
    // A ladder whose floor is 1000: a 1500 cover gives the sizes below it, none upscaled.
    let dir = album_folder("json-1500");
    quadrants(1500, 1500).save(dir.join("cover.png")).unwrap();
    let ladder = dir.join("ladder.toml");
    let text = std::fs::read_to_string(root().join("ladders/music.toml")).unwrap();
    std::fs::write(&ladder, format!("{text}\n[cover]\nmin_size = 1000\n")).unwrap();
    let out = run_once(
        "cover-json-1500",
        &[dir.to_str().unwrap(), "--ladder", ladder.to_str().unwrap()],
    );
    for t in report(&out)["tracks"].as_array().unwrap() {
        let (sizes, _) = check_cover_sizes(&out, t);
        assert_eq!(sizes, [1200, 600, 300]);
        checked += sizes.len();
    }
    // Without --ladder, validate holds the 1500 cover to the default floor.
    let (code, findings) = validate(&dir);
    assert_eq!(code, 65);
    assert!(findings.iter().any(|f| f["code"] == "cover.too-small"));

    // Bad covers: each refused by validate with its code, naming the cover's file.
    let png = |w, h| {
        let mut bytes = Vec::new();
        quadrants(w, h)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        bytes
    };
    let mut truncated = png(3000, 3000);
    truncated.truncate(truncated.len() / 2);
    let not_square = png(3000, 2990);
    let small = png(1000, 1000);
    let cmyk = std::fs::read(root().join("tests/data/cover-cmyk.jpg")).unwrap();
    // (case, files written beside release.json, the code it must produce)
    type Case<'a> = (&'a str, Vec<(&'a str, Vec<u8>)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "not-square",
            vec![("cover.png", not_square)],
            "cover.not-square",
        ),
        (
            "too-small",
            vec![("cover.png", small.clone())],
            "cover.too-small",
        ),
        ("cmyk", vec![("cover.jpg", cmyk)], "cover.cmyk"),
        (
            "bomb",
            vec![("cover.png", png_bomb(100_000))],
            "cover.limit-pixels",
        ),
        (
            "gif",
            vec![("cover.png", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec())],
            "cover.format",
        ),
        ("truncated", vec![("cover.png", truncated)], "cover.decode"),
        (
            "two-files",
            vec![("cover.jpg", small.clone()), ("cover.png", small)],
            "cover.two-files",
        ),
    ];
    for (name, files, code_wanted) in &cases {
        let dir = album_folder(name);
        for (file, bytes) in files {
            std::fs::write(dir.join(file), bytes).unwrap();
        }
        let (code, findings) = validate(&dir);
        assert_eq!(code, 65, "{name}: {findings:?}");
        let f = findings
            .iter()
            .find(|f| f["code"] == *code_wanted)
            .unwrap_or_else(|| panic!("{name}: no {code_wanted} in {findings:?}"));
        assert!(
            f["file"].as_str().unwrap().contains("cover."),
            "{name}: {f}"
        );
        assert!(!f["fix"].as_str().unwrap().is_empty());
        checked += 1;
    }
    println!(
        "covers: {checked} checks (derived sizes decoded as RGB JPEGs with their quadrants' colours, {} bad covers refused with their codes)",
        cases.len()
    );
}

/// A single (one SoundRecording, `ReleaseType` Single, one disc) whose one deal starts in the
/// future: pressed now, its tiers available from the deal's start (the window says when).
#[test]
fn a_single_with_a_future_window_is_pressed_with_its_window() {
    const LATER: DealSpec = (
        "SubscriptionModel",
        &["OnDemandStream"],
        &["Worldwide"],
        &[],
        "2099-01-01",
        None,
    );
    let dir = batch("single", &[LATER], |x| {
        // Only the first recording, on one disc.
        let second = x.find("<SoundRecording>").and_then(|a| {
            let b = x[a + 1..].find("<SoundRecording>")? + a + 1;
            let end = x[b..].find("</SoundRecording>")? + b + "</SoundRecording>".len();
            Some((b, end))
        });
        let (b, end) = second.expect("two recordings");
        let mut x = format!("{}{}", &x[..b], &x[end..]);
        let disc2 = x
            .find(r#"<ResourceGroup ResourceGroupType="Component"><SequenceNumber>2"#)
            .expect("disc 2");
        let end = x[disc2..].find("</ResourceGroup>").unwrap() + disc2 + "</ResourceGroup>".len();
        x.replace_range(disc2..end, "");
        x.replace(
            "<ReleaseType>Album</ReleaseType>",
            "<ReleaseType>Single</ReleaseType>",
        )
    });
    std::fs::remove_file(dir.join("resources/A2.flac")).unwrap();
    let (code, findings) = validate(&dir);
    assert_eq!(code, 0, "{findings:?}");
    let out = run_once("ddex-single", &[dir.to_str().unwrap()]);
    let index = report(&out);
    let tracks = index["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 1);
    let a = tracks[0]["availability"].as_array().unwrap();
    let tiers: Vec<&str> = a.iter().map(|x| x["tier"].as_str().unwrap()).collect();
    assert_eq!(tiers, ["premium", "hifi"]);
    for x in a {
        assert_eq!(x["start"], "2099-01-01");
        assert!(x["end"].is_null());
    }
    println!("a single with a deal from 2099-01-01: 1 track, premium and hifi from that date");
}
