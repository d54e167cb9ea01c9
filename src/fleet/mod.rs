//! The ingestion fleet: jobs, the queue seam and its two implementations, submit and the
//! worker loop.
//!
//! A **job is one release** (a folder of masters with its release.json, or one bare master):
//! the pipeline already spreads a release's tracks over every core of a machine, keeps a
//! gapless programme in one piece and measures album loudness over the whole release, so a
//! fleet balances releases across machines and a machine balances tracks across cores.
//!
//! Delivery is at-least-once on both queues: a job done twice changes nothing, because its
//! outputs are byte-identical, publishing skips what the store already holds and the catalog
//! notification is keyed by the content it announces.
//!
//! - [`Queue`]: the seam. [`sqlite::SqliteQueue`] (a file, for one machine with nothing
//!   installed) and [`nats::NatsQueue`] (NATS JetStream, for a fleet) implement it.
//! - [`submit`]: validate, upload masters to the incoming store, enqueue.
//! - [`worker`]: claim, heartbeat, download, run, publish, then ack, retry or dead-letter.

// Without the services (the fuzz build), nothing opens a queue.
#![cfg_attr(not(feature = "services"), allow(dead_code))]

pub mod measured;
pub mod metrics;
#[cfg(feature = "services")]
pub mod nats;
#[cfg(feature = "services")]
pub mod sqlite;
pub mod submit;
pub mod worker;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Deliveries of a job before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 5;

/// How long a claimed job stays invisible to other workers without a heartbeat, unless the
/// queue's spec says otherwise (`?lease=SECONDS`).
pub const LEASE: Duration = Duration::from_secs(30);

/// The delay before a job that failed transiently is offered again, after `attempts`
/// deliveries: 2 s, 4 s, 8 s, 16 s, capped at 60 s.
pub fn retry_delay(attempts: u32) -> Duration {
    Duration::from_secs((1u64 << attempts.clamp(1, 6)).min(60))
}

/// Which jobs a worker takes first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "services", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// New releases: taken before any normal job that is waiting.
    High,
    /// Back-catalogue migrations and re-encodes.
    #[default]
    Normal,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
        }
    }
}

/// One file of a release in the incoming store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFile {
    /// The file name inside the release folder.
    pub name: String,
    /// Its key in the incoming store.
    pub key: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes: checked after download.
    pub sha256: String,
}

/// What a worker needs to press a release: where its files are, and how to encode them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Derived from the content (files, ladder, options): the same release submitted again
    /// has the same id.
    pub id: String,
    /// The release's UPC when its metadata has one, else the folder or file name.
    pub release: String,
    /// The track ids the release will publish.
    pub tracks: Vec<String>,
    /// Masters and release.json; a release of one bare master has `folder: false`.
    pub files: Vec<JobFile>,
    pub folder: bool,
    /// The ladder's name (for status) and its whole TOML (a worker needs no ladder file).
    pub ladder_name: String,
    pub ladder: String,
    pub gapless: bool,
    pub allow_lossy: bool,
    /// Score every lossy rendition (`submit --quality`, as `run --quality`).
    #[serde(default)]
    pub quality: bool,
    pub priority: Priority,
    /// Milliseconds since the Unix epoch at submit (queue lag).
    pub submitted_ms: u64,
    /// Submit's decode pass (loudness, length, the analyzer's findings): the worker reuses
    /// it instead of decoding every master twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<measured::JobMeasurements>,
    /// Attempts spent before this message of the job: a job handed back at a stop is
    /// enqueued afresh on JetStream (where a NAK would count as a delivery) and carries the
    /// attempts of its earlier message.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts_before: u32,
    /// A takedown (a DDEX `PurgeReleaseMessage` given to submit): the ICPN of the release
    /// whose every published track the worker unpublishes, as `pressing unpublish --ddex`
    /// does; its one file is the message, kept in the incoming store as the record of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takedown: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Published,
    /// Failed transiently; will be retried.
    Failed,
    /// Dead-lettered: failed permanently or exhausted its attempts.
    Dead,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Published | JobState::Dead)
    }
}

