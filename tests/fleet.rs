//! The fleet against real servers: NATS JetStream (nats-server 2.15.1 on loopback) and the
//! embedded SQLite queue pass one queue suite; `pressing submit` and two `pressing worker`
//! processes press releases exactly as `pressing run` does, with one catalog entry per
//! track; workers killed with -9 mid-job lose nothing; poison jobs are dead-lettered with
//! their code; SIGTERM is graceful.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::servers::*;
use common::*;
use pressing::fleet::{self, Job, JobFile, JobState, Priority, Queue};
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fleet")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The single-node broker shared by this binary's tests (each test uses its own streams'
/// jobs; the suite's job ids are its own).
fn nats() -> &'static Nats {
    static NATS: OnceLock<Nats> = OnceLock::new();
    NATS.get_or_init(|| Nats::start("single"))
}

fn job(id: &str, priority: Priority) -> Job {
    Job {
        id: id.into(),
        release: format!("release-of-{id}"),
        tracks: vec![format!("{id}-t1")],
        files: vec![JobFile {
            name: "a.wav".into(),
            key: format!("masters/{id}/a.wav"),
            size: 1,
            sha256: "00".into(),
        }],
        folder: false,
        ladder_name: "music".into(),
        ladder: String::new(),
        gapless: false,
        allow_lossy: false,
        priority,
        submitted_ms: fleet::now_ms(),
    }
}

fn state(q: &dyn Queue, id: &str) -> (JobState, u32, Option<u8>) {
    let s = q.status(id).unwrap();
    assert_eq!(s.len(), 1, "{id}: {s:?}");
    (s[0].state, s[0].attempts, s[0].code)
}

/// What every queue must do, with a 1 s lease. `tag` keeps job ids apart between queues.
fn queue_suite(q: &dyn Queue, tag: &str) {
    let id = |n: &str| format!("{tag}-{n}");
    let wait = Duration::from_secs(2);
    // Dedupe: the same job twice is one job.
    assert_eq!(
        q.enqueue(&job(&id("a"), Priority::Normal)).unwrap().state,
        JobState::Queued
    );
    q.enqueue(&job(&id("a"), Priority::Normal)).unwrap();
    // Priority: a high job submitted later is taken first.
    q.enqueue(&job(&id("b"), Priority::High)).unwrap();
    let first = q.claim("w1", wait).unwrap().expect("a job");
    assert_eq!(first.job.id, id("b"));
    let second = q.claim("w1", wait).unwrap().expect("a job");
    assert_eq!(second.job.id, id("a"));
    assert_eq!(second.attempts, 1);
    assert!(
        q.claim("w2", Duration::from_millis(300)).unwrap().is_none(),
        "a was delivered twice"
    );
    assert_eq!(state(q, &id("a")).0, JobState::Running);
    // Done: published, never delivered again; a re-submit enqueues nothing.
    q.complete(first, "w1").unwrap();
    assert_eq!(state(q, &id("b")).0, JobState::Published);
    assert_eq!(
        q.enqueue(&job(&id("b"), Priority::High)).unwrap().state,
        JobState::Published
    );
    // A heartbeat keeps the lease past its length.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(400));
        q.heartbeat(&second, "w1", 0.5).unwrap();
    }
    if let Some(l) = q.claim("w2", Duration::from_millis(100)).unwrap() {
        panic!("renewed lease lost: {} attempt {}", l.job.id, l.attempts);
    }
    let s = &q.status(&id("a")).unwrap()[0];
    assert_eq!((s.worker.as_deref(), s.progress), (Some("w1"), Some(0.5)));
    // A worker that dies (no heartbeat, no result): the job comes back after the lease.
    drop(second);
    let again = q
        .claim("w2", Duration::from_secs(4))
        .unwrap()
        .expect("redelivered");
    assert_eq!(
        (again.job.id.as_str(), again.attempts),
        (id("a").as_str(), 2)
    );
    // A transient failure: offered again after the delay, not before.
    q.retry(again, Duration::from_secs(1), 69, "store unavailable")
        .unwrap();
    assert_eq!(state(q, &id("a")), (JobState::Failed, 2, Some(69)));
    let t = Instant::now();
    let third = q
        .claim("w2", Duration::from_secs(4))
        .unwrap()
        .expect("retried");
    assert!(
        t.elapsed() >= Duration::from_millis(700),
        "retried after {:?}",
        t.elapsed()
    );
    assert_eq!(third.attempts, 3);
    // A permanent failure: dead, with its code, out of the queue.
    q.dead(third, 65, "bad master").unwrap();
    assert_eq!(state(q, &id("a")), (JobState::Dead, 3, Some(65)));
    assert!(q
        .dead_letters()
        .unwrap()
        .iter()
        .any(|s| s.id == id("a") && s.code == Some(65)));
    assert!(q
        .claim("w3", Duration::from_millis(1500))
        .unwrap()
        .is_none());
    // A dead job submitted again starts over.
    assert_eq!(
        q.enqueue(&job(&id("a"), Priority::Normal)).unwrap().state,
        JobState::Queued
    );
    let back = q.claim("w3", wait).unwrap().expect("resubmitted");
    assert_eq!((back.job.id.as_str(), back.attempts), (id("a").as_str(), 1));
    // Handed back at a stop: at once, and not counted as an attempt.
    q.release(back).unwrap();
    let back = q.claim("w3", wait).unwrap().expect("released");
    assert_eq!(back.job.id, id("a"));
    q.complete(back, "w3").unwrap();
    // Status by release.
    assert_eq!(
        q.status(&format!("release-of-{}", id("a"))).unwrap().len(),
        1
    );
    // Workers that keep dying: after MAX_ATTEMPTS deliveries the job is dead, not stuck.
    q.enqueue(&job(&id("c"), Priority::Normal)).unwrap();
    for n in 1..=fleet::MAX_ATTEMPTS {
        let l = q
            .claim("w4", Duration::from_secs(4))
            .unwrap()
            .expect("delivered");
        assert_eq!((l.job.id.as_str(), l.attempts), (id("c").as_str(), n));
        drop(l);
    }
    assert!(q.claim("w4", Duration::from_secs(3)).unwrap().is_none());
    let (st, _, code) = state(q, &id("c"));
    assert_eq!((st, code), (JobState::Dead, Some(69)));
}

