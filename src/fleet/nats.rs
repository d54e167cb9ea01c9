//! The fleet's queue on NATS JetStream.
//!
//! - Stream [`JOBS_STREAM`] (subjects `pressing.jobs.high` and `pressing.jobs.normal`):
//!   work-queue retention (a message is gone once acked or terminated), file storage,
//!   replicas as given (`?replicas=3` on the queue URL; default 1), a duplicate window of
//!   [`DUPLICATE_WINDOW`] for `Nats-Msg-Id` (the job id).
//! - Two durable pull consumers, one per priority (`pressing-high`, `pressing-normal`):
//!   explicit ack, AckWait the queue's lease ([`super::LEASE`] unless `?lease=` says
//!   otherwise; renewed by in-progress acks every third of it), max_deliver `MAX_ATTEMPTS + 1`. The extra delivery is how a job
//!   whose worker died on its last attempt leaves the work queue: the worker that receives
//!   it records it dead and terminates it (a work-queue stream would keep it otherwise).
//!   Retries are NAKs with a growing delay ([`super::retry_delay`]). A hand-back at a stop
//!   is not a NAK (that would spend a delivery) but the job published again, carrying its
//!   attempts ([`Job::attempts_before`]), and the delivered message acked.
//! - Stream [`DEAD_STREAM`] (subject `pressing.dead`, limits retention): one message per
//!   dead-lettered job, with the job, its code and message.
//! - Key-value bucket [`STATUS_BUCKET`]: each job's [`JobStatus`] under its id; `status`
//!   reads it, and `submit` checks it first, so a release submitted again long after the
//!   duplicate window still enqueues nothing.
//!
//! Publishes are retried with the same message id for a while: right after a stream
//! leader dies, a cluster refuses publishes until a new leader is elected.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, kv, stream, AckKind};
use futures_util::StreamExt;
use tokio::runtime::Runtime;

use super::{
    now_ms, Job, JobState, JobStatus, Lease, LeaseHandle, Priority, Queue, QueueError,
    QueueSettings, MAX_ATTEMPTS,
};

pub const JOBS_STREAM: &str = "PRESSING_JOBS";
pub const DEAD_STREAM: &str = "PRESSING_DEAD";
pub const STATUS_BUCKET: &str = "pressing-jobs";
pub const DEAD_SUBJECT: &str = "pressing.dead";
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(3600);
/// The longest a pull for a job may wait for its answer (a healthy one comes within its 500 ms
/// expiry).
const FETCH_LIMIT: Duration = Duration::from_secs(5);
/// How long a publish is retried while a cluster elects a stream leader.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(20);

fn subject(p: Priority) -> String {
    format!("pressing.jobs.{}", p.as_str())
}

fn consumer_name(p: Priority) -> String {
    format!("pressing-{}", p.as_str())
}

pub struct NatsQueue {
    name: String,
    settings: QueueSettings,
    runtime: Runtime,
    js: jetstream::Context,
    status: kv::Store,
    consumers: Vec<consumer::Consumer<consumer::pull::Config>>,
}