/// What `status` shows of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    pub id: String,
    pub release: String,
    pub tracks: Vec<String>,
    pub state: JobState,
    pub priority: Priority,
    pub attempts: u32,
    /// The worker that runs or ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// How far a running job is, 0..1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// The exit code and message of the last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub submitted_ms: u64,
    pub updated_ms: u64,
}

impl JobStatus {
    pub fn queued(job: &Job) -> JobStatus {
        JobStatus {
            id: job.id.clone(),
            release: job.release.clone(),
            tracks: job.tracks.clone(),
            state: JobState::Queued,
            priority: job.priority,
            attempts: 0,
            worker: None,
            progress: None,
            code: None,
            message: None,
            submitted_ms: job.submitted_ms,
            updated_ms: now_ms(),
        }
    }
}

/// A failure of the queue itself (the broker or the queue file).
#[derive(Debug, thiserror::Error)]
#[error("queue {queue}: {message}")]
pub struct QueueError {
    pub queue: String,
    pub message: String,
}

impl QueueError {
    pub fn new(queue: &str, message: impl std::fmt::Display) -> QueueError {
        QueueError {
            queue: queue.to_string(),
            message: message.to_string(),
        }
    }
}

/// A claimed job: the worker holds it until it acks, retries, dead-letters or releases it.
pub struct Lease {
    pub job: Job,
    /// Deliveries so far, this one included.
    pub attempts: u32,
    /// Milliseconds from the job's enqueue (or its retry delay's end) to this claim.
    pub lag_ms: u64,
    /// The implementation's handle (a JetStream message, a lease token).
    pub(crate) handle: LeaseHandle,
}

pub(crate) enum LeaseHandle {
    Sqlite {
        token: String,
    },
    #[cfg(feature = "services")]
    Nats(Box<async_nats::jetstream::Message>),
}

/// The queue seam: a durable, deduplicating work queue with leases, priorities, retries
/// with delay, a dead letter, and job status. Delivery is at-least-once.
pub trait Queue: Send + Sync {
    /// Where the queue is (`nats://…`, `sqlite:PATH`), for logs and errors.
    fn name(&self) -> String;
    fn settings(&self) -> QueueSettings;
    /// Enqueue a job unless one with its id is known and not dead; returns the job's state
    /// (Queued when it was enqueued now).
    fn enqueue(&self, job: &Job) -> Result<JobStatus, QueueError>;
    /// The next job, high priority first, waiting up to `wait`; `None` when there is none.
    fn claim(&self, worker: &str, wait: Duration) -> Result<Option<Lease>, QueueError>;
    /// Renew the lease and record how far the job is.
    fn heartbeat(&self, lease: &Lease, worker: &str, progress: f64) -> Result<(), QueueError>;
    /// The job is published: remove it from the queue.
    fn complete(&self, lease: Lease, worker: &str) -> Result<(), QueueError>;
    /// The job failed transiently: offer it again after `delay`.
    fn retry(
        &self,
        lease: Lease,
        delay: Duration,
        code: u8,
        message: &str,
    ) -> Result<(), QueueError>;
    /// The job failed permanently (or for the last time): record it on the dead letter and
    /// remove it from the queue.
    fn dead(&self, lease: Lease, code: u8, message: &str) -> Result<(), QueueError>;
    /// Hand the job back at once, untouched (a worker shutting down).
    fn release(&self, lease: Lease) -> Result<(), QueueError>;
    /// A job's status by its id, or every job of a release (by its UPC or name).
    fn status(&self, id_or_release: &str) -> Result<Vec<JobStatus>, QueueError>;
    /// The dead-lettered jobs, with their last code and message.
    fn dead_letters(&self) -> Result<Vec<JobStatus>, QueueError>;
}

/// Settings of a queue, from its spec's query (`?lease=30&replicas=3`).
#[derive(Clone, Copy, Debug)]
pub struct QueueSettings {
    /// How long a claimed job stays invisible without a heartbeat (JetStream's AckWait).
    pub lease: Duration,
    /// Copies of every stream and of the status bucket (NATS clusters only).
    pub replicas: usize,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            lease: LEASE,
            replicas: 1,
        }
    }
}

