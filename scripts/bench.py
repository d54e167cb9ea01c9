#!/usr/bin/env python3
"""End-to-end throughput: pressing against the FFmpeg CLI on the same master and ladder.

  scripts/bench.py [--ci] [--seconds S] [--runs N] [--memory MINUTES,...] [--protection LADDER]
                   [--quality] [--out FILE]

Generates (and caches under target/bench/) a 24-bit / 96 kHz stereo master of S seconds
(default 242, as in issue 4; --ci uses 120 s: three runs of each tool in about two
minutes), then runs, interleaved N times (default 3):
  - pressing run --ladder ladders/bench.toml (5 AAC-LC, 3 Opus, 2 FLAC rungs);
  - one FFmpeg CLI process encoding the same rungs and writing DASH + HLS
    (-f dash -hls_playlist 1).
Prints and writes JSON: audio seconds, wall seconds (median), realtime factor, CPU seconds
and utilisation, peak RSS, pressing's per-stage CPU seconds, the throughput ratio, and the
machine limit check (wall vs. per-stage CPU / cores), the fingerprints' share of a default-ladder
run; with --protection (and --ci, one pair),
clear and encrypted (cbcs, every tier) runs side by side. With --ci, exits 1 when a threshold in
benches/threshold.toml is missed. --quality adds a default-ladder run with and without quality
scores on the 242 s master (their cost and the scores' spread over windows). --memory presses masters of the given lengths (minutes) once
each and reports peak RSS, to show memory stays flat.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import tomllib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BENCH = os.path.join(ROOT, "target", "bench")
PRESSING = os.path.join(ROOT, "target", "release", "pressing")

# The bench ladder, as FFmpeg CLI stream options: (codec args, rate).
FFMPEG_RUNGS = [
    (["aac", "-b:a:{i}", "256k"], 44100),
    (["aac", "-b:a:{i}", "192k"], 44100),
    (["aac", "-b:a:{i}", "160k"], 44100),
    (["aac", "-b:a:{i}", "128k"], 44100),
    (["aac", "-b:a:{i}", "96k"], 44100),
    (["libopus", "-b:a:{i}", "160k"], 48000),
    (["libopus", "-b:a:{i}", "128k"], 48000),
    (["libopus", "-b:a:{i}", "96k"], 48000),
    (["flac", "-sample_fmt:a:{i}", "s16"], 44100),
    (["flac", "-sample_fmt:a:{i}", "s32"], None),
]


def master(seconds):
    """A music-like 24/96 stereo master: a slow sweep and tones over pink noise."""
    os.makedirs(BENCH, exist_ok=True)
    path = os.path.join(BENCH, f"master-{seconds}s.flac")
    if not os.path.exists(path):
        tmp = path + ".tmp.flac"
        subprocess.run(
            ["sox", "-n", "-r", "96000", "-b", "24", "-c", "2", tmp, "synth", str(seconds),
             "sine", "100-4000", "pinknoise", "tremolo", "3", "40", "vol", "0.35"],
            check=True)
        os.replace(tmp, path)
    return path


def album(tracks):
    """A folder of `tracks` 20 s 24/96 stereo masters, each with its own sweep and tremolo."""
    folder = os.path.join(BENCH, f"album-{tracks}")
    os.makedirs(folder, exist_ok=True)
    for n in range(tracks):
        path = os.path.join(folder, f"{n + 1:02d}.flac")
        if not os.path.exists(path):
            subprocess.run(
                ["sox", "-n", "-r", "96000", "-b", "24", "-c", "2", path, "synth", "20",
                 "sine", f"{100 + 37 * n}-{3000 + 101 * n}", "pinknoise", "tremolo",
                 str(2 + n % 5), "40", "vol", "0.35"], check=True)
    return folder


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def machine_busy():
    """CPU seconds the whole machine has spent busy (every core, /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait.
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def measure(cmd, timeline=None):
    """Run cmd; returns (wall seconds, CPU seconds, peak RSS in MB, share of the machine the
    rest of it used meanwhile). With a list as `timeline`, appends the cores in use over each
    0.25 s while it runs."""
    busy_before = machine_busy()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if timeline is not None:
        hz = os.sysconf("SC_CLK_TCK")
        last, last_t = cpu_ticks(proc.pid) or 0, time.perf_counter()
        while True:
            # wait4 without blocking: polling otherwise reaps the child and loses its usage.
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.25)
            ticks, now = cpu_ticks(proc.pid), time.perf_counter()
            if ticks is not None:
                timeline.append(round((ticks - last) / hz / (now - last_t), 2))
                last, last_t = ticks, now
    else:
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    others = max(0.0, machine_busy() - busy_before - cpu) / (wall * os.cpu_count())
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {cmd[0]} failed:\n{err}")
    return wall, cpu, usage.ru_maxrss / 1024.0, others