impl NatsQueue {
    /// Connect to `nats://host:port[,nats://host:port…]` and create the streams, consumers
    /// and status bucket if they are missing.
    pub fn connect(servers: &str, settings: QueueSettings) -> Result<NatsQueue, QueueError> {
        let name = servers.to_string();
        let err = |e: &dyn std::fmt::Display| QueueError::new(&name, e);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| err(&e))?;
        let (js, status, consumers) = runtime.block_on(async {
            let servers: Vec<async_nats::ServerAddr> = servers
                .split(',')
                .map(|s| s.trim().parse())
                .collect::<Result<_, _>>()
                .map_err(|e| err(&e))?;
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(5))
                .name("pressing")
                .connect(servers)
                .await
                .map_err(|e| {
                    err(&format!(
                        "cannot connect: {e} (is nats-server running with -js?)"
                    ))
                })?;
            let js = jetstream::new(client);
            // A cluster that is starting (or electing a leader) refuses for a while.
            let deadline = Instant::now() + PUBLISH_PATIENCE;
            let (status, consumers) = loop {
                match setup(&js, settings).await {
                    Ok(v) => break v,
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(500)).await
                    }
                    Err(e) => return Err(err(&e)),
                }
            };
            Ok::<_, QueueError>((js, status, consumers))
        })?;
        Ok(NatsQueue {
            name,
            settings,
            runtime,
            js,
            status,
            consumers,
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> QueueError {
        QueueError::new(&self.name, e)
    }

    fn message(lease: &Lease) -> &jetstream::Message {
        match &lease.handle {
            LeaseHandle::Nats(m) => m,
            LeaseHandle::Sqlite { .. } => unreachable!("a SQLite lease given to the NATS queue"),
        }
    }

    async fn read_status(&self, id: &str) -> Result<Option<JobStatus>, QueueError> {
        match self.status.get(id).await.map_err(|e| self.err(e))? {
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            None => Ok(None),
        }
    }

    async fn write_status(&self, s: &JobStatus) -> Result<(), QueueError> {
        let bytes = serde_json::to_vec(s).expect("a status serialises");
        let deadline = Instant::now() + PUBLISH_PATIENCE;
        loop {
            match self.status.put(&s.id, bytes.clone().into()).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(self.err(format!("status of {}: {e}", s.id))),
            }
        }
    }

    /// Publish with a message id, retried while a stream has no leader.
    async fn publish(&self, subject: String, id: &str, body: Vec<u8>) -> Result<bool, QueueError> {
        let deadline = Instant::now() + PUBLISH_PATIENCE;
        loop {
            let msg = jetstream::message::PublishMessage::build()
                .payload(body.clone().into())
                .message_id(id);
            let sent = match self.js.send_publish(subject.clone(), msg).await {
                Ok(ack) => ack.await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(ack) => return Ok(!ack.duplicate),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await
                }
                Err(e) => return Err(self.err(format!("publish {subject}: {e}"))),
            }
        }
    }

    async fn updated(
        &self,
        lease: &Lease,
        f: impl FnOnce(&mut JobStatus),
    ) -> Result<(), QueueError> {
        let mut s = self
            .read_status(&lease.job.id)
            .await?
            .unwrap_or_else(|| JobStatus::queued(&lease.job));
        s.attempts = lease.attempts;
        f(&mut s);
        s.updated_ms = now_ms();
        self.write_status(&s).await
    }

    async fn ack(&self, lease: &Lease, kind: AckKind) -> Result<(), QueueError> {
        // A double ack waits for the server's confirmation: an ack lost on the way would
        // otherwise let the job come back after it succeeded.
        Self::message(lease)
            .double_ack_with(kind)
            .await
            .map_err(|e| self.err(format!("ack of job {}: {e}", lease.job.id)))
    }
}

impl Queue for NatsQueue {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn settings(&self) -> QueueSettings {
        self.settings
    }

    fn enqueue(&self, job: &Job) -> Result<JobStatus, QueueError> {
        self.runtime.block_on(async {
            let earlier = self.read_status(&job.id).await?;
            let msg_id = match &earlier {
                Some(s) if s.state != JobState::Dead => return Ok(s.clone()),
                // Dead and submitted again: a new message id, or the duplicate window
                // would drop it.
                Some(s) => format!("{}.{}", job.id, s.updated_ms),
                None => job.id.clone(),
            };
            let body = serde_json::to_vec(job).expect("a job serialises");
            let status = JobStatus::queued(job);
            // Status first: a worker that takes the job at once finds it.
            self.write_status(&status).await?;
            self.publish(subject(job.priority), &msg_id, body).await?;
            Ok(status)
        })
    }

