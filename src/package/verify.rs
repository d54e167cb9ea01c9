//! Proof that every rendition is its master's audio: each packaged rendition is decoded again
//! from its files (FFmpeg, edit list applied as a gapless player does), fingerprinted, and its
//! fingerprint compared with the master's (`ingest::fingerprint`). A rendition that is not its
//! master (another track, silence, a broken or shifted join) refuses the release before
//! anything is published.

use std::path::Path;

use crate::ingest::fingerprint::{
    best_match, Fingerprint, Fingerprinter, Match, MAX_OFFSET_ITEMS, MIN_SIMILARITY,
};
use crate::layout;
use crate::manifest;
use crate::package::PackagedRendition;
use crate::transcode::{decode_all, DecodedAudio};

/// How a rendition compares with its master.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Its audio is the master's, in time.
    Same(Match),
    /// Not the master's audio, or not in time with it.
    Differs(Match),
    /// Too short to fingerprint (under about 3 s): not judged.
    TooShort,
}

impl Verdict {
    /// The similarity the report gives (`None`: not judged).
    pub fn similarity(&self) -> Option<f64> {
        match self {
            Verdict::Same(m) | Verdict::Differs(m) => Some(m.similarity),
            Verdict::TooShort => None,
        }
    }
}

/// Judge decoded audio (interleaved, edit list applied) against the master's fingerprint.
pub fn judge(master: &Fingerprint, samples: &[f32], channels: u16, rate: u32) -> Verdict {
    let Ok(mut fp) = Fingerprinter::new(channels, rate, false) else {
        return Verdict::TooShort;
    };
    fp.push(samples);
    compare(master, &fp.finish())
}

/// Judge a rendition's fingerprint against its master's: the same audio agrees in at least
/// [`MIN_SIMILARITY`] of the bits, and at item 0 (a rendition out of time by an item, 0.124 s,
/// or more is refused even when its bits agree).
pub fn compare(master: &Fingerprint, rendition: &Fingerprint) -> Verdict {
    compare_items(&master.raw, &rendition.raw)
}

fn compare_items(master: &[u32], rendition: &[u32]) -> Verdict {
    match best_match(master, rendition, MAX_OFFSET_ITEMS) {
        None => Verdict::TooShort,
        Some(m) if m.similarity >= MIN_SIMILARITY && m.offset == 0 => Verdict::Same(m),
        Some(m) => Verdict::Differs(m),
    }
}

/// Decode a packaged rendition from `track_dir` (its init segment and media segments, or its
/// track file) and apply its edit list: the samples a gapless player outputs, interleaved.
pub fn decode(track_dir: &Path, r: &PackagedRendition) -> Result<DecodedAudio, String> {
    let dir = track_dir.join(manifest::rendition_dir(r));
    let segments: Vec<&str> = match r.track_file {
        Some(_) => Vec::new(),
        None => r.segments.iter().map(|s| s.file.as_str()).collect(),
    };
    let key = r.protection.as_ref().map(|p| p.key.secret());
    decode_files(
        &dir,
        &r.init_file,
        &segments,
        (u64::from(r.stream.priming), r.presented_samples),
        key,
    )
}

