#!/usr/bin/env bash
# Every test: installs what it needs, checks formatting and lints, runs the whole suite
# (unit, FFmpeg round-trips, parsers, reproducibility, real players) and builds the benches.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
