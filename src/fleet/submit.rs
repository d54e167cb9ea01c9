//! `submit`: validate a release locally (a bad release never reaches the fleet), upload its
//! masters and release.json to the incoming store under content-keyed keys, then enqueue one
//! job for it. The job id is a digest of the files, the ladder and the options, so the same
//! release submitted again is the same job: nothing is uploaded or enqueued twice.

use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::measured::JobMeasurements;
use super::{now_ms, Job, JobFile, JobStatus, Priority, Queue};
use crate::error::Error;
use crate::ingest::{validate, Measured, ValidateOptions};
use crate::ladder::Ladder;
use crate::layout::{self, hex, Artifact, ArtifactKind};
use crate::publish::{Store, Upload, UploadProgress};

/// Hex digits of a job id (96 bits).
pub const JOB_ID_DIGITS: usize = 24;

/// The incoming store's masters are never served to a CDN.
const MASTER_CACHE_CONTROL: &str = "private, no-store";

pub struct SubmitOptions<'a> {
    pub ladder: &'a Ladder,
    /// The name `--ladder` was given (built-in name or path), for status.
    pub ladder_name: &'a str,
    pub gapless: bool,
    pub allow_lossy: bool,
    /// Score every lossy rendition (`--quality`).
    pub quality: bool,
    pub priority: Priority,
}

/// One release submitted: its job, its state in the queue, and what was uploaded.
#[derive(Debug)]
pub struct Submitted {
    pub job: Job,
    pub status: JobStatus,
    pub uploaded: u64,
    pub bytes: u64,
}

/// Hex SHA-256 of a file, read in pieces.
fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Validate one release (a folder or a bare master) and describe it as a job, with the
/// local file of each of its files.
pub fn prepare(input: &Path, opts: &SubmitOptions) -> Result<(Job, Vec<PathBuf>), Error> {
    if let Some((job, message)) = takedown(input, opts)? {
        return Ok((job, vec![message]));
    }
    let (release, validation) = validate(
        &[input.to_path_buf()],
        ValidateOptions {
            allow_lossy: opts.allow_lossy,
            all_gapless: opts.gapless,
            metadata: None,
            writes_output: true,
            measured: None,
            cover_min_size: Some(opts.ladder.cover.min_size),
        },
    );
    if validation.has_errors() {
        return Err(Error::Rejected(Box::new(validation)));
    }
    let folder = input.is_dir();
    let mut paths: Vec<PathBuf> = release.tracks.iter().map(|t| t.path.clone()).collect();
    let metadata = input.join("release.json");
    if folder && metadata.is_file() {
        paths.push(metadata);
    }
    // A DDEX release: its message (validation allowed one, and no release.json beside it).
    if folder {
        paths.extend(
            crate::ingest::validate::ern_messages(input)
                .into_iter()
                .take(1),
        );
    }
    // The front cover (cover.jpg beside release.json, or the ERN's FrontCoverImage).
    if folder {
        paths.extend(
            release
                .albums
                .iter()
                .flatten()
                .filter_map(|a| a.cover.clone()),
        );
    }
    // Every file hashed at once, a core each.
    let mut files = paths
        .par_iter()
        .map(|p| {
            let name = if folder {
                p.strip_prefix(input).unwrap_or(p)
            } else {
                Path::new(p.file_name().unwrap_or_default())
            }
            .to_string_lossy()
            .replace('\\', "/");
            let io = |e: std::io::Error| Error::Input {
                path: p.clone(),
                message: format!("cannot read: {e}"),
                fix: "check the file's permissions",
            };
            Ok(JobFile {
                name,
                key: String::new(),
                size: std::fs::metadata(p).map_err(io)?.len(),
                sha256: file_sha256(p).map_err(io)?,
            })
        })
        .collect::<Result<Vec<JobFile>, Error>>()?;
    let mut id = Sha256::new();
    id.update(b"pressing-job-1\0");
    for f in &files {
        for part in [f.name.as_bytes(), b"\0", f.sha256.as_bytes(), b"\0"] {
            id.update(part);
        }
    }
    id.update(opts.ladder.text.as_bytes());
    id.update([u8::from(opts.gapless), u8::from(opts.allow_lossy)]);
    // Only when asked: the ids of jobs submitted before the option existed stay the same.
    if opts.quality {
        id.update(b"quality");
    }
    let id = hex(&id.finalize())[..JOB_ID_DIGITS].to_string();
    for f in &mut files {
        f.key = layout::master_key(&id, &f.name);
    }
    let upc = release.albums.iter().flatten().find_map(|a| a.upc.clone());
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| input.display().to_string());
    let job = Job {
        id,
        release: upc.unwrap_or(name),
        tracks: release.tracks.iter().map(|t| t.id.clone()).collect(),
        files,
        folder,
        ladder_name: opts.ladder_name.to_string(),
        ladder: opts.ladder.text.clone(),
        gapless: opts.gapless,
        allow_lossy: opts.allow_lossy,
        quality: opts.quality,
        priority: opts.priority,
        submitted_ms: now_ms(),
        measured: Measured::of(&validation).map(|m| JobMeasurements::new(&m)),
        attempts_before: 0,
        takedown: None,
    };
    Ok((job, paths))
}

