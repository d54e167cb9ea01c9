#!/usr/bin/env python3
"""The fleet against `pressing run` + `pressing publish` on the same album, on this machine.

  scripts/bench-fleet.py [--tracks N] [--queue sqlite|nats|both] [--rounds R] [--ci]

Presses the benchmark album (N 20 s 24/96 stereo masters, default 12, cached under
target/bench/) without the fleet (`pressing run`, then `pressing publish` into a store
folder: what the fleet's workers deliver is a published store) and through it: two idle
workers on one queue (the SQLite file, and a nats-server 2.15.1 with JetStream started here
for the round), then `pressing submit --wait` of the album. Both stores are local folders,
so the difference is the fleet's own cost (validation at submit, the upload into the
incoming store, the queue, the download, the status bucket), not a network's. R rounds
(default 3), interleaved (the queues take turns at going first, and every measurement
starts with the disk written back); the figures are medians.

Then the unit-of-work question: the same 12 masters submitted as 12 single-track jobs to the
two workers (each worker given half the cores), against the album as one job.

--ci (what scripts/test.sh runs): one round of a 4-track album and no per-track split; it
still fails when a job does not publish, on either queue.

Prints JSON: the walls, the fleet's overhead (fleet / (run + publish) - 1, and over `run`
alone), the queue latency (enqueue to claim, from the workers' logs), and the per-track
split's wall seconds.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

ROOT = bench.ROOT
PRESSING = bench.PRESSING


def tool(name):
    return subprocess.run([os.path.join(ROOT, "scripts/tools.sh"), name], check=True,
                          capture_output=True, text=True).stdout.strip()


def free_port():
    import socket
    for port in range(17000, 18000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise SystemExit("no free port")


def fleet(queue, releases, work, jobs_per_worker=None, bare=False):
    """Two idle workers, then submit `releases`; seconds from submit to all published, and
    the queue latencies the workers logged."""
    incoming, out, scratch = (os.path.join(work, d) for d in ("incoming", "out", "scratch"))
    extra = ["--jobs", str(jobs_per_worker)] if jobs_per_worker else []
    logs = [open(os.path.join(work, f"worker-{i}.log"), "w") for i in range(2)]
    workers = [subprocess.Popen([PRESSING, "worker", "--queue", queue, "--store", incoming,
                                 "--out", out, "--scratch", scratch, *extra],
                                stderr=logs[i], stdout=subprocess.DEVNULL) for i in range(2)]
    time.sleep(1.5)  # both idle and polling
    settle()
    began = time.perf_counter()
    # `submit --wait` follows the jobs in-process (a status read every 100 ms) to the end.
    o = subprocess.run([PRESSING, "submit", *releases, "--queue", queue, "--store", incoming,
                        "--json", "--wait", "--quiet"], capture_output=True, text=True)
    if o.returncode != 0:
        raise SystemExit(f"submit failed: {o.stderr}")
    jobs = json.loads(o.stdout)["jobs"]
    if any(j["state"] != "published" for j in jobs):
        raise SystemExit(f"not published: {jobs}")
    ids = sorted({j["id"] for j in jobs})  # one entry per track
    wall = time.perf_counter() - began
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(timeout=60)
    for f in logs:
        f.close()
    lags = []
    for i in range(2):
        with open(os.path.join(work, f"worker-{i}.log")) as f:
            lags += [int(m) for m in re.findall(r"attempt 1 of \d+, (\d+) ms after submit",
                                                f.read())]
    return {"wall_seconds": round(wall, 2), "jobs": len(ids), "queue_latency_ms": sorted(lags)}


def settle():
    """Write back what the previous measurement left dirty, so that it is not charged to the
    next one (a run writes some 100 MB of masters, segments and copies)."""
    os.sync()
    time.sleep(0.5)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def start_nats(work, tag):
    """A nats-server of its own per round: a job id already published on a broker would make
    the next round's submit a no-op."""
    port = free_port()
    js = os.path.join(work, f"js-{tag}")
    p = subprocess.Popen([tool("nats-server"), "-js", f"-sd={js}", "-a=127.0.0.1", f"-p={port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    return p, f"nats://127.0.0.1:{port}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int)
    ap.add_argument("--queue", choices=["sqlite", "nats", "both"], default="both")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ci", action="store_true",
                    help="one round, no per-track split: the gate, not the figures")
    args = ap.parse_args()
    if args.ci:
        args.rounds = 1
    args.tracks = args.tracks or (4 if args.ci else 12)
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    album = bench.album(args.tracks)
    audio = 20 * args.tracks
    work = tempfile.mkdtemp(prefix="pressing-bench-fleet-")
    report = {"tracks": args.tracks, "audio_seconds": audio, "cores": os.cpu_count(),
              "rounds": args.rounds}
    names = [q for q in ("sqlite", "nats") if args.queue in (q, "both")]
    walls = {k: [] for k in ["run", "publish", "validate", *names]}
    lags = {q: [] for q in names}
    try:
        # Interleaved rounds, medians: the machine's other load moves every figure alike.
        for r in range(args.rounds):
            # Without the fleet: `pressing run`, then `pressing publish` into a store folder
            # (what the fleet's workers deliver is a published store).
            out, store = os.path.join(work, f"run-{r}"), os.path.join(work, f"store-{r}")
            settle()
            began = time.perf_counter()
            subprocess.run([PRESSING, "run", album, "--out", out, "--quiet"], check=True,
                           stdout=subprocess.DEVNULL)
            walls["run"].append(time.perf_counter() - began)
            settle()
            began = time.perf_counter()
            subprocess.run([PRESSING, "publish", out, store, "--quiet"], check=True,
                           stdout=subprocess.DEVNULL)
            walls["publish"].append(time.perf_counter() - began)
            shutil.rmtree(out)
            shutil.rmtree(store)
            # What submit does before anything reaches the fleet: the label-side validation.
            settle()
            began = time.perf_counter()
            subprocess.run([PRESSING, "validate", album, "--quiet"], check=True,
                           stdout=subprocess.DEVNULL)
            walls["validate"].append(time.perf_counter() - began)
            # The queues take turns at going first.
            for name in names[r % len(names):] + names[:r % len(names)]:
                d = os.path.join(work, f"{name}-{r}")
                os.makedirs(d)
                nats = None
                if name == "nats":
                    nats, spec = start_nats(work, r)
                else:
                    spec = f"sqlite:{os.path.join(d, 'q.db')}"
                try:
                    f = fleet(spec, [album], d)
                finally:
                    if nats:
                        nats.terminate()
                        nats.wait()
                walls[name].append(f["wall_seconds"])
                lags[name] += f["queue_latency_ms"]
                shutil.rmtree(d)
        run_wall, publish_wall = median(walls["run"]), median(walls["publish"])
        baseline = run_wall + publish_wall
        report["run_wall_seconds"] = round(run_wall, 2)
        report["publish_wall_seconds"] = round(publish_wall, 2)
        report["validate_seconds"] = round(median(walls["validate"]), 2)
        report["walls"] = {k: [round(x, 2) for x in v] for k, v in walls.items()}
        for name in names:
            wall = median(walls[name])
            report[f"fleet_{name}"] = {
                "wall_seconds": round(wall, 2),
                # The fleet's own cost (validation at submit, upload, queue, download,
                # status) over `run` + `publish` of the same album.
                "overhead": round(wall / baseline - 1, 4),
                "over_run_alone": round(wall / run_wall - 1, 4),
                "queue_latency_ms": sorted(lags[name]),
            }
        if not args.ci:
            # One job per track, two workers with half the cores each (one round).
            name = names[0]
            d = os.path.join(work, f"per-track-{name}")
            os.makedirs(d)
            nats = None
            if name == "nats":
                nats, spec = start_nats(work, "per-track")
            else:
                spec = f"sqlite:{os.path.join(d, 'q.db')}"
            tracks = sorted(os.path.join(album, f) for f in os.listdir(album) if f.endswith(".flac"))
            try:
                r = fleet(spec, tracks, d, jobs_per_worker=max(1, (os.cpu_count() or 2) // 2))
            finally:
                if nats:
                    nats.terminate()
            r["against_one_album_job"] = round(
                r["wall_seconds"] / report[f"fleet_{name}"]["wall_seconds"], 3)
            report[f"per_track_jobs_{name}"] = r
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
