//! Package: cut encoded packets into CMAF fragments on the codec frame grid and write, per
//! rendition, one init segment and numbered media segments, or (the single-file form) one CMAF
//! track file: the same init and fragments with a `sidx` between them, addressed by byte ranges.
//!
//! This module owns segment boundaries, timing (`tfdt` continuity, the gapless edit list) and
//! the files of a rendition. Box bytes come from the pure writers in `boxes`; manifests are
//! written elsewhere (`manifest`) from the neutral [`PackagedRendition`] this returns.

pub mod artwork;
pub mod boxes;
pub mod quality;
pub mod verify;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ingest::analysis::Loudness;
use crate::ladder::Codec;
use crate::layout;
use crate::protect::{RenditionProtection, Scheme};
use crate::transcode::engine::{RenditionSink, TrackSpan};
use crate::transcode::timeline::SetTiming;
use crate::transcode::{EncodedPacket, StreamConfig};

pub mod error;

pub use boxes::{
    codecs_string, create_init_segment, create_media_segment, create_sidx, Fragment, LoudnessBase,
    Ludt, SidxReference, TrackConfig,
};
pub use error::PackageError;

/// The loudness a track's renditions carry (`ludt`), as ingest measured it.
#[derive(Clone, Debug)]
pub struct LoudnessInfo {
    pub track: Loudness,
    pub album: Option<Loudness>,
}

impl LoudnessInfo {
    fn ludt(&self) -> Ludt {
        let base = |l: &Loudness| LoudnessBase {
            integrated_lufs: l.integrated_lufs,
            loudness_range_lu: l.loudness_range_lu,
            sample_peak_dbfs: l.sample_peak_dbfs,
            true_peak_dbtp: l.true_peak_dbtp,
        };
        Ludt {
            track: base(&self.track),
            album: self.album.as_ref().map(base),
        }
    }
}

/// One written media segment, in the rendition's timescale.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SegmentInfo {
    pub number: u32,
    /// File name relative to the rendition's folder.
    pub file: String,
    /// Decode time of the first sample (the `tfdt`).
    pub start: u64,
    pub duration: u64,
    pub bytes: u64,
    /// Where the fragment starts in the track file (the single-file form; `None` for a
    /// segment file).
    pub offset: Option<u64>,
}

/// A span of bytes of a file: the HLS `BYTERANGE` and DASH `range` of a box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

impl ByteRange {
    /// The DASH form, first and last byte inclusive (`0-811`).
    pub fn dash(&self) -> String {
        format!("{}-{}", self.offset, self.offset + self.length - 1)
    }
}

/// Where a single-file rendition's header and index lie in its track file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackFileRanges {
    /// `ftyp` + `moov`: the init segment's bytes.
    pub init: ByteRange,
    /// The `sidx`.
    pub index: ByteRange,
}

/// Everything known about a finished rendition; the input for manifests and the report.
#[derive(Clone, Debug)]
pub struct PackagedRendition {
    pub id: String,
    /// The version folder (a digest of the rendition's bytes, `layout::version_name`).
    pub version: String,
    pub stream: StreamConfig,
    pub codecs: String,
    /// The init segment's file, or the single-file form's track file (`layout::TRACK_FILE`).
    pub init_file: String,
    /// The single-file form's byte ranges (`None` for segment files).
    pub track_file: Option<TrackFileRanges>,
    pub segments: Vec<SegmentInfo>,
    pub presented_samples: u64,
    pub media_duration: u64,
    /// Peak segment bit rate, bit/s.
    pub bandwidth: u64,
    /// Mean bit rate over the segments, bit/s.
    pub average_bandwidth: u64,
    /// How the rendition is encrypted (`None`: clear).
    pub protection: Option<RenditionProtection>,
}

/// A segment being assembled.
#[derive(Default)]
struct Pending {
    start: u64,
    samples: Vec<(u32, u32)>,
    data: Vec<u8>,
}

impl Pending {
    fn duration(&self) -> u64 {
        self.samples.iter().map(|&(d, _)| u64::from(d)).sum()
    }

    fn absorb(&mut self, next: Pending) {
        self.samples.extend(next.samples);
        self.data.extend(next.data);
    }
}

