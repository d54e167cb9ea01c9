//! Validation: find the release's tracks, check `release.json`, decode every master in full
//! once (in parallel) with the analyzer, and collect every finding.
//!
//! `pressing validate` prints this; `pressing run` runs it first and refuses a release with an
//! error before encoding anything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ebur128::EbuR128;
use rayon::prelude::*;
use serde::Serialize;

use super::analysis::{album_loudness, Analyzer, Loudness};
use super::findings::{Finding, Severity};
use super::fingerprint::Fingerprint;
use super::metadata::{self, ReleaseMetadata, TrackMetadata};
use super::{
    list_masters, slug, IngestError, MasterFormat, MasterReader, Release, SampleKind, TrackSource,
};

/// Delivery policy: the lowest sample rate and integer depth a master may have.
pub const MIN_SAMPLE_RATE: u32 = 44_100;
pub const MIN_BITS: u8 = 16;

#[derive(Clone, Debug, Default)]
pub struct ValidateOptions {
    /// Accept lossy "masters" (MP3, AAC, Vorbis, Opus) with a warning instead of an error.
    pub allow_lossy: bool,
    /// Treat every input, in order, as one gapless programme.
    pub all_gapless: bool,
    /// A release.json to check against all the inputs, as one release (instead of each
    /// folder's own).
    pub metadata: Option<PathBuf>,
    /// The tracks will be written out (`run`): two tracks with one id would share an output
    /// folder, which is an error. `validate` alone checks each file and lets them be.
    pub writes_output: bool,
    /// What an earlier decode pass of these very masters measured (a fleet job carries
    /// submit's): each master's header is still checked, but it is not decoded again.
    /// Ignored unless it covers every track.
    pub measured: Option<Arc<Measured>>,
    /// The smallest side a front cover may have (the ladder's `[cover] min_size`; `None`:
    /// the default ladder's, 3000).
    pub cover_min_size: Option<u32>,
}

/// A decode pass's results for a release, to be reused by a later validation of the same
/// bytes (the caller checks that they are the same, by digest).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// By track id.
    pub tracks: HashMap<String, MeasuredTrack>,
    /// By album index.
    pub albums: Vec<Option<Loudness>>,
}

/// One master's decode pass: its length, its loudness and what the analyzer found.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasuredTrack {
    pub frames: u64,
    pub loudness: Loudness,
    /// The master's acoustic fingerprint (`None`: too short, or measured without one).
    pub fingerprint: Option<Fingerprint>,
    /// The decode pass's findings (warnings: a release with an error is never measured for
    /// reuse), without the file, which is the track's.
    pub findings: Vec<Finding>,
}

impl Measured {
    /// What `validate` measured, for reuse; `None` unless every track decoded.
    pub fn of(report: &ValidationReport) -> Option<Measured> {
        let tracks = report
            .tracks
            .iter()
            .map(|t| {
                Some((
                    t.id.clone(),
                    MeasuredTrack {
                        frames: t.duration_samples,
                        loudness: t.loudness.clone()?,
                        fingerprint: t.fingerprint.clone(),
                        findings: t.decode_findings.clone(),
                    },
                ))
            })
            .collect::<Option<HashMap<_, _>>>()?;
        let albums = report.albums.iter().map(|a| a.loudness.clone()).collect();
        Some(Measured { tracks, albums })
    }
}

