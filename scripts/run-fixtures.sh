#!/usr/bin/env bash
# The main job on the bundled fixtures: installs what it needs, builds, presses
# fixtures/album and fixtures/gapless into out/ (its index.json lists what was pressed, its
# qc.html shows it) and prints the path of each track's catalog record.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked
exec target/release/pressing run fixtures/album fixtures/gapless --out out --qc "$@"
