#!/usr/bin/env bash
# Every test: installs what it needs, checks formatting, builds once in release with the lints
# (the tests, the benchmarks and the installed binary share the build), runs the whole suite (unit,
# FFmpeg round-trips, parsers, reproducibility, real players, stores and brokers, the bad-input
# corpus and the fault tests), builds and briefly runs the fuzz targets, and runs the throughput
# benchmark, the publish benchmark and the fleet benchmark in their gating modes.
#
#   scripts/test.sh          the default command (under 30 minutes on 2 cores): the large
#                            matrices (every playlist through every player, every FFmpeg and
#                            GStreamer path) play a sample that rotates with the commit
#   scripts/test.sh --full   all of every matrix
#
# It prints each phase's duration as it ends, and the table of them last.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--full" ]]; then
  export PRESSING_TEST_FULL=1
fi
# The sample of the large matrices: the same for a commit, another for the next one.
PRESSING_TEST_SEED=$(git rev-parse --short=12 HEAD 2>/dev/null || date +%F)
export PRESSING_TEST_SEED

timings=()
suite_start=$SECONDS
print_timings() {
  local rc=$?
  echo "--- scripts/test.sh phases (seconds) ---"
  printf '%s\n' "${timings[@]}"
  echo "total $((SECONDS - suite_start)) s$([[ $rc == 0 ]] || echo " (FAILED, exit $rc)")"
}
trap print_timings EXIT
# phase NAME COMMAND...: run one phase and keep its duration for the table.
phase() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  timings+=("$(printf '%-14s %5d' "$name" $((SECONDS - start)))")
  echo "phase $name: $((SECONDS - start)) s" >&2
}

phase setup scripts/setup.sh --test
phase fmt cargo fmt --all -- --check

# One release build, linted as it compiles: clippy-driver wraps rustc for this crate's targets
# (cargo's RUSTC_WORKSPACE_WRAPPER, which is how `cargo clippy` runs it) with `-D warnings`, so
# `cargo clippy --release --all-targets -- -D warnings` is checked without a second pass over
# the dependencies. Every cargo command below (the tests, the benchmarks' builds and `cargo
# install`) runs with the same environment and reuses that build.
RUSTC_WORKSPACE_WRAPPER=$(command -v clippy-driver)
CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
phase build+clippy cargo test --release --locked --all-targets --no-run
mkdir -p target
run_tests() {
  # The fleet tests wait on brokers, leases and worker processes, and the playback tests on
  # players, more than they compute (measured: playback keeps 0.77 of a core busy): their
  # binaries run beside the others' (the phase takes about the longest of the three instead
  # of the sum). The rest is `cargo test --all-targets` without them.
  local beside=(fleet playback) others=() pids=() rc=0 name bin
  for f in tests/*.rs; do
    name=$(basename "$f" .rs)
    [[ " ${beside[*]} " == *" $name "* ]] || others+=(--test "$name")
  done
  for name in "${beside[@]}"; do
    bin=$(cargo test --release --locked --no-run --test "$name" 2>&1 |
      sed -n "s/.*Executable tests\/$name.rs (\(.*\))$/\1/p")
    [[ -x "$bin" ]] || { echo "test.sh: cannot find the $name test binary" >&2; return 1; }
    "$bin" > "target/test-$name.log" 2>&1 &
    pids+=($!)
  done
  cargo test --release --locked --lib --bins --benches "${others[@]}" 2>&1 |
    tee target/test-output.log || rc=1
  for i in "${!beside[@]}"; do
    wait "${pids[$i]}" || rc=1
    echo "     Running tests/${beside[$i]}.rs (beside the others)"
    cat "target/test-${beside[$i]}.log"
    cat "target/test-${beside[$i]}.log" >> target/test-output.log
  done
  return $rc
}
phase test run_tests

# The fuzz targets: built (the reading and checking half of the library alone, without the
# `press` feature: see fuzz/Cargo.toml) and run for 5 s each (a smoke run, five targets). cargo-fuzz wants nightly for sanitizers; RUSTC_BOOTSTRAP lets the stable
# toolchain build libFuzzer's coverage instrumentation.
fuzz() (
  (cd fuzz && cargo fmt --all -- --check)
  # Built with libFuzzer's flags alone (no clippy wrapper: a build of its own).
  unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
  RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer none -O
  for target in master_reader release_metadata ern cpix cover; do
    mkdir -p "fuzz/corpus/$target"
    # The first corpus folder is the one libFuzzer writes to: the untracked one, not the seeds.
    RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none -O "$target" "fuzz/corpus/$target" \
      "fuzz/seeds/$target" -- -max_total_time=5 -rss_limit_mb=4096 2>&1 | tail -n 3
  done
)
phase fuzz fuzz

# Throughput against the FFmpeg CLI (CI mode, under two minutes; thresholds in
# benches/threshold.toml). A benchmark, not a timed test: it compares two tools in one run.
phase bench bash -c 'python3 scripts/bench.py --ci > target/bench-ci.json'

# Publishing against rclone copy on the same package and store (fails below rclone's
# throughput, or when the unchanged re-publish takes a tenth of the first publish or more).
# 30 s tracks, not the default 60 s: pressing the album in both forms was most of the phase,
# and the gate compares the two tools on one package whatever its length.
phase bench-publish bash -c 'python3 scripts/bench-publish.py --seconds 30 > target/bench-publish.json'

# The fleet on both queues, one round (fails when a job does not publish; the figures of
# three rounds, `scripts/bench-fleet.py`, go to BENCHMARKS.md, not into a wall-time gate).
phase bench-fleet bash -c 'python3 scripts/bench-fleet.py --ci > target/bench-fleet.json'

# The installed binary from an empty folder (reuses the release build).
phase install scripts/test-install.sh

# The suite's totals, last, as one plain line.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' \
  target/test-output.log