/// One master's results.
#[derive(Clone, Debug, Serialize)]
pub struct MasterCheck {
    pub id: String,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isrc: Option<String>,
    pub codec: Option<&'static str>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    pub bits_per_sample: Option<u8>,
    pub duration_samples: u64,
    pub loudness: Option<Loudness>,
    /// The master's Chromaprint fingerprint (`ingest::fingerprint`), of the whole track.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// Index into `albums`.
    pub album: usize,
    /// The findings of the decode pass alone (also in the report's `findings`).
    #[serde(skip)]
    pub decode_findings: Vec<Finding>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AlbumCheck {
    /// The input (release folder or file) the album came from.
    pub source: String,
    pub title: Option<String>,
    pub loudness: Option<Loudness>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ValidationReport {
    pub errors: usize,
    pub warnings: usize,
    pub tracks: Vec<MasterCheck>,
    pub albums: Vec<AlbumCheck>,
    pub findings: Vec<Finding>,
}

impl ValidationReport {
    pub fn has_errors(&self) -> bool {
        self.errors > 0
    }

    /// The track's fingerprint, for tracks long enough to have one.
    pub fn fingerprint_of(&self, id: &str) -> Option<&Fingerprint> {
        self.tracks
            .iter()
            .find(|t| t.id == id)?
            .fingerprint
            .as_ref()
    }

    /// The track's master format, for tracks that decoded.
    pub fn loudness_of(&self, id: &str) -> Option<(&Loudness, Option<&Loudness>)> {
        let t = self.tracks.iter().find(|t| t.id == id)?;
        let album = self.albums.get(t.album).and_then(|a| a.loudness.as_ref());
        Some((t.loudness.as_ref()?, album))
    }
}

/// Everything one master's decode pass found.
struct Decoded {
    format: Option<MasterFormat>,
    frames: u64,
    loudness: Option<Loudness>,
    meter: Option<EbuR128>,
    fingerprint: Option<Fingerprint>,
    findings: Vec<Finding>,
    /// How many of `findings`, at the end, the decode pass made.
    decode_findings: usize,
}

/// Validate the inputs. The release is returned even when there are errors (for reporting);
/// the pipeline uses it only when there are none.
pub fn validate(inputs: &[PathBuf], opts: ValidateOptions) -> (Release, ValidationReport) {
    let mut findings = Vec::new();
    if let Some(json) = &opts.metadata {
        return finish(
            scan_with_metadata(json, inputs, &mut findings),
            opts,
            findings,
        );
    }
    let mut scan = Scan::default();
    for input in inputs {
        let (found, meta) = scan_input(input, &mut findings);
        scan.add(input, found, meta);
    }
    finish(scan, opts, findings)
}

/// Tracks found, grouped into albums (one per input) and programmes.
#[derive(Default)]
struct Scan {
    tracks: Vec<TrackSource>,
    albums_of: Vec<usize>,
    albums: Vec<AlbumCheck>,
    programmes: Vec<Vec<usize>>,
    metadata: Vec<Option<ReleaseMetadata>>,
}

impl Scan {
    fn add(&mut self, source: &Path, found: Vec<TrackSource>, meta: Option<ReleaseMetadata>) {
        let first = self.tracks.len();
        let album = self.albums.len();
        self.albums.push(AlbumCheck {
            source: source.display().to_string(),
            title: meta.as_ref().and_then(|m| m.title.clone()),
            loudness: None,
        });
        self.albums_of
            .extend(std::iter::repeat_n(album, found.len()));
        self.tracks
            .extend(found.into_iter().map(|t| TrackSource { album, ..t }));
        let range = first..self.tracks.len();
        let gapless = meta.as_ref().is_some_and(|m| m.gapless);
        self.metadata.push(meta);
        if gapless {
            self.programmes.push(range.collect());
        } else {
            self.programmes.extend(range.map(|i| vec![i]));
        }
    }
}

/// One release described by `json`, whose masters are the inputs (files, or folders' masters).
fn scan_with_metadata(json: &Path, inputs: &[PathBuf], findings: &mut Vec<Finding>) -> Scan {
    let mut scan = Scan::default();
    let mut masters = Vec::new();
    for input in inputs {
        if input.is_dir() {
            match list_masters(input) {
                Ok(mut m) => masters.append(&mut m),
                Err(e) => findings.push(e.to_finding()),
            }
        } else if input.is_file() {
            masters.push(input.clone());
        } else {
            findings.push(
                IngestError::NotFound {
                    path: input.clone(),
                }
                .to_finding(),
            );
        }
    }
    masters.sort();
    let text = match std::fs::read_to_string(json) {
        Ok(t) => t,
        Err(source) => {
            findings.push(
                IngestError::Io {
                    path: json.to_owned(),
                    source,
                }
                .to_finding(),
            );
            return scan;
        }
    };
    let dir = json.parent().unwrap_or(Path::new("."));
    let (tracks, meta) = release_tracks(json, &text, dir, &masters, findings);
    scan.add(json, tracks, meta);
    scan
}

/// Check a release.json against the masters; its tracks whose files exist, in order.
fn release_tracks(
    json: &Path,
    text: &str,
    dir: &Path,
    masters: &[PathBuf],
    findings: &mut Vec<Finding>,
) -> (Vec<TrackSource>, Option<ReleaseMetadata>) {
    let (meta, mut found) = if super::ddex::is_ern(text) {
        let (ern, found) = super::ddex::check_ern(json, text, dir, masters);
        let mut meta = ern.metadata;
        meta.deals = Some(ern.deals);
        meta.message = Some(ern.header);
        meta.cover = ern.cover;
        (meta, found)
    } else {
        let (mut meta, found) = metadata::check_release(json, text, dir, masters);
        meta.cover = super::cover::beside(dir, findings);
        (meta, found)
    };
    findings.append(&mut found);
    let tracks = meta
        .tracks
        .iter()
        .filter(|t| t.file.is_file())
        .map(|t| track(t.file.clone(), Some(t.clone())))
        .collect();
    (tracks, Some(meta))
}

fn finish(
    scan: Scan,
    opts: ValidateOptions,
    mut findings: Vec<Finding>,
) -> (Release, ValidationReport) {
    let Scan {
        mut tracks,
        albums_of,
        mut albums,
        mut programmes,
        metadata,
    } = scan;
    if opts.all_gapless {
        programmes = vec![(0..tracks.len()).collect()];
    }
    programmes.retain(|p| !p.is_empty());
    for (i, t) in tracks.iter().enumerate() {
        let Some(other) = tracks[..i].iter().find(|o| o.id == t.id) else {
            continue;
        };
        if opts.writes_output {
            findings.push(Finding::error(
                "release.duplicate-id",
                &t.path,
                format!(
                    "track id {:?} is also the id of {:?}: both would be written to the output folder {:?}",
                    t.id, other.path, t.id
                ),
                "rename one of the files (the id of a bare master is its file name), give each track its own ISRC in release.json, or press them in separate runs with different --out folders",
            ));
        }
    }

    let measured = opts
        .measured
        .clone()
        .filter(|m| tracks.iter().all(|t| m.tracks.contains_key(&t.id)));
    let decoded: Vec<Decoded> = tracks
        .par_iter()
        .map(|t| match &measured {
            Some(m) => reuse_measurement(&t.path, &opts, &m.tracks[&t.id]),
            None => check_master(&t.path, &opts),
        })
        .collect();

    for p in &programmes {
        check_gapless(p, &tracks, &decoded, &mut findings);
    }
    let min_size = opts
        .cover_min_size
        .unwrap_or_else(|| crate::ladder::CoverPolicy::default().min_size);
    for cover in metadata.iter().flatten().filter_map(|m| m.cover.as_ref()) {
        findings.extend(super::cover::check(cover, min_size).1);
    }
    for (a, album) in albums.iter_mut().enumerate() {
        if let Some(m) = &measured {
            album.loudness = m.albums.get(a).cloned().flatten();
            continue;
        }
        let meters: Vec<&EbuR128> = decoded
            .iter()
            .zip(&albums_of)
            .filter(|(_, &al)| al == a)
            .filter_map(|(d, _)| d.meter.as_ref())
            .collect();
        if !meters.is_empty() {
            album.loudness = Some(album_loudness(meters.iter().copied()));
        }
    }
    let mut checks = Vec::with_capacity(tracks.len());
    for ((t, d), album) in tracks.iter_mut().zip(decoded).zip(&albums_of) {
        t.format = d.format.clone();
        // A duration the metadata declares (DDEX) agrees with the master within a second.
        let declared = t
            .metadata
            .as_ref()
            .and_then(|m| m.declared_duration.clone());
        if let (Some((seconds, message, at)), Some(f)) = (declared, &d.format) {
            let actual = d.frames as f64 / f64::from(f.sample_rate.max(1));
            if (actual - seconds).abs() > 1.0 {
                findings.push(
                    Finding::error(
                        "ddex.duration",
                        &message,
                        format!(
                            "the message declares {seconds:.3} s, the master {:?} is {actual:.3} s",
                            t.path.file_name().unwrap_or_default()
                        ),
                        "deliver the master the message describes, or its right Duration",
                    )
                    .at(at),
                );
            }
        }
        let decode_findings = d.findings[d.findings.len() - d.decode_findings..].to_vec();
        findings.extend(d.findings);
        checks.push(MasterCheck {
            id: t.id.clone(),
            file: t.path.display().to_string(),
            isrc: t.isrc.clone(),
            codec: d.format.as_ref().map(|f| f.codec),
            sample_rate: d.format.as_ref().map(|f| f.sample_rate),
            channels: d.format.as_ref().map(|f| f.channels),
            bits_per_sample: d.format.as_ref().map(|f| f.bits_per_sample),
            duration_samples: d.frames,
            loudness: d.loudness,
            fingerprint: d.fingerprint,
            album: *album,
            decode_findings,
        });
    }
    check_duplicates(&checks, &mut findings);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let report = ValidationReport {
        errors,
        warnings: findings.len() - errors,
        tracks: checks,
        albums,
        findings,
    };
    let release = Release {
        tracks,
        programmes,
        albums: metadata,
    };
    (release, report)
}

/// The tracks of one input: a master file, or a folder with or without `release.json`.
fn scan_input(
    input: &Path,
    findings: &mut Vec<Finding>,
) -> (Vec<TrackSource>, Option<ReleaseMetadata>) {
    let Ok(info) = std::fs::metadata(input) else {
        findings.push(
            IngestError::NotFound {
                path: input.to_owned(),
            }
            .to_finding(),
        );
        return (Vec::new(), None);
    };
    if !info.is_dir() {
        return (vec![track(input.to_owned(), None)], None);
    }
    let masters = match list_masters(input) {
        Ok(mut m) => {
            m.sort();
            m
        }
        Err(e) => {
            findings.push(e.to_finding());
            return (Vec::new(), None);
        }
    };
    let json = input.join("release.json");
    // An ERN message instead of release.json: the folder's one `*.xml` in DDEX's namespace,
    // with its masters wherever its URIs say (DDEX batches keep them under resources/).
    let erns = ern_messages(input);
    if let Some(ern) = erns.first() {
        if json.is_file() || erns.len() > 1 {
            let other = if json.is_file() { &json } else { &erns[1] };
            findings.push(Finding::error(
                "release.two-metadata",
                ern,
                format!(
                    "{:?} and {:?} both describe the release in {input:?}",
                    ern.file_name().unwrap_or_default(),
                    other.file_name().unwrap_or_default()
                ),
                "keep one: the ERN message or release.json",
            ));
            return (Vec::new(), None);
        }
        let text = match std::fs::read_to_string(ern) {
            Ok(t) => t,
            Err(source) => {
                findings.push(
                    IngestError::Io {
                        path: ern.clone(),
                        source,
                    }
                    .to_finding(),
                );
                return (Vec::new(), None);
            }
        };
        let mut all = masters;
        all.extend(masters_below(input));
        all.sort();
        all.dedup();
        return release_tracks(ern, &text, input, &all, findings);
    }
    if !json.is_file() {
        if masters.is_empty() {
            findings.push(
                IngestError::NoMasters {
                    path: input.to_owned(),
                }
                .to_finding(),
            );
        }
        let tracks = masters.into_iter().map(|p| track(p, None)).collect();
        return (tracks, None);
    }
    let text = match std::fs::read_to_string(&json) {
        Ok(t) => t,
        Err(source) => {
            findings.push(IngestError::Io { path: json, source }.to_finding());
            return (Vec::new(), None);
        }
    };
    release_tracks(&json, &text, input, &masters, findings)
}

/// The DDEX ERN messages of a release folder: its `*.xml` files in DDEX's ERN namespace, in
/// name order.
pub fn ern_messages(folder: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")))
                .filter(|p| {
                    std::fs::read(p)
                        .map(|b| {
                            super::ddex::is_ern(&String::from_utf8_lossy(&b[..b.len().min(4096)]))
                        })
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Masters in the sub-folders of a release folder (a DDEX batch's `resources/`), two levels
/// deep at most.
fn masters_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut folders = vec![(dir.to_owned(), 0)];
    while let Some((d, depth)) = folders.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && depth < 2 {
                if let Ok(mut m) = list_masters(&p) {
                    out.append(&mut m);
                }
                folders.push((p, depth + 1));
            }
        }
    }
    out
}

/// A track (its album is set when it joins a [`Scan`]).
fn track(path: PathBuf, metadata: Option<TrackMetadata>) -> TrackSource {
    let isrc = metadata.as_ref().and_then(|m| m.isrc.clone());
    let id = match &isrc {
        Some(isrc) => slug(isrc),
        None => slug(
            &path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };
    TrackSource {
        id,
        path,
        isrc,
        album: 0,
        metadata,
        format: None,
    }
}

/// Decode one master in full with the analyzer and the format policy.
fn check_master(path: &Path, opts: &ValidateOptions) -> Decoded {
    let mut out = Decoded {
        format: None,
        frames: 0,
        loudness: None,
        meter: None,
        fingerprint: None,
        findings: Vec::new(),
        decode_findings: 0,
    };
    let mut reader = match MasterReader::open(path, true) {
        Ok(r) => r,
        Err(e) => {
            out.findings.push(e.to_finding());
            return out;
        }
    };
    let f = reader.format().clone();
    check_format(path, &f, opts, &mut out.findings);
    let header_findings = out.findings.len();
    decode_master(path, f, &mut reader, &mut out);
    out.decode_findings = out.findings.len() - header_findings;
    out
}

/// A master measured before: its header is read and checked, its decode pass's results are
/// taken from `m`.
fn reuse_measurement(path: &Path, opts: &ValidateOptions, m: &MeasuredTrack) -> Decoded {
    let mut out = Decoded {
        format: None,
        frames: m.frames,
        loudness: Some(m.loudness.clone()),
        meter: None,
        fingerprint: m.fingerprint.clone(),
        findings: Vec::new(),
        decode_findings: m.findings.len(),
    };
    match MasterReader::open(path, false) {
        Ok(reader) => {
            let f = reader.format().clone();
            check_format(path, &f, opts, &mut out.findings);
            out.format = Some(f);
        }
        Err(e) => out.findings.push(e.to_finding()),
    }
    let file = path.display().to_string();
    out.findings.extend(m.findings.iter().map(|f| Finding {
        file: file.clone(),
        ..f.clone()
    }));
    out
}

/// The policy checks of a master's declared format.
fn check_format(
    path: &Path,
    f: &MasterFormat,
    opts: &ValidateOptions,
    findings: &mut Vec<Finding>,
) {
    if f.is_lossy() {
        let message = format!("{} is a lossy format: a master must be lossless", f.codec);
        let fix = "deliver the lossless master (or run with --allow-lossy)";
        findings.push(if opts.allow_lossy {
            Finding::warning("master.lossy", path, message, fix)
        } else {
            Finding::error("master.lossy", path, message, fix)
        });
    }
    if f.sample_rate < MIN_SAMPLE_RATE {
        findings.push(Finding::error(
            "master.sample-rate",
            path,
            format!(
                "sample rate {} Hz is below the {MIN_SAMPLE_RATE} Hz policy",
                f.sample_rate
            ),
            "deliver the master at 44.1 kHz or above",
        ));
    }
    if f.kind == SampleKind::Int && f.bits_per_sample < MIN_BITS && !f.is_lossy() {
        findings.push(Finding::error(
            "master.bit-depth",
            path,
            format!(
                "{}-bit samples are below the {MIN_BITS}-bit policy",
                f.bits_per_sample
            ),
            "deliver a 16-bit or deeper master",
        ));
    }
    if ![1, 2, 6, 8].contains(&f.channels) {
        findings.push(Finding::warning(
            "master.channel-layout",
            path,
            format!(
                "{} channels is not mono, stereo, 5.1 or 7.1: no rung will carry it",
                f.channels
            ),
            "deliver a standard layout",
        ));
    }
    if f.streaming_header {
        findings.push(Finding::warning(
            "master.streaming-header",
            path,
            "the header's size fields are 0xFFFFFFFF (written while streaming); the audio was read to the end of the file".into(),
            "re-save the file so its header holds the real sizes",
        ));
    }
}

/// The decode pass: every sample through the analyzer (loudness, clipping, silence), and the
/// FLAC MD5 check.
fn decode_master(path: &Path, f: MasterFormat, reader: &mut MasterReader, out: &mut Decoded) {
    let mut analyzer = match Analyzer::new(f.channels, f.sample_rate) {
        Ok(a) => a,
        Err(message) => {
            out.findings.push(Finding::error(
                "master.loudness",
                path,
                message,
                "report this master",
            ));
            return;
        }
    };
    // The loudness meter runs on its own thread, fed copies of the decoded chunks, so a
    // single master's validation uses two cores.
    let mut meter = analyzer
        .detach_meter()
        .expect("a new analyzer has its meter");
    let failed = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<f32>>(16);
        let (channels, rate) = (f.channels, f.sample_rate);
        let truncate = f.kind == SampleKind::Int && f.bits_per_sample > 16;
        let metering = scope.spawn(move || {
            // The fingerprinter runs beside the meter (it is cheap: 11 kHz mono after its
            // resampler), made on this thread (it is not `Send`).
            #[cfg(feature = "press")]
            let mut fingerprinter =
                super::fingerprint::Fingerprinter::new(channels, rate, truncate).ok();
            #[cfg(not(feature = "press"))]
            let _ = (channels, rate, truncate);
            for chunk in rx {
                meter.push(&chunk);
                #[cfg(feature = "press")]
                if let Some(fp) = &mut fingerprinter {
                    fp.push(&chunk);
                }
            }
            #[cfg(feature = "press")]
            return (meter, fingerprinter.map(|fp| fp.finish()));
            #[cfg(not(feature = "press"))]
            (meter, None::<Fingerprint>)
        });
        let mut failed = None;
        loop {
            match reader.next_chunk() {
                Ok(Some(chunk)) => {
                    analyzer.push(chunk);
                    // The receiver only stops early if its thread died; join reports that.
                    let _ = tx.send(chunk.to_vec());
                }
                Ok(None) => break,
                Err(e) => {
                    failed = Some(
                        e.to_finding()
                            .at(format!("sample {}", reader.frames_read())),
                    );
                    break;
                }
            }
        }
        drop(tx);
        match metering.join() {
            Ok((meter, fingerprint)) => {
                analyzer.attach_meter(meter);
                out.fingerprint = fingerprint.filter(|f| !f.raw.is_empty());
            }
            Err(_) => {
                failed.get_or_insert(Finding::error(
                    "master.loudness",
                    path,
                    "the loudness meter failed".into(),
                    "report this master to the pressing maintainers",
                ));
            }
        }
        failed
    });
    if let Some(finding) = failed {
        out.findings.push(finding);
        out.format = Some(f);
        out.frames = reader.frames_read();
        return;
    }
    if reader.verification() == Some(false) {
        out.findings.push(Finding::error(
            "master.md5-mismatch",
            path,
            "the decoded audio does not match the MD5 in the FLAC STREAMINFO (the file is corrupt)"
                .into(),
            "re-export or re-deliver the master",
        ));
    }
    out.frames = analyzer.frames();
    let (loudness, mut found, meter) = analyzer.finish(path);
    out.findings.append(&mut found);
    out.loudness = Some(loudness);
    out.meter = Some(meter);
    out.format = Some(f);
}

/// Two masters of the run with the same audio (by fingerprint): a warning naming both, since a
/// label that delivers one file twice under two names most likely meant another master.
fn check_duplicates(checks: &[MasterCheck], findings: &mut Vec<Finding>) {
    use super::fingerprint::{best_match, DUPLICATE_SIMILARITY, MAX_OFFSET_ITEMS};
    for (i, a) in checks.iter().enumerate() {
        let Some(fa) = &a.fingerprint else { continue };
        for b in &checks[i + 1..] {
            let Some(fb) = &b.fingerprint else { continue };
            let Some(m) = best_match(&fa.raw, &fb.raw, MAX_OFFSET_ITEMS) else {
                continue;
            };
            if m.similarity >= DUPLICATE_SIMILARITY {
                findings.push(Finding::warning(
                    "release.duplicate-audio",
                    Path::new(&b.file),
                    format!(
                        "{} and {} hold the same audio ({:.0}% of their fingerprints' bits agree)",
                        a.file,
                        b.file,
                        m.similarity * 100.0
                    ),
                    "check that each track's master is the right file; deliver the intended master in place of the copy",
                ));
            }
        }
    }
}

fn check_gapless(
    programme: &[usize],
    tracks: &[TrackSource],
    decoded: &[Decoded],
    findings: &mut Vec<Finding>,
) {
    let formats: Vec<(usize, &MasterFormat)> = programme
        .iter()
        .filter_map(|&i| decoded[i].format.as_ref().map(|f| (i, f)))
        .collect();
    let Some(&(_, first)) = formats.first() else {
        return;
    };
    for &(i, f) in &formats[1..] {
        if f.sample_rate != first.sample_rate || f.channels != first.channels {
            findings.push(
                IngestError::GaplessMismatch {
                    path: tracks[i].path.clone(),
                    found: format!("{} Hz / {} ch", f.sample_rate, f.channels),
                    expected: format!("{} Hz / {} ch", first.sample_rate, first.channels),
                }
                .to_finding(),
            );
        }
    }
}