/// The segmenting state machine: decides where segments start, in decode time.
///
/// Boundary `k` targets presentation time `k * segment_len`, i.e. decode time
/// `priming + k * segment_len`, rounded to the nearest multiple of the switching set's `grid`
/// (every frame size of the set divides it, `transcode::timeline`), so every rendition of the
/// set has a packet starting exactly there: segment N of each starts and ends at the same media
/// time. A rendition on its own grid cuts at the packet start nearest the target. One finished
/// segment is held back so the last two can merge when the track's tail is short.
pub struct Segmenter {
    priming: u64,
    segment_len: u64,
    grid: u64,
    boundary_index: u64,
    next_boundary: u64,
    decode_time: u64,
    current: Pending,
    held: Option<Pending>,
    emitted: u32,
}

impl Segmenter {
    pub fn new(priming: u32, segment_len: u64, grid: u64) -> Segmenter {
        let mut s = Segmenter {
            priming: u64::from(priming),
            segment_len,
            grid: grid.max(1),
            boundary_index: 0,
            next_boundary: 0,
            decode_time: 0,
            current: Pending::default(),
            held: None,
            emitted: 0,
        };
        s.advance_boundary();
        s
    }

    fn advance_boundary(&mut self) {
        self.boundary_index += 1;
        let target = self.priming + self.boundary_index * self.segment_len;
        self.next_boundary = (target + self.grid / 2) / self.grid * self.grid;
    }

    /// Add a packet; returns a segment that is final and may be written.
    fn push(&mut self, packet: EncodedPacket) -> Option<Pending> {
        let mut out = None;
        let half = u64::from(packet.duration) / 2;
        if !self.current.samples.is_empty() && self.decode_time + half >= self.next_boundary {
            let done = std::mem::take(&mut self.current);
            self.current.start = self.decode_time;
            out = self.held.replace(done);
            while self.next_boundary <= self.decode_time + half {
                self.advance_boundary();
            }
        }
        self.current
            .samples
            .push((packet.duration, packet.data.len() as u32));
        self.current.data.extend_from_slice(&packet.data);
        self.decode_time += u64::from(packet.duration);
        out
    }

    /// The remaining segments, without packets that start at or after `end` (padding past the
    /// set's common end), merging the tail so that at most `max_segments` exist in all.
    fn finish(mut self, max_segments: u32, end: Option<u64>) -> Vec<Pending> {
        let mut rest: Vec<Pending> = self.held.take().into_iter().collect();
        if !self.current.samples.is_empty() {
            rest.push(self.current);
        }
        if let Some(end) = end {
            for p in &mut rest {
                let mut t = p.start;
                let keep = p
                    .samples
                    .iter()
                    .take_while(|&&(d, _)| {
                        let inside = t < end;
                        t += u64::from(d);
                        inside
                    })
                    .count();
                let bytes: usize = p.samples[..keep].iter().map(|&(_, n)| n as usize).sum();
                p.samples.truncate(keep);
                p.data.truncate(bytes);
            }
            rest.retain(|p| !p.samples.is_empty());
        }
        while rest.len() > 1 && self.emitted + rest.len() as u32 > max_segments {
            let last = rest.pop().expect("len > 1");
            rest.last_mut().expect("len > 0").absorb(last);
        }
        rest
    }

    pub fn priming(&self) -> u64 {
        self.priming
    }
}

/// Writes one rendition's segments as packets arrive, then its init segment.
///
/// Files are written into a building folder under the rendition's folder; when the rendition
/// is finished the folder is renamed to its version, a digest of every byte written
/// (`layout`), so a changed rendition never reuses an immutable key.
pub struct RenditionPackager {
    id: String,
    dir: PathBuf,
    building: PathBuf,
    segmenter: Segmenter,
    timing: SetTiming,
    /// Opus: the `roll` group's distance, from the first packet's duration.
    roll: bool,
    roll_distance: Option<i16>,
    segments: Vec<SegmentInfo>,
    max_sample_size: u32,
    digest: Sha256,
    /// The single-file form: the fragments, written as they come, before the header and the
    /// index that precede them in the track file are known.
    fragments: Option<io::BufWriter<fs::File>>,
    protection: Option<RenditionProtection>,
    /// Samples written so far (a `cenc` sample's IV counts them).
    samples_written: u32,
}

