//! `submit`, `worker` and `status`: the fleet's commands over `pressing::fleet`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pressing::exit;
use pressing::fleet::metrics::{serve_metrics, Metrics};
use pressing::fleet::worker::{self, Services, WorkerOptions};
use pressing::fleet::{submit, JobState, JobStatus, Priority};
use pressing::ladder::Ladder;
use pressing::protect::keys::KeyServer;
use pressing::protect::KeySource;

use super::print::print_validation;
use super::progress::{self, Uploads};
use super::stores::{self, PublishArgs, QueueArgs, StoreArgs};

#[derive(clap::Args)]
pub struct SubmitArgs {
    /// Release folders (masters plus release.json) or bare masters; one job each.
    #[arg(required = true)]
    pub releases: Vec<PathBuf>,
    #[command(flatten)]
    pub queue: QueueArgs,
    /// The incoming store the workers read masters from: s3://bucket/prefix or a folder.
    #[arg(long)]
    pub store: String,
    /// A built-in ladder or a ladder file; the job carries it whole.
    #[arg(long, default_value = "music")]
    pub ladder: String,
    /// high: taken before every waiting normal job (new releases ahead of migrations).
    #[arg(long, value_enum, default_value = "normal")]
    pub priority: Priority,
    /// Treat each release's tracks as one continuous programme.
    #[arg(long)]
    pub gapless: bool,
    /// Accept lossy masters with a warning.
    #[arg(long)]
    pub allow_lossy: bool,
    /// Score every lossy rendition against its master (ViSQOL v3; costs CPU), as `run
    /// --quality`.
    #[arg(long)]
    pub quality: bool,
    /// Follow the jobs to the end; exit with their outcome.
    #[arg(long)]
    pub wait: bool,
    /// Print {"jobs": [...]} on standard output.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store_args: StoreArgs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// The incoming store (as given to submit).
    #[arg(long)]
    pub store: String,
    /// Where packages are published: s3://bucket/prefix or a folder.
    #[arg(long)]
    pub out: String,
    /// Jobs at a time [default: 1; each job uses every core].
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Pipeline threads per job [default: the cores divided among the jobs].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Scratch folder [default: $XDG_CACHE_HOME/pressing/worker].
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// Largest release (its masters' bytes) a job may bring into scratch.
    #[arg(long, default_value = "64GiB", value_parser = stores::parse_size_any)]
    pub scratch_limit: u64,
    /// After SIGTERM, how long a running job may still go on to publish (seconds); past
    /// it, the job is handed back.
    #[arg(long, default_value_t = 120)]
    pub grace: u64,
    /// Serve /metrics (Prometheus), /healthz and /readyz here.
    #[arg(long)]
    pub metrics: Option<String>,
    /// This worker's name in status and logs [default: host name and process id].
    #[arg(long)]
    pub name: Option<String>,
    /// Log lines as text or JSON (one object per line, with the job id).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Stop after this many jobs.
    #[arg(long)]
    pub max_jobs: Option<u64>,
    /// The key server a job's protected tiers get their keys from: a CPIX endpoint in the
    /// SPEKE v2 shape (https://...). Keys never travel through the queue or the stores.
    #[arg(long, value_name = "URL")]
    pub key_server: Option<String>,
    /// Extra root certificates (PEM) to trust for the key server (a private CA).
    #[arg(long, value_name = "FILE", requires = "key_server")]
    pub key_server_ca: Option<PathBuf>,
    #[command(flatten)]
    pub store_args: StoreArgs,
    #[command(flatten)]
    pub publish: PublishArgs,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Job ids or release UPCs (or names); none: every dead-lettered job.
    pub ids: Vec<String>,
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Print {"jobs": [...]} on standard output.
    #[arg(long)]
    pub json: bool,
}

/// `{"jobs": [{"id", "track", "state", …}]}`: one entry per track. A release is the unit of
/// work, so the tracks of one release share its job id and state. A takedown job (a DDEX purge:
/// its tracks are the ones the store's release index lists when it runs) is one entry with
/// `"track": null`.
#[derive(serde::Serialize)]
struct JobsJson<'a> {
    jobs: Vec<JobLine<'a>>,
}

/// A job's status as one track of it sees it: every field of the status but its track list.
#[derive(serde::Serialize)]
struct JobLine<'a> {
    id: &'a str,
    release: &'a str,
    state: JobState,
    priority: Priority,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    submitted_ms: u64,
    updated_ms: u64,
    track: Option<&'a str>,
}

