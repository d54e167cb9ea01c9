//! Packaging, read back with independent parsers: fMP4 boxes with mp4-atom, HLS with m3u8-rs,
//! DASH with dash-mpd-core; byte-for-byte reproducibility; exit codes and clean failures.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use mp4_atom::{Codec, Decode, Ftyp, Moof, Moov};
use serde_json::Value;

/// The AudioSpecificConfig bytes of an init segment's esds (DecSpecificInfo, tag 5, with the
/// four-byte size pressing writes).
fn audio_specific_config(init: &[u8]) -> Vec<u8> {
    let at = init
        .windows(4)
        .position(|w| w == [0x05, 0x80, 0x80, 0x80])
        .expect("DecSpecificInfo");
    let len = init[at + 4] as usize;
    init[at + 5..at + 5 + len].to_vec()
}

/// The AudioSampleEntry samplerate field for a rate: halved until it fits 16 bits.
fn entry_rate(rate: u32) -> u32 {
    let mut r = rate;
    while r > 0xffff {
        r /= 2;
    }
    r
}

/// A SegmentTimeline expanded to (t, d) per segment.
fn expand_timeline(timeline: &dash_mpd_core::SegmentTimeline) -> Vec<(u64, u64)> {
    let mut times: Vec<(u64, u64)> = Vec::new();
    for s in &timeline.segments {
        let mut t0 =
            s.t.unwrap_or_else(|| times.last().map_or(0, |&(t, d)| t + d));
        for _ in 0..=s.r.unwrap_or(0) {
            times.push((t0, s.d));
            t0 += s.d;
        }
    }
    times
}

/// The `tfdt` of a media segment file.
fn tfdt(file: &Path) -> u64 {
    let bytes = std::fs::read(file).unwrap();
    let moof = Moof::decode(&mut std::io::Cursor::new(bytes.as_slice())).unwrap();
    moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time
}

