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

/// A rendition's folder (its version folder), relative to the track folder.
pub fn rendition_dir(r: &PackagedRendition) -> String {
    layout::rendition_dir(&r.id, &r.version)
}

/// Path of a rendition's media playlist, relative to the track folder.
pub fn media_playlist_path(r: &PackagedRendition) -> String {
    format!("{}/{}", rendition_dir(r), layout::MEDIA_PLAYLIST_FILE)
}

/// One entry manifest of a track: a (tier, family) multivariant playlist or a tier's MPD.
pub struct EntryManifest {
    pub tier: Tier,
    /// `None` for an MPD (it holds every set of its tier).
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
    duration_seconds: f64,
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
        let mut labelled = Vec::new();
        for (&(family, rate), members) in &sets {
            let plain = lowest(family) == Some(rate);
            let name = if plain {
                family.as_str().to_string()
            } else {
                format!("{}-{rate}", family.as_str())
            };
            out.push(EntryManifest {
                tier,
                family: Some(family),
                sample_rate: Some(rate),
                path: layout::multivariant_playlist(tier.as_str(), &name),
                text: create_multivariant_playlist(members),
            });
            labelled.push((name, members.clone()));
        }
        out.push(EntryManifest {
            tier,
            family: None,
            sample_rate: None,
            path: layout::mpd(tier.as_str()),
            text: create_mpd(duration_seconds, &labelled),
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
            map: (i == 0).then(|| m3u8_rs::Map {
                uri: r.init_file.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let playlist = MediaPlaylist {
        // Version 7: EXT-X-MAP in a playlist without I-frames (RFC 8216 7).
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
    String::from_utf8(out).expect("m3u8-rs writes UTF-8")
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
    String::from_utf8(out).expect("m3u8-rs writes UTF-8")
}

/// ISO/IEC 23009-1: a static MPD with one AdaptationSet per switching set (labelled with its
/// name), SegmentTemplate with SegmentTimeline per Representation, bandwidths measured (peak
/// segment rate).
pub fn create_mpd(duration_seconds: f64, sets: &[(String, Vec<&PackagedRendition>)]) -> String {
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
                // One timeline per set (`transcode::timeline`); checked, not assumed.
                segmentAlignment: Some(aligned(&sorted)),
                startWithSAP: Some(1),
                Label: vec![mpd::Label {
                    content: label.clone(),
                    ..Default::default()
                }],
                representations,
                ..Default::default()
            }
        })
        .collect();
    let manifest = mpd::MPD {
        xmlns: Some("urn:mpeg:dash:schema:mpd:2011".into()),
        profiles: Some("urn:mpeg:dash:profile:isoff-live:2011".into()),
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
    // The presentation's length is rounded down, so it never claims media beyond the last
    // sample (a player waiting for it would stall); the longest segment is rounded up.
    let attributes = format!(
        "<MPD mediaPresentationDuration=\"{}\" minBufferTime=\"{}\" maxSegmentDuration=\"{}\" ",
        xs_duration((duration_seconds * 1000.0).floor() as u64),
        xs_duration((max_segment.ceil().max(1.0) * 1000.0) as u64),
        xs_duration((max_segment * 1000.0).ceil() as u64),
    );
    manifest.to_string().replacen("<MPD ", &attributes, 1)
}

/// An xs:duration of `ms` milliseconds in seconds with three fraction digits.
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
    mpd::Representation {
        id: Some(r.id.clone()),
        bandwidth: Some(r.bandwidth),
        codecs: Some(r.codecs.clone()),
        audioSamplingRate: Some(r.stream.sample_rate.to_string()),
        AudioChannelConfiguration: vec![mpd::AudioChannelConfiguration {
            schemeIdUri: "urn:mpeg:dash:23003:3:audio_channel_configuration:2011".into(),
            value: Some(r.stream.channels.to_string()),
            ..Default::default()
        }],
        SegmentTemplate: Some(mpd::SegmentTemplate {
            timescale: Some(u64::from(r.stream.sample_rate)),
            initialization: Some(format!("{}/{}", rendition_dir(r), r.init_file)),
            media: Some(format!("{}/{}", rendition_dir(r), layout::SEGMENT_TEMPLATE)),
            startNumber: Some(1),
            SegmentTimeline: Some(mpd::SegmentTimeline { segments: timeline }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
