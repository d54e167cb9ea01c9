//! Manifests: HLS playlists (RFC 8216, through m3u8-rs) and DASH MPDs (ISO/IEC 23009-1, through
//! dash-mpd-core), built from the neutral description of packaged renditions (segment file,
//! start, duration, size), never from boxes.
//!
//! Grouping: renditions are switchable only within a codec family (AAC-LC + HE-AAC, Opus,
//! lossless) at one sample rate. A switch between rates is a decoder reconfiguration browsers
//! do not make seamlessly (measured: Shaka Player in Chromium stalls 0.4 s before the end of a
//! FLAC set of 44.1 and 48 kHz in 5 runs of 6, and never once both variants are 44.1 kHz), so
//! the lossless family at the CD rate and at the master's rate are two sets. DASH says that
//! with one AdaptationSet per set in each tier's MPD; HLS has no switching-set construct, so
//! each (tier, set) gets its own multivariant playlist.

use std::collections::BTreeMap;
use std::time::Duration;

use dash_mpd_core as mpd;
use m3u8_rs::{MasterPlaylist, MediaPlaylist, MediaPlaylistType, MediaSegment, VariantStream};

use crate::ladder::{Family, Tier};
use crate::layout;
use crate::package::PackagedRendition;
use crate::protect::{self, RenditionProtection};

/// A rendition's folder (its version folder), relative to the track folder.
pub fn rendition_dir(r: &PackagedRendition) -> String {
    layout::rendition_dir(&r.id, &r.version)
}

/// Path of a rendition's media playlist, relative to the track folder.
pub fn media_playlist_path(r: &PackagedRendition) -> String {
    format!("{}/{}", rendition_dir(r), layout::MEDIA_PLAYLIST_FILE)
}

/// What an entry manifest is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A (tier, family, rate) multivariant playlist: one switching set.
    SetPlaylist,
    /// A tier's Apple-form multivariant playlist (`create_tier_playlist`).
    TierPlaylist,
    /// A tier's MPD.
    Mpd,
}

/// One entry manifest of a track: a (tier, family) multivariant playlist, a tier's Apple-form
/// playlist or a tier's MPD.
pub struct EntryManifest {
    pub kind: EntryKind,
    pub tier: Tier,
    /// `None` for a tier's playlist or MPD (they hold several sets).
    pub family: Option<Family>,
    /// The set's sample rate (`None` for an MPD).
    pub sample_rate: Option<u32>,
    /// Path relative to the track folder.
    pub path: String,
    pub text: String,
}

/// The set policy: tiers are cumulative (each tier's manifests hold its own rungs and every
/// lower tier's); a player switches only within a codec family at one sample rate, so each
/// (tier, family, rate) gets a multivariant playlist and each tier an MPD with one
/// AdaptationSet per (family, rate). A family's lowest rate in the track keeps the plain name
/// (`hifi-lossless.m3u8`); another rate is named with it (`hifi-lossless-96000.m3u8`).
pub fn create_entry_manifests(
    renditions: &[(Tier, Family, &PackagedRendition)],
) -> Vec<EntryManifest> {
    let lowest = |family: Family| {
        renditions
            .iter()
            .filter(|(_, f, _)| *f == family)
            .map(|(_, _, r)| r.stream.sample_rate)
            .min()
    };
    let mut out = Vec::new();
    for tier in Tier::ALL {
        let mut sets: BTreeMap<(Family, u32), Vec<&PackagedRendition>> = BTreeMap::new();
        for &(t, family, r) in renditions {
            if t <= tier {
                sets.entry((family, r.stream.sample_rate))
                    .or_default()
                    .push(r);
            }
        }
        if sets.is_empty() {
            continue;
        }
        // Clear and protected renditions never share a switching set (dash.js 5.2 refuses an
        // AdaptationSet that mixes them, and a player cannot move between a licence and none
        // mid-stream): a set with protected members keeps those alone. A protected tier's
        // listeners play its own rungs; the lower tier's clear rungs stay in that tier's
        // manifests.
        for members in sets.values_mut() {
            if members.iter().any(|r| r.protection.is_some()) {
                members.retain(|r| r.protection.is_some());
            }
        }
        let mut labelled = Vec::new();
        for (&(family, rate), members) in &sets {
            let plain = lowest(family) == Some(rate);
            let name = if plain {
                family.as_str().to_string()
            } else {
                format!("{}-{rate}", family.as_str())
            };
            out.push(EntryManifest {
                kind: EntryKind::SetPlaylist,
                tier,
                family: Some(family),
                sample_rate: Some(rate),
                path: layout::multivariant_playlist(tier.as_str(), &name),
                text: create_multivariant_playlist(members),
            });
            labelled.push((name, members.clone()));
        }
        let apple: Vec<&PackagedRendition> = sets
            .iter()
            .filter(|((family, _), _)| APPLE_FAMILIES.contains(family))
            .flat_map(|(_, members)| members.iter().copied())
            .collect();
        if !apple.is_empty() {
            out.push(EntryManifest {
                kind: EntryKind::TierPlaylist,
                tier,
                family: None,
                sample_rate: None,
                path: layout::tier_playlist(tier.as_str()),
                text: create_tier_playlist(&apple),
            });
        }
        out.push(EntryManifest {
            kind: EntryKind::Mpd,
            tier,
            family: None,
            sample_rate: None,
            path: layout::mpd(tier.as_str()),
            text: create_mpd(&labelled),
        });
    }
    out
}