fn jobs_json(statuses: &[JobStatus]) -> JobsJson<'_> {
    let jobs = statuses
        .iter()
        .flat_map(|s| {
            let tracks: Vec<Option<&str>> = if s.tracks.is_empty() {
                vec![None]
            } else {
                s.tracks.iter().map(|t| Some(t.as_str())).collect()
            };
            tracks.into_iter().map(move |track| JobLine {
                id: &s.id,
                release: &s.release,
                state: s.state,
                priority: s.priority,
                attempts: s.attempts,
                worker: s.worker.as_deref(),
                progress: s.progress,
                code: s.code,
                message: s.message.as_deref(),
                submitted_ms: s.submitted_ms,
                updated_ms: s.updated_ms,
                track,
            })
        })
        .collect();
    JobsJson { jobs }
}

fn print_status(s: &JobStatus) {
    let mut line = format!(
        "{}  {:<9} {}  {} track(s)",
        s.id,
        format!("{:?}", s.state).to_lowercase(),
        s.release,
        s.tracks.len()
    );
    if let Some(w) = &s.worker {
        if s.state == JobState::Running {
            line += &format!("  on {w}, {:.0}%", s.progress.unwrap_or(0.0) * 100.0);
        }
    }
    if let (Some(code), Some(m)) = (s.code, &s.message) {
        line += &format!("  [exit {code}, attempt {}] {m}", s.attempts);
    }
    progress::info(line);
}

