#!/usr/bin/env bash
# Every test: installs what it needs, checks formatting and lints, runs the whole suite
# (unit, FFmpeg round-trips, parsers, reproducibility, real players, the bad-input corpus),
# builds the benches, builds and briefly runs the fuzz targets, and runs the throughput
# benchmark in CI mode, the publish benchmark and the fleet benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
mkdir -p target
cargo test --locked --all-targets 2>&1 | tee target/test-output.log

# The fuzz targets: built and run for 20 s each. cargo-fuzz wants nightly for sanitizers;
# RUSTC_BOOTSTRAP lets the stable toolchain build libFuzzer's coverage instrumentation.
(cd fuzz && cargo fmt --all -- --check)
RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer none -O
for target in master_reader release_metadata; do
  mkdir -p "fuzz/corpus/$target"
  # The first corpus folder is the one libFuzzer writes to: the untracked one, not the seeds.
  RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none -O "$target" "fuzz/corpus/$target" \
    "fuzz/seeds/$target" -- -max_total_time=20 -rss_limit_mb=4096 2>&1 | tail -n 3
done

# Throughput against the FFmpeg CLI (CI mode, under two minutes; thresholds in
# benches/threshold.toml). A benchmark, not a timed test: it compares two tools in one run.
python3 scripts/bench.py --ci > target/bench-ci.json

# Publishing against rclone copy on the same package and store (fails below rclone's
# throughput, or when the unchanged re-publish takes a tenth of the first publish or more).
python3 scripts/bench-publish.py > target/bench-publish.json

# The fleet against `pressing run` on the benchmark album (both queues; fails when a job
# does not publish; the figures go to BENCHMARKS.md, not into a wall-time gate).
python3 scripts/bench-fleet.py > target/bench-fleet.json

# The installed binary from an empty folder (reuses the benchmarks' release build).
scripts/test-install.sh

# The suite's totals, last, as one plain line.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' \
  target/test-output.log