#[test]
fn the_embedded_queue_passes_the_queue_suite() {
    let dir = tmp("suite-sqlite");
    let q = fleet::open(Some(&format!(
        "sqlite:{}?lease=1",
        dir.join("q.db").display()
    )))
    .unwrap();
    queue_suite(&*q, "sqlite");
}

#[test]
fn nats_jetstream_passes_the_queue_suite() {
    let q = fleet::open(Some(&format!("{}?lease=1", nats().url()))).unwrap();
    queue_suite(&*q, "nats");
}

// ---------------------------------------------------------------------------------------

fn pressing_env(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pressing"));
    c.args(args)
        .current_dir(root())
        .env("PRESSING_WEBHOOK_SECRET", webhook_secret())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

fn run_ok(args: &[&str]) -> std::process::Output {
    let o = pressing_env(args).output().unwrap();
    assert!(
        o.status.success(),
        "pressing {args:?}: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn worker(queue: &str, incoming: &Path, out: &Path, scratch: &Path, catalog: &str) -> Child {
    pressing_env(&[
        "worker",
        "--queue",
        queue,
        "--store",
        incoming.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--scratch",
        scratch.to_str().unwrap(),
        "--catalog-url",
        catalog,
        "--grace",
        "30",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// Every file under `dir` (relative path -> bytes), but the delivery record, which holds
/// the time of its delivery.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(d: &Path, rel: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let key = format!("{rel}{name}");
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{key}/"), out);
            } else if name != "notification.json" {
                out.insert(key, std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, "", &mut out);
    out
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn statuses(queue: &str, ids: &[String]) -> Vec<Value> {
    let mut args = vec!["status", "--json", "--queue", queue];
    args.extend(ids.iter().map(String::as_str));
    let o = pressing_env(&args).output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["jobs"].as_array().unwrap().clone()
}

fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "worker did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The three releases of the fleet tests (one of them gapless, one a bare master), and the
/// store `pressing run` + `pressing publish` make of them.
fn releases() -> [&'static str; 3] {
    [
        "fixtures/album",
        "fixtures/gapless",
        "fixtures/album/03-mono.aiff",
    ]
}

fn reference_store() -> &'static Path {
    static REF: OnceLock<PathBuf> = OnceLock::new();
    REF.get_or_init(|| {
        let dir = tmp("reference");
        let [a, b, c] = releases();
        let pkg = dir.join("package");
        run_ok(&["run", "--out", pkg.to_str().unwrap(), a, b, c]);
        let store = dir.join("store");
        run_ok(&["publish", pkg.to_str().unwrap(), store.to_str().unwrap()]);
        store
    })
}

/// Submit the three releases, run two workers, and hold the outcome against `pressing run`.
fn two_workers_press_three_releases(queue: &str, name: &str) {
    let dir = tmp(name);
    let (incoming, out, scratch) = (dir.join("incoming"), dir.join("out"), dir.join("scratch"));
    let catalog = Receiver::start(&[]);
    let [a, b, c] = releases();
    let o = run_ok(&[
        "submit",
        a,
        b,
        c,
        "--queue",
        queue,
        "--store",
        incoming.to_str().unwrap(),
        "--json",
    ]);
    let submitted: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<String> = submitted["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    let mut workers: Vec<Child> = (0..2)
        .map(|_| worker(queue, &incoming, &out, &scratch, &catalog.url))
        .collect();
    wait_for("three jobs published", Duration::from_secs(300), || {
        statuses(queue, &ids)
            .iter()
            .filter(|s| s["state"] == "published")
            .count()
            == 3
    });
    // A re-submit is a no-op that prints the same ids.
    let o = run_ok(&[
        "submit",
        a,
        b,
        c,
        "--queue",
        queue,
        "--store",
        incoming.to_str().unwrap(),
        "--json",
    ]);
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    let again: Vec<(&str, &str)> = again["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["id"].as_str().unwrap(), j["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        again,
        ids.iter()
            .map(|i| (i.as_str(), "published"))
            .collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_secs(2));
    for w in &mut workers {
        assert!(sigterm(w).success(), "an idle worker's SIGTERM exit");
    }
    // Byte-identical to `pressing run` + `pressing publish` on the same inputs.
    let (got, want) = (files(&out), files(reference_store()));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, v) in &want {
        if k.ends_with("/catalog.json") {
            // Where the master is (the incoming store) and where the package is served
            // from differ; everything else is the same.
            let strip = |b: &[u8]| {
                let mut r: Value = serde_json::from_slice(b).unwrap();
                let source = r["source"].as_str().unwrap().to_string();
                let name = source.rsplit('/').next().unwrap().to_string();
                r["source"] = name.into();
                r["urls"] = Value::Null;
                (r, source)
            };
            let ((g, source), (w, _)) = (strip(&got[k]), strip(v));
            assert_eq!(g, w, "{k}");
            assert!(source.contains("/masters/"), "{k}: source {source}");
        } else {
            assert!(got[k] == *v, "{k} differs from pressing run's");
        }
    }
    // One notification per track, each signed.
    let r = catalog.received();
    let mut tracks: Vec<&str> = r
        .iter()
        .map(|n| n.body["track"]["id"].as_str().unwrap_or("?"))
        .collect();
    tracks.sort();
    let n = tracks.len();
    tracks.dedup();
    assert_eq!(n, tracks.len(), "a track notified twice: {tracks:?}");
    assert_eq!(n, 6, "{tracks:?}");
    assert!(r.iter().all(|n| n.signature_ok));
    assert!(
        std::fs::read_dir(&scratch).unwrap().next().is_none(),
        "scratch left behind"
    );
}

#[test]
fn two_workers_on_nats_press_three_releases_like_pressing_run() {
    two_workers_press_three_releases(&nats().url(), "nats-two-workers");
}

#[test]
fn two_worker_processes_on_one_queue_file_press_three_releases_like_pressing_run() {
    let q = tmp("sqlite-two-workers-queue").join("q.db");
    two_workers_press_three_releases(&format!("sqlite:{}", q.display()), "sqlite-two-workers");
}