/// The folder a rendition is written into before it has a version.
const BUILDING_DIR: &str = ".building";

/// The single-file form's fragments, in the building folder until the track file is written.
const FRAGMENTS_FILE: &str = "fragments.part";

impl RenditionPackager {
    /// `dir` is the rendition's folder (created); `segment_len` is in the stream's timescale;
    /// `stream` is the encoder's (with the set's priming) and `timing` the set's timeline;
    /// `single_file` writes one track file instead of segment files.
    pub fn new(
        id: &str,
        dir: &Path,
        stream: &StreamConfig,
        segment_len: u64,
        timing: &SetTiming,
        single_file: bool,
        protection: Option<RenditionProtection>,
    ) -> Result<RenditionPackager, PackageError> {
        let building = dir.join(BUILDING_DIR);
        let _ = fs::remove_dir_all(&building);
        fs::create_dir_all(&building).map_err(|source| PackageError::Write {
            path: building.clone(),
            source,
        })?;
        let fragments = if single_file {
            let path = building.join(FRAGMENTS_FILE);
            let file =
                fs::File::create(&path).map_err(|source| PackageError::Write { path, source })?;
            Some(io::BufWriter::new(file))
        } else {
            None
        };
        Ok(RenditionPackager {
            id: id.to_string(),
            dir: dir.to_owned(),
            building,
            segmenter: Segmenter::new(stream.priming, segment_len, timing.grid),
            timing: *timing,
            roll: stream.codec == Codec::Opus,
            roll_distance: None,
            segments: Vec::new(),
            max_sample_size: 0,
            digest: Sha256::new(),
            fragments,
            protection,
            samples_written: 0,
        })
    }

    pub fn push(&mut self, packet: EncodedPacket) -> Result<(), PackageError> {
        self.max_sample_size = self.max_sample_size.max(packet.data.len() as u32);
        if self.roll && self.roll_distance.is_none() {
            self.roll_distance = Some(boxes::opus_roll_distance(packet.duration));
        }
        if let Some(seg) = self.segmenter.push(packet) {
            self.segmenter.emitted += 1;
            self.write_segment(seg)?;
        }
        Ok(())
    }

    fn write_segment(&mut self, mut seg: Pending) -> Result<(), PackageError> {
        let number = self.segments.len() as u32 + 1;
        let mut ivs = Vec::new();
        if let Some(p) = &self.protection {
            let mut at = 0;
            for &(_, size) in &seg.samples {
                let n = self.samples_written;
                p.encrypt_sample(n, &mut seg.data[at..at + size as usize]);
                if p.scheme == Scheme::Cenc {
                    ivs.push(p.sample_iv(n));
                }
                at += size as usize;
                self.samples_written += 1;
            }
        }
        let bytes = create_media_segment(&Fragment {
            sequence_number: number,
            base_media_decode_time: seg.start,
            samples: &seg.samples,
            data: &seg.data,
            roll_group: self.roll,
            sample_ivs: (!ivs.is_empty()).then_some(&ivs[..]),
        });
        self.digest.update((bytes.len() as u64).to_be_bytes());
        self.digest.update(&bytes);
        let (file, offset) = match &mut self.fragments {
            Some(out) => {
                // Offsets count from the first fragment until the header's length is known.
                let offset = self.segments.last().map_or(0, |s| {
                    s.offset.expect("single-file segments have offsets") + s.bytes
                });
                out.write_all(&bytes)
                    .map_err(|source| PackageError::Write {
                        path: self.building.join(FRAGMENTS_FILE),
                        source,
                    })?;
                (layout::TRACK_FILE.to_string(), Some(offset))
            }
            None => {
                let file = layout::segment_file(number);
                let path = self.building.join(&file);
                fs::write(&path, &bytes).map_err(|source| PackageError::Write { path, source })?;
                (file, None)
            }
        };
        self.segments.push(SegmentInfo {
            number,
            file,
            start: seg.start,
            duration: seg.duration(),
            bytes: bytes.len() as u64,
            offset,
        });
        Ok(())
    }