pub fn submit(args: SubmitArgs) -> ExitCode {
    let ladder = match Ladder::load(&args.ladder) {
        Ok(l) => l,
        Err(e) => {
            progress::error(e.to_string());
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    let store = match stores::open(&args.store, &args.store_args) {
        Ok(s) => s,
        Err(code) => return ExitCode::from(code),
    };
    let queue = match args.queue.open() {
        Ok(q) => q,
        Err(code) => return ExitCode::from(code),
    };
    let opts = submit::SubmitOptions {
        ladder: &ladder,
        ladder_name: &args.ladder,
        gapless: args.gapless,
        allow_lossy: args.allow_lossy,
        quality: args.quality,
        priority: args.priority,
    };
    let submitted = match submit::submit(&args.releases, &opts, &*store, &*queue, &Uploads::new()) {
        Ok(s) => s,
        Err(pressing::Error::Rejected(v)) => {
            print_validation(&v);
            return ExitCode::from(exit::BAD_INPUT);
        }
        Err(e) => {
            progress::error(e.to_string());
            return ExitCode::from(e.exit_code());
        }
    };
    // The job ids on standard output, one line each (`JOB=$(pressing submit ...)`); the
    // summary on standard error.
    if !args.json {
        let ids: String = submitted
            .iter()
            .map(|s| format!("{}\n", s.job.id))
            .collect();
        progress::data(ids);
    }
    for s in &submitted {
        progress::info(format!(
            "{}  {}  {} ({} file(s) uploaded, {} bytes)",
            s.job.id,
            s.job.release,
            if s.uploaded == 0 && s.status.state != JobState::Queued {
                format!("already {:?}", s.status.state).to_lowercase()
            } else {
                format!("{:?}", s.status.state).to_lowercase()
            },
            s.uploaded,
            s.bytes
        ));
    }
    let ids: Vec<String> = submitted.iter().map(|s| s.job.id.clone()).collect();
    let mut statuses: Vec<JobStatus> = submitted.into_iter().map(|s| s.status).collect();
    let mut code = ExitCode::SUCCESS;
    if args.wait {
        let mut last = String::new();
        loop {
            statuses = match ids
                .iter()
                .map(|id| {
                    queue
                        .status(id)
                        .map(|v| v.into_iter().find(|s| &s.id == id))
                })
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(v) => v.into_iter().flatten().collect(),
                Err(e) => {
                    progress::warning(e.to_string());
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let done = statuses.iter().filter(|s| s.state.is_final()).count();
            let line = format!(
                "{done}/{} job(s) done: {}",
                ids.len(),
                statuses
                    .iter()
                    .map(|s| format!(
                        "{} {:?} {:.0}%",
                        &s.id[..8],
                        s.state,
                        s.progress.unwrap_or(0.0) * 100.0
                    )
                    .to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if line != last {
                progress::info(&line);
                last = line;
            }
            if done == ids.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(dead) = statuses.iter().find(|s| s.state == JobState::Dead) {
            progress::error(format!(
                "job {} is dead: {}",
                dead.id,
                dead.message.as_deref().unwrap_or("?")
            ));
            code = ExitCode::from(dead.code.unwrap_or(exit::INTERNAL));
        }
    }
    if args.json {
        super::json_out(&jobs_json(&statuses));
    }
    code
}

pub fn status(args: StatusArgs) -> ExitCode {
    let queue = match args.queue.open() {
        Ok(q) => q,
        Err(code) => return ExitCode::from(code),
    };
    let mut out = Vec::new();
    let mut missing = false;
    let found = if args.ids.is_empty() {
        queue.dead_letters().map(|v| out.extend(v))
    } else {
        args.ids.iter().try_for_each(|id| {
            let v = queue.status(id)?;
            if v.is_empty() {
                progress::warning(format!("no job or release {id:?} in {}", queue.name()));
                missing = true;
            }
            out.extend(v);
            Ok(())
        })
    };
    if let Err(e) = found {
        progress::error(e.to_string());
        return ExitCode::from(exit::UNAVAILABLE);
    }
    if args.json {
        super::json_out(&jobs_json(&out));
    } else {
        out.iter().for_each(print_status);
    }
    if missing {
        ExitCode::from(exit::BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    }
}

/// The worker's logs on standard error: text, or one JSON object per line. Each line of a
/// job carries its id (the `job` span), and every line the worker's name.
fn init_logs(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// SIGTERM and SIGINT set `stop` (a second one exits at once).
fn on_stop_signals(stop: Arc<worker::Stop>, span: tracing::Span) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            loop {
                futures_util::future::select(Box::pin(term.recv()), Box::pin(int.recv())).await;
                if stop.request() {
                    std::process::exit(exit::OK.into());
                }
                tracing::info!(
                    parent: &span,
                    "stopping: no new jobs; the running ones finish or are handed back"
                );
            }
        });
    });
}

pub fn worker(args: WorkerArgs) -> ExitCode {
    let (incoming, out) = match (
        stores::open(&args.store, &args.store_args),
        stores::open(&args.out, &args.store_args),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(code), _) | (_, Err(code)) => return ExitCode::from(code),
    };
    let notifier = match args.publish.notifier() {
        Ok(n) => n,
        Err(code) => return ExitCode::from(code),
    };
    let queue = match args.queue.open() {
        Ok(q) => q,
        Err(code) => return ExitCode::from(code),
    };
    let keys = match &args.key_server {
        Some(url) => match KeyServer::new(url, args.key_server_ca.as_deref()) {
            Ok(k) => Some(k),
            Err(e) => {
                progress::error(e.to_string());
                return ExitCode::from(exit::USAGE);
            }
        },
        None => None,
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", host_name(), std::process::id()));
    init_logs(args.log_format);
    let span = tracing::info_span!("worker", worker = %name);
    let _entered = span.enter();
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(true));
    if let Some(addr) = &args.metrics {
        match TcpListener::bind(addr) {
            Ok(l) => serve_metrics(l, metrics.clone(), ready.clone()),
            Err(e) => {
                progress::error(format!("--metrics {addr}: cannot listen: {e}"));
                return ExitCode::from(exit::USAGE);
            }
        }
    }
    let stop = Arc::new(worker::Stop::default());
    on_stop_signals(stop.clone(), span.clone());
    let scratch = args.scratch.clone().unwrap_or_else(|| {
        pressing::dirs::pressing_dir(pressing::dirs::UserDir::Cache).join("worker")
    });
    let opts = WorkerOptions {
        name: name.clone(),
        scratch,
        concurrency: args.concurrency.max(1),
        threads: args.jobs,
        scratch_limit: args.scratch_limit,
        publish: args.publish.options(),
        grace: Duration::from_secs(args.grace),
        max_jobs: args.max_jobs,
    };
    tracing::info!(
        "worker {name} on {} ({} job(s) at a time): {} -> {}",
        queue.name(),
        opts.concurrency,
        args.store,
        args.out
    );
    let services = Services {
        queue: &*queue,
        incoming: &*incoming,
        out: &*out,
        notifier: &*notifier,
        keys: keys.as_ref().map(|k| k as &dyn KeySource),
    };
    let started = Instant::now();
    let result = worker::run(&services, &opts, &stop, &metrics);
    ready.store(false, Ordering::SeqCst);
    let m = &metrics;
    tracing::info!(
        "stopped after {:.0} s: {} published, {} retried, {} dead, {} handed back",
        started.elapsed().as_secs_f64(),
        m.published.load(Ordering::Relaxed),
        m.retried.load(Ordering::Relaxed),
        m.dead.load(Ordering::Relaxed),
        m.released.load(Ordering::Relaxed)
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