    fn claim(&self, worker: &str, wait: Duration) -> Result<Option<Lease>, QueueError> {
        let deadline = Instant::now() + wait;
        self.runtime.block_on(async {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let mut message = None;
                for (i, c) in self.consumers.iter().enumerate() {
                    // High priority: only what is there now. Normal: wait a little for a new
                    // job, then look at the high ones again.
                    let pull = async {
                        let batch = if i == 0 {
                            c.fetch().max_messages(1).messages().await
                        } else {
                            c.batch()
                                .max_messages(1)
                                .expires(left.clamp(Duration::from_millis(100), Duration::from_millis(500)))
                                .messages()
                                .await
                        };
                        let mut batch = batch.map_err(|e| self.err(format!("fetch: {e}")))?;
                        match batch.next().await {
                            Some(m) => m.map(Some).map_err(|e| self.err(format!("fetch: {e}"))),
                            None => Ok(None),
                        }
                    };
                    // A pull whose answer never comes (its node killed or restarted while it
                    // was asked) must not hold the worker, which checks for a stop between
                    // claims: no answer within FETCH_LIMIT is an empty pull.
                    if let Some(m) = tokio::time::timeout(FETCH_LIMIT, pull)
                        .await
                        .unwrap_or(Ok(None))?
                    {
                        message = Some(m);
                        break;
                    }
                }
                let Some(m) = message else {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                    continue;
                };
                let delivered = m.info().map(|i| i.delivered.max(1) as u32).unwrap_or(1);
                let job: Job = match serde_json::from_slice(&m.payload) {
                    Ok(j) => j,
                    Err(e) => {
                        // Not a job of ours: keep it for a person, out of the queue.
                        let body = serde_json::json!({
                            "job": String::from_utf8_lossy(&m.payload),
                            "code": crate::exit::BAD_INPUT,
                            "message": format!("not a pressing job: {e}"),
                        });
                        let id = format!("invalid.{}", now_ms());
                        self.publish(DEAD_SUBJECT.into(), &id, body.to_string().into_bytes())
                            .await?;
                        let _ = m.double_ack_with(AckKind::Term).await;
                        continue;
                    }
                };
                let lease = Lease {
                    lag_ms: now_ms().saturating_sub(job.submitted_ms),
                    attempts: job.attempts_before + delivered,
                    job,
                    handle: LeaseHandle::Nats(Box::new(m)),
                };
                if lease.attempts > MAX_ATTEMPTS {
                    let message = format!(
                        "gave up after {MAX_ATTEMPTS} attempts (the last worker stopped without a result)"
                    );
                    self.dead_async(&lease, crate::exit::UNAVAILABLE, &message)
                        .await?;
                    continue;
                }
                // Delivered again after it was published (delivery is at-least-once): done.
                let earlier = self.read_status(&lease.job.id).await?;
                if earlier.is_some_and(|s| s.state == JobState::Published) {
                    self.ack(&lease, AckKind::Ack).await?;
                    continue;
                }
                let w = worker.to_string();
                self.updated(&lease, |s| {
                    s.state = JobState::Running;
                    s.worker = Some(w);
                    s.progress = Some(0.0);
                })
                .await?;
                return Ok(Some(lease));
            }
        })
    }

    fn heartbeat(&self, lease: &Lease, worker: &str, progress: f64) -> Result<(), QueueError> {
        self.runtime.block_on(async {
            self.ack(lease, AckKind::Progress).await?;
            let w = worker.to_string();
            self.updated(lease, |s| {
                s.state = JobState::Running;
                s.worker = Some(w);
                s.progress = Some(progress);
            })
            .await
        })
    }

    fn complete(&self, lease: Lease, worker: &str) -> Result<(), QueueError> {
        self.runtime.block_on(async {
            let w = worker.to_string();
            // Status before the ack: a job seen as published is, even if the ack is lost
            // (then it is delivered again, and that run changes nothing).
            self.updated(&lease, |s| {
                s.state = JobState::Published;
                s.worker = Some(w);
                s.progress = Some(1.0);
                s.code = None;
                s.message = None;
            })
            .await?;
            self.ack(&lease, AckKind::Ack).await
        })
    }

    fn retry(
        &self,
        lease: Lease,
        delay: Duration,
        code: u8,
        message: &str,
    ) -> Result<(), QueueError> {
        self.runtime.block_on(async {
            self.updated(&lease, |s| {
                s.state = JobState::Failed;
                s.code = Some(code);
                s.message = Some(message.to_string());
            })
            .await?;
            self.ack(&lease, AckKind::Nak(Some(delay))).await
        })
    }

    fn dead(&self, lease: Lease, code: u8, message: &str) -> Result<(), QueueError> {
        self.runtime
            .block_on(self.dead_async(&lease, code, message))
    }

    /// A hand-back is not an attempt, but JetStream counts a NAK as a delivery. So the job
    /// is published again as a new message carrying the attempts spent so far, then the
    /// delivered one is acked. A worker killed between the two leaves both (the old one comes
    /// back after AckWait): delivery is at-least-once, and a job done twice changes nothing.
    fn release(&self, lease: Lease) -> Result<(), QueueError> {
        self.runtime.block_on(async {
            let job = Job {
                attempts_before: lease.attempts.saturating_sub(1),
                ..lease.job.clone()
            };
            let body = serde_json::to_vec(&job).expect("a job serialises");
            // Named by the message it replaces: unique (a hand-back and the next claim can fall
            // in one millisecond, and a time-named copy was then dropped as a duplicate: CI
            // lost a job that way), and a retried hand-back of the same message is one copy.
            let seq = Self::message(&lease)
                .info()
                .map(|i| i.stream_sequence)
                .map_err(|e| self.err(format!("hand back: {e}")))?;
            let msg_id = format!("{}.back.{seq}", job.id);
            self.updated(&lease, |s| {
                s.state = JobState::Queued;
                s.worker = None;
                s.progress = None;
                s.attempts = job.attempts_before;
            })
            .await?;
            self.publish(subject(job.priority), &msg_id, body).await?;
            self.ack(&lease, AckKind::Ack).await
        })
    }

    fn status(&self, id_or_release: &str) -> Result<Vec<JobStatus>, QueueError> {
        self.runtime.block_on(async {
            if let Some(s) = self.read_status(id_or_release).await? {
                return Ok(vec![s]);
            }
            let mut out = Vec::new();
            for s in self.all().await? {
                if s.release == id_or_release {
                    out.push(s);
                }
            }
            Ok(out)
        })
    }

    fn dead_letters(&self) -> Result<Vec<JobStatus>, QueueError> {
        self.runtime.block_on(async {
            Ok(self
                .all()
                .await?
                .into_iter()
                .filter(|s| s.state == JobState::Dead)
                .collect())
        })
    }
}