    /// The single-file form's `sidx`, in presentation time after the edit list (ISO/IEC
    /// 14496-12 8.16.3 defines it so): the first fragment presents from 0 (its priming is
    /// edited out), each next one from where the one before ended, and the last ends with the
    /// last presented sample (padding past it is edited out too). The durations sum to the
    /// edit list's; `first_offset` is 0: the fragments follow the index.
    fn sidx(&self, stream: &StreamConfig, presented: u64) -> Vec<u8> {
        let priming = u64::from(stream.priming);
        let at = |t: u64| t.saturating_sub(priming).min(presented);
        let references: Vec<SidxReference> = self
            .segments
            .iter()
            .map(|s| SidxReference {
                referenced_size: s.bytes as u32,
                subsegment_duration: (at(s.start + s.duration) - at(s.start)) as u32,
            })
            .collect();
        create_sidx(stream.sample_rate, 0, 0, &references)
    }

    /// Write the track file: header, index, then the fragments written so far; returns the
    /// byte ranges, the segments' offsets now counted from the file's start.
    fn write_track_file(
        &mut self,
        init: &[u8],
        sidx: &[u8],
    ) -> Result<TrackFileRanges, PackageError> {
        let part = self.building.join(FRAGMENTS_FILE);
        let write_err = |path: &Path| {
            let path = path.to_owned();
            move |source| PackageError::Write { path, source }
        };
        if let Some(out) = self.fragments.take() {
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .map_err(write_err(&part))?;
        }
        let path = self.building.join(layout::TRACK_FILE);
        let mut file = io::BufWriter::new(fs::File::create(&path).map_err(write_err(&path))?);
        file.write_all(init).map_err(write_err(&path))?;
        file.write_all(sidx).map_err(write_err(&path))?;
        let mut fragments = fs::File::open(&part).map_err(write_err(&part))?;
        io::copy(&mut fragments, &mut file).map_err(write_err(&path))?;
        file.flush().map_err(write_err(&path))?;
        drop(file);
        fs::remove_file(&part).map_err(write_err(&part))?;
        let head = (init.len() + sidx.len()) as u64;
        for s in &mut self.segments {
            s.offset = s.offset.map(|o| o + head);
        }
        Ok(TrackFileRanges {
            init: ByteRange {
                offset: 0,
                length: init.len() as u64,
            },
            index: ByteRange {
                offset: init.len() as u64,
                length: sidx.len() as u64,
            },
        })
    }