/// Decode a rendition of a package on disk from its report entry (`root`: the folder of the
/// package's index); a protected rendition needs its key.
pub fn decode_reported(
    root: &Path,
    r: &crate::report::RenditionReport,
    key: Option<&[u8; 16]>,
) -> Result<DecodedAudio, String> {
    let init = root.join(&r.init);
    let dir = init.parent().unwrap_or(root);
    let init_name = init
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let segments: Vec<String> = if r.single_file {
        Vec::new()
    } else {
        (1..=r.segments as u32).map(layout::segment_file).collect()
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    decode_files(
        dir,
        &init_name,
        &segments,
        (u64::from(r.priming_samples), r.duration_samples),
        key,
    )
}

/// Decode `init` and `segments` in `dir` as one stream and keep the edit list's span
/// (`edit`: samples trimmed at the start, samples presented).
fn decode_files(
    dir: &Path,
    init: &str,
    segments: &[&str],
    edit: (u64, u64),
    key: Option<&[u8; 16]>,
) -> Result<DecodedAudio, String> {
    let files: Vec<Part> = std::iter::once(init)
        .chain(segments.iter().copied())
        .map(|f| (dir.join(f), None))
        .collect();
    let mut audio = decode_piped(files, key)?;
    let ch = usize::from(audio.channels.max(1));
    let skip = edit.0 as usize * ch;
    let end = skip + edit.1 as usize * ch;
    if audio.samples.len() < end {
        return Err(format!(
            "{} samples decode, the edit list ends at {}",
            audio.samples.len() / ch,
            end / ch
        ));
    }
    audio.samples.truncate(end);
    audio.samples.drain(..skip);
    Ok(audio)
}

/// A file, or a byte range of it (offset, length), fed to the decoder.
type Part = (std::path::PathBuf, Option<(u64, u64)>);

/// Decode `files` as one stream that FFmpeg reads through a pipe. A pipe, not the files:
/// FFmpeg 5.1 reads the sample encryption of a seekable fragmented file of more than one
/// fragment wrongly ("Incorrect number of samples in encryption info") and decrypts the same
/// bytes from a pipe exactly; and a pipe needs no joined copy on disk.
fn decode_piped(parts: Vec<Part>, key: Option<&[u8; 16]>) -> Result<DecodedAudio, String> {
    use std::io::{Read, Seek};
    use std::os::fd::AsRawFd;
    let (reader, mut writer) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let feeder = std::thread::spawn(move || -> Result<(), String> {
        for (path, range) in &parts {
            let failed = |e: std::io::Error| format!("{}: {e}", path.display());
            let mut file = std::fs::File::open(path).map_err(failed)?;
            let copied = match range {
                Some((offset, length)) => {
                    file.seek(std::io::SeekFrom::Start(*offset))
                        .map_err(failed)?;
                    std::io::copy(&mut file.take(*length), &mut writer)
                }
                None => std::io::copy(&mut file, &mut writer),
            };
            // A decoder that stopped early closes the pipe: not this thread's error to report.
            if copied.is_err() {
                break;
            }
        }
        Ok(())
    });
    let decoded = decode_all(&format!("pipe:{}", reader.as_raw_fd()), key);
    // FFmpeg's pipe protocol leaves the descriptor open: closing it ends the feeder.
    drop(reader);
    let fed = feeder
        .join()
        .unwrap_or_else(|_| Err("the thread feeding the decoder failed".into()));
    fed?;
    decoded
}

/// A rendition this long or longer is judged on windows of it, not whole.
const WHOLE_BELOW_SECONDS: f64 = 30.0;
/// Each window spans whole segments, at least this long (Chromaprint's first item needs 2.6 s).
const WINDOW_SECONDS: f64 = 6.0;
/// Samples dropped at the start of a window that does not start the stream: a decoder started
/// mid-stream (AAC's overlapped transform, Opus's prediction) settles within them.
const WARM_UP_SAMPLES: i64 = 4096;

/// Stretches of a rendition decoded from its files, in presentation time (edit list applied):
/// what verification fingerprints and quality scoring compares with the master.
pub struct Windows {
    pub channels: u16,
    pub sample_rate: u32,
    /// Each window's first sample (its index in the rendition's presented samples) and its
    /// interleaved samples from there. A window that does not start the stream begins after a
    /// warm-up of its decoder.
    pub windows: Vec<(u64, Vec<f32>)>,
    /// The rendition was decoded whole: one window, from sample 0 to the end.
    pub whole: bool,
}

/// Decode a packaged rendition for judging: whole up to 30 s, else three windows.
///
/// Up to 30 s the whole rendition is decoded. Longer ones are decoded in three windows of
/// whole segments of at least 6 s, at the start, the middle and the end, each through its own
/// decoder after the init segment. A 4-minute track decodes 18 s of each rendition instead of
/// 240 (BENCHMARKS.md: decoding every rendition whole cost a fifth of a run's CPU).
pub fn decode_windows(track_dir: &Path, r: &PackagedRendition) -> Result<Windows, String> {
    let rate = r.stream.sample_rate;
    let n = r.segments.len();
    if (r.presented_samples as f64) < WHOLE_BELOW_SECONDS * f64::from(rate) || n < 4 {
        let audio = decode(track_dir, r)?;
        return Ok(Windows {
            channels: audio.channels,
            sample_rate: audio.sample_rate,
            windows: vec![(0, audio.samples)],
            whole: true,
        });
    }
    let min_len = (WINDOW_SECONDS * f64::from(rate)) as u64;
    let forward = |first: usize| {
        let (mut last, mut len) = (first, r.segments[first].duration);
        while len < min_len && last + 1 < n {
            last += 1;
            len += r.segments[last].duration;
        }
        (first, last)
    };
    let backward = |last: usize| {
        let (mut first, mut len) = (last, r.segments[last].duration);
        while len < min_len && first > 0 {
            first -= 1;
            len += r.segments[first].duration;
        }
        (first, last)
    };
    let mut spans = vec![forward(0), forward(n / 2), backward(n - 1)];
    spans.dedup();
    let dir = track_dir.join(manifest::rendition_dir(r));
    let key = r.protection.as_ref().map(|p| p.key.secret());
    let mut out = Windows {
        channels: r.stream.channels,
        sample_rate: rate,
        windows: Vec::with_capacity(spans.len()),
        whole: false,
    };
    for (a, b) in spans {
        let parts: Vec<Part> = match &r.track_file {
            Some(ranges) => {
                let file = dir.join(&r.init_file);
                std::iter::once((file.clone(), Some((ranges.init.offset, ranges.init.length))))
                    .chain(
                        r.segments[a..=b]
                            .iter()
                            .map(|s| (file.clone(), Some((s.offset.unwrap_or(0), s.bytes)))),
                    )
                    .collect()
            }
            None => std::iter::once((dir.join(&r.init_file), None))
                .chain(r.segments[a..=b].iter().map(|s| (dir.join(&s.file), None)))
                .collect(),
        };
        let mut audio = decode_piped(parts, key)?;
        let ch = usize::from(audio.channels.max(1));
        (out.channels, out.sample_rate) = (audio.channels, audio.sample_rate);
        // The decoder's first sample is the window's first segment's first, in presentation
        // time (the priming before the stream's start is negative).
        let first = r.segments[a].start as i64 - i64::from(r.stream.priming);
        let decoded = (audio.samples.len() / ch) as i64;
        let start = if a == 0 { 0 } else { first + WARM_UP_SAMPLES };
        let end = (first + decoded).min(r.presented_samples as i64);
        if end <= start {
            continue;
        }
        audio.samples.truncate((end - first) as usize * ch);
        audio.samples.drain(..(start - first) as usize * ch);
        out.windows.push((start as u64, audio.samples));
    }
    Ok(out)
}

/// Judge a rendition's windows against its master's fingerprint: each window's fingerprint is
/// compared with the master's at the same time; a rendition is its master when every window
/// is, and its similarity is its worst window's.
pub fn judge_windows(w: &Windows, master: &Fingerprint) -> Verdict {
    if w.whole {
        let samples = w.windows.first().map_or(&[][..], |(_, s)| s);
        return judge(master, samples, w.channels, w.sample_rate);
    }
    let ch = usize::from(w.channels.max(1));
    let item = 1365.0 * f64::from(w.sample_rate) / 11025.0;
    let mut worst: Option<Verdict> = None;
    for (first, samples) in &w.windows {
        // Start on a fingerprint item's edge, so that the window's item k is the master's
        // item k0 + k.
        let k0 = (*first as f64 / item).ceil().max(0.0) as usize;
        let skip = ((k0 as f64 * item).round() as u64).saturating_sub(*first) as usize * ch;
        let Some(window) = samples.get(skip..) else {
            continue;
        };
        let Ok(mut fp) = Fingerprinter::new(w.channels, w.sample_rate, false) else {
            continue;
        };
        fp.push(window);
        let v = compare_items(master.raw.get(k0..).unwrap_or(&[]), &fp.finish().raw);
        worst = Some(match (worst, v) {
            (None | Some(Verdict::TooShort), v) => v,
            (Some(w), Verdict::TooShort) => w,
            (Some(Verdict::Differs(w)), Verdict::Differs(m)) => Verdict::Differs(lower(w, m)),
            (Some(Verdict::Differs(w)), Verdict::Same(_)) => Verdict::Differs(w),
            (Some(Verdict::Same(_)), Verdict::Differs(m)) => Verdict::Differs(m),
            (Some(Verdict::Same(w)), Verdict::Same(m)) => Verdict::Same(lower(w, m)),
        });
    }
    worst.unwrap_or(Verdict::TooShort)
}

fn lower(a: Match, b: Match) -> Match {
    if b.similarity < a.similarity {
        b
    } else {
        a
    }
}
