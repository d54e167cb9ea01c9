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
    let purge = |name: &str, id: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?>
<ern:PurgeReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43" LanguageAndScriptCode="en" AvsVersionId="4.3">
  <MessageHeader><MessageId>PURGE-1</MessageId><MessageSender><PartyId>PADPIDA2014021302H</PartyId></MessageSender><MessageRecipient><PartyId>PADPIDA2024072201A</PartyId></MessageRecipient><MessageCreatedDateTime>2026-12-06T10:00:00+00:00</MessageCreatedDateTime></MessageHeader>
  <PurgedRelease><ReleaseId>{id}</ReleaseId></PurgedRelease>
</ern:PurgeReleaseMessage>
"#
            ),
        )
        .unwrap();
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
    println!(
        "a PurgeReleaseMessage took down 2 tracks and the release index; a GRid-only purge refused"
    );
}

/// A release.json may give deals too (in the shape the record shows them): then they decide
/// the tiers, as a DDEX message's do; a bad deal is refused at its field.
#[test]
fn release_json_deals_decide_tiers_like_ddex_ones() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("ddex")
        .join("release-json-deals");
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