# Every tier encrypted (cbcs): the worst case of content protection's cost.
PROTECT = ["--key", "free=000102030405060708090a0b0c0d0e0f:101112131415161718191a1b1c1d1e1f",
           "--key", "premium=202122232425262728292a2b2c2d2e2f:303132333435363738393a3b3c3d3e3f",
           "--key", "hifi=404142434445464748494a4b4c4d4e4f:505152535455565758595a5b5c5d5e5f"]


def pressing_cmd(src, out, ladder="ladders/bench.toml", extra=()):
    return [PRESSING, "run", "--ladder", os.path.join(ROOT, ladder),
            "--out", out, "--report", out + ".report.json", src, *extra]


def protection_cost(src, runs, ladder):
    """Clear and encrypted runs of pressing, interleaved: wall and CPU side by side, and what
    encryption adds to the package stage (where it runs) as a share of the clear run's CPU."""
    rows = {"clear": [], "encrypted": []}
    for _ in range(runs):
        for kind in ("clear", "encrypted"):
            out = os.path.join(BENCH, "out-protect-" + kind)
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            wall, cpu, rss, others = measure(
                pressing_cmd(src, out, ladder, PROTECT if kind == "encrypted" else ()))
            with open(out + ".report.json") as f:
                st = json.load(f)["stats"]["cpu_seconds"]
            rows[kind].append({"wall": wall, "cpu": cpu, "package": st["package"],
                               "total": st["total"], "others": others})
    med = lambda kind, k: statistics.median(r[k] for r in rows[kind])
    share = (med("encrypted", "package") - med("clear", "package")) / med("clear", "total")
    return {
        "ladder": ladder,
        "scheme": "cbcs, every tier",
        "runs": runs,
        "clear": {"wall_seconds": round(med("clear", "wall"), 3),
                  "cpu_seconds": round(med("clear", "cpu"), 3),
                  "package_cpu_seconds": round(med("clear", "package"), 3)},
        "encrypted": {"wall_seconds": round(med("encrypted", "wall"), 3),
                      "cpu_seconds": round(med("encrypted", "cpu"), 3),
                      "package_cpu_seconds": round(med("encrypted", "package"), 3)},
        "wall_ratio": round(med("encrypted", "wall") / med("clear", "wall"), 3),
        "cpu_ratio": round(med("encrypted", "cpu") / med("clear", "cpu"), 3),
        "encryption_cpu_share": round(share, 4),
    }


