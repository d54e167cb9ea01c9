//! Delivery at catalogue scale: the single-file form (one CMAF track file per rendition, its
//! fragments addressed by byte ranges through a `sidx`) and the Apple-form tier playlists,
//! checked against the segment form of the same fixtures and with independent parsers
//! (mp4-atom, m3u8-rs, dash-mpd-core). The players' side (hls.js, Shaka Player, dash.js,
//! FFmpeg and GStreamer on both forms) is in tests/playback.rs; publishing in tests/publish.rs.

mod common;

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::Path;

use common::*;
use mp4_atom::{Decode, Moof, Sidx};

/// The top-level boxes of a file: (type, offset, size); they must tile it exactly.
fn boxes(bytes: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        assert!(size >= 8, "box at {at}: size {size}");
        out.push((
            String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned(),
            at,
            size,
        ));
        at += size;
    }
    assert_eq!(at, bytes.len(), "the boxes tile the file");
    out
}

/// The box starting exactly at `offset` and ending exactly at `offset + length`, as a run of
/// whole top-level boxes; returns their types.
fn whole_boxes(all: &[(String, usize, usize)], offset: usize, length: usize) -> Vec<String> {
    let first = all
        .iter()
        .position(|b| b.1 == offset)
        .unwrap_or_else(|| panic!("no box starts at {offset}"));
    let mut end = offset;
    let mut kinds = Vec::new();
    for b in &all[first..] {
        if end == offset + length {
            break;
        }
        kinds.push(b.0.clone());
        end = b.1 + b.2;
    }
    assert_eq!(
        end,
        offset + length,
        "the range {offset}+{length} ends inside a box"
    );
    kinds
}

/// The same rendition's folder in the segment form.
fn segment_form_dir(track: &str, rid: &str) -> std::path::PathBuf {
    rendition_dir(&fixtures_out().join(track), rid)
}

#[test]
fn a_track_file_is_the_segment_files_behind_a_sidx_that_agrees_with_them() {
    let out = single_file_out();
    let index = report(out);
    assert_eq!(index["single_file"], true);
    let (mut files, mut references) = (0, 0);
    for (track, _, r) in renditions(&index) {
        let rid = r["id"].as_str().unwrap();
        assert_eq!(r["single_file"], true, "{track}/{rid}");
        let path = out.join(r["init"].as_str().unwrap());
        assert!(path.ends_with("media.mp4"), "{path:?}");
        // The version folder holds the track file and its media playlist, nothing else.
        let names: BTreeSet<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            BTreeSet::from(["index.m3u8".to_string(), "media.mp4".to_string()])
        );
        let bytes = std::fs::read(&path).unwrap();
        let all = boxes(&bytes);
        let kinds: Vec<&str> = all.iter().map(|b| b.0.as_str()).collect();
        assert_eq!(kinds[..3], ["ftyp", "moov", "sidx"], "{track}/{rid}");
        assert!(
            kinds[3..].chunks(2).all(|c| c == ["moof", "mdat"]),
            "{track}/{rid}: {kinds:?}"
        );
        // The same header and the same fragments, byte for byte, as the segment form.
        let seg_dir = segment_form_dir(&track, rid);
        let init = std::fs::read(seg_dir.join("init.mp4")).unwrap();
        assert_eq!(all[0].2 + all[1].2, init.len());
        assert!(bytes[..init.len()] == init[..], "{track}/{rid}: header");
        let segments = segment_files(&seg_dir);
        let fragments: Vec<&[u8]> = all[3..]
            .chunks(2)
            .map(|c| &bytes[c[0].1..c[1].1 + c[1].2])
            .collect();
        assert_eq!(fragments.len(), segments.len(), "{track}/{rid}");
        assert_eq!(fragments.len() as u64, r["segments"].as_u64().unwrap());
        for (i, (f, s)) in fragments.iter().zip(&segments).enumerate() {
            assert!(
                *f == std::fs::read(s).unwrap(),
                "{track}/{rid}: fragment {}",
                i + 1
            );
        }
        // The sidx, read by mp4-atom, against the fragments and the edit list.
        let (_, sidx_at, sidx_len) = all[2];
        let sidx = Sidx::decode(&mut Cursor::new(&bytes[sidx_at..sidx_at + sidx_len])).unwrap();
        assert_eq!(sidx.reference_id, 1);
        assert_eq!(
            u64::from(sidx.timescale),
            r["sample_rate"].as_u64().unwrap()
        );
        assert_eq!(sidx.earliest_presentation_time, 0, "{track}/{rid}");
        assert_eq!(sidx.first_offset, 0, "the fragments follow the index");
        assert_eq!(sidx.references.len(), fragments.len());
        let (priming, presented) = edit_list(&seg_dir.join("init.mp4"));
        assert_eq!(presented, r["duration_samples"].as_u64().unwrap());
        let at = |t: u64| t.saturating_sub(priming).min(presented);
        let mut total = 0u64;
        for (i, (reference, f)) in sidx.references.iter().zip(&fragments).enumerate() {
            let moof = Moof::decode(&mut Cursor::new(*f)).unwrap();
            let traf = &moof.traf[0];
            let start = traf.tfdt.as_ref().unwrap().base_media_decode_time;
            let length: u64 = traf.trun[0]
                .samples
                .iter()
                .map(|s| u64::from(s.duration.unwrap()))
                .sum();
            assert!(!reference.reference_type, "a media reference");
            assert_eq!(reference.referenced_size as usize, f.len(), "{rid} ref {i}");
            assert_eq!(
                u64::from(reference.subsegment_duration),
                at(start + length) - at(start),
                "{track}/{rid} reference {i}: presentation span after the edit list"
            );
            assert!(reference.starts_with_sap && reference.sap_type == 1);
            assert_eq!(reference.sap_delta_time, 0);
            total += u64::from(reference.subsegment_duration);
            references += 1;
        }
        assert_eq!(total, presented, "{track}/{rid}: the index spans the edit");
        files += 1;
    }
    eprintln!("{files} track files, {references} sidx references checked");
    assert!(
        files >= 50 && references >= files * 2,
        "{files} {references}"
    );
}

