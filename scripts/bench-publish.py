#!/usr/bin/env python3
"""Publish throughput: pressing against rclone copy, the same package, store and concurrency.

  scripts/bench-publish.py [--tracks N] [--seconds S] [--runs R] [--concurrency C] [--out FILE]

Presses (once, cached under target/bench/) an album of N tracks (default 12) of S seconds
(default 60) with the default ladder, starts a SeaweedFS S3 store on loopback
(scripts/tools.sh weed) in a fresh folder, then runs, interleaved R times (default 3), each to
a fresh prefix:
  - pressing publish (CRC32C on every object and part, Content-Type, Cache-Control);
  - rclone copy of the same folder (Debian's rclone; MD5 on every upload, its default, and
    Content-Type from the extension) with --transfers C;
and after each pressing run, the same publish again (unchanged: nothing to upload), then the
same album pressed in the single-file form (`--single-file`: one track file per rendition)
published to a prefix of its own, so the two forms stand side by side on the same store.
Prints and writes JSON: each form's bytes and objects, per-run wall seconds, MB/s and
objects/s, medians, the throughput ratio pressing/rclone and the unchanged re-publish as a
fraction of the first. Exits 1 when pressing is slower than rclone or the re-publish takes a
tenth or more (the segment form, against rclone on the same package).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BENCH = os.path.join(ROOT, "target", "bench")
PRESSING = os.path.join(ROOT, "target", "release", "pressing")
KEY, SECRET, BUCKET = "benchkey", "benchsecret0123456789", "media"


def album(tracks, seconds, single_file=False):
    """N tone-and-noise masters, pressed once with the default ladder (in a form)."""
    folder = os.path.join(BENCH, f"publish-album-{tracks}x{seconds}")
    out = folder + ("-single-file-out" if single_file else "-out")
    if os.path.exists(os.path.join(out, "index.json")):
        return out
    os.makedirs(folder, exist_ok=True)
    for n in range(tracks):
        path = os.path.join(folder, f"{n + 1:02d}.flac")
        if not os.path.exists(path):
            subprocess.run(["sox", "-n", "-r", "44100", "-b", "16", "-c", "2", path, "synth",
                            str(seconds), "sine", f"{200 + 40 * n}-{3000 + 100 * n}", "pinknoise",
                            "vol", "0.3"], check=True)
    form = ["--single-file"] if single_file else []
    subprocess.run([PRESSING, "run", folder, "--out", out, *form], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def package_files(package):
    files = [os.path.join(d, f) for d, _, fs in os.walk(package) for f in fs
             if f != "index.json"]
    return len(files), sum(os.path.getsize(f) for f in files)


def free_base():
    # Below the kernel's ephemeral range: a port there can be taken by any outgoing
    # connection between this check and weed's bind.
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for base in range(18000, max(low, 18024) - 12, 12):
        ok = True
        for p in range(base, base + 12):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise SystemExit("no free ports")


def start_store():
    weed = subprocess.run([os.path.join(ROOT, "scripts/tools.sh"), "weed"], check=True,
                          capture_output=True, text=True).stdout.strip()
    data = os.path.join(BENCH, "publish-store")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(os.path.join(data, "data"))
    with open(os.path.join(data, "s3.json"), "w") as f:
        json.dump({"identities": [{"name": "bench", "credentials": [
            {"accessKey": KEY, "secretKey": SECRET}], "actions": ["Admin", "Read", "Write", "List"]}]}, f)
    b = free_base()
    ports = ["-master.port", b, "-master.port.grpc", b + 1, "-volume.port", b + 2,
             "-volume.port.grpc", b + 3, "-filer.port", b + 4, "-filer.port.grpc", b + 5,
             "-s3.port", b + 6, "-s3.port.grpc", b + 7, "-admin.port", b + 8,
             "-admin.port.grpc", b + 9, "-webdav.port", b + 10]
    args = [f"{ports[i]}={ports[i + 1]}" for i in range(0, len(ports), 2)]
    proc = subprocess.Popen(
        [weed, "mini", f"-dir={data}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         "-master.telemetry=false", "-admin.ui=false", f"-s3.config={data}/s3.json",
         f"-bucket={BUCKET}", "-s3.port.iceberg=0", "-s3.port.lance=0", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{b + 6}"
    deadline = time.time() + 60
    while time.time() < deadline:
        r = subprocess.run(["rclone", "lsd", f"bench:{BUCKET}"], env=env(endpoint),
                           capture_output=True)
        if r.returncode == 0:
            return proc, endpoint
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the store did not start")


def env(endpoint):
    e = dict(os.environ)
    # rclone's S3 client refuses a custom CA bundle on a plain-HTTP endpoint; none is needed.
    e.pop("AWS_CA_BUNDLE", None)
    e.update({
        "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_EC2_METADATA_DISABLED": "true",
        "RCLONE_CONFIG_BENCH_TYPE": "s3", "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
        "RCLONE_CONFIG_BENCH_ENDPOINT": endpoint, "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": KEY,
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": SECRET,
        "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true", "RCLONE_CONFIG_BENCH_REGION": "us-east-1",
    })
    return e


def timed(cmd, e):
    t = time.monotonic()
    subprocess.run(cmd, check=True, env=e, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=12)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--out", default=os.path.join(BENCH, "bench-publish.json"))
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], check=True, cwd=ROOT)
    package = album(args.tracks, args.seconds)
    single = album(args.tracks, args.seconds, single_file=True)
    objects, size = package_files(package)
    single_objects, single_size = package_files(single)
    proc, endpoint = start_store()
    e = env(endpoint)
    c = str(args.concurrency)
    flags = ["--endpoint-url", endpoint, "--path-style", "--upload-concurrency", c]
    runs = []
    try:
        # The store's first writes create its volumes: warm it up before measuring.
        timed([PRESSING, "publish", package, f"s3://{BUCKET}/warm-up", *flags], e)
        for i in range(args.runs):
            dest = f"s3://{BUCKET}/pressing-{i}"
            first = timed([PRESSING, "publish", package, dest, *flags], e)
            again = timed([PRESSING, "publish", package, dest, *flags], e)
            rclone = timed(["rclone", "copy", package, f"bench:{BUCKET}/rclone-{i}",
                            "--transfers", c, "--checkers", c, "--exclude", "index.json"], e)
            one = timed([PRESSING, "publish", single, f"s3://{BUCKET}/single-file-{i}", *flags],
                        e)
            runs.append({"pressing": first, "republish": again, "rclone": rclone,
                         "single_file": one})
            print(json.dumps(runs[-1]), file=sys.stderr)
    finally:
        proc.kill()
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    mb = size / 1e6
    report = {
        "package": {"tracks": args.tracks, "seconds_per_track": args.seconds,
                    "objects": objects, "bytes": size},
        "single_file_package": {"objects": single_objects, "bytes": single_size,
                                "mb_per_s": single_size / 1e6 / med["single_file"],
                                "objects_per_s": single_objects / med["single_file"],
                                "speedup_over_segments": med["pressing"] / med["single_file"]},
        "concurrency": args.concurrency,
        "runs": runs,
        "median_seconds": med,
        "pressing_mb_per_s": mb / med["pressing"],
        "rclone_mb_per_s": mb / med["rclone"],
        "pressing_objects_per_s": objects / med["pressing"],
        "rclone_objects_per_s": objects / med["rclone"],
        "ratio": med["rclone"] / med["pressing"],
        "republish_fraction": med["republish"] / med["pressing"],
    }
    failures = []
    if report["ratio"] < 1.0:
        failures.append(f"pressing at {report['ratio']:.2f}x rclone's throughput (want >= 1)")
    if report["republish_fraction"] >= 0.1:
        failures.append(f"unchanged re-publish took {report['republish_fraction']:.2f} of the first")
    report["passed"] = not failures
    report["failures"] = failures
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))
    for msg in failures:
        print(f"bench-publish: FAILED: {msg}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