impl QueueSettings {
    /// How often a running job's lease is renewed: a third of it, so two heartbeats may be
    /// lost before the job is handed to someone else.
    pub fn heartbeat(&self) -> Duration {
        self.lease / 3
    }

    fn parse(spec: &str, query: &str) -> Result<QueueSettings, QueueError> {
        let mut s = QueueSettings::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let bad = |what: &str| QueueError::new(spec, format!("{pair:?}: {what}"));
            match pair.split_once('=') {
                Some(("lease", n)) => {
                    let secs: u64 = n
                        .parse()
                        .ok()
                        .filter(|n| (1..=3600).contains(n))
                        .ok_or_else(|| bad("the lease is 1 to 3600 seconds"))?;
                    s.lease = Duration::from_secs(secs);
                }
                Some(("replicas", n)) => {
                    s.replicas = n
                        .parse()
                        .ok()
                        .filter(|n| (1..=5).contains(n))
                        .ok_or_else(|| bad("replicas are 1 to 5"))?;
                }
                _ => return Err(bad("unknown setting (known: lease, replicas)")),
            }
        }
        Ok(s)
    }
}

/// Open a queue from its spec: `nats://host:port[,host:port…][?settings]`,
/// `sqlite:PATH[?settings]`, or (none) the default file under the user's state folder.
#[cfg(feature = "services")]
pub fn open(spec: Option<&str>) -> Result<Box<dyn Queue>, QueueError> {
    let spec = queue_spec(spec);
    let (base, query) = spec.split_once('?').unwrap_or((&spec, ""));
    let settings = QueueSettings::parse(&spec, query)?;
    if base.starts_with("nats://") || base.starts_with("tls://") {
        return Ok(Box::new(nats::NatsQueue::connect(base, settings)?));
    }
    match base.strip_prefix("sqlite:") {
        Some(path) => Ok(Box::new(sqlite::SqliteQueue::open(
            path.as_ref(),
            settings,
        )?)),
        None => Err(QueueError::new(
            &spec,
            "unknown queue (give nats://host:4222 or sqlite:PATH)",
        )),
    }
}

/// The queue a spec names, the default queue file when there is none.
fn queue_spec(spec: Option<&str>) -> String {
    spec.map(str::to_string)
        .unwrap_or_else(|| format!("sqlite:{}", default_queue_file().display()))
}

/// `$XDG_STATE_HOME/pressing/queue.db` (`~/.local/state/pressing/queue.db`).
pub fn default_queue_file() -> std::path::PathBuf {
    crate::dirs::pressing_dir(crate::dirs::UserDir::State).join("queue.db")
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_cap() {
        let d: Vec<u64> = (1..=8).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(d, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn queue_settings_from_the_spec() {
        let s = QueueSettings::parse("q", "lease=5&replicas=3").unwrap();
        assert_eq!((s.lease, s.replicas), (Duration::from_secs(5), 3));
        assert_eq!(s.heartbeat().as_millis(), 1666);
        let d = QueueSettings::parse("q", "").unwrap();
        assert_eq!((d.lease, d.replicas), (LEASE, 1));
        for bad in ["lease=0", "replicas=9", "lease=x", "speed=3"] {
            let e = QueueSettings::parse("q", bad).unwrap_err();
            assert!(e.message.contains(bad), "{bad}: {e}");
        }
        #[cfg(feature = "services")]
        assert!(open(Some("redis://x")).is_err());
    }

    #[test]
    fn the_default_queue_is_the_state_folders_queue_file() {
        let f = default_queue_file();
        assert_eq!(
            f,
            crate::dirs::pressing_dir(crate::dirs::UserDir::State).join("queue.db")
        );
        assert!(f.is_absolute(), "{f:?}");
        // The spec without a queue names that file.
        let spec = format!("sqlite:{}", f.display());
        assert_eq!(queue_spec(None), spec);
        assert_eq!(queue_spec(Some("nats://h:4222")), "nats://h:4222");
    }
}
