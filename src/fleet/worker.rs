//! The worker loop: claim a job, renew its lease while it runs, download its files into a
//! scratch folder of its own, run the pipeline, publish, and only then ack. A transient
//! failure is retried with a growing delay; a permanent one (bad master, bad metadata, a
//! catalog that rejects the notification) goes to the dead letter at once; the fifth failure
//! of any kind does too.
//!
//! Killed at any moment, the job's lease runs out and another worker runs it from the start:
//! the pipeline's outputs are byte-identical, publishing uploads only what is missing and
//! the notification is sent once, so the end state is as if nothing had failed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::metrics::Metrics;
use super::{retry_delay, Job, Lease, Queue, MAX_ATTEMPTS};
use crate::error::Error;
use crate::ladder::Ladder;
use crate::pipeline::{self, ProgressSink, RunOptions};
use crate::publish::{self, CatalogNotifier, NoUploadProgress, PublishOptions, Store};

pub struct WorkerOptions {
    /// This worker's name in status and logs.
    pub name: String,
    /// Scratch folder; each job gets `<scratch>/<job id>.<pid>`.
    pub scratch: PathBuf,
    /// Jobs at a time.
    pub concurrency: usize,
    /// Pipeline threads per job (`None`: the cores divided among the jobs).
    pub threads: Option<usize>,
    /// Largest total size of a job's masters, in bytes (its scratch bound: masters plus a
    /// package no larger than them).
    pub scratch_limit: u64,
    pub publish: PublishOptions,
    /// After a stop is asked for, how long a running job may still go on to publish;
    /// past it, the job is handed back.
    pub grace: Duration,
    /// Stop after this many jobs (tests, one-shot runs); `None`: until stopped.
    pub max_jobs: Option<u64>,
}

/// The shared services a worker runs against.
pub struct Services<'a> {
    pub queue: &'a dyn Queue,
    pub incoming: &'a dyn Store,
    pub out: &'a dyn Store,
    pub notifier: &'a dyn CatalogNotifier,
    /// Where a job's protected tiers get their keys (the worker's `--key-server`).
    pub keys: Option<&'a dyn crate::protect::KeySource>,
}

/// How a job ended on this worker.
enum Outcome {
    Published,
    /// Handed back at a stop.
    Released,
    Failed(Error),
}

/// Remove scratch folders of jobs whose process is gone (a killed worker's leftovers).
pub fn clean_scratch(scratch: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(scratch) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((_, pid)) = name.rsplit_once('.') else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive && std::fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A stop asked for (SIGTERM, SIGINT), and when: the grace period counts from the signal.
#[derive(Debug, Default)]
pub struct Stop(OnceLock<Instant>);

impl Stop {
    /// Ask for a stop; true if one had been asked for already.
    pub fn request(&self) -> bool {
        self.0.set(Instant::now()).is_err()
    }

    pub fn requested(&self) -> bool {
        self.0.get().is_some()
    }

    /// A stop was asked for more than `grace` ago.
    pub fn past(&self, grace: Duration) -> bool {
        self.0.get().is_some_and(|at| at.elapsed() > grace)
    }
}

/// Run until a stop is asked for (or `max_jobs` are done): `concurrency` job loops.
pub fn run(
    services: &Services,
    opts: &WorkerOptions,
    stop: &Stop,
    metrics: &Metrics,
) -> Result<(), Error> {
    std::fs::create_dir_all(&opts.scratch).map_err(|source| Error::Output {
        path: opts.scratch.clone(),
        source,
    })?;
    let removed = clean_scratch(&opts.scratch);
    if removed > 0 {
        tracing::info!("removed {removed} scratch folder(s) of killed runs");
    }
    let taken = AtomicU64::new(0);
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for slot in 0..opts.concurrency.max(1) {
            let (taken, fatal) = (&taken, &fatal);
            s.spawn(move || {
                let worker = format!("{}/{slot}", opts.name);
                let _span = tracing::info_span!("worker", worker = %worker).entered();
                loop {
                    if stop.requested() || fatal.lock().unwrap().is_some() {
                        return;
                    }
                    if let Some(max) = opts.max_jobs {
                        if taken.fetch_add(1, Ordering::SeqCst) >= max {
                            return;
                        }
                    }
                    let lease = match services.queue.claim(&worker, Duration::from_secs(1)) {
                        Ok(Some(l)) => l,
                        Ok(None) => {
                            if opts.max_jobs.is_some() {
                                taken.fetch_sub(1, Ordering::SeqCst);
                            }
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!("{e}");
                            if opts.max_jobs.is_some() {
                                taken.fetch_sub(1, Ordering::SeqCst);
                            }
                            std::thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    };
                    metrics.claimed.fetch_add(1, Ordering::Relaxed);
                    metrics
                        .lag_millis
                        .fetch_add(lease.lag_ms, Ordering::Relaxed);
                    let grace_over = || stop.past(opts.grace);
                    if let Err(e) = one_job(services, opts, &worker, lease, metrics, &grace_over) {
                        tracing::error!("{e}");
                        if matches!(e, Error::Queue(_)) {
                            continue;
                        }
                        *fatal.lock().unwrap() = Some(e);
                        return;
                    }
                }
            });
        }
    });
    match fatal.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Progress of the running job, for the heartbeat (frames done of frames declared), and
/// the pipeline's question whether to stop (a stop was asked for and the grace is over).
struct JobProgress<'a> {
    total: AtomicU64,
    done: Mutex<std::collections::HashMap<String, u64>>,
    done_sum: AtomicU64,
    grace_over: &'a GraceOver<'a>,
}

