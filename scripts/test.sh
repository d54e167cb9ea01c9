#!/usr/bin/env bash
# Every test: installs what it needs, checks formatting and lints, runs the whole suite
# (unit, FFmpeg round-trips, parsers, reproducibility, real players, the bad-input corpus),
# builds the benches, and builds and briefly runs the fuzz targets.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets

# The fuzz targets: built and run for 20 s each. cargo-fuzz wants nightly for sanitizers;
# RUSTC_BOOTSTRAP lets the stable toolchain build libFuzzer's coverage instrumentation.
export RUSTC_BOOTSTRAP=1
(cd fuzz && cargo fmt --all -- --check)
cargo fuzz build --sanitizer none -O
for target in master_reader release_metadata; do
  mkdir -p "fuzz/corpus/$target"
  cargo fuzz run --sanitizer none -O "$target" -- -max_total_time=20 -rss_limit_mb=4096 \
    fuzz/seeds/"$target" 2>&1 | tail -n 3
done