impl NatsQueue {
    async fn dead_async(&self, lease: &Lease, code: u8, message: &str) -> Result<(), QueueError> {
        let body = serde_json::json!({
            "job": lease.job,
            "attempts": lease.attempts,
            "code": code,
            "message": message,
            "dead_ms": now_ms(),
        });
        let id = format!("{}.dead.{}", lease.job.id, lease.attempts);
        self.publish(DEAD_SUBJECT.into(), &id, body.to_string().into_bytes())
            .await?;
        self.updated(lease, |s| {
            s.state = JobState::Dead;
            s.code = Some(code);
            s.message = Some(message.to_string());
        })
        .await?;
        // TERM removes it from the work queue: no further delivery.
        self.ack(lease, AckKind::Term).await
    }

    async fn all(&self) -> Result<Vec<JobStatus>, QueueError> {
        let mut keys = match self.status.keys().await {
            Ok(k) => k,
            Err(e) => return Err(self.err(e)),
        };
        let mut ids = Vec::new();
        while let Some(k) = keys.next().await {
            ids.push(k.map_err(|e| self.err(e))?);
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some(s) = self.read_status(&id).await? {
                out.push(s);
            }
        }
        out.sort_by(|a, b| (a.submitted_ms, &a.id).cmp(&(b.submitted_ms, &b.id)));
        Ok(out)
    }
}

type Setup = (kv::Store, Vec<consumer::Consumer<consumer::pull::Config>>);

/// The streams, the status bucket and the consumers, created (or updated) as documented.
async fn setup(js: &jetstream::Context, settings: QueueSettings) -> Result<Setup, String> {
    let replicas = settings.replicas;
    let jobs = js
        .get_or_create_stream(stream::Config {
            name: JOBS_STREAM.into(),
            subjects: vec!["pressing.jobs.*".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("stream {JOBS_STREAM}: {e}"))?;
    js.get_or_create_stream(stream::Config {
        name: DEAD_STREAM.into(),
        subjects: vec![DEAD_SUBJECT.into()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("stream {DEAD_STREAM}: {e}"))?;
    // The bucket's stream is made here with the settings `create_key_value` would give it
    // (history 1, rollups, direct get, no deletes, discard new): that call first asks for
    // the account's info, whose answer from a 2.9 server async-nats cannot read.
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{STATUS_BUCKET}"),
        subjects: vec![format!("$KV.{STATUS_BUCKET}.>")],
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("key-value bucket {STATUS_BUCKET}: {e}"))?;
    let status = js
        .get_key_value(STATUS_BUCKET)
        .await
        .map_err(|e| format!("key-value bucket {STATUS_BUCKET}: {e}"))?;
    let mut consumers = Vec::new();
    for p in [Priority::High, Priority::Normal] {
        // Create or update: the lease (AckWait) is the one this process was given
        // (every process of a fleet should give the same one).
        let c = jobs
            .create_consumer(consumer::pull::Config {
                durable_name: Some(consumer_name(p)),
                filter_subject: subject(p),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: settings.lease,
                max_deliver: i64::from(MAX_ATTEMPTS) + 1,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("consumer {}: {e}", consumer_name(p)))?;
        consumers.push(c);
    }
    Ok((status, consumers))
}