#[test]
fn init_and_media_segments_parse_with_their_fields() {
    let out = fixtures_out();
    let report = report(out);
    let mut checked = 0;
    for (track, _, r) in renditions(&report) {
        checked += 1;
        let rid = r["id"].as_str().unwrap();
        let dir = rendition_dir(&out.join(&track), rid);
        let init = std::fs::read(dir.join("init.mp4")).unwrap();
        let mut cur = std::io::Cursor::new(init.as_slice());
        let ftyp = Ftyp::decode(&mut cur).expect("ftyp");
        assert_eq!(ftyp.major_brand, b"iso6".into());
        assert!(ftyp.compatible_brands.contains(&b"cmfc".into()));
        let moov = Moov::decode(&mut cur).expect("moov");
        assert_eq!(
            cur.position() as usize,
            init.len(),
            "{rid}: trailing bytes in init"
        );
        let rate = r["sample_rate"].as_u64().unwrap() as u32;
        assert_eq!(moov.mvhd.timescale, rate);
        assert_eq!(moov.mvhd.creation_time, 0, "no wall-clock times");
        let trak = &moov.trak[0];
        assert_eq!(trak.mdia.mdhd.timescale, rate, "{rid}: mdhd timescale");
        assert_eq!(trak.mdia.hdlr.handler, b"soun".into());
        let trex = &moov.mvex.as_ref().expect("mvex").trex[0];
        assert_eq!(
            (trex.track_id, trex.default_sample_description_index),
            (1, 1)
        );
        let channels = r["channels"].as_u64().unwrap() as u16;
        match (
            &trak.mdia.minf.stbl.stsd.codecs[0],
            r["codec"].as_str().unwrap(),
        ) {
            (Codec::Mp4a(a), "aac-lc" | "he-aac" | "he-aac-v2") => {
                assert_eq!(a.audio.channel_count, channels);
                assert_eq!(a.esds.es_desc.dec_config.object_type_indication, 0x40);
                let aot = r["codecs"].as_str().unwrap().rsplit('.').next().unwrap();
                let asc = audio_specific_config(&init);
                let bits = |at: usize, n: usize| -> u32 {
                    (at..at + n).fold(0, |v, i| {
                        (v << 1) | u32::from((asc[i / 8] >> (7 - i % 8)) & 1)
                    })
                };
                if aot == "5" {
                    // Backward-compatible explicit SBR signalling (ISO/IEC 14496-3 1.6.5.2): the
                    // AAC-LC core, then SBR present at twice the core rate, then PS absent, so
                    // a mono stream decodes as mono.
                    assert_eq!(bits(0, 5), 2, "{rid}: core AOT");
                    assert_eq!(bits(9, 4), u32::from(channels), "{rid}: channel config");
                    assert_eq!(
                        (bits(16, 11), bits(27, 5), bits(32, 1)),
                        (0x2b7, 5, 1),
                        "{rid}"
                    );
                    assert_eq!(bits(5, 4), bits(33, 4) + 3, "{rid}: core at half the rate");
                    assert_eq!((bits(37, 11), bits(48, 1)), (0x548, 0), "{rid}: PS absent");
                    if channels == 1 {
                        // FFmpeg believes it: one channel out, not a parametric-stereo upmix.
                        let joined = scratch().join("mono-he-aac.mp4");
                        let mut bytes = init.clone();
                        for seg in segment_files(&dir) {
                            bytes.extend(std::fs::read(seg).unwrap());
                        }
                        std::fs::write(&joined, bytes).unwrap();
                        let o = std::process::Command::new("ffprobe")
                            .args([
                                "-v",
                                "error",
                                "-show_entries",
                                "stream=channels",
                                "-of",
                                "csv=p=0",
                            ])
                            .arg(&joined)
                            .output()
                            .unwrap();
                        assert_eq!(
                            String::from_utf8_lossy(&o.stdout).trim(),
                            "1",
                            "{rid}: FFmpeg's channels"
                        );
                    }
                } else {
                    assert_eq!(
                        bits(0, 5).to_string(),
                        aot,
                        "{rid}: audio object type in the ASC"
                    );
                }
            }
            (Codec::Opus(o), "opus") => {
                assert_eq!(o.dops.output_channel_count as u16, channels);
                // Opus in ISO BMFF 4.3.6.2: a `roll` group of 80 ms pre-roll (4 packets of 20 ms).
                let sgpd = &trak.mdia.minf.stbl.sgpd;
                assert_eq!(sgpd.len(), 1, "{rid}: one sgpd");
                assert_eq!(sgpd[0].grouping_type, b"roll".into());
                assert_eq!(
                    format!("{:?}", sgpd[0].entries[0].entry),
                    format!(
                        "{:?}",
                        mp4_atom::AnySampleGroupEntry::UnknownGroupingType(
                            b"roll".into(),
                            (-4i16).to_be_bytes().to_vec()
                        )
                    ),
                    "{rid}: roll_distance"
                );
                assert_eq!(
                    o.dops.pre_skip as u64,
                    r["priming_samples"].as_u64().unwrap()
                );
            }
            (Codec::Flac(f), "flac") => {
                assert_eq!(f.audio.channel_count, channels);
                assert_eq!(
                    f.audio.sample_rate.integer() as u32,
                    entry_rate(rate),
                    "{rid}"
                );
                assert_eq!(
                    f.audio.sample_size as u64,
                    r["bits_per_sample"].as_u64().unwrap()
                );
            }
            (Codec::Unknown(fourcc, body), "alac") if *fourcc == b"alac".into() => {
                // mp4-atom has no ALAC type: read the AudioSampleEntry fields and the `alac`
                // box's ALACSpecificConfig (Apple's ALAC magic cookie layout) by hand.
                let be16 = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
                let be32 = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().unwrap());
                let bits = r["bits_per_sample"].as_u64().unwrap();
                assert_eq!((be16(16), u64::from(be16(18))), (channels, bits), "{rid}");
                assert_eq!(
                    u32::from(be16(24)),
                    entry_rate(rate),
                    "{rid}: samplerate field"
                );
                assert_eq!(body.len(), 28 + 36, "{rid}: sample entry + alac box");
                assert_eq!((be32(28), &body[32..36]), (36, &b"alac"[..]), "{rid}");
                let config = 40; // after the full box's version and flags
                assert_eq!(be32(config), 4096, "{rid}: frameLength");
                assert_eq!(u64::from(body[config + 5]), bits, "{rid}: bitDepth");
                assert_eq!(u16::from(body[config + 9]), channels, "{rid}: numChannels");
                assert_eq!(be32(config + 20), rate, "{rid}: sampleRate");
            }
            (other, codec) => panic!("{rid}: {codec} rendition has sample entry {other:?}"),
        }

        // Media segments: one moof per file, sequence numbers from 1, tfdt continuous,
        // trun durations adding up, data offsets pointing into mdat.
        let mut next_time = 0u64;
        let segs = segment_files(&dir);
        assert_eq!(segs.len() as u64, r["segments"].as_u64().unwrap());
        for (i, seg) in segs.iter().enumerate() {
            let bytes = std::fs::read(seg).unwrap();
            let mut cur = std::io::Cursor::new(bytes.as_slice());
            let moof = Moof::decode(&mut cur).expect("moof");
            let moof_len = cur.position() as usize;
            assert_eq!(&bytes[moof_len + 4..moof_len + 8], b"mdat");
            assert_eq!(moof.mfhd.sequence_number, i as u32 + 1);
            let traf = &moof.traf[0];
            let tfdt = traf.tfdt.as_ref().expect("tfdt").base_media_decode_time;
            assert_eq!(tfdt, next_time, "{rid} segment {}: tfdt continuity", i + 1);
            let trun = &traf.trun[0];
            let entries: Vec<_> = trun.samples.iter().collect();
            let payload: u64 = entries.iter().map(|e| e.size.unwrap() as u64).sum();
            assert_eq!(
                payload as usize,
                bytes.len() - moof_len - 8,
                "{rid}: mdat size"
            );
            assert_eq!(trun.data_offset, Some(moof_len as i32 + 8));
            if r["codec"] == "opus" {
                let sbgp = &traf.sbgp;
                assert_eq!(sbgp.len(), 1, "{rid} segment {}: one sbgp", i + 1);
                assert_eq!(sbgp[0].grouping_type, b"roll".into());
                assert_eq!(
                    (
                        sbgp[0].entries[0].sample_count as usize,
                        sbgp[0].entries[0].group_description_index
                    ),
                    (entries.len(), 1),
                    "{rid} segment {}: every sample in the roll group",
                    i + 1
                );
            } else {
                assert!(traf.sbgp.is_empty(), "{rid}: no sample groups");
            }
            next_time += entries
                .iter()
                .map(|e| e.duration.unwrap() as u64)
                .sum::<u64>();
        }
        let (priming, presented) = edit_list(&dir.join("init.mp4"));
        let mehd = moov.mvex.as_ref().unwrap().mehd.as_ref().expect("mehd");
        assert_eq!(
            mehd.fragment_duration, presented,
            "{rid}: mehd is the edited duration"
        );
        assert!(
            next_time >= priming + presented,
            "{rid}: media shorter than the edit"
        );
    }
    // Every init segment in the package was checked, and there are some.
    let inits = files_named(out, |n| n == "init.mp4").len();
    assert_eq!(
        checked, inits,
        "renditions checked vs init segments on disk"
    );
    assert!(checked >= 40, "only {checked} renditions checked");
}