    /// Write the remaining segments and the init segment. `presented_samples` is what a
    /// gapless decoder must output; `max_segments` keeps the segment count equal across the
    /// renditions of a track (a short tail merges into the segment before it).
    pub fn finish(
        mut self,
        stream: StreamConfig,
        presented_samples: u64,
        max_segments: u32,
        loudness: Option<&LoudnessInfo>,
    ) -> Result<PackagedRendition, PackageError> {
        let segmenter = std::mem::replace(&mut self.segmenter, Segmenter::new(0, 1, 1));
        // A lossy set ends on its grid: the first multiple at or after the last presented
        // sample, so every rendition's last segment ends at the same media time.
        let end = self.timing.end_on_grid.then(|| {
            let last = u64::from(stream.priming) + presented_samples;
            last.div_ceil(self.timing.grid) * self.timing.grid
        });
        for seg in segmenter.finish(max_segments, end) {
            self.write_segment(seg)?;
        }
        let media_duration: u64 = self.segments.iter().map(|s| s.duration).sum();
        if media_duration < u64::from(stream.priming) + presented_samples {
            return Err(PackageError::ShortStream {
                rendition: self.id,
                media: media_duration,
                priming: stream.priming,
                presented: presented_samples,
            });
        }
        let rate = f64::from(stream.sample_rate);
        let bandwidth = self
            .segments
            .iter()
            .map(|s| (s.bytes as f64 * 8.0 * rate / s.duration as f64).ceil() as u64)
            .max()
            .unwrap_or(0);
        let total_bytes: u64 = self.segments.iter().map(|s| s.bytes).sum();
        let average_bandwidth =
            (total_bytes as f64 * 8.0 * rate / media_duration as f64).ceil() as u64;
        let ludt = loudness.map(LoudnessInfo::ludt);
        let init = create_init_segment(&TrackConfig {
            stream: &stream,
            presented_samples,
            max_sample_size: self.max_sample_size,
            max_bitrate: bandwidth.min(u64::from(u32::MAX)) as u32,
            avg_bitrate: average_bandwidth.min(u64::from(u32::MAX)) as u32,
            loudness: ludt.as_ref(),
            roll_distance: self.roll_distance,
            protection: self.protection.as_ref(),
        });
        self.digest.update((init.len() as u64).to_be_bytes());
        self.digest.update(&init);
        let (init_file, track_file) = if self.fragments.is_some() {
            // The digest covers the track file's every byte: fragments, header and index.
            let sidx = self.sidx(&stream, presented_samples);
            self.digest.update((sidx.len() as u64).to_be_bytes());
            self.digest.update(&sidx);
            let ranges = self.write_track_file(&init, &sidx)?;
            (layout::TRACK_FILE.to_string(), Some(ranges))
        } else {
            let path = self.building.join(layout::INIT_FILE);
            fs::write(&path, &init).map_err(|source| PackageError::Write { path, source })?;
            (layout::INIT_FILE.to_string(), None)
        };
        let version = layout::version_name(&self.digest.finalize());
        let done = self.dir.join(&version);
        let _ = fs::remove_dir_all(&done);
        fs::rename(&self.building, &done).map_err(|source| PackageError::Write {
            path: done.clone(),
            source,
        })?;
        Ok(PackagedRendition {
            id: self.id,
            version,
            codecs: codecs_string(&stream),
            stream,
            init_file,
            track_file,
            segments: self.segments,
            presented_samples,
            media_duration,
            bandwidth,
            average_bandwidth,
            protection: self.protection,
        })
    }
}

/// A rendition's packager as the streaming engine's sink: the segment count is decided from
/// the track's master length (so every rendition of the track agrees) and the loudness goes
/// into the init segment.
pub struct PackagerSink<'a> {
    pub packager: RenditionPackager,
    pub segment_seconds: f64,
    pub loudness: Option<&'a LoudnessInfo>,
}

impl RenditionSink for PackagerSink<'_> {
    type Output = PackagedRendition;
    type Error = PackageError;

    fn push(&mut self, packet: EncodedPacket) -> Result<(), PackageError> {
        self.packager.push(packet)
    }

    fn finish(
        self,
        stream: StreamConfig,
        span: TrackSpan,
    ) -> Result<PackagedRendition, PackageError> {
        let max_segments =
            segment_count(span.master_frames, span.master_rate, self.segment_seconds);
        self.packager
            .finish(stream, span.presented, max_segments, self.loudness)
    }
}

/// The segment length for a track of `frames` at `rate` under a ladder's `seconds`: the
/// ladder's, except that a track shorter than one and a half segments (but at least 2 s) is cut
/// in two halves. A one-segment playlist ends before GStreamer 1.22's hlsdemux2 has exposed its
/// pad ("Can't push EOS on non-exposed pad": 3 of 16 runs reached EOS, against 16 of 16 with
/// two segments), and a short first segment starts every player sooner.
pub fn segment_seconds_for(frames: Option<u64>, rate: u32, seconds: f64) -> f64 {
    match frames {
        Some(f) => {
            let duration = f as f64 / f64::from(rate);
            if duration < 1.5 * seconds && duration >= 2.0 {
                duration / 2.0
            } else {
                seconds
            }
        }
        None => seconds,
    }
}

