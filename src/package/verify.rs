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
    match best_match(&master.raw, &rendition.raw, MAX_OFFSET_ITEMS) {
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
    let files: Vec<std::path::PathBuf> = std::iter::once(init)
        .chain(segments.iter().copied())
        .map(|f| dir.join(f))
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

/// Decode `files` as one stream that FFmpeg reads through a pipe. A pipe, not the files:
/// FFmpeg 5.1 reads the sample encryption of a seekable fragmented file of more than one
/// fragment wrongly ("Incorrect number of samples in encryption info") and decrypts the same
/// bytes from a pipe exactly; and a pipe needs no joined copy on disk.
fn decode_piped(
    files: Vec<std::path::PathBuf>,
    key: Option<&[u8; 16]>,
) -> Result<DecodedAudio, String> {
    use std::os::fd::AsRawFd;
    let (reader, mut writer) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let feeder = std::thread::spawn(move || -> Result<(), String> {
        for f in &files {
            let mut part = std::fs::File::open(f).map_err(|e| format!("{}: {e}", f.display()))?;
            // A decoder that stopped early closes the pipe: not this thread's error to report.
            if std::io::copy(&mut part, &mut writer).is_err() {
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

/// Decode, fingerprint and judge one packaged rendition.
pub fn verify(
    track_dir: &Path,
    r: &PackagedRendition,
    master: &Fingerprint,
) -> Result<Verdict, String> {
    let audio = decode(track_dir, r)?;
    Ok(judge(
        master,
        &audio.samples,
        audio.channels,
        audio.sample_rate,
    ))
}