#[test]
fn hls_playlists_parse_and_match_the_segments() {
    let out = fixtures_out();
    let report = report(out);
    let mut checked = 0;
    for t in report["tracks"].as_array().unwrap() {
        let track = t["id"].as_str().unwrap();
        let by_id: BTreeMap<&str, &Value> = t["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_str().unwrap(), r))
            .collect();
        for (rid, r) in &by_id {
            let dir = rendition_dir(&out.join(track), rid);
            let text = std::fs::read(dir.join("index.m3u8")).unwrap();
            checked += 1;
            let m3u8_rs::Playlist::MediaPlaylist(pl) = m3u8_rs::parse_playlist_res(&text).unwrap()
            else {
                panic!("{rid}: not a media playlist")
            };
            assert!(pl.end_list && pl.independent_segments);
            assert_eq!(pl.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
            assert_eq!(pl.segments[0].map.as_ref().unwrap().uri, "init.mp4");
            let rate = r["sample_rate"].as_f64().unwrap();
            let files = segment_files(&dir);
            assert_eq!(pl.segments.len(), files.len());
            let mut peak = 0.0f64;
            let mut bits = 0.0;
            let mut seconds = 0.0;
            for (seg, file) in pl.segments.iter().zip(&files) {
                assert_eq!(seg.uri, file.file_name().unwrap().to_str().unwrap());
                assert!(seg.duration.round() as u64 <= pl.target_duration);
                let size = std::fs::metadata(file).unwrap().len() as f64 * 8.0;
                peak = peak.max(size / seg.duration as f64);
                bits += size;
                seconds += seg.duration as f64;
            }
            // EXTINF adds up to the media duration (priming + presented + padding).
            let (priming, presented) = edit_list(&dir.join("init.mp4"));
            assert!(seconds * rate >= (priming + presented) as f64 - 1.0);
            let bw = r["bandwidth"].as_f64().unwrap();
            assert!(
                (bw - peak).abs() / peak < 0.001,
                "{rid}: BANDWIDTH {bw} vs peak {peak}"
            );
            let avg = r["average_bandwidth"].as_f64().unwrap();
            assert!(
                (avg - bits / seconds).abs() / avg < 0.001,
                "{rid}: AVERAGE-BANDWIDTH"
            );
        }
        for p in t["playlists"].as_array().unwrap() {
            let path = out.join(p["path"].as_str().unwrap());
            let text = std::fs::read(&path).unwrap();
            let m3u8_rs::Playlist::MasterPlaylist(mv) = m3u8_rs::parse_playlist_res(&text).unwrap()
            else {
                panic!("{path:?}: not a multivariant playlist")
            };
            assert!(!mv.variants.is_empty());
            let tier = p["tier"].as_str().unwrap();
            let family = p["family"].as_str().unwrap();
            let mut seen = std::collections::HashSet::new();
            for v in &mv.variants {
                let rid = v.uri.split('/').next().unwrap();
                let r = by_id[rid];
                assert_eq!(v.codecs.as_deref(), r["codecs"].as_str(), "{rid}: CODECS");
                assert_eq!(
                    Some(v.bandwidth),
                    r["bandwidth"].as_u64(),
                    "{rid}: BANDWIDTH"
                );
                assert_eq!(v.average_bandwidth, r["average_bandwidth"].as_u64());
                assert_eq!(r["family"], family, "{rid} in the {family} playlist");
                assert!(tier_rank(r["tier"].as_str().unwrap()) <= tier_rank(tier));
                assert!(
                    seen.insert((v.codecs.clone(), v.bandwidth)),
                    "two indistinguishable variants"
                );
            }
        }
    }
    // Every media playlist in the package was checked.
    let on_disk = files_named(out, |n| n == "index.m3u8").len();
    assert_eq!(checked, on_disk, "media playlists checked vs on disk");
    assert!(checked >= 40, "only {checked} media playlists checked");
}

fn tier_rank(t: &str) -> u8 {
    match t {
        "free" => 0,
        "premium" => 1,
        "hifi" => 2,
        other => panic!("unknown tier {other}"),
    }
}

#[test]
fn dash_mpds_parse_and_match_the_segments() {
    let out = fixtures_out();
    let report = report(out);
    let (mut mpds, mut representations) = (0, 0);
    for t in report["tracks"].as_array().unwrap() {
        let track = t["id"].as_str().unwrap();
        for m in t["mpds"].as_array().unwrap() {
            mpds += 1;
            let text = std::fs::read_to_string(out.join(m["path"].as_str().unwrap())).unwrap();
            let mpd = dash_mpd_core::parse(&text).expect("MPD parses");
            assert_eq!(mpd.mpdtype.as_deref(), Some("static"));
            let dur = mpd.mediaPresentationDuration.unwrap();
            let tier = m["tier"].as_str().unwrap();
            // The media end after the edit list's start, the longest of the MPD's: what a
            // browser buffers (it does not trim the end), in ms.
            let mut media_end_ms = 0;
            for set in &mpd.periods[0].adaptations {
                let mut families = std::collections::HashSet::new();
                for rep in &set.representations {
                    representations += 1;
                    let rid = rep.id.as_deref().unwrap();
                    let r = rendition_in(t, rid);
                    families.insert(r["family"].as_str().unwrap().to_string());
                    assert!(tier_rank(r["tier"].as_str().unwrap()) <= tier_rank(tier));
                    assert_eq!(rep.codecs.as_deref(), r["codecs"].as_str());
                    assert_eq!(rep.bandwidth, r["bandwidth"].as_u64());
                    assert_eq!(
                        rep.audioSamplingRate.as_deref(),
                        Some(r["sample_rate"].to_string().as_str())
                    );
                    assert_eq!(
                        rep.AudioChannelConfiguration[0].value.as_deref(),
                        Some(r["channels"].to_string().as_str())
                    );
                    let st = rep.SegmentTemplate.as_ref().unwrap();
                    assert_eq!(st.timescale, r["sample_rate"].as_u64());
                    // Expand the timeline and compare with the files' tfdt and durations.
                    let times = expand_timeline(st.SegmentTimeline.as_ref().unwrap());
                    let (t0, d0) = times.last().unwrap();
                    let media = t0 + d0 - r["priming_samples"].as_u64().unwrap();
                    media_end_ms = media_end_ms.max(media * 1000 / st.timescale.unwrap());
                    let files = segment_files(&rendition_dir(&out.join(track), rid));
                    assert_eq!(times.len(), files.len(), "{rid}: timeline length");
                    for (i, ((t0, _), file)) in times.iter().zip(&files).enumerate() {
                        assert_eq!(*t0, tfdt(file), "{rid}: S@t of segment {}", i + 1);
                    }
                }
                assert_eq!(families.len(), 1, "one codec family per AdaptationSet");
            }
            // One millisecond past the longest media: the element ends before dash.js's own
            // end check can see the clock past the period (manifest::media_end_ms).
            assert_eq!(dur.as_millis() as u64, media_end_ms + 1, "{track} {tier}");
            assert!(dur.as_secs_f64() > t["duration_seconds"].as_f64().unwrap());
        }
    }
    // Every MPD in the package was checked; the top tier's MPD lists every rendition of its
    // track, so the representations are at least the renditions.
    assert_eq!(mpds, files_named(out, |n| n.ends_with(".mpd")).len());
    let inits = files_named(out, |n| n == "init.mp4").len();
    assert!(
        mpds >= 5 && representations >= inits,
        "{mpds} MPDs, {representations} representations"
    );
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let a = fixtures_out();
    let b = run_once("fixtures-again", &["fixtures/album", "fixtures/gapless"]);
    let all = files_named(a, |_| true);
    for p in &all {
        let rel = p.strip_prefix(a).unwrap();
        let other = std::fs::read(b.join(rel)).unwrap_or_else(|_| panic!("{rel:?} missing"));
        assert!(
            std::fs::read(p).unwrap() == other,
            "{rel:?} differs between runs"
        );
    }
    assert!(all.len() > 150, "only {} files compared", all.len());
    // The package index is one of them, and the second run wrote nothing more.
    assert!(all.contains(&a.join("index.json")) && !a.join("report.json").exists());
    assert_eq!(
        files_named(&b, |_| true).len(),
        all.len(),
        "the second run's folder holds other files"
    );
}

/// `--report FILE` writes the run's report there and nowhere else; standard output gets what
/// the run made (each track's catalog record), or the report with `--json`.
#[test]
fn the_report_goes_where_report_says_and_the_records_to_standard_output() {
    let dir = scratch().join("report-flag");
    let _ = std::fs::remove_dir_all(&dir);
    let (out, report_path) = (dir.join("out"), dir.join("run-report.json"));
    let ladder = dir.join("one.toml");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        &ladder,
        "[[rung]]\nid = \"aac-64\"\ncodec = \"aac-lc\"\nbitrate = 64\nsample_rate = 44100\ntier = \"free\"\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "fixtures/album/03-mono.aiff",
            "--ladder",
            ladder.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = pressing(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    // Standard output: the catalog record of the one track, as a key of the package.
    let printed = run(&[]);
    let index = report(&out);
    let record = index["tracks"][0]["catalog"].as_str().unwrap();
    assert_eq!(printed, format!("{record}\n"));
    assert!(out.join(record).is_file());
    assert!(!report_path.exists() && !out.join("report.json").exists());
    // --report FILE and --json: the same report, with stats, and nothing more in the package.
    let printed = run(&["--report", report_path.to_str().unwrap(), "--json"]);
    let written: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let shown: Value = serde_json::from_str(&printed).unwrap();
    assert!(written["stats"]["wall_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(
        written["stats"]["cpu_seconds"],
        shown["stats"]["cpu_seconds"]
    );
    assert_eq!(written["tracks"], shown["tracks"]);
    // The report is the index plus stats.
    let mut without_stats = written.clone();
    without_stats.as_object_mut().unwrap().remove("stats");
    assert_eq!(without_stats, report(&out));
    let files: Vec<String> = files_named(&out, |_| true)
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().display().to_string())
        .filter(|p| !p.contains('/'))
        .collect();
    assert_eq!(files, ["index.json"], "the package's top level");
}

#[test]
fn undecodable_input_fails_with_code_65_and_leaves_nothing() {
    let dir = scratch().join("bad-input");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("notes.wav");
    std::fs::write(&text, "these are liner notes, not audio\n").unwrap();
    // A real WAV cut short: the header promises more frames than the file holds.
    let wav = std::fs::read(root().join("fixtures/album/01-cd-stereo.wav")).unwrap();
    let truncated = dir.join("truncated.wav");
    std::fs::write(&truncated, &wav[..wav.len() / 2]).unwrap();
    for (input, needle) in [(&text, "unsupported"), (&truncated, "truncated")] {
        let out = dir.join("out");
        let o = pressing(&[
            "run",
            "--out",
            out.to_str().unwrap(),
            input.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(65), "{stderr}");
        assert!(
            stderr.contains(input.file_name().unwrap().to_str().unwrap()),
            "{stderr}"
        );
        assert!(stderr.contains(needle), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let left: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

#[test]
fn bad_ladder_and_usage_have_their_own_exit_codes() {
    let dir = scratch().join("bad-ladder");
    std::fs::create_dir_all(&dir).unwrap();
    let ladder = dir.join("ladder.toml");
    std::fs::write(
        &ladder,
        "[[rung]]\nid = \"x\"\ncodec = \"opus\"\nbitrate = 96\nsample_rate = 44100\ntier = \"free\"\n",
    )
    .unwrap();
    let o = pressing(&[
        "run",
        "--ladder",
        ladder.to_str().unwrap(),
        "fixtures/album",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("line 1") && stderr.contains("48000"),
        "{stderr}"
    );

    let o = pressing(&["run"]);
    assert_eq!(o.status.code(), Some(64));
    let o = pressing(&["run", "--jobs", "0", "fixtures/album"]);
    assert_eq!(o.status.code(), Some(64));
}

#[test]
fn each_track_carries_a_catalog_record_with_its_metadata_loudness_and_renditions() {
    let out = fixtures_out();
    let report = report(out);
    let mut checked = 0;
    for t in report["tracks"].as_array().unwrap() {
        let path = t["catalog"].as_str().expect("report names the record");
        let text = std::fs::read_to_string(out.join(path)).expect("catalog.json");
        let record: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(record["schema_version"], 1);
        // What was pressed, exactly as the run report has it.
        for key in [
            "id",
            "isrc",
            "sample_rate",
            "channels",
            "duration_samples",
            "hls",
            "dash",
            "playlists",
            "mpds",
            "renditions",
        ] {
            assert_eq!(record[key], t[key], "{path}: {key}");
        }
        for key in ["loudness", "album_loudness"] {
            assert!(record[key]["integrated_lufs"].is_f64(), "{path}: {key}");
            assert_eq!(record[key], t[key], "{path}: {key}");
        }
        // What the label said, as release.json has it.
        let source = root().join(t["source"].as_str().unwrap());
        let json = source.parent().unwrap().join("release.json");
        let release: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        let file = source.file_name().unwrap().to_str().unwrap();
        let track = release["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["file"] == file)
            .unwrap();
        let meta = &record["metadata"];
        for key in ["title", "artists", "track_number"] {
            assert_eq!(meta[key], track[key], "{path}: metadata.{key}");
        }
        let explicit = track["explicit"].as_bool().unwrap_or(false); // optional, false
        assert_eq!(meta["explicit"], explicit, "{path}: metadata.explicit");
        assert_eq!(meta["disc_number"], 1);
        assert_eq!(
            meta["isrc"].as_str().unwrap(),
            track["isrc"].as_str().unwrap().replace('-', "")
        );
        let r = &record["release"];
        for key in ["title", "artists", "label", "upc", "release_date"] {
            assert_eq!(r[key], release[key], "{path}: release.{key}");
        }
        assert_eq!(r["territories"]["worldwide"], true);
        assert_eq!(
            r["territories"]["excluded"],
            release["excluded_territories"]
        );
        assert_eq!(r["gapless"], release["gapless"].as_bool().unwrap_or(false));
        checked += 1;
    }
    assert_eq!(checked, 5);
}

/// The measured mean bit rate (segments with their boxes) of every lossy rendition lies within
/// -5%..+10% of what its encoder targeted (measured +1.1% to +5.3% on the fixtures; the box
/// overhead weighs most at 32 kbit/s).
#[test]
fn lossy_renditions_hold_their_target_bitrate() {
    let out = fixtures_out();
    let report = report(out);
    let mut checked = 0;
    for (track, _, r) in renditions(&report) {
        let Some(target) = r["target_bitrate"].as_f64() else {
            assert!(
                r["bits_per_sample"].is_u64(),
                "{track}: only lossless has no target"
            );
            continue;
        };
        let ratio = r["average_bandwidth"].as_f64().unwrap() / target;
        assert!(
            (0.95..=1.10).contains(&ratio),
            "{track}/{}: {ratio:.3} of the target",
            r["id"]
        );
        checked += 1;
    }
    assert_eq!(checked, 34);
}

#[test]
fn the_report_schema_refuses_a_report_that_breaks_it() {
    let out = fixtures_out();
    let good = report(out);
    let text = std::fs::read_to_string(root().join("schemas/report.schema.json")).unwrap();
    let schema = jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap();
    assert!(schema.is_valid(&good));
    let mut bad = good.clone();
    bad["tracks"][0]["renditions"][0]
        .as_object_mut()
        .unwrap()
        .remove("version");
    assert!(
        !schema.is_valid(&bad),
        "a rendition without its version passed"
    );
    let mut bad = good;
    bad["tracks"][0]["renditions"][0]["bandwidth"] = "256k".into();
    assert!(!schema.is_valid(&bad), "a bit rate as text passed");
}

/// A set member as the timeline test sees it: timescale, expanded SegmentTimeline (t, d), the
/// segments' tfdts and the edit list (media_time, segment_duration).
type SetMember = (u64, Vec<(u64, u64)>, Vec<u64>, (u64, u64));

/// Every switching set shares one timeline: within each AdaptationSet (segmentAlignment and
/// startWithSAP declared, one sample rate) the SegmentTimelines and every segment's `tfdt` are
/// identical, and so are the edit lists; every multivariant playlist's variants list the same
/// EXTINFs. The MPD's durations have three fraction digits (PT10.500S).
#[test]
fn every_switching_set_shares_one_timeline() {
    let out = fixtures_out();
    let report = report(out);
    let mut sets_checked = 0;
    for t in report["tracks"].as_array().unwrap() {
        let track = t["id"].as_str().unwrap();
        let renditions = t["renditions"].as_array().unwrap();
        for m in t["mpds"].as_array().unwrap() {
            let text = std::fs::read_to_string(out.join(m["path"].as_str().unwrap())).unwrap();
            for attr in [
                "mediaPresentationDuration",
                "minBufferTime",
                "maxSegmentDuration",
            ] {
                let at = text.find(&format!("{attr}=\"")).expect(attr) + attr.len() + 2;
                let value = &text[at..at + text[at..].find('"').unwrap()];
                let frac = value.trim_start_matches("PT").trim_end_matches('S');
                assert!(
                    frac.split_once('.').is_some_and(|(s, f)| f.len() == 3
                        && s.bytes().all(|b| b.is_ascii_digit())),
                    "{attr}={value}: seconds with three fraction digits"
                );
            }
            let mpd = dash_mpd_core::parse(&text).expect("MPD parses");
            for set in &mpd.periods[0].adaptations {
                assert_eq!(set.segmentAlignment, Some(true), "{track}: {:?}", set.Label);
                assert_eq!(set.startWithSAP, Some(1));
                // (rate, timeline, tfdts, edit list) of every member.
                let members: Vec<SetMember> = set
                    .representations
                    .iter()
                    .map(|rep| {
                        let rid = rep.id.as_deref().unwrap();
                        let st = rep.SegmentTemplate.as_ref().unwrap();
                        let dir = rendition_dir(&out.join(track), rid);
                        (
                            st.timescale.unwrap(),
                            expand_timeline(st.SegmentTimeline.as_ref().unwrap()),
                            segment_files(&dir).iter().map(|f| tfdt(f)).collect(),
                            edit_list(&dir.join("init.mp4")),
                        )
                    })
                    .collect();
                let (rate0, times0, tfdts0, edit0) = &members[0];
                for (rate, times, tfdts, edit) in &members[1..] {
                    assert_eq!(rate, rate0, "{track}: one sample rate per set");
                    assert_eq!(times, times0, "{track}: SegmentTimelines differ");
                    assert_eq!(tfdts, tfdts0, "{track}: tfdts differ");
                    assert_eq!(edit, edit0, "{track}: edit lists differ");
                }
                sets_checked += 1;
            }
        }
        for p in t["playlists"].as_array().unwrap() {
            let path = out.join(p["path"].as_str().unwrap());
            let text = std::fs::read(&path).unwrap();
            let Ok(m3u8_rs::Playlist::MasterPlaylist(master)) = m3u8_rs::parse_playlist_res(&text)
            else {
                panic!("{path:?}: not a multivariant playlist")
            };
            let extinfs: Vec<(u64, Vec<f64>)> = master
                .variants
                .iter()
                .map(|v| {
                    let media = path.parent().unwrap().join(&v.uri);
                    let Ok(m3u8_rs::Playlist::MediaPlaylist(pl)) =
                        m3u8_rs::parse_playlist_res(&std::fs::read(&media).unwrap())
                    else {
                        panic!("{media:?}: not a media playlist")
                    };
                    let rid = v.uri.split('/').next().unwrap();
                    let rate = renditions.iter().find(|r| r["id"] == rid).unwrap()["sample_rate"]
                        .as_u64()
                        .unwrap();
                    (
                        rate,
                        pl.segments.iter().map(|s| f64::from(s.duration)).collect(),
                    )
                })
                .collect();
            for (rate, durations) in &extinfs[1..] {
                assert_eq!(*rate, extinfs[0].0, "{path:?}: one sample rate per set");
                assert_eq!(durations, &extinfs[0].1, "{path:?}: EXTINFs differ");
            }
        }
    }
    assert!(sets_checked >= 20, "{sets_checked} sets");
}