/// Upload a job's files that the store does not hold yet (one listing; same key and size is
/// the same file, the key holding the job's content digest); returns (objects, bytes).
pub fn upload(
    job: &Job,
    paths: &[PathBuf],
    store: &dyn Store,
    progress: &dyn UploadProgress,
) -> Result<(u64, u64), Error> {
    let existing = store.list(&format!("masters/{}/", job.id))?;
    let artifacts: Vec<Artifact> = job
        .files
        .iter()
        .zip(paths)
        .filter(|(f, _)| existing.get(&f.key).is_none_or(|o| o.size != f.size))
        .map(|(f, p)| Artifact::new(f.key.clone(), p.clone(), ArtifactKind::Master))
        .collect();
    if artifacts.is_empty() {
        return Ok((0, 0));
    }
    let bytes = job.files.iter().map(|f| f.size).sum();
    progress.start(artifacts.len() as u64, bytes);
    let uploads: Vec<Upload> = artifacts
        .iter()
        .map(|a| Upload {
            artifact: a,
            cache_control: MASTER_CACHE_CONTROL,
        })
        .collect();
    let stats = store.put(&uploads, progress)?;
    progress.finish();
    Ok((stats.objects, stats.bytes))
}

/// Submit releases: every one is validated before anything is uploaded or enqueued.
pub fn submit(
    inputs: &[PathBuf],
    opts: &SubmitOptions,
    store: &dyn Store,
    queue: &dyn Queue,
    progress: &dyn UploadProgress,
) -> Result<Vec<Submitted>, Error> {
    let prepared = inputs
        .iter()
        .map(|i| prepare(i, opts))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(prepared.len());
    for (job, paths) in prepared {
        // Already known and not dead: nothing to upload or enqueue.
        if let Some(s) = queue
            .status(&job.id)?
            .into_iter()
            .find(|s| s.id == job.id && s.state != super::JobState::Dead)
        {
            out.push(Submitted {
                job,
                status: s,
                uploaded: 0,
                bytes: 0,
            });
            continue;
        }
        let (uploaded, bytes) = upload(&job, &paths, store, progress)?;
        // Queue latency is counted from the enqueue, not from validation and upload.
        let job = Job {
            submitted_ms: now_ms(),
            ..job
        };
        let status = queue.enqueue(&job)?;
        out.push(Submitted {
            job,
            status,
            uploaded,
            bytes,
        });
    }
    Ok(out)
}

/// A DDEX takedown given to submit: a `PurgeReleaseMessage`, or a release folder (or message)
/// whose `NewReleaseMessage` no deal allows any tier of today (`ddex::takedown_of`): a takedown
/// job for the release it names, and the message, its one file (`None`: a release to press).
fn takedown(input: &Path, opts: &SubmitOptions) -> Result<Option<(Job, PathBuf)>, Error> {
    let is_xml =
        |p: &Path| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"));
    let message = if input.is_dir() {
        match crate::ingest::validate::ern_messages(input).first() {
            Some(m) => m.clone(),
            None => return Ok(None),
        }
    } else if is_xml(input) {
        input.to_path_buf()
    } else {
        return Ok(None);
    };
    let io = |e: std::io::Error| Error::Input {
        path: message.clone(),
        message: format!("cannot read: {e}"),
        fix: "check the file's permissions",
    };
    let text = std::fs::read_to_string(&message).map_err(io)?;
    let icpn = crate::ingest::ddex::takedown_of(&message, &text, &opts.ladder.deal_models);
    let icpn = match icpn {
        Ok(Some(icpn)) => icpn,
        Ok(None) => return Ok(None),
        // A folder's message is validated with its release; a message alone is the job.
        Err(_) if input.is_dir() => return Ok(None),
        Err(f) => return Err(rejected(*f)),
    };
    let input = message.as_path();
    let sha256 = file_sha256(input).map_err(io)?;
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "purge.xml".into());
    let mut id = Sha256::new();
    for part in [
        b"pressing-takedown-1\0".as_slice(),
        icpn.as_bytes(),
        b"\0",
        sha256.as_bytes(),
    ] {
        id.update(part);
    }
    let id = hex(&id.finalize())[..JOB_ID_DIGITS].to_string();
    let size = std::fs::metadata(input).map_err(io)?.len();
    let job = Job {
        files: vec![JobFile {
            key: layout::master_key(&id, &name),
            name,
            size,
            sha256,
        }],
        id,
        release: layout::upc_of(&icpn).to_string(),
        tracks: Vec::new(),
        folder: false,
        ladder_name: opts.ladder_name.to_string(),
        ladder: opts.ladder.text.clone(),
        gapless: false,
        allow_lossy: false,
        quality: false,
        priority: opts.priority,
        submitted_ms: now_ms(),
        measured: None,
        attempts_before: 0,
        takedown: Some(icpn),
    };
    Ok(Some((job, message.clone())))
}

/// One finding as a refusal (exit 65, printed as validate prints findings).
fn rejected(f: crate::ingest::findings::Finding) -> Error {
    Error::Rejected(Box::new(crate::ingest::validate::ValidationReport {
        errors: 1,
        warnings: 0,
        tracks: Vec::new(),
        albums: Vec::new(),
        findings: vec![f],
    }))
}