/// RFC 8216 4.3.3: a VOD media playlist for one rendition; URIs relative to its own folder.
pub fn create_media_playlist(r: &PackagedRendition) -> String {
    let rate = f64::from(r.stream.sample_rate);
    let seconds = |samples: u64| samples as f64 / rate;
    // 4.3.3.1: every EXTINF rounded to the nearest integer must not exceed the target duration.
    let target = r
        .segments
        .iter()
        .map(|s| seconds(s.duration).round() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let segments = r
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| MediaSegment {
            uri: s.file.clone(),
            duration: seconds(s.duration) as f32,
            // The single-file form: each fragment's bytes of the track file (4.3.2.2).
            byte_range: s.offset.map(|offset| m3u8_rs::ByteRange {
                length: s.bytes,
                offset: Some(offset),
            }),
            map: (i == 0).then(|| m3u8_rs::Map {
                uri: r.init_file.clone(),
                byte_range: r.track_file.map(|t| m3u8_rs::ByteRange {
                    length: t.init.length,
                    offset: Some(t.init.offset),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let playlist = MediaPlaylist {
        // Version 7: EXT-X-MAP in a playlist without I-frames needs 6 (RFC 8216 7), and
        // EXT-X-BYTERANGE 4.
        version: Some(7),
        target_duration: target,
        media_sequence: 0,
        segments,
        end_list: true,
        playlist_type: Some(MediaPlaylistType::Vod),
        independent_segments: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    playlist
        .write_to(&mut out)
        .expect("writing to a Vec cannot fail");
    let text = String::from_utf8(out).expect("m3u8-rs writes UTF-8");
    match &r.protection {
        // The keys precede the EXT-X-MAP and every segment they apply to (RFC 8216 4.3.2.4).
        Some(p) => text.replacen(
            "#EXT-X-MAP:",
            &format!("{}#EXT-X-MAP:", key_lines(p, "KEY")),
            1,
        ),
        None => text,
    }
}

/// RFC 8216bis 4.4.4.4: one `EXT-X-KEY` (or, with `tag` = `SESSION-KEY`, 4.4.6.5
/// `EXT-X-SESSION-KEY`) per DRM system of a protected rendition, as Apple's HLS authoring
/// specification lists them: METHOD `SAMPLE-AES` for cbcs, `SAMPLE-AES-CTR` for cenc, the
/// system's KEYFORMAT, its URI (FairPlay's `skd://`, the others' initialization data as a
/// `data:` URI) and the KEYID. ClearKey's URI holds the key id itself (what hls.js reads from
/// it). Each line ends with a newline.
pub fn key_lines(p: &RenditionProtection, tag: &str) -> String {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let kid = &p.key.kid;
    let mut text = String::new();
    for system in &p.systems {
        let uri = match (&system.hls_uri, system.system_id) {
            (Some(uri), _) => uri.clone(),
            (None, protect::CLEARKEY) => format!("data:text/plain;base64,{}", b64(&kid.0)),
            (None, protect::FAIRPLAY) => format!("skd://{}", kid.hex()),
            (None, protect::PLAYREADY) => match &system.pssh {
                // The PlayReady Object (the pssh box's data), UTF-16 as PlayReady defines it.
                Some(pssh) => format!(
                    "data:text/plain;charset=UTF-16;base64,{}",
                    b64(pssh_data(pssh))
                ),
                None => continue,
            },
            (None, _) => match &system.pssh {
                Some(pssh) => format!("data:text/plain;base64,{}", b64(pssh)),
                None => continue,
            },
        };
        text.push_str(&format!(
            "#EXT-X-{tag}:METHOD={},URI=\"{uri}\",KEYFORMAT=\"{}\",KEYFORMATVERSIONS=\"1\",KEYID=0x{}\n",
            p.scheme.hls_method(),
            protect::hls_keyformat(&system.system_id),
            kid.hex().to_uppercase(),
        ));
    }
    text
}

/// The data of a `pssh` box (ISO/IEC 23001-7 8.1.1), after its key ids in version 1.
fn pssh_data(pssh: &[u8]) -> &[u8] {
    let mut at = 28;
    if pssh.get(8) == Some(&1) {
        let n = pssh.get(28..32).map_or(0, |b| {
            u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize
        });
        at = 32 + 16 * n;
    }
    pssh.get(at + 4..).unwrap_or(&[])
}

/// The `EXT-X-SESSION-KEY` lines of a multivariant playlist: each distinct key line of its
/// renditions, once, after the header (so a player can start the licence exchange early).
fn with_session_keys(text: String, renditions: &[&PackagedRendition]) -> String {
    let mut lines = String::new();
    for r in renditions {
        if let Some(p) = &r.protection {
            for line in key_lines(p, "SESSION-KEY").lines() {
                if !lines.lines().any(|l| l == line) {
                    lines.push_str(line);
                    lines.push('\n');
                }
            }
        }
    }
    if lines.is_empty() {
        return text;
    }
    let header = "#EXT-X-INDEPENDENT-SEGMENTS\n";
    match text.find(header) {
        Some(at) => {
            let at = at + header.len();
            format!("{}{lines}{}", &text[..at], &text[at..])
        }
        None => text,
    }
}

/// RFC 8216 4.3.4.2: a multivariant playlist over renditions of one switching set, highest
/// bandwidth first.
pub fn create_multivariant_playlist(renditions: &[&PackagedRendition]) -> String {
    let mut sorted: Vec<_> = renditions.to_vec();
    sorted.sort_by(|a, b| b.bandwidth.cmp(&a.bandwidth).then(a.id.cmp(&b.id)));
    let playlist = MasterPlaylist {
        version: Some(7),
        independent_segments: true,
        variants: sorted
            .iter()
            .map(|r| VariantStream {
                uri: media_playlist_path(r),
                bandwidth: r.bandwidth,
                average_bandwidth: Some(r.average_bandwidth),
                codecs: Some(r.codecs.clone()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut out = Vec::new();
    playlist
        .write_to(&mut out)
        .expect("writing to a Vec cannot fail");
    with_session_keys(
        String::from_utf8(out).expect("m3u8-rs writes UTF-8"),
        renditions,
    )
}

/// The families a tier's Apple-form playlist holds: what Apple's players decode (Opus keeps
/// its own playlists).
pub const APPLE_FAMILIES: [Family; 3] = [Family::Aac, Family::Alac, Family::Lossless];

/// The `EXT-X-MEDIA` audio group of a rendition: one per codec, channel count, rate and (for
/// lossless) bit depth, so each group's `CHANNELS`, `SAMPLE-RATE` and `BIT-DEPTH` hold for all
/// of it.
fn audio_group(r: &PackagedRendition) -> String {
    let s = &r.stream;
    let mut id = format!("{}-{}ch-{}", s.codec.as_str(), s.channels, s.sample_rate);
    if let Some(bits) = lossless_bits(r) {
        id.push_str(&format!("-{bits}bit"));
    }
    id
}

/// The `SCORE` of a rendition (RFC 8216bis 4.4.6.2: higher is better, compared within the
/// playlist): lossless above every lossy variant (10 plus bit depth / 4 plus rate / 48 kHz:
/// 16-bit 44.1 kHz 14.919, 24-bit 96 kHz 18); a lossy one its measured mean bit rate in units
/// of 100 kbit/s (AAC 256 about 2.6, HE-AAC v2 32 about 0.34), so a higher rung always ranks
/// higher. Three decimals, so the bytes reproduce.
pub fn score(r: &PackagedRendition) -> String {
    format!("{:.3}", score_value(r))
}

fn score_value(r: &PackagedRendition) -> f64 {
    match lossless_bits(r) {
        Some(bits) => 10.0 + f64::from(bits) / 4.0 + f64::from(r.stream.sample_rate) / 48_000.0,
        None => r.average_bandwidth as f64 / 100_000.0,
    }
}

/// A lossless rendition's bit depth (`None` for lossy ones).
fn lossless_bits(r: &PackagedRendition) -> Option<u8> {
    let s = &r.stream;
    s.bits_per_sample.filter(|_| s.codec.is_lossless())
}

/// A tier's multivariant playlist in the form Apple's authoring specification gives audio-only
/// content and Apple Music uses: each variant names its `EXT-X-MEDIA` `TYPE=AUDIO` group
/// (`AUDIO=`), whose one member has no URI (RFC 8216 4.3.4.1: its media is the variant's own
/// playlist) and carries `CHANNELS`, `SAMPLE-RATE` and, lossless, `BIT-DEPTH`; each variant
/// has `CODECS`, measured `BANDWIDTH` and `AVERAGE-BANDWIDTH`, and a `SCORE` (`score`).
/// Highest score first. Written directly: m3u8-rs keeps the attributes it does not know in a
/// HashMap, whose order changes between runs, and these bytes must reproduce.
pub fn create_tier_playlist(renditions: &[&PackagedRendition]) -> String {
    let mut sorted: Vec<&PackagedRendition> = renditions.to_vec();
    // On the SCORE as written (three decimals), so equal SCOREs fall back to the id.
    let key = |r: &PackagedRendition| (score_value(r) * 1000.0).round() as i64;
    sorted.sort_by(|a, b| key(b).cmp(&key(a)).then(a.id.cmp(&b.id)));
    let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let mut groups: Vec<String> = Vec::new();
    for r in &sorted {
        let group = audio_group(r);
        if groups.contains(&group) {
            continue;
        }
        let s = &r.stream;
        text.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{group}\",NAME=\"{group}\",DEFAULT=YES,\
             AUTOSELECT=YES,CHANNELS=\"{}\",SAMPLE-RATE={}",
            s.channels, s.sample_rate
        ));
        if let Some(bits) = lossless_bits(r) {
            text.push_str(&format!(",BIT-DEPTH={bits}"));
        }
        text.push('\n');
        groups.push(group);
    }
    for r in &sorted {
        text.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",AUDIO=\"{}\",\
             SCORE={}\n{}\n",
            r.bandwidth,
            r.average_bandwidth,
            r.codecs,
            audio_group(r),
            score(r),
            media_playlist_path(r)
        ));
    }
    with_session_keys(text, renditions)
}

/// ISO/IEC 23009-1: a static MPD with one AdaptationSet per switching set (labelled with its
/// name), SegmentTemplate with SegmentTimeline per Representation (or, in the single-file form,
/// a BaseURL and a SegmentBase naming the track file's `sidx` and header), bandwidths measured
/// (peak segment rate).
pub fn create_mpd(sets: &[(String, Vec<&PackagedRendition>)]) -> String {
    // The single-file form: ISO/IEC 23009-1 8.3, the on-demand profile (SegmentBase, one
    // indexed file per Representation).
    let on_demand = sets
        .iter()
        .flat_map(|(_, rs)| rs)
        .all(|r| r.track_file.is_some());
    let mut max_segment = 0.0f64;
    let adaptations = sets
        .iter()
        .enumerate()
        .map(|(i, (label, renditions))| {
            let mut sorted = renditions.clone();
            sorted.sort_by(|a, b| b.bandwidth.cmp(&a.bandwidth).then(a.id.cmp(&b.id)));
            let representations = sorted
                .iter()
                .map(|r| {
                    for s in &r.segments {
                        max_segment =
                            max_segment.max(s.duration as f64 / f64::from(r.stream.sample_rate));
                    }
                    representation(r)
                })
                .collect();
            mpd::AdaptationSet {
                id: Some(i.to_string()),
                contentType: Some("audio".into()),
                mimeType: Some("audio/mp4".into()),
                lang: Some("und".into()),
                // One timeline per set (`transcode::timeline`); checked, not assumed. The
                // on-demand profile says it of subsegments (the track file's fragments).
                segmentAlignment: (!on_demand).then(|| aligned(&sorted)),
                startWithSAP: (!on_demand).then_some(1),
                subsegmentAlignment: on_demand.then(|| aligned(&sorted)),
                subsegmentStartsWithSAP: on_demand.then_some(1),
                Label: vec![mpd::Label {
                    content: label.clone(),
                    ..Default::default()
                }],
                ContentProtection: set_protection(&sorted),
                representations,
                ..Default::default()
            }
        })
        .collect();
    let manifest = mpd::MPD {
        xmlns: Some("urn:mpeg:dash:schema:mpd:2011".into()),
        profiles: Some(
            if on_demand {
                "urn:mpeg:dash:profile:isoff-on-demand:2011"
            } else {
                "urn:mpeg:dash:profile:isoff-live:2011"
            }
            .into(),
        ),
        mpdtype: Some("static".into()),
        // The MPD's own durations are written below, in a form every parser reads alike.
        periods: vec![mpd::Period {
            id: Some("0".into()),
            start: Some(Duration::ZERO),
            adaptations,
            ..Default::default()
        }],
        ..Default::default()
    };
    // xs:duration with exactly three fraction digits (PT10.500S): GPAC reads the fraction of
    // PT10.5S as 5 ms. The exact timeline is the SegmentTimeline's integers; these bound it.
    // The presentation's length is past the end of every set's media (`media_end_ms`); the
    // longest segment is rounded up.
    let attributes = format!(
        "<MPD mediaPresentationDuration=\"{}\" minBufferTime=\"{}\" maxSegmentDuration=\"{}\" ",
        xs_duration(media_end_ms(sets)),
        xs_duration((max_segment.ceil().max(1.0) * 1000.0) as u64),
        xs_duration((max_segment * 1000.0).ceil() as u64),
    );
    manifest.to_string().replacen("<MPD ", &attributes, 1)
}

/// DASH-IF IOP 7.7.2: a protected AdaptationSet's `ContentProtection` elements: the scheme
/// (`urn:mpeg:dash:mp4protection:2011`, value `cbcs` or `cenc`, `cenc:default_KID`), then one
/// per DRM system with its `cenc:pssh`. Every member of a set shares its tier's key (the set
/// policy keeps a set to one protection); a set that would hold two keys signals the first's,
/// which only a ladder with two protected tiers in one family at one rate could make.
fn set_protection(members: &[&PackagedRendition]) -> Vec<mpd::ContentProtection> {
    use base64::Engine as _;
    let Some(p) = members.iter().find_map(|r| r.protection.as_ref()) else {
        return Vec::new();
    };
    let mut out = vec![mpd::ContentProtection {
        schemeIdUri: "urn:mpeg:dash:mp4protection:2011".into(),
        value: Some(p.scheme.as_str().into()),
        default_KID: Some(p.key.kid.to_string()),
        ..Default::default()
    }];
    // A system without initialization data (FairPlay: HLS only) has nothing to say here.
    for system in p.systems.iter().filter(|s| s.pssh.is_some()) {
        out.push(mpd::ContentProtection {
            schemeIdUri: protect::system_urn(&system.system_id),
            cenc_pssh: system
                .pssh
                .iter()
                .map(|b| mpd::CencPssh {
                    content: Some(base64::engine::general_purpose::STANDARD.encode(b)),
                })
                .collect(),
            ..Default::default()
        });
    }
    out
}

/// An xs:duration of `ms` milliseconds in seconds with three fraction digits.
/// `mediaPresentationDuration`, in ms: one past the end of the longest set's media as a browser
/// buffers it, which is the media after the edit list's start (its priming) but not its end:
/// Chromium's MSE applies an edit list's `media_time` and not its `segment_duration`, so an
/// AAC or Opus set's buffered media runs past the track's length by its frame-grid padding
/// (19.5 ms for Opus, up to a frame and a half for AAC). A period that ends before the media
/// does lets dash.js 5.2's 200 ms end check see the clock past the period's end before the
/// element has ended: it then seeks to the period's end, which its `seekDurationBackoff`
/// clamps to 0.5 s before it, and pauses there (a track stopped half a second early, never
/// `ended`: 1 run in 20 of a 5.1 Opus set, measured). Strictly past the media, the element's own
/// end comes first (`endOfStream` trims the MediaSource's duration to the buffered end), and
/// the MPD's length agrees with the HLS playlists' EXTINFs, which are the same media durations.
fn media_end_ms(sets: &[(String, Vec<&PackagedRendition>)]) -> u64 {
    sets.iter()
        .flat_map(|(_, rs)| rs)
        .map(|r| {
            let rate = u64::from(r.stream.sample_rate);
            (r.media_duration - u64::from(r.stream.priming)) * 1000 / rate + 1
        })
        .max()
        .unwrap_or(0)
}

fn xs_duration(ms: u64) -> String {
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

/// Whether every rendition's segments start at the same presentation times.
fn aligned(renditions: &[&PackagedRendition]) -> bool {
    // Presentation time of a segment start, as an exact fraction of a second.
    let starts = |r: &PackagedRendition| -> Vec<(i128, i128)> {
        r.segments
            .iter()
            .map(|s| {
                (
                    s.start as i128 - i128::from(r.stream.priming),
                    i128::from(r.stream.sample_rate),
                )
            })
            .collect()
    };
    let first = starts(renditions[0]);
    renditions[1..].iter().all(|r| {
        let other = starts(r);
        other.len() == first.len()
            && other
                .iter()
                .zip(&first)
                .skip(1)
                .all(|(a, b)| a.0 * b.1 == b.0 * a.1)
    })
}

fn representation(r: &PackagedRendition) -> mpd::Representation {
    let mut rep = mpd::Representation {
        id: Some(r.id.clone()),
        bandwidth: Some(r.bandwidth),
        codecs: Some(r.codecs.clone()),
        audioSamplingRate: Some(r.stream.sample_rate.to_string()),
        AudioChannelConfiguration: vec![mpd::AudioChannelConfiguration {
            schemeIdUri: "urn:mpeg:dash:23003:3:audio_channel_configuration:2011".into(),
            value: Some(r.stream.channels.to_string()),
            ..Default::default()
        }],
        ..Default::default()
    };
    if let Some(ranges) = r.track_file {
        // 5.3.9.3: the `sidx` gives every subsegment's bytes and presentation span (after
        // the edit list, so no presentationTimeOffset); the header is the Initialization.
        rep.BaseURL = vec![mpd::BaseURL {
            base: format!("{}/{}", rendition_dir(r), r.init_file),
            ..Default::default()
        }];
        rep.SegmentBase = Some(mpd::SegmentBase {
            timescale: Some(u64::from(r.stream.sample_rate)),
            indexRange: Some(ranges.index.dash()),
            indexRangeExact: Some(true),
            Initialization: Some(mpd::Initialization {
                range: Some(ranges.init.dash()),
                ..Default::default()
            }),
            ..Default::default()
        });
        return rep;
    }
    // Run-length encode equal durations (S@r) as the timeline allows.
    let mut timeline: Vec<mpd::S> = Vec::new();
    for s in &r.segments {
        match timeline.last_mut() {
            Some(last) if last.d == s.duration => last.r = Some(last.r.unwrap_or(0) + 1),
            _ => timeline.push(mpd::S {
                t: Some(s.start),
                d: s.duration,
                ..Default::default()
            }),
        }
    }
    rep.SegmentTemplate = Some(mpd::SegmentTemplate {
        timescale: Some(u64::from(r.stream.sample_rate)),
        initialization: Some(format!("{}/{}", rendition_dir(r), r.init_file)),
        media: Some(format!("{}/{}", rendition_dir(r), layout::SEGMENT_TEMPLATE)),
        startNumber: Some(1),
        SegmentTimeline: Some(mpd::SegmentTimeline { segments: timeline }),
        ..Default::default()
    });
    rep
}