#[test]
fn every_byte_range_of_every_playlist_and_mpd_is_whole_boxes() {
    let out = single_file_out();
    let index = report(out);
    let (mut ranges, mut representations) = (0, 0);
    for (track, t, r) in renditions(&index) {
        let rid = r["id"].as_str().unwrap();
        let file = out.join(r["init"].as_str().unwrap());
        let all = boxes(&std::fs::read(&file).unwrap());
        let playlist = out.join(r["playlist"].as_str().unwrap());
        let text = std::fs::read(&playlist).unwrap();
        let Ok(m3u8_rs::Playlist::MediaPlaylist(media)) = m3u8_rs::parse_playlist_res(&text) else {
            panic!("{playlist:?}: not a media playlist")
        };
        // RFC 8216 7: EXT-X-MAP outside I-frame playlists needs version 6 or more.
        assert!(media.version.unwrap() >= 6);
        let map = media.segments[0].map.as_ref().expect("EXT-X-MAP");
        assert_eq!(map.uri, "media.mp4");
        let range = map.byte_range.as_ref().expect("EXT-X-MAP BYTERANGE");
        let header = whole_boxes(&all, range.offset.unwrap() as usize, range.length as usize);
        assert_eq!(header, ["ftyp", "moov"], "{track}/{rid}");
        for (i, s) in media.segments.iter().enumerate() {
            assert_eq!(s.uri, "media.mp4");
            let b = s.byte_range.as_ref().expect("EXT-X-BYTERANGE");
            let kinds = whole_boxes(
                &all,
                b.offset.expect("an explicit offset") as usize,
                b.length as usize,
            );
            assert_eq!(kinds, ["moof", "mdat"], "{track}/{rid} segment {i}");
            ranges += 1;
        }
        // Each tier MPD that holds this rendition names the same bytes.
        for m in t["mpds"].as_array().unwrap() {
            let path = out.join(m["path"].as_str().unwrap());
            let mpd = dash_mpd_core::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(
                mpd.profiles.as_deref(),
                Some("urn:mpeg:dash:profile:isoff-on-demand:2011")
            );
            for a in &mpd.periods[0].adaptations {
                assert_eq!(a.subsegmentAlignment, Some(true));
                assert_eq!(a.subsegmentStartsWithSAP, Some(1));
                for rep in a
                    .representations
                    .iter()
                    .filter(|x| x.id.as_deref() == Some(rid))
                {
                    assert!(rep.SegmentTemplate.is_none() && rep.SegmentList.is_none());
                    let base = &rep.BaseURL[0].base;
                    assert_eq!(
                        Path::new(&track).join(base),
                        Path::new(r["init"].as_str().unwrap()),
                        "{path:?} {rid}"
                    );
                    let sb = rep.SegmentBase.as_ref().expect("SegmentBase");
                    let span = |text: &str| -> (usize, usize) {
                        let (a, b) = text.split_once('-').unwrap();
                        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                        (a, b + 1 - a)
                    };
                    let (o, l) = span(sb.indexRange.as_deref().unwrap());
                    assert_eq!(whole_boxes(&all, o, l), ["sidx"], "{path:?} {rid}");
                    let init = sb
                        .Initialization
                        .as_ref()
                        .unwrap()
                        .range
                        .as_deref()
                        .unwrap();
                    let (o, l) = span(init);
                    assert_eq!(whole_boxes(&all, o, l), ["ftyp", "moov"], "{path:?} {rid}");
                    assert_eq!(sb.timescale, r["sample_rate"].as_u64());
                    representations += 1;
                }
            }
        }
    }
    eprintln!(
        "{ranges} segment byte ranges, {representations} SegmentBase representations checked"
    );
    assert!(
        ranges >= 100 && representations >= 100,
        "{ranges} {representations}"
    );
}

