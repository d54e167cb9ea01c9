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
    let d = scratch().join("fleet").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A single-node broker of the test's own: the tests run in parallel, and jobs on one
/// broker would be taken by another test's workers (a node starts in a fraction of a second).
fn nats(name: &str) -> Nats {
    Nats::start(name)
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
        quality: false,
        priority,
        submitted_ms: fleet::now_ms(),
        measured: None,
        attempts_before: 0,
        takedown: None,
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
    // Claims that must find a job wait up to 10 s (they return as soon as it is there): the
    // suite runs beside the other test binaries, and on the loaded machine a JetStream
    // redelivery of a handed-back job once took longer than the 2 s this was.
    let wait = Duration::from_secs(10);
    // Dedupe: the same job twice is one job.
    assert_eq!(
        q.enqueue(&job(&id("a"), Priority::Normal)).unwrap().state,
        JobState::Queued
    );
    q.enqueue(&job(&id("a"), Priority::Normal)).unwrap();
    // Priority: a high job submitted later is taken first.
    q.enqueue(&job(&id("b"), Priority::High)).unwrap();
    // (Priority orders jobs that are waiting: a JetStream consumer can take a few ms to see
    // a message its stream has just stored.)
    std::thread::sleep(Duration::from_millis(300));
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
    // Handed back at a stop: at once, and not counted as an attempt, however often (more
    // hand-backs than max_deliver allows deliveries).
    let mut back = back;
    for _ in 0..=fleet::MAX_ATTEMPTS + 1 {
        q.release(back).unwrap();
        let (st, attempts, _) = state(q, &id("a"));
        assert_eq!((st, attempts), (JobState::Queued, 0));
        back = q.claim("w3", wait).unwrap().expect("released");
        assert_eq!((back.job.id.as_str(), back.attempts), (id("a").as_str(), 1));
    }
    q.complete(back, "w3").unwrap();
    assert!(
        q.claim("w3", Duration::from_millis(300)).unwrap().is_none(),
        "a handed-back job left a copy behind"
    );
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
    let n = nats("suite");
    let q = fleet::open(Some(&format!("{}?lease=1", n.url()))).unwrap();
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
    worker_to(
        queue,
        incoming,
        out.to_str().unwrap(),
        scratch,
        catalog,
        &[],
    )
}