def fingerprint_cost(src):
    """One run of the default ladder (ladders/music.toml) on a 242 s master (a 4-minute track,
    as issue 4's benchmark): the CPU of the masters' fingerprints
    and of decoding and fingerprinting every rendition again, as a share of the run's CPU.
    The run keeps both cores busy (its wall time is within 10% of its CPU over the cores, gated
    above), so the CPU share is the wall-time share."""
    out = os.path.join(BENCH, "out-fingerprint")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    wall, cpu, rss, others = measure(pressing_cmd(src, out, "ladders/music.toml"))
    with open(out + ".report.json") as f:
        st = json.load(f)["stats"]["cpu_seconds"]
    cores = os.cpu_count()
    return {
        "ladder": "ladders/music.toml",
        "wall_seconds": round(wall, 3),
        "cpu_seconds_total": round(st["total"], 3),
        "master_fingerprint_cpu_seconds": round(st.get("fingerprint", 0.0), 3),
        "verify_cpu_seconds": round(st.get("verify", 0.0), 3),
        "fingerprint_cpu_share": round((st.get("fingerprint", 0.0) + st.get("verify", 0.0))
                                       / st["total"], 4),
        # Verification runs after encoding, on every core: its wall time, at most.
        "verify_wall_share_bound": round(st.get("verify", 0.0) / cores / wall, 4),
    }


def quality_cost(src):
    """One run of the default ladder with --quality on the 242 s master: what the scores cost
    (CPU of the `quality` stage, its share of the run, and the wall time against the same run
    without scores, measured just before), and the scores with their windows' spread."""
    rows = {}
    for kind, extra in (("plain", ()), ("quality", ("--quality",))):
        out = os.path.join(BENCH, "out-quality-" + kind)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        wall, cpu, rss, others = measure(pressing_cmd(src, out, "ladders/music.toml", extra))
        with open(out + ".report.json") as f:
            rep = json.load(f)
        rows[kind] = (wall, rep, rss)
    (wall0, plain, rss0), (wall1, rep, rss1) = rows["plain"], rows["quality"]
    st = rep["stats"]["cpu_seconds"]
    scores = {}
    for t in rep["tracks"]:
        for r in t["renditions"]:
            q = r.get("quality")
            if q:
                scores[r["id"]] = {"mos": q["mos"], "windows": q["windows"],
                                   "spread": round(max(q["windows"]) - min(q["windows"]), 3)}
    return {
        "ladder": "ladders/music.toml",
        "wall_seconds_without": round(wall0, 3),
        "wall_seconds_with": round(wall1, 3),
        "wall_ratio": round(wall1 / wall0, 3),
        "peak_rss_mb_without": round(rss0, 1),
        "peak_rss_mb_with": round(rss1, 1),
        "cpu_seconds_total": round(st["total"], 3),
        "quality_cpu_seconds": round(st.get("quality", 0.0), 3),
        "quality_cpu_share": round(st.get("quality", 0.0) / st["total"], 4),
        "scores": scores,
    }


def ffmpeg_cmd(src, out):
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", src]
    for _ in FFMPEG_RUNGS:
        cmd += ["-map", "0:a"]
    for i, (args, rate) in enumerate(FFMPEG_RUNGS):
        cmd += [f"-c:a:{i}", args[0]] + [a.format(i=i) for a in args[1:]]
        if rate:
            cmd += [f"-ar:a:{i}", str(rate)]
    cmd += ["-strict", "-2", "-f", "dash", "-seg_duration", "6", "-hls_playlist", "1",
            "-adaptation_sets", "id=0,streams=0,1,2,3,4 id=1,streams=5,6,7 id=2,streams=8,9",
            os.path.join(out, "manifest.mpd")]
    return cmd


def run_pair(src, runs):
    results = {"pressing": [], "ffmpeg": []}
    stages = []
    for _ in range(runs):
        for tool in ("pressing", "ffmpeg"):
            out = os.path.join(BENCH, "out-" + tool)
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            cmd = pressing_cmd(src, out) if tool == "pressing" else ffmpeg_cmd(src, out)
            results[tool].append(measure(cmd))
            if tool == "pressing":
                with open(out + ".report.json") as f:
                    stages.append(json.load(f)["stats"]["cpu_seconds"])
    return results, stages