/// Every tier's Apple-form playlist, in both packaging forms: m3u8-rs parses it; every variant
/// names an audio group that exists, every group has CHANNELS and SAMPLE-RATE (and BIT-DEPTH for
/// lossless), SCORE ranks lossless above lossy and a higher rung of a codec above a lower one,
/// and the variants are the tier's AAC, ALAC and FLAC renditions, no Opus.
#[test]
fn tier_playlists_are_in_the_form_apples_audio_players_expect() {
    let mut checked = 0;
    for (form, out) in both_forms() {
        let index = report(out);
        for t in index["tracks"].as_array().unwrap() {
            let tiers = t["tier_playlists"].as_array().unwrap();
            assert!(!tiers.is_empty(), "{form}: {}", t["id"]);
            for p in tiers {
                let path = out.join(p["path"].as_str().unwrap());
                let text = std::fs::read(&path).unwrap();
                let Ok(m3u8_rs::Playlist::MasterPlaylist(mv)) = m3u8_rs::parse_playlist_res(&text)
                else {
                    panic!("{path:?}: not a multivariant playlist")
                };
                let tier_rank =
                    |tier: &str| ["free", "premium", "hifi"].iter().position(|x| *x == tier);
                let expected: BTreeSet<String> = t["renditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| r["family"] != "opus")
                    .filter(|r| {
                        tier_rank(r["tier"].as_str().unwrap())
                            <= tier_rank(p["tier"].as_str().unwrap())
                    })
                    .map(|r| r["playlist"].as_str().unwrap().to_string())
                    .collect();
                let track = t["id"].as_str().unwrap();
                let listed: BTreeSet<String> = mv
                    .variants
                    .iter()
                    .map(|v| format!("{track}/{}", v.uri))
                    .collect();
                assert_eq!(listed, expected, "{path:?}");
                let mut last: Option<f64> = None;
                for v in &mv.variants {
                    let group = v.audio.as_deref().expect("AUDIO=");
                    let members: Vec<_> = mv
                        .alternatives
                        .iter()
                        .filter(|a| a.group_id == group)
                        .collect();
                    assert_eq!(members.len(), 1, "{path:?}: group {group}");
                    let a = members[0];
                    assert_eq!(a.media_type, m3u8_rs::AlternativeMediaType::Audio);
                    assert!(
                        a.uri.is_none(),
                        "the variant's own playlist is the group's media"
                    );
                    let other = a.other_attributes.as_ref().expect("SAMPLE-RATE");
                    let rendition = t["renditions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|r| format!("{track}/{}", v.uri) == r["playlist"].as_str().unwrap())
                        .unwrap();
                    assert_eq!(
                        a.channels.as_deref(),
                        Some(rendition["channels"].to_string().as_str())
                    );
                    assert_eq!(
                        other["SAMPLE-RATE"].to_string(),
                        rendition["sample_rate"].to_string()
                    );
                    let lossless = matches!(rendition["codec"].as_str(), Some("flac" | "alac"));
                    assert_eq!(
                        other.contains_key("BIT-DEPTH"),
                        lossless,
                        "{path:?} {group}"
                    );
                    assert_eq!(v.codecs.as_deref(), rendition["codecs"].as_str());
                    assert_eq!(v.bandwidth, rendition["bandwidth"].as_u64().unwrap());
                    assert_eq!(v.average_bandwidth, rendition["average_bandwidth"].as_u64());
                    let score: f64 = v.other_attributes.as_ref().expect("SCORE")["SCORE"]
                        .to_string()
                        .parse()
                        .unwrap();
                    assert_eq!(score >= 10.0, lossless, "{path:?} {}: SCORE {score}", v.uri);
                    // Highest SCORE first.
                    assert!(last.is_none_or(|l| l >= score), "{path:?}: SCORE order");
                    last = Some(score);
                    checked += 1;
                }
                // Within a codec, a higher target bit rate scores higher.
                let mut by_codec: Vec<(String, u64, f64)> = mv
                    .variants
                    .iter()
                    .map(|v| {
                        let r = t["renditions"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|r| {
                                format!("{track}/{}", v.uri) == r["playlist"].as_str().unwrap()
                            })
                            .unwrap();
                        let score = v.other_attributes.as_ref().unwrap()["SCORE"].to_string();
                        (
                            r["codec"].as_str().unwrap().to_string(),
                            r["target_bitrate"].as_u64().unwrap_or(0),
                            score.parse().unwrap(),
                        )
                    })
                    .collect();
                by_codec.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
                for w in by_codec.windows(2) {
                    if w[0].0 == w[1].0 && w[0].1 < w[1].1 {
                        assert!(w[0].2 < w[1].2, "{path:?}: {w:?}");
                    }
                }
            }
        }
    }
    eprintln!("{checked} Apple-form variants checked");
    assert!(checked >= 60, "{checked}");
}
