//! The embedded queue: one SQLite file (WAL) that several worker processes on one machine
//! share. A claim is one atomic `UPDATE … RETURNING` that takes the oldest visible job of the
//! highest priority and gives it a lease (a token and a deadline); a heartbeat moves the
//! deadline; a worker that dies stops renewing, and its job is visible again when the
//! deadline passes. Dedupe is the primary key (the job id).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};

use super::{
    now_ms, Job, JobState, JobStatus, Lease, LeaseHandle, Queue, QueueError, QueueSettings,
    MAX_ATTEMPTS,
};

pub struct SqliteQueue {
    name: String,
    settings: QueueSettings,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    release TEXT NOT NULL,
    priority INTEGER NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    visible_ms INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    token TEXT,
    worker TEXT,
    progress REAL,
    code INTEGER,
    message TEXT,
    submitted_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, priority, visible_ms);
CREATE INDEX IF NOT EXISTS jobs_release ON jobs (release);
";

fn parse_state(s: &str) -> JobState {
    match s {
        "running" => JobState::Running,
        "published" => JobState::Published,
        "failed" => JobState::Failed,
        "dead" => JobState::Dead,
        _ => JobState::Queued,
    }
}

impl SqliteQueue {
    pub fn open(path: &Path, settings: QueueSettings) -> Result<SqliteQueue, QueueError> {
        let name = format!("sqlite:{}", path.display());
        let err = |e: &dyn std::fmt::Display| QueueError::new(&name, e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| err(&e))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| err(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err(&e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| err(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| err(&e))?;
        Ok(SqliteQueue {
            name,
            settings,
            conn: Mutex::new(conn),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> QueueError {
        QueueError::new(&self.name, e)
    }

    fn token(lease: &Lease) -> &str {
        match &lease.handle {
            LeaseHandle::Sqlite { token } => token,
            LeaseHandle::Nats(_) => unreachable!("a NATS lease given to the SQLite queue"),
        }
    }

    /// Update the leased row; an error when the lease was lost (another worker has the job).
    fn update_leased(
        &self,
        lease: &Lease,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<(), QueueError> {
        let conn = self.conn.lock().unwrap();
        let mut all: Vec<&dyn rusqlite::ToSql> = args.to_vec();
        let token = Self::token(lease).to_string();
        all.push(&lease.job.id);
        all.push(&token);
        let n = conn.execute(sql, all.as_slice()).map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(self.err(format!(
                "job {}: the lease was lost (it ran past its deadline and another worker took it)",
                lease.job.id
            )));
        }
        Ok(())
    }

    fn rows(&self, sql: &str, arg: &str) -> Result<Vec<JobStatus>, QueueError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([arg], |r| {
                let payload: String = r.get(0)?;
                Ok((
                    payload,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                    r.get::<_, Option<u8>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let now = now_ms() as i64;
        let mut out = Vec::new();
        for row in rows {
            let (payload, state, attempts, worker, progress, code, message, updated, lease_until) =
                row.map_err(|e| self.err(e))?;
            let job: Job = serde_json::from_str(&payload).map_err(|e| self.err(e))?;
            let mut state = parse_state(&state);
            // A running job whose lease ran out has lost its worker: it waits again.
            if state == JobState::Running && lease_until < now {
                state = JobState::Queued;
            }
            out.push(JobStatus {
                state,
                attempts,
                worker,
                progress,
                code,
                message,
                updated_ms: updated as u64,
                ..JobStatus::queued(&job)
            });
        }
        Ok(out)
    }
}

const STATUS_COLUMNS: &str =
    "payload, state, attempts, worker, progress, code, message, updated_ms, lease_until_ms";

impl Queue for SqliteQueue {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn settings(&self) -> QueueSettings {
        self.settings
    }

    fn enqueue(&self, job: &Job) -> Result<JobStatus, QueueError> {
        let payload = serde_json::to_string(job).expect("a job serialises");
        let now = now_ms() as i64;
        let priority = i64::from(job.priority == super::Priority::High);
        {
            let conn = self.conn.lock().unwrap();
            // A dead job submitted again is given a fresh start; any other known job stays.
            conn.execute(
                "INSERT INTO jobs (id, release, priority, payload, state, visible_ms, submitted_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5, ?5)
                 ON CONFLICT(id) DO UPDATE SET state = 'queued', attempts = 0, visible_ms = ?5,
                   lease_until_ms = 0, token = NULL, code = NULL, message = NULL, updated_ms = ?5,
                   priority = ?3, payload = ?4
                 WHERE jobs.state = 'dead'",
                params![job.id, job.release, priority, payload, now],
            )
            .map_err(|e| self.err(e))?;
        }
        self.status(&job.id)?
            .into_iter()
            .next()
            .ok_or_else(|| self.err(format!("job {} vanished after enqueue", job.id)))
    }

    fn claim(&self, worker: &str, wait: Duration) -> Result<Option<Lease>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let now = now_ms() as i64;
            let token = format!("{worker}-{now}-{}", fastrand::u64(..));
            let row = {
                let mut conn = self.conn.lock().unwrap();
                // An explicit transaction: the claim is committed when this block ends, not
                // whenever SQLite finalises a RETURNING statement.
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(|e| self.err(e))?;
                let row = tx
                    .query_row(
                        "UPDATE jobs SET state = 'running', attempts = attempts + 1, token = ?1,
                           worker = ?2, lease_until_ms = ?3 + ?4, progress = 0, updated_ms = ?3
                         WHERE id = (SELECT id FROM jobs
                           WHERE (state IN ('queued', 'failed') AND visible_ms <= ?3)
                              OR (state = 'running' AND lease_until_ms < ?3)
                           ORDER BY priority DESC, visible_ms, submitted_ms LIMIT 1)
                         RETURNING payload, attempts, visible_ms",
                        params![token, worker, now, self.settings.lease.as_millis() as i64],
                        |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, u32>(1)?,
                                r.get::<_, i64>(2)?,
                            ))
                        },
                    )
                    .optional()
                    .map_err(|e| self.err(e))?;
                tx.commit().map_err(|e| self.err(e))?;
                row
            };
            if let Some((payload, attempts, visible)) = row {
                let job: Job = serde_json::from_str(&payload).map_err(|e| self.err(e))?;
                let lease = Lease {
                    job,
                    attempts,
                    lag_ms: (now - visible).max(0) as u64,
                    handle: LeaseHandle::Sqlite { token },
                };
                // A job whose worker died on its last attempt comes back once more: it is
                // dead-lettered here, not run a sixth time.
                if attempts > MAX_ATTEMPTS {
                    let message = format!(
                        "gave up after {MAX_ATTEMPTS} attempts (the last worker stopped without a result)"
                    );
                    self.dead(lease, crate::exit::UNAVAILABLE, &message)?;
                    continue;
                }
                return Ok(Some(lease));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50).min(deadline - Instant::now()));
        }
    }

    fn heartbeat(&self, lease: &Lease, _worker: &str, progress: f64) -> Result<(), QueueError> {
        let now = now_ms() as i64;
        self.update_leased(
            lease,
            "UPDATE jobs SET lease_until_ms = ?1, progress = ?2, updated_ms = ?3
             WHERE id = ?4 AND token = ?5 AND state = 'running'",
            &[
                &(now + self.settings.lease.as_millis() as i64),
                &progress,
                &now,
            ],
        )
    }

    fn complete(&self, lease: Lease, _worker: &str) -> Result<(), QueueError> {
        let now = now_ms() as i64;
        self.update_leased(
            &lease,
            "UPDATE jobs SET state = 'published', progress = 1, token = NULL, code = NULL,
               message = NULL, updated_ms = ?1
             WHERE id = ?2 AND token = ?3",
            &[&now],
        )
    }

    fn retry(
        &self,
        lease: Lease,
        delay: Duration,
        code: u8,
        message: &str,
    ) -> Result<(), QueueError> {
        let now = now_ms() as i64;
        self.update_leased(
            &lease,
            "UPDATE jobs SET state = 'failed', visible_ms = ?1, token = NULL, code = ?2,
               message = ?3, updated_ms = ?4
             WHERE id = ?5 AND token = ?6",
            &[&(now + delay.as_millis() as i64), &code, &message, &now],
        )
    }

    fn dead(&self, lease: Lease, code: u8, message: &str) -> Result<(), QueueError> {
        let now = now_ms() as i64;
        self.update_leased(
            &lease,
            "UPDATE jobs SET state = 'dead', token = NULL, code = ?1, message = ?2, updated_ms = ?3
             WHERE id = ?4 AND token = ?5",
            &[&code, &message, &now],
        )
    }

    fn release(&self, lease: Lease) -> Result<(), QueueError> {
        let now = now_ms() as i64;
        // Handed back, not failed: the delivery does not count as an attempt.
        self.update_leased(
            &lease,
            "UPDATE jobs SET state = 'queued', attempts = attempts - 1, visible_ms = ?1,
               token = NULL, worker = NULL, progress = NULL, updated_ms = ?1
             WHERE id = ?2 AND token = ?3",
            &[&now],
        )
    }

    fn status(&self, id_or_release: &str) -> Result<Vec<JobStatus>, QueueError> {
        self.rows(
            &format!(
                "SELECT {STATUS_COLUMNS} FROM jobs WHERE id = ?1 OR release = ?1 ORDER BY submitted_ms, id"
            ),
            id_or_release,
        )
    }

    fn dead_letters(&self) -> Result<Vec<JobStatus>, QueueError> {
        self.rows(
            &format!("SELECT {STATUS_COLUMNS} FROM jobs WHERE state = ?1 ORDER BY updated_ms"),
            "dead",
        )
    }
}