/// Whether a stop was asked for and the grace period is over.
type GraceOver<'a> = dyn Fn() -> bool + Sync + 'a;

impl ProgressSink for JobProgress<'_> {
    fn cancelled(&self) -> bool {
        (self.grace_over)()
    }
    fn track_started(&self, _track: &str, total: Option<u64>, _rate: u32) {
        self.total.fetch_add(total.unwrap_or(0), Ordering::Relaxed);
    }
    fn track_advanced(&self, track: &str, frames: u64) {
        let mut done = self.done.lock().unwrap();
        let before = done.insert(track.to_string(), frames).unwrap_or(0);
        self.done_sum
            .fetch_add(frames.saturating_sub(before), Ordering::Relaxed);
    }
}

impl JobProgress<'_> {
    /// 0.1 downloaded .. 0.9 encoded .. 1 published.
    fn fraction(&self) -> f64 {
        let total = self.total.load(Ordering::Relaxed);
        if total == 0 {
            return 0.1;
        }
        0.1 + 0.8 * (self.done_sum.load(Ordering::Relaxed) as f64 / total as f64).min(1.0)
    }
}

fn one_job(
    services: &Services,
    opts: &WorkerOptions,
    worker: &str,
    lease: Lease,
    metrics: &Metrics,
    grace_over: &GraceOver,
) -> Result<(), Error> {
    // Every line the job logs (this thread, and the heartbeat's, which names it as parent)
    // carries its id.
    let span = tracing::info_span!("job", job = %lease.job.id, worker = %worker);
    let _entered = span.enter();
    tracing::info!(
        "claimed release {} ({} track(s), attempt {} of {MAX_ATTEMPTS}, {} ms after submit)",
        lease.job.release,
        lease.job.tracks.len(),
        lease.attempts,
        lease.lag_ms
    );
    let scratch = opts
        .scratch
        .join(format!("{}.{}", lease.job.id, std::process::id()));
    metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let progress = JobProgress {
        total: AtomicU64::new(0),
        done: Mutex::default(),
        done_sum: AtomicU64::new(0),
        grace_over,
    };
    let finished = AtomicBool::new(false);
    let outcome = std::thread::scope(|s| {
        // The heartbeat: in-progress acks (or a lease renewal) while the job runs.
        s.spawn(|| {
            let every = services.queue.settings().heartbeat();
            let mut next = Instant::now() + every;
            while !finished.load(Ordering::SeqCst) {
                if Instant::now() >= next {
                    if let Err(e) = services
                        .queue
                        .heartbeat(&lease, worker, progress.fraction())
                    {
                        tracing::warn!(parent: &span, "heartbeat: {e}");
                    }
                    next = Instant::now() + every;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let o = press_steps(
            services, opts, &lease.job, &scratch, &progress, metrics, grace_over,
        );
        finished.store(true, Ordering::SeqCst);
        match o {
            Ok(true) => Outcome::Published,
            Ok(false) | Err(Error::Stopped) => Outcome::Released,
            Err(e) => Outcome::Failed(e),
        }
    });
    let _ = std::fs::remove_dir_all(&scratch);
    metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    match outcome {
        Outcome::Published => {
            services.queue.complete(lease, worker)?;
            metrics.published.fetch_add(1, Ordering::Relaxed);
            tracing::info!("published");
        }
        Outcome::Released => {
            services.queue.release(lease)?;
            metrics.released.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                "handed back (stopping) at {:.0}% of the job",
                progress.fraction() * 100.0
            );
        }
        Outcome::Failed(e) => {
            let code = e.exit_code();
            let message = e.to_string();
            if e.is_retryable() && lease.attempts < MAX_ATTEMPTS {
                let delay = retry_delay(lease.attempts);
                services.queue.retry(lease, delay, code, &message)?;
                metrics.retried.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("failed, retry in {} s: {message}", delay.as_secs());
            } else {
                services.queue.dead(lease, code, &message)?;
                metrics.dead.fetch_add(1, Ordering::Relaxed);
                tracing::error!("dead-lettered (exit code {code}): {message}");
            }
        }
    }
    Ok(())
}

fn add_millis(counter: &AtomicU64, since: Instant) {
    counter.fetch_add(since.elapsed().as_millis() as u64, Ordering::Relaxed);
}

/// Download, run and publish one job in `scratch`: `Ok(false)` when it was handed back.
fn press_steps(
    services: &Services,
    opts: &WorkerOptions,
    job: &Job,
    scratch: &Path,
    progress: &JobProgress,
    metrics: &Metrics,
    grace_over: &GraceOver,
) -> Result<bool, Error> {
    // A takedown: every published track of the release, as `unpublish --ddex` (entry
    // manifests first, then the rest, then a track.unpublished notification each).
    if let Some(icpn) = &job.takedown {
        let started = Instant::now();
        let done = pipeline::unpublish_release(icpn, services.out, services.notifier)?;
        add_millis(&metrics.publish_millis, started);
        tracing::info!(
            "took down {} track(s) of release {icpn}",
            done.iter().filter(|(_, r)| r.is_some()).count()
        );
        if let Some((track, _)) = done
            .iter()
            .find(|(_, r)| r.as_ref().is_some_and(|r| r.notification.rejected()))
        {
            return Err(Error::CatalogRejected {
                track: track.clone(),
            });
        }
        return Ok(true);
    }
    let bytes: u64 = job.files.iter().map(|f| f.size).sum();
    if bytes > opts.scratch_limit {
        return Err(Error::Input {
            path: PathBuf::from(&job.release),
            message: format!(
                "the release's masters are {bytes} bytes, over this worker's scratch limit of {}",
                opts.scratch_limit
            ),
            fix: "raise --scratch-limit on the workers, or split the release",
        });
    }
    let _ = std::fs::remove_dir_all(scratch);
    let input_dir = scratch.join("in");
    let folder = input_dir.join(if job.folder { "release" } else { "" });
    std::fs::create_dir_all(&folder).map_err(|source| Error::Output {
        path: folder.clone(),
        source,
    })?;
    let started = Instant::now();
    // Every file at once (a store serves several requests in parallel; checking a hash is
    // a core's work).
    let fetched = job
        .files
        .par_iter()
        .map(|f| fetch_checked(services.incoming, f, &folder.join(&f.name)))
        .collect::<Result<Vec<PathBuf>, Error>>()?;
    let bare = fetched.last().cloned();
    add_millis(&metrics.download_millis, started);
    if grace_over() {
        return Ok(false);
    }
    // Every file's SHA-256 was checked above: submit measured these very bytes.
    let measured = job.measured.as_ref().and_then(|m| m.usable());
    match (&job.measured, &measured) {
        (_, Some(_)) => {
            tracing::info!("downloaded and checked; reusing submit's loudness measurement")
        }
        (Some(m), None) => tracing::info!(
            "downloaded and checked; measuring again (measured by pressing {})",
            m.version
        ),
        (None, None) => tracing::info!("downloaded and checked; measuring"),
    }
    let ladder = Ladder::parse(Path::new(&job.ladder_name), &job.ladder)?;
    let out = scratch.join("out");
    let threads = opts.threads.or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Some((cores / opts.concurrency.max(1)).max(1))
    });
    // Each track's `source` names where its master is for the fleet: the incoming store.
    let sources = job
        .files
        .iter()
        .map(|f| (folder.join(&f.name), services.incoming.locator(&f.key)))
        .collect();
    let served_at =
        |key: &str| publish::object_url(opts.publish.public_url.as_deref(), services.out, key);
    let run = RunOptions {
        inputs: vec![if job.folder {
            folder.clone()
        } else {
            bare.unwrap_or(folder.clone())
        }],
        ladder,
        out: out.clone(),
        jobs: threads,
        gapless: job.gapless,
        allow_lossy: job.allow_lossy,
        measured: measured.map(std::sync::Arc::new),
        sources,
        served_at: Some(&served_at),
        protection: None,
        quality: job.quality,
    };
    let run = match services.keys {
        Some(keys) => RunOptions {
            protection: crate::pipeline::RunProtection::from_ladder(&run.ladder, None, keys),
            ..run
        },
        None if run.ladder.protection.is_some() => {
            return Err(Error::Keys(crate::protect::KeyError::Invalid {
                origin: format!("job {}", job.id),
                message: "its ladder protects tiers, and this worker has no key server (start it with --key-server URL)".into(),
            }))
        }
        None => run,
    };
    let started = Instant::now();
    let report = pipeline::run(&run, progress)?;
    add_millis(&metrics.encode_millis, started);
    metrics.audio_millis.fetch_add(
        (report.stats.audio_seconds * 1000.0) as u64,
        Ordering::Relaxed,
    );
    if grace_over() {
        return Ok(false);
    }
    let started = Instant::now();
    let published = pipeline::publish(
        &out,
        services.out,
        services.notifier,
        &opts.publish,
        &NoUploadProgress,
    )?;
    add_millis(&metrics.publish_millis, started);
    metrics
        .bytes_published
        .fetch_add(published.bytes(), Ordering::Relaxed);
    if let Some(t) = published.rejected() {
        return Err(Error::CatalogRejected {
            track: t.id.clone(),
        });
    }
    Ok(true)
}

/// Download one of a job's files to `to` and check that its SHA-256 is the one submit saw.
fn fetch_checked(incoming: &dyn Store, f: &super::JobFile, to: &Path) -> Result<PathBuf, Error> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Output {
            path: dir.to_owned(),
            source,
        })?;
    }
    let missing = || Error::Input {
        path: PathBuf::from(incoming.locator(&f.key)),
        message: "the job's file is not in the incoming store".into(),
        fix: "submit the release again",
    };
    let sha = incoming.download(&f.key, to)?.ok_or_else(missing)?.sha256;
    if sha != f.sha256 {
        return Err(Error::Input {
            path: PathBuf::from(incoming.locator(&f.key)),
            message: format!(
                "the file in the incoming store changed after submit (SHA-256 {sha}, the job says {})",
                f.sha256
            ),
            fix: "submit the release again from its masters",
        });
    }
    Ok(to.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_counts_from_the_first_signal() {
        let stop = Stop::default();
        assert!(!stop.requested());
        assert!(!stop.past(Duration::ZERO));
        assert!(!stop.request(), "the first signal");
        std::thread::sleep(Duration::from_millis(20));
        // A second signal does not move the moment of the first.
        assert!(stop.request());
        assert!(stop.requested());
        assert!(stop.past(Duration::from_millis(10)));
        assert!(!stop.past(Duration::from_secs(3600)));
    }
}