fn worker_to(
    queue: &str,
    incoming: &Path,
    out: &str,
    scratch: &Path,
    catalog: &str,
    extra: &[String],
) -> Child {
    let grace = if extra.iter().any(|a| a == "--grace") {
        &[][..]
    } else {
        &["--grace", "30"][..]
    };
    pressing_env(&[
        "worker",
        "--queue",
        queue,
        "--store",
        incoming.to_str().unwrap(),
        "--out",
        out,
        "--scratch",
        scratch.to_str().unwrap(),
        "--catalog-url",
        catalog,
    ])
    .args(grace)
    .args(extra)
    .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    .env_remove("AWS_PROFILE")
    .env_remove("AWS_ENDPOINT_URL")
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

/// Every job of `ids` is published (status lists one entry per track).
fn all_published(queue: &str, ids: &[String]) -> bool {
    let s = statuses(queue, ids);
    ids.iter()
        .all(|id| s.iter().any(|e| e["id"] == id.as_str()))
        && s.iter().all(|e| e["state"] == "published")
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
    let submit = || {
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
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    let submitted = submit();
    // One entry per track; the tracks of a release share its job.
    let entries: Vec<(String, String, String)> = submitted["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let f = |k: &str| j[k].as_str().unwrap().to_string();
            (f("id"), f("track"), f("state"))
        })
        .collect();
    let mut ids: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{entries:?}");
    assert_eq!(entries.len(), 6, "{entries:?}");
    assert!(entries.iter().all(|e| e.2 == "queued"), "{entries:?}");
    let mut workers: Vec<Child> = (0..2)
        .map(|_| worker(queue, &incoming, &out, &scratch, &catalog.url))
        .collect();
    wait_for("three jobs published", Duration::from_secs(300), || {
        all_published(queue, &ids)
    });
    // A re-submit is a no-op that prints the same ids.
    let again = submit();
    let again: Vec<(&str, &str, &str)> = again["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let f = |k: &str| j[k].as_str().unwrap();
            (f("id"), f("track"), f("state"))
        })
        .collect();
    assert_eq!(
        again,
        entries
            .iter()
            .map(|(i, t, _)| (i.as_str(), t.as_str(), "published"))
            .collect::<Vec<_>>()
    );
    // Without --json, what submit made goes to standard output: the job ids, one line each
    // (`JOB=$(pressing submit ...)`), the summary to standard error.
    let plain = run_ok(&[
        "submit",
        a,
        b,
        c,
        "--queue",
        queue,
        "--store",
        incoming.to_str().unwrap(),
    ]);
    let printed: Vec<String> = String::from_utf8(plain.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(printed, ids, "submit's standard output");
    assert!(String::from_utf8_lossy(&plain.stderr).contains("published"));
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
    let mut listed: Vec<&str> = entries.iter().map(|e| e.1.as_str()).collect();
    listed.sort();
    assert_eq!(
        listed, tracks,
        "the tracks submit listed are the tracks notified"
    );
    assert!(r.iter().all(|n| n.signature_ok));
    assert!(
        std::fs::read_dir(&scratch).unwrap().next().is_none(),
        "scratch left behind"
    );
}

#[test]
fn two_workers_on_nats_press_three_releases_like_pressing_run() {
    let n = nats("two-workers");
    two_workers_press_three_releases(&n.url(), "nats-two-workers");
}

#[test]
fn two_worker_processes_on_one_queue_file_press_three_releases_like_pressing_run() {
    let q = tmp("sqlite-two-workers-queue").join("q.db");
    two_workers_press_three_releases(&format!("sqlite:{}", q.display()), "sqlite-two-workers");
}

/// A `single_file = true` ladder travels with the job: a worker on the embedded queue presses
/// the three releases into track files byte-identical to `pressing run --single-file` +
/// `pressing publish` (the catalog records aside, as above).
#[test]
fn a_single_file_ladder_presses_and_scores_in_the_fleet_like_run_single_file_quality() {
    let dir = tmp("single-file");
    let ladder = dir.join("single-file.toml");
    let music = std::fs::read_to_string(root().join("ladders/music.toml")).unwrap();
    std::fs::write(
        &ladder,
        music.replace("single_file = false", "single_file = true"),
    )
    .unwrap();
    let ladder = ladder.to_str().unwrap();
    let [a, b, c] = releases();
    // The reference: the same ladder, and `--single-file` saying it once more.
    let pkg = dir.join("package");
    let pkg = pkg.to_str().unwrap();
    run_ok(&[
        "run",
        "--out",
        pkg,
        "--ladder",
        ladder,
        "--single-file",
        "--quality",
        a,
        b,
        c,
    ]);
    let store = dir.join("store");
    run_ok(&["publish", pkg, store.to_str().unwrap()]);
    let queue = format!("sqlite:{}", dir.join("q.db").display());
    let (incoming, out, scratch) = (dir.join("incoming"), dir.join("out"), dir.join("scratch"));
    let catalog = Receiver::start(&[]);
    let o = run_ok(&[
        "submit",
        a,
        b,
        c,
        "--ladder",
        ladder,
        "--quality",
        "--queue",
        &queue,
        "--store",
        incoming.to_str().unwrap(),
    ]);
    let ids: Vec<String> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let mut w = worker(&queue, &incoming, &out, &scratch, &catalog.url);
    wait_for("three jobs published", Duration::from_secs(300), || {
        all_published(&queue, &ids)
    });
    assert!(sigterm(&mut w).success());
    let (got, want) = (files(&out), files(&store));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    let track_files = want.keys().filter(|k| k.ends_with("/media.mp4")).count();
    assert!(track_files >= 20, "{track_files} track files");
    assert!(
        !want.keys().any(|k| k.ends_with(".m4s")),
        "no segment files"
    );
    // `submit --quality`: the worker scores every lossy rendition as `run --quality` does.
    let mut scored = 0;
    for (k, v) in &want {
        if !k.ends_with("/catalog.json") {
            assert!(
                got[k] == *v,
                "{k} differs from pressing run --single-file's"
            );
            continue;
        }
        let (ours, theirs): (Value, Value) = (
            serde_json::from_slice(&got[k]).unwrap(),
            serde_json::from_slice(v).unwrap(),
        );
        let (ours, theirs) = (
            ours["renditions"].as_array().unwrap(),
            theirs["renditions"].as_array().unwrap(),
        );
        assert_eq!(ours.len(), theirs.len(), "{k}");
        for (o, t) in ours.iter().zip(theirs) {
            assert_eq!(o["quality"], t["quality"], "{k} {}", o["id"]);
            scored += usize::from(o["quality"]["mos"].is_f64());
        }
    }
    assert!(scored >= 30, "{scored} renditions scored");
    eprintln!(
        "single-file fleet: {} objects, {track_files} track files identical, {scored} quality scores equal to run --quality's",
        want.len()
    );
}

/// A bare master long enough to be killed in the middle of: `seconds` of a stereo chord.
fn long_master(name: &str, seconds: u32) -> PathBuf {
    let dir = tmp(&format!("master-{name}"));
    let path = dir.join(format!("{name}.wav"));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=220:duration={seconds}"),
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=331:duration={seconds}"),
        "-filter_complex",
        "[0][1]amerge=inputs=2,volume=0.5",
        "-ar",
        "44100",
        "-c:a",
        "pcm_s16le",
        "-y",
        path.to_str().unwrap(),
    ]);
    path
}