def summary(samples, audio, cores):
    wall = statistics.median(s[0] for s in samples)
    cpu = statistics.median(s[1] for s in samples)
    return {
        "wall_seconds": round(wall, 3),
        "realtime_factor": round(audio / wall, 2),
        "cpu_seconds": round(cpu, 3),
        "cpu_utilisation": round(cpu / wall / cores, 3),
        "peak_rss_mb": round(max(s[2] for s in samples), 1),
        # Per run: wall s, CPU s, peak RSS MB, share of the machine others used meanwhile.
        "runs": [[round(x, 3) for x in s] for s in samples],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ci", action="store_true")
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--memory", help="comma-separated master lengths in minutes")
    ap.add_argument("--quality", action="store_true",
                    help="also press the 242 s master with the default ladder with and "
                         "without --quality: what the quality scores cost")
    ap.add_argument("--album", type=int, metavar="TRACKS",
                    help="also press an album of TRACKS 20 s masters and sample CPU use")
    ap.add_argument("--protection", metavar="LADDER",
                    help="also press clear and encrypted runs side by side with LADDER "
                         "(--ci: one pair with ladders/bench.toml)")
    ap.add_argument("--out", default=os.path.join(BENCH, "bench.json"))
    args = ap.parse_args()
    seconds = args.seconds or (120 if args.ci else 242)
    runs = args.runs or 3
    cores = os.cpu_count()

    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    began = time.perf_counter()
    src = master(seconds)
    results, stages = run_pair(src, runs)
    ours = summary(results["pressing"], seconds, cores)
    theirs = summary(results["ffmpeg"], seconds, cores)
    ratio = theirs["wall_seconds"] / ours["wall_seconds"]
    # What load elsewhere does not change: CPU seconds per audio second, FFmpeg's over ours.
    cpu_ratio = theirs["cpu_seconds"] / ours["cpu_seconds"]
    with open(os.path.join(ROOT, "benches", "threshold.toml"), "rb") as f:
        t = tomllib.load(f)
    # Wall times count only from runs during which the rest of the machine was idle.
    idle = [i for i in range(runs)
            if results["pressing"][i][3] <= t["max_other_load"]
            and results["ffmpeg"][i][3] <= t["max_other_load"]]
    idle_ratio = (statistics.median(results["ffmpeg"][i][0] for i in idle)
                  / statistics.median(results["pressing"][i][0] for i in idle)) if idle else None
    # Each run against its own machine limit (its per-stage CPU over the cores). The gate takes
    # the best run: noise from elsewhere on the machine only adds wall time, never removes it.
    over_limit = [s[0] / (st["total"] / cores) for s, st in zip(results["pressing"], stages)]
    limit = statistics.median(st["total"] for st in stages) / cores
    stages = stages[-1]
    report = {
        "method": "median of interleaved runs, one process each, same master and ladder",
        "machine": {"cores": cores},
        "master": {"seconds": seconds, "format": "FLAC 24-bit 96 kHz stereo"},
        "ladder": "ladders/bench.toml (5 AAC-LC, 3 Opus, 2 FLAC)",
        "pressing": ours,
        "pressing_stage_cpu_seconds": stages,
        "ffmpeg_cli": theirs,
        "ratio_vs_ffmpeg": round(ratio, 2),
        "cpu_ratio_vs_ffmpeg": round(cpu_ratio, 3),
        "idle_runs": idle,
        "ratio_vs_ffmpeg_idle_runs": round(idle_ratio, 2) if idle_ratio else None,
        "other_load_runs": {k: [round(s[3], 3) for s in results[k]] for k in results},
        "machine_limit_seconds": round(limit, 3),
        "wall_over_machine_limit": round(statistics.median(over_limit), 3),
        "wall_over_machine_limit_runs": [round(x, 3) for x in over_limit],
    }
    if args.protection or args.ci:
        ladder = args.protection or "ladders/bench.toml"
        report["protection"] = protection_cost(src, runs if args.protection else 1, ladder)
    report["fingerprints"] = fingerprint_cost(master(242))
    if args.quality:
        report["quality"] = quality_cost(master(242))
    if args.memory:
        report["memory"] = []
        for minutes in [int(m) for m in args.memory.split(",")]:
            src = master(minutes * 60)
            out = os.path.join(BENCH, "out-memory")
            shutil.rmtree(out, ignore_errors=True)
            wall, cpu, rss, _ = measure(pressing_cmd(src, out))
            report["memory"].append({"minutes": minutes, "peak_rss_mb": round(rss, 1),
                                     "wall_seconds": round(wall, 1)})
    if args.album:
        folder = album(args.album)
        out = os.path.join(BENCH, "out-album")
        shutil.rmtree(out, ignore_errors=True)
        timeline = []
        wall, cpu, rss, _ = measure(pressing_cmd(folder, out), timeline)
        busy = [c for c in timeline[1:-1]]
        report["album"] = {
            "tracks": args.album,
            "audio_seconds": 20 * args.album,
            "wall_seconds": round(wall, 2),
            "cpu_utilisation": round(cpu / wall / cores, 3),
            "peak_rss_mb": round(rss, 1),
            "cores_busy_every_250ms": timeline,
            "share_of_intervals_below_1_8_cores": round(
                sum(1 for c in busy if c < 1.8) / max(1, len(busy)), 3),
        }
    # The benchmark's own duration (master generation and runs; the release build excluded).
    report["bench_seconds"] = round(time.perf_counter() - began, 1)
    text = json.dumps(report, indent=2)
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text + "\n")
    if args.ci:
        failed = []
        # Always applied: CPU time per audio second does not depend on what else runs.
        if cpu_ratio < t["min_cpu_ratio_vs_ffmpeg"]:
            failed.append(f"CPU per audio second: FFmpeg's / ours = {cpu_ratio:.3f} "
                          f"< {t['min_cpu_ratio_vs_ffmpeg']}")
        if not idle:
            loads = [round(max(results['pressing'][i][3], results['ffmpeg'][i][3]), 3)
                     for i in range(runs)]
            print(f"bench: wall-time gates not applied: the rest of the machine used "
                  f"{loads} of its cores during the runs (gates need <= {t['max_other_load']}); "
                  "figures are in the JSON", file=sys.stderr)
        else:
            if idle_ratio < t["min_ratio_vs_ffmpeg"]:
                failed.append(f"ratio {idle_ratio:.2f} < {t['min_ratio_vs_ffmpeg']} "
                              f"(idle runs {idle})")
            # The machine-limit target is stated for 2 cores (issue 4); elsewhere reported.
            best = min(over_limit[i] for i in idle)
            if cores != t["machine_limit_cores"]:
                print(f"bench: wall/limit not enforced on {cores} cores "
                      f"(target is for {t['machine_limit_cores']})", file=sys.stderr)
            elif best > t["max_wall_over_cpu_limit"]:
                failed.append(f"wall/limit {best:.3f} > {t['max_wall_over_cpu_limit']} "
                              f"in every idle run {idle}")
        # Content protection: the CPU encryption adds (in the package stage, where it runs) as
        # a share of the clear run's; per-stage CPU, so load elsewhere does not move it.
        share = report["protection"]["encryption_cpu_share"]
        if share > t["max_encryption_cpu_share"]:
            failed.append(f"encryption costs {share:.2%} of the CPU > {t['max_encryption_cpu_share']:.0%}")
        # Fingerprints (always on): the masters' and every rendition's, on the default ladder.
        share = report["fingerprints"]["fingerprint_cpu_share"]
        if share > t["max_fingerprint_cpu_share"]:
            failed.append(f"fingerprints cost {share:.2%} of the CPU > {t['max_fingerprint_cpu_share']:.0%}")
        if failed:
            print("bench: FAILED: " + "; ".join(failed), file=sys.stderr)
            return 1
        print("bench: ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