/// How many segments a track of `frames` at `rate` gets: boundaries every `seconds`, and a
/// tail shorter than half a segment joins the segment before it. Computed once from the master
/// so every rendition of the track agrees.
pub fn segment_count(frames: u64, rate: u32, seconds: f64) -> u32 {
    let duration = frames as f64 / f64::from(rate);
    let whole = (duration / seconds).floor();
    let tail = duration - whole * seconds;
    let n = if tail >= seconds / 2.0 || whole == 0.0 {
        whole + 1.0
    } else {
        whole
    };
    n.max(1.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(duration: u32) -> EncodedPacket {
        EncodedPacket {
            data: vec![0; 10],
            duration,
        }
    }

    fn run(priming: u32, seg: u64, frame: u32, frames: usize, max: u32) -> Vec<(u64, u64)> {
        run_on(priming, seg, 1, frame, frames, max, None)
    }

    fn run_on(
        priming: u32,
        seg: u64,
        grid: u64,
        frame: u32,
        frames: usize,
        max: u32,
        end: Option<u64>,
    ) -> Vec<(u64, u64)> {
        let mut s = Segmenter::new(priming, seg, grid);
        let mut out = Vec::new();
        for _ in 0..frames {
            if let Some(p) = s.push(packet(frame)) {
                s.emitted += 1;
                out.push((p.start, p.duration()));
            }
        }
        for p in s.finish(max, end) {
            out.push((p.start, p.duration()));
        }
        out
    }

    #[test]
    fn boundaries_sit_on_the_frame_nearest_the_presentation_grid() {
        // 6 s at 44.1 kHz = 264600; priming 1024; frames of 1024.
        let segs = run(1024, 264_600, 1024, 800, 10);
        // first cut nearest 264600 + 1024 = 265624 -> 259.4 frames -> frame 259 (265216)
        assert_eq!(segs[1].0, 259 * 1024);
        // tfdt continuity: each segment starts where the previous ended
        for w in segs.windows(2) {
            assert_eq!(w[0].0 + w[0].1, w[1].0);
        }
        assert_eq!(segs.iter().map(|s| s.1).sum::<u64>(), 800 * 1024);
    }

    #[test]
    fn renditions_of_one_set_cut_at_the_same_decode_times_and_end_together() {
        // AAC-LC (1024) and HE-AAC (2048) padded to one priming (7106), on a 2048 grid.
        let seg = 264_600;
        let frames_total = 7106 + 10 * 44100 + 4096;
        let lc = run_on(7106, seg, 2048, 1024, frames_total / 1024 + 3, 2, None);
        let he = run_on(7106, seg, 2048, 2048, frames_total / 2048 + 2, 2, None);
        assert_eq!(lc[1].0, he[1].0);
        assert_eq!(lc[1].0 % 2048, 0);
        // 7106 + 264600 = 271706 -> nearest multiple of 2048: 272384.
        assert_eq!(lc[1].0, 272_384);
        let end = (7106u64 + 441_000).div_ceil(2048) * 2048;
        let lc = run_on(7106, seg, 2048, 1024, frames_total / 1024 + 3, 2, Some(end));
        let he = run_on(7106, seg, 2048, 2048, frames_total / 2048 + 2, 2, Some(end));
        assert_eq!(lc, he);
        assert_eq!(lc.last().map(|s| s.0 + s.1), Some(end));
    }

    #[test]
    fn short_tail_merges_into_previous_segment() {
        let segs = run(0, 1000, 100, 21, 2);
        assert_eq!(segs, vec![(0, 1000), (1000, 1100)]);
    }

    #[test]
    fn a_short_track_gets_two_segments() {
        assert_eq!(segment_seconds_for(Some(44100 * 20), 44100, 6.0), 6.0);
        assert_eq!(segment_seconds_for(Some(44100 * 9), 44100, 6.0), 6.0);
        assert_eq!(segment_seconds_for(Some(44100 * 8), 44100, 6.0), 4.0);
        assert_eq!(segment_seconds_for(Some(44100), 44100, 6.0), 6.0);
        assert_eq!(segment_seconds_for(None, 44100, 6.0), 6.0);
        let s = segment_seconds_for(Some(44100 * 4), 44100, 6.0);
        assert_eq!(segment_count(44100 * 4, 44100, s), 2);
    }

    #[test]
    fn segment_count_rounds_short_tails_down() {
        assert_eq!(segment_count(44100 * 7, 44100, 6.0), 1);
        assert_eq!(segment_count(44100 * 10, 44100, 6.0), 2);
        assert_eq!(segment_count(44100 * 12, 44100, 6.0), 2);
        assert_eq!(segment_count(44100 * 2, 44100, 6.0), 1);
        assert_eq!(segment_count(44100 * 15, 44100, 6.0), 3);
    }
}