fn submit_one(queue: &str, release: &Path, incoming: &Path) -> String {
    let o = run_ok(&[
        "submit",
        release.to_str().unwrap(),
        "--queue",
        queue,
        "--store",
        incoming.to_str().unwrap(),
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["jobs"][0]["id"].as_str().unwrap().to_string()
}

fn kill9(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Two workers in turn are killed with -9 while they encode the job; a third finishes it:
/// one catalog entry, the job's third attempt, the killed runs' scratch removed.
fn killed_workers_lose_nothing(queue: &str, name: &str) {
    let dir = tmp(name);
    let (incoming, out, scratch) = (dir.join("incoming"), dir.join("out"), dir.join("scratch"));
    let master = long_master(name, 240);
    let catalog = Receiver::start(&[]);
    let id = submit_one(queue, &master, &incoming);
    for round in 1..=2 {
        let mut w = worker(queue, &incoming, &out, &scratch, &catalog.url);
        wait_for("the job encoding", Duration::from_secs(120), || {
            let s = statuses(queue, std::slice::from_ref(&id));
            s[0]["state"] == "running"
                && s[0]["attempts"] == round
                && s[0]["progress"].as_f64().unwrap_or(0.0) > 0.12
        });
        kill9(&mut w);
        assert!(
            std::fs::read_dir(&scratch).unwrap().next().is_some(),
            "round {round}: the killed worker had no scratch"
        );
    }
    // The third worker serves its metrics and logs JSON.
    let port = free_ports(1);
    let extra = [
        "--metrics".to_string(),
        format!("127.0.0.1:{port}"),
        "--log-format".into(),
        "json".into(),
    ];
    let out_s = out.to_str().unwrap();
    let mut w = worker_to(queue, &incoming, out_s, &scratch, &catalog.url, &extra);
    wait_for("the job published", Duration::from_secs(240), || {
        statuses(queue, std::slice::from_ref(&id))[0]["state"] == "published"
    });
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        use std::io::{Read, Write};
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let metrics = get("/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for line in [
        "pressing_jobs_total{outcome=\"published\"} 1",
        "pressing_jobs_total{outcome=\"dead\"} 0",
        "pressing_jobs_in_flight 0",
        "pressing_jobs_claimed_total 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    assert!(get("/readyz").starts_with("HTTP/1.1 200"));
    assert!(sigterm(&mut w).success());
    let mut log = String::new();
    std::io::Read::read_to_string(&mut w.stderr.take().unwrap(), &mut log).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    // pressing's own lines each name the worker; the job's lines, the job.
    let own: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("pressing"))
        })
        .collect();
    assert!(
        own.iter().all(|l| l["span"]["worker"]
            .as_str()
            .is_some_and(|w| w.contains('-'))),
        "{log}"
    );
    for message in ["claimed release", "published"] {
        assert!(
            own.iter().any(|l| l["span"]["job"] == id.as_str()
                && l["message"].as_str().unwrap().starts_with(message)),
            "{message}: {log}"
        );
    }
    assert!(
        own.iter().any(|l| l["message"]
            .as_str()
            .unwrap()
            .starts_with("stopping: no new jobs")),
        "{log}"
    );
    let s = &statuses(queue, std::slice::from_ref(&id))[0];
    assert_eq!(s["attempts"], 3, "{s}");
    let r = catalog.received();
    assert_eq!(
        r.len(),
        1,
        "one catalog entry: {:?}",
        r.iter().map(|n| &n.id).collect::<Vec<_>>()
    );
    assert_eq!(r[0].body["track"]["id"], name);
    assert!(
        std::fs::read_dir(&scratch).unwrap().next().is_none(),
        "scratch left behind"
    );
    // Nothing half-written in the output store, and the package whole: every segment the
    // media playlists name is there.
    let f = files(&out);
    assert!(
        f.keys().all(|k| !k.ends_with(".pressing-part")),
        "partial objects"
    );
    for (k, v) in &f {
        if k.ends_with("/index.m3u8") {
            let dir = k.rsplit_once('/').unwrap().0;
            for line in String::from_utf8_lossy(v)
                .lines()
                .filter(|l| l.ends_with(".m4s"))
            {
                assert!(
                    f.contains_key(&format!("{dir}/{line}")),
                    "{k} names a missing {line}"
                );
            }
        }
    }
}

#[test]
fn workers_killed_mid_job_on_nats_lose_nothing() {
    let n = nats("killed");
    killed_workers_lose_nothing(&format!("{}?lease=3", n.url()), "killed-nats");
}

#[test]
fn workers_killed_mid_job_on_one_queue_file_lose_nothing() {
    let q = tmp("killed-sqlite-queue").join("q.db");
    killed_workers_lose_nothing(&format!("sqlite:{}?lease=3", q.display()), "killed-sqlite");
}

/// A master that became corrupt in the incoming store after submit: dead at once (a
/// permanent failure), with exit code 65 and the store key in the message.
#[test]
fn a_poison_job_is_dead_lettered_with_its_code() {
    let n = nats("poison");
    for (queue, name) in [
        (n.url(), "poison-nats"),
        (
            format!(
                "sqlite:{}",
                tmp("poison-sqlite-queue").join("q.db").display()
            ),
            "poison-sqlite",
        ),
    ] {
        let dir = tmp(name);
        let (incoming, out, scratch) = (dir.join("incoming"), dir.join("out"), dir.join("scratch"));
        let master = dir.join(format!("{name}.wav"));
        std::fs::copy(root().join("fixtures/album/01-cd-stereo.wav"), &master).unwrap();
        let id = submit_one(&queue, &master, &incoming);
        let stored = incoming.join(format!("masters/{id}/{name}.wav"));
        let mut bytes = std::fs::read(&stored).unwrap();
        let n = bytes.len();
        bytes[n / 2..n / 2 + 64].fill(0x55);
        std::fs::write(&stored, bytes).unwrap();
        let catalog = Receiver::start(&[]);
        let mut w = worker(&queue, &incoming, &out, &scratch, &catalog.url);
        wait_for("the job dead", Duration::from_secs(60), || {
            statuses(&queue, std::slice::from_ref(&id))[0]["state"] == "dead"
        });
        assert!(sigterm(&mut w).success());
        let s = &statuses(&queue, std::slice::from_ref(&id))[0];
        assert_eq!(
            (s["code"].as_u64(), s["attempts"].as_u64()),
            (Some(65), Some(1)),
            "{s}"
        );
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .contains("changed after submit"),
            "{s}"
        );
        // `status` with no id lists the dead letters.
        let o = pressing_env(&["status", "--json", "--queue", &queue])
            .output()
            .unwrap();
        let dead: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(dead["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id.as_str()));
        assert!(catalog.received().is_empty());
        assert!(
            !out.exists() || files(&out).is_empty(),
            "a poison job published something"
        );
    }
}

/// A three-node cluster with R3 streams: kill -9 of a node in the middle of a run, then its
/// restart, loses no job and does none twice (one catalog entry per track).
#[test]
fn a_cluster_node_killed_mid_run_loses_no_job_and_does_none_twice() {
    let nodes = Nats::cluster("three", 3);
    let urls: Vec<String> = nodes.iter().map(Nats::url).collect();
    let queue = format!("{}?replicas=3&lease=5", urls.join(","));
    let dir = tmp("cluster");
    let (incoming, out, scratch) = (dir.join("incoming"), dir.join("out"), dir.join("scratch"));
    let catalog = Receiver::start(&[]);
    let long = long_master("cluster-long", 120);
    let mut ids = vec![submit_one(&queue, &long, &incoming)];
    let [a, b, c] = releases();
    for r in [a, b, c] {
        ids.push(submit_one(&queue, &root().join(r), &incoming));
    }
    let mut workers: Vec<Child> = (0..2)
        .map(|_| worker(&queue, &incoming, &out, &scratch, &catalog.url))
        .collect();
    wait_for("a job running", Duration::from_secs(60), || {
        statuses(&queue, &ids)
            .iter()
            .any(|s| s["state"] == "running")
    });
    nodes[0].kill();
    std::thread::sleep(Duration::from_secs(3));
    nodes[0].restart();
    wait_for("every job published", Duration::from_secs(300), || {
        all_published(&queue, &ids)
    });
    for w in &mut workers {
        assert!(sigterm(w).success());
    }
    let r = catalog.received();
    let mut tracks: Vec<String> = r
        .iter()
        .map(|n| n.body["track"]["id"].as_str().unwrap_or("?").to_string())
        .collect();
    tracks.sort();
    let before = tracks.len();
    tracks.dedup();
    assert_eq!(before, tracks.len(), "a track notified twice: {tracks:?}");
    assert_eq!(tracks.len(), 7, "{tracks:?}");
}

/// SIGTERM in the middle of an encode. With a grace period of 1 s the encode is stopped and
/// the job handed back: exit 0, nothing in the output store, no notification, scratch
/// cleaned, the job queued again. With a long grace the next worker, stopped the same way,
/// finishes the job first: exit 0, published, one entry. The hand-back is not an attempt:
/// the next worker's is the first.
fn sigterm_mid_job_hands_back_or_finishes(queue: &str, name: &str) {
    let dir = tmp(name);
    let (incoming, out, scratch) = (dir.join("incoming"), dir.join("out"), dir.join("scratch"));
    let master = long_master(name, 240);
    let catalog = Receiver::start(&[]);
    let id = submit_one(queue, &master, &incoming);
    let out_s = out.to_str().unwrap();
    let encoding = |attempt: u32| {
        wait_for("the job encoding", Duration::from_secs(120), || {
            let s = &statuses(queue, std::slice::from_ref(&id))[0];
            s["state"] == "running"
                && s["attempts"] == attempt
                && s["progress"].as_f64().unwrap_or(0.0) > 0.12
        });
    };
    let grace = |s: &str| ["--grace".to_string(), s.to_string()];
    let mut w = worker_to(queue, &incoming, out_s, &scratch, &catalog.url, &grace("1"));
    encoding(1);
    assert!(
        sigterm(&mut w).success(),
        "exit 0 after handing the job back"
    );
    let mut log = String::new();
    std::io::Read::read_to_string(&mut w.stderr.take().unwrap(), &mut log).unwrap();
    // Stopped in the middle of the encode (0.1 downloaded .. 0.9 encoded), not after it.
    let at: f64 = log
        .split("handed back (stopping) at ")
        .nth(1)
        .and_then(|r| r.split('%').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no hand-back in {log}"));
    assert!(at < 85.0, "handed back only after the encode: {at}%");
    let s = &statuses(queue, std::slice::from_ref(&id))[0];
    assert_eq!(s["state"], "queued", "{s}");
    assert_eq!(s["attempts"], 0, "{s}");
    assert!(
        !out.exists() || files(&out).is_empty(),
        "published something: {:?}",
        files(&out).keys()
    );
    assert!(catalog.received().is_empty());
    assert!(
        std::fs::read_dir(&scratch).unwrap().next().is_none(),
        "scratch left behind"
    );
    let mut w = worker_to(
        queue,
        &incoming,
        out_s,
        &scratch,
        &catalog.url,
        &grace("600"),
    );
    encoding(1);
    assert!(sigterm(&mut w).success(), "exit 0 after finishing the job");
    let s = &statuses(queue, std::slice::from_ref(&id))[0];
    assert_eq!(s["state"], "published", "{s}");
    assert_eq!(catalog.received().len(), 1);
    assert!(files(&out)
        .keys()
        .any(|k| k == &format!("{name}/catalog.json")));
}

#[test]
fn sigterm_mid_job_on_nats_hands_the_job_back_or_finishes_it() {
    let n = nats("sigterm");
    sigterm_mid_job_hands_back_or_finishes(&format!("{}?lease=3", n.url()), "sigterm-nats");
}

#[test]
fn sigterm_mid_job_on_one_queue_file_hands_the_job_back_or_finishes_it() {
    let dir = tmp("sigterm-sqlite-queue");
    let queue = format!("sqlite:{}?lease=3", dir.join("q.db").display());
    sigterm_mid_job_hands_back_or_finishes(&queue, "sigterm-sqlite");
}

/// The output store goes down while a job encodes: its publish fails, the job is retried
/// after a delay (state `failed`, code 69), and it is published once the store is back.
#[test]
fn a_store_outage_mid_job_is_retried_and_the_job_completes() {
    let store = Weed::start("fleet-outage");
    let queue = format!(
        "sqlite:{}?lease=5",
        tmp("outage-queue").join("q.db").display()
    );
    let dir = tmp("outage");
    let (incoming, scratch) = (dir.join("incoming"), dir.join("scratch"));
    let catalog = Receiver::start(&[]);
    let master = long_master("outage", 120);
    let id = submit_one(&queue, &master, &incoming);
    let dest = format!("s3://{BUCKET}/outage");
    let mut w = worker_to(
        &queue,
        &incoming,
        &dest,
        &scratch,
        &catalog.url,
        &store.flags(),
    );
    wait_for("the job encoding", Duration::from_secs(60), || {
        let s = &statuses(&queue, std::slice::from_ref(&id))[0];
        s["state"] == "running" && s["progress"].as_f64().unwrap_or(0.0) > 0.12
    });
    store.kill();
    wait_for(
        "the job failed, to be retried",
        Duration::from_secs(240),
        || statuses(&queue, std::slice::from_ref(&id))[0]["state"] == "failed",
    );
    let s = &statuses(&queue, std::slice::from_ref(&id))[0];
    assert_eq!(s["code"], 69, "{s}");
    store.restart();
    wait_for("the job published", Duration::from_secs(240), || {
        statuses(&queue, std::slice::from_ref(&id))[0]["state"] == "published"
    });
    assert!(sigterm(&mut w).success());
    assert_eq!(
        statuses(&queue, std::slice::from_ref(&id))[0]["attempts"],
        2
    );
    assert_eq!(catalog.received().len(), 1);
    let keys = store.keys("outage");
    assert!(keys.iter().any(|k| k == "outage/catalog.json"), "{keys:?}");
    assert_eq!(store.incomplete_uploads(), 0);
}

/// tests/keyserver.py: a CPIX key server over HTTPS on 127.0.0.1 (its own CA), whose content
/// keys are SHA-256(secret || key id) truncated, so the test knows every key it hands out.
struct KeyServerProc {
    child: Child,
    port: u16,
    dir: PathBuf,
}

const KEY_SERVER_SECRET: &[u8] = b"pressing test key server secret";

impl KeyServerProc {
    fn start(dir: &Path, port: u16) -> KeyServerProc {
        use std::io::BufRead;
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("secret"), KEY_SERVER_SECRET).unwrap();
        let mut child = Command::new("python3")
            .arg(root().join("tests/keyserver.py"))
            .arg(dir)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the key server did not start: {line:?}"));
        KeyServerProc {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/cpix", self.port)
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--key-server".into(),
            self.url(),
            "--key-server-ca".into(),
            self.dir.join("ca.pem").display().to_string(),
        ]
    }

    /// The content key the server gives for a key id.
    fn key(kid: &pressing::protect::KeyId) -> [u8; 16] {
        use sha2::Digest;
        let d = sha2::Sha256::new()
            .chain_update(KEY_SERVER_SECRET)
            .chain_update(kid.0)
            .finalize();
        d[..16].try_into().unwrap()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for KeyServerProc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The fleet presses a protected release with keys asked of a real HTTPS key server (never
/// through the queue or the stores); the key server down is a retried failure that completes
/// once it is back; a key server refusing the content is a dead job saying so; no key is in a
/// log line, a status, a dead letter or an object.
#[test]
fn a_protected_release_presses_in_the_fleet_with_keys_from_the_key_server() {
    let dir = tmp("protected-fleet");
    let mut ks = KeyServerProc::start(&dir.join("keyserver"), 0);
    let ladder = dir.join("protected.toml");
    let music = std::fs::read_to_string(root().join("ladders/music.toml")).unwrap();
    std::fs::write(
        &ladder,
        format!("{music}\n[protection]\nscheme = \"cbcs\"\n"),
    )
    .unwrap();
    let ladder = ladder.to_str().unwrap();
    let queue = format!("sqlite:{}", dir.join("q.db").display());
    let (incoming, out, scratch) = (dir.join("incoming"), dir.join("out"), dir.join("scratch"));
    let submit = |release: &str| -> String {
        let o = run_ok(&[
            "submit",
            release,
            "--ladder",
            ladder,
            "--queue",
            &queue,
            "--store",
            incoming.to_str().unwrap(),
        ]);
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let refused_master = dir.join("refused-one.wav");
    std::fs::copy(
        root().join("fixtures/album/01-cd-stereo.wav"),
        &refused_master,
    )
    .unwrap();
    let album = submit("fixtures/album");
    let refused = submit(refused_master.to_str().unwrap());
    let catalog = Receiver::start(&[]);
    let mut w = worker_to(
        &queue,
        &incoming,
        out.to_str().unwrap(),
        &scratch,
        &catalog.url,
        &ks.args(),
    );
    let state = |id: &String| statuses(&queue, std::slice::from_ref(id))[0].clone();
    wait_for("the album published", Duration::from_secs(300), || {
        state(&album)["state"] == "published"
    });
    wait_for("the refused release dead", Duration::from_secs(60), || {
        state(&refused)["state"] == "dead"
    });
    let dead = state(&refused);
    assert_eq!(dead["code"].as_u64(), Some(77), "{dead}");
    let message = dead["message"].as_str().unwrap();
    assert!(
        message.contains("refused") && message.contains("HTTP 403"),
        "{dead}"
    );
    // The key server down: the job fails, is retried, and completes once it is back.
    let port = ks.port;
    ks.stop();
    let gapless = submit("fixtures/gapless");
    wait_for("a failed attempt", Duration::from_secs(120), || {
        let s = state(&gapless);
        s["state"] == "failed" && s["code"].as_u64() == Some(69)
    });
    let failed = state(&gapless);
    assert!(
        failed["message"].as_str().unwrap().contains("key server"),
        "{failed}"
    );
    let _ks = KeyServerProc::start(&dir.join("keyserver"), port);
    wait_for(
        "the gapless release published",
        Duration::from_secs(300),
        || state(&gapless)["state"] == "published",
    );
    assert!(sigterm(&mut w).success());
    let mut log = String::new();
    std::io::Read::read_to_string(&mut w.stderr.take().unwrap(), &mut log).unwrap();

    // Every protected rendition names its key id (derived from the track and tier), and
    // FFmpeg decrypts it with the key the server gave.
    let mut keys = Vec::new();
    let mut protected = 0;
    let mut decrypted = 0;
    let published = files(&out);
    for (name, bytes) in &published {
        if !name.ends_with("/catalog.json") {
            continue;
        }
        let record: Value = serde_json::from_slice(bytes).unwrap();
        let track = record["id"].as_str().unwrap();
        for r in record["renditions"].as_array().unwrap() {
            let tier = r["tier"].as_str().unwrap();
            if tier == "free" {
                assert!(r["key_id"].is_null(), "{track}/{}", r["id"]);
                continue;
            }
            let t = pressing::ladder::Tier::parse(tier).unwrap();
            let kid = pressing::protect::keys::derived_kid(track, t);
            assert_eq!(r["key_id"], kid.to_string(), "{track}/{}", r["id"]);
            assert_eq!(r["scheme"], "cbcs");
            let key = KeyServerProc::key(&kid);
            keys.push(key);
            protected += 1;
            if tier == "premium" && r["codec"] == "aac-lc" && record["source"].as_str().is_some() {
                decrypted += decrypts_to_its_clear_twin(
                    &out.join(track),
                    track,
                    r["id"].as_str().unwrap(),
                    &key,
                ) as usize;
            }
        }
    }
    assert!(decrypted >= 3, "{decrypted} renditions decrypted");
    assert!(protected >= 20, "{protected} protected renditions");
    let requests = std::fs::read_to_string(dir.join("keyserver/requests.log")).unwrap();
    assert!(requests.lines().count() >= 5, "{requests}");
    // No key anywhere: the worker's log, the statuses, the dead letter, every object.
    let statuses_text =
        serde_json::to_string(&statuses(&queue, &[album, refused, gapless])).unwrap();
    let hex = |k: &[u8]| k.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut scanned = 0;
    for k in &keys {
        use base64::Engine as _;
        let forms = [
            hex(k),
            hex(k).to_uppercase(),
            base64::engine::general_purpose::STANDARD.encode(k),
        ];
        for f in &forms {
            assert!(!log.contains(f.as_str()), "the worker's log holds a key");
            assert!(!statuses_text.contains(f.as_str()), "a status holds a key");
        }
        for (name, bytes) in &published {
            assert!(
                !bytes.windows(16).any(|w| w == k)
                    && !forms
                        .iter()
                        .any(|f| bytes.windows(f.len()).any(|w| w == f.as_bytes())),
                "{name} holds a key"
            );
            scanned += 1;
        }
    }
    eprintln!(
        "protected fleet: {protected} renditions keyed by the key server; refused content dead with 77; the server down retried and published; {scanned} object scans and {} log lines hold no key",
        log.lines().count()
    );
}

/// A published protected rendition, decrypted by FFmpeg with `key` (through a pipe: FFmpeg 5.1
/// misreads per-sample encryption info from a seekable file of several fragments), decodes to
/// the samples of the same rendition of the clear fixtures run.
fn decrypts_to_its_clear_twin(
    track_dir: &Path,
    track: &str,
    rendition: &str,
    key: &[u8; 16],
) -> bool {
    let decode = |file: &Path, key: Option<String>| {
        let mut c = Command::new("ffmpeg");
        c.args(["-nostdin", "-v", "error", "-flags2", "+skip_manual"]);
        if let Some(k) = &key {
            c.args(["-decryption_key", k]);
        }
        let o = c
            .args(["-i", "pipe:0", "-f", "s32le", "-"])
            .stdin(Stdio::from(std::fs::File::open(file).unwrap()))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ffmpeg: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    // A clear reference of its own: this binary runs beside the others, and fixtures_out()
    // would press the shared fixtures folder again under their feet.
    static CLEAR: OnceLock<PathBuf> = OnceLock::new();
    let clear = CLEAR.get_or_init(|| run_once("fleet-clear-album", &["fixtures/album"]));
    let clear_dir = clear.join(track);
    if !clear_dir.join(rendition).is_dir() {
        return false;
    }
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let got = decode(&join_rendition(track_dir, rendition), Some(hex));
    let want = decode(&join_rendition(&clear_dir, rendition), None);
    assert!(
        got == want,
        "{track}/{rendition}: decrypted audio differs from the clear run's"
    );
    true
}

/// A DDEX release (an ERN 4.3 message, its masters under resources/) through submit and a
/// worker, published exactly as `pressing run` + `pressing publish` publish it.
#[test]
fn a_ddex_release_presses_in_the_fleet_like_run_and_publish() {
    use common::ddex::*;
    let dir = tmp("ddex-fleet");
    // With a front cover, which travels with the masters.
    let cover = dir.join("cover.png");
    let sha = write_cover(&cover, 3000);
    let release = batch("fleet", &[SUBSCRIPTION_WORLDWIDE, ADS_GB_FR], |x| {
        add_cover(x, "resources/cover.png", &sha)
    });
    std::fs::copy(&cover, release.join("resources/cover.png")).unwrap();
    let release = release.to_str().unwrap();
    let pkg = dir.join("package");
    let pkg = pkg.to_str().unwrap();
    run_ok(&["run", "--out", pkg, release]);
    let store = dir.join("store");
    run_ok(&["publish", pkg, store.to_str().unwrap()]);
    let queue = format!("sqlite:{}", dir.join("q.db").display());
    let (incoming, out, scratch) = (dir.join("incoming"), dir.join("out"), dir.join("scratch"));
    // `pressing submit INPUT` into this test's queue and incoming store: the job id.
    let submit = |input: &str| {
        let o = run_ok(&[
            "submit",
            input,
            "--queue",
            &queue,
            "--store",
            incoming.to_str().unwrap(),
        ]);
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let id = submit(release);
    // The message and the masters below the folder went to the incoming store.
    let uploaded = files(&incoming);
    assert!(
        uploaded.keys().any(|k| k.ends_with("/ern.xml"))
            && uploaded.keys().any(|k| k.ends_with("/resources/A1.wav"))
            && uploaded.keys().any(|k| k.ends_with("/resources/A2.flac"))
            && uploaded.keys().any(|k| k.ends_with("/resources/cover.png")),
        "{:?}",
        uploaded.keys().collect::<Vec<_>>()
    );
    let catalog = Receiver::start(&[]);
    let mut w = worker(&queue, &incoming, &out, &scratch, &catalog.url);
    wait_for("the DDEX job published", Duration::from_secs(300), || {
        all_published(&queue, std::slice::from_ref(&id))
    });
    let (got, want) = (files(&out), files(&store));
    let covers = got.keys().filter(|k| k.contains("/cover/")).count();
    assert_eq!(covers, 8, "4 sizes of the cover in each of 2 tracks");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    let mut same = 0;
    for (k, v) in &want {
        if k.ends_with("/catalog.json") {
            // The record names its masters and URLs where each run put them (the incoming
            // store, the output store); the rest is the same.
            let mut a: Value = serde_json::from_slice(&got[k]).unwrap();
            let mut b: Value = serde_json::from_slice(v).unwrap();
            for r in [&mut a, &mut b] {
                r["source"] = Value::Null;
                r["urls"] = Value::Null;
            }
            assert_eq!(a["availability"], b["availability"], "{k}");
            assert_eq!(a["release"], b["release"], "{k}");
            assert_eq!(a, b, "{k}");
        } else {
            assert!(got[k] == *v, "{k} differs from pressing run + publish");
        }
        same += 1;
    }
    let notified = catalog.received();
    assert_eq!(notified.len(), 2, "one notification per track");
    // Each announces the cover's four sizes, at their URLs, and holds to the schema.
    let schema = common::servers::notification_schema();
    for n in &notified {
        assert!(schema.is_valid(&n.body), "{}", n.body);
        let sizes: Vec<u64> = n.body["cover"]
            .as_array()
            .expect("a cover")
            .iter()
            .map(|c| {
                let url = c["url"].as_str().unwrap();
                let key = url.rsplit_once("/cover/").map(|(_, k)| k).unwrap();
                assert!(
                    got.keys().any(|k| k.ends_with(&format!("/cover/{key}"))),
                    "{url}"
                );
                c["width"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(sizes, [3000, 1200, 600, 300]);
    }
    // A PurgeReleaseMessage given to submit: a takedown job the worker carries out as
    // `unpublish --ddex` does (every track, then the release index; a notification each).
    let purge = dir.join("purge.xml");
    std::fs::write(&purge, purge_message("<ICPN>5012345678900</ICPN>")).unwrap();
    let takedown = submit(purge.to_str().unwrap());
    wait_for("the takedown job done", Duration::from_secs(120), || {
        all_published(&queue, std::slice::from_ref(&takedown))
    });
    let left: Vec<String> = files(&out).into_keys().collect();
    assert!(left.is_empty(), "left after the takedown job: {left:?}");
    let notified = catalog.received();
    assert_eq!(notified.len(), 4, "and one takedown notification per track");
    // A release folder whose message's deals have all ended: submit makes it a takedown too.
    run_ok(&["publish", pkg, out.to_str().unwrap()]);
    let ended = batch("fleet-ended", &[ENDED_2020], |x| x);
    let ended_job = submit(ended.to_str().unwrap());
    wait_for(
        "the ended release taken down",
        Duration::from_secs(120),
        || all_published(&queue, std::slice::from_ref(&ended_job)),
    );
    let left: Vec<String> = files(&out).into_keys().collect();
    assert!(
        left.is_empty(),
        "left after the ended release's job: {left:?}"
    );
    assert!(sigterm(&mut w).success());
    eprintln!("DDEX fleet: {same} objects as run + publish ({covers} cover sizes), 2 notifications; a submitted purge took the release down (2 more), and so did a submitted release whose deals ended");
}
