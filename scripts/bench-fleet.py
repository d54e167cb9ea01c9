#!/usr/bin/env python3
"""The fleet against `pressing run` on the same album, on this machine.

  scripts/bench-fleet.py [--tracks N] [--queue sqlite|nats|both]

Presses the benchmark album (N 20 s 24/96 stereo masters, default 12, cached under
target/bench/) with `pressing run`, then through the fleet: two idle workers on one queue
(the SQLite file, and a nats-server 2.15.1 with JetStream started here), `pressing submit` of
the album, and `pressing status` until it is published. Both stores are local folders, so the
figures are the fleet's own cost (validation at submit, the upload into the incoming store,
the queue, the download, the status bucket), not a network's.

Then the unit-of-work question: the same 12 masters submitted as 12 single-track jobs to the
two workers (each worker given half the cores), against the album as one job.

Prints JSON: run and fleet wall seconds, the overhead (fleet / run - 1, and the same without
the time `pressing validate` takes, which submit spends on the label's machine), the queue
latency (enqueue to claim, from the worker's log), and the per-track split's wall seconds.
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
    began = time.perf_counter()
    # `submit --wait` follows the jobs in-process (a status read every 100 ms) to the end.
    o = subprocess.run([PRESSING, "submit", *releases, "--queue", queue, "--store", incoming,
                        "--json", "--wait", "--quiet"], capture_output=True, text=True)
    if o.returncode != 0:
        raise SystemExit(f"submit failed: {o.stderr}")
    jobs = json.loads(o.stdout)["jobs"]
    if any(j["state"] != "published" for j in jobs):
        raise SystemExit(f"not published: {jobs}")
    ids = [j["id"] for j in jobs]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int, default=12)
    ap.add_argument("--queue", choices=["sqlite", "nats", "both"], default="both")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    album = bench.album(args.tracks)
    audio = 20 * args.tracks
    work = tempfile.mkdtemp(prefix="pressing-bench-fleet-")
    report = {"tracks": args.tracks, "audio_seconds": audio, "cores": os.cpu_count()}
    try:
        out = os.path.join(work, "run")
        began = time.perf_counter()
        subprocess.run([PRESSING, "run", album, "--out", out, "--quiet"], check=True)
        run_wall = time.perf_counter() - began
        report["run_wall_seconds"] = round(run_wall, 2)
        # What submit does before anything reaches the fleet: the label-side validation.
        began = time.perf_counter()
        subprocess.run([PRESSING, "validate", album, "--quiet"], check=True,
                       stdout=subprocess.DEVNULL)
        validate = time.perf_counter() - began
        report["validate_seconds"] = round(validate, 2)
        queues = []
        if args.queue in ("sqlite", "both"):
            queues.append(("sqlite", lambda d: f"sqlite:{os.path.join(d, 'q.db')}", None))
        nats = None
        if args.queue in ("nats", "both"):
            port = free_port()
            js = os.path.join(work, "js")
            nats = subprocess.Popen([tool("nats-server"), "-js", f"-sd={js}", "-a=127.0.0.1",
                                     f"-p={port}"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(1)
            queues.append(("nats", lambda d, p=port: f"nats://127.0.0.1:{p}", None))
        for name, spec, _ in queues:
            d = os.path.join(work, name)
            os.makedirs(d)
            r = fleet(spec(d), [album], d)
            r["overhead"] = round(r["wall_seconds"] / run_wall - 1, 4)
            # The fleet's own share: queue, upload, download, status, publish into the store.
            r["overhead_after_validation"] = round(
                (r["wall_seconds"] - validate) / run_wall - 1, 4)
            report[f"fleet_{name}"] = r
        # One job per track, two workers with half the cores each.
        name, spec, _ = queues[0]
        d = os.path.join(work, f"per-track-{name}")
        os.makedirs(d)
        tracks = sorted(os.path.join(album, f) for f in os.listdir(album) if f.endswith(".flac"))
        r = fleet(spec(d), tracks, d, jobs_per_worker=max(1, (os.cpu_count() or 2) // 2))
        r["against_one_album_job"] = round(
            r["wall_seconds"] / report[f"fleet_{name}"]["wall_seconds"], 3)
        report[f"per_track_jobs_{name}"] = r
        if nats:
            nats.terminate()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
