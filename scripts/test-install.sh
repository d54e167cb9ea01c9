#!/usr/bin/env bash
# The installed binary as a new user meets it: `cargo install --path .`, then, from an empty
# folder outside the repository, the built-in ladder, a master pressed, the ladders listed,
# completions and the man page. Reuses target/ (the release build of the benchmarks).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cargo install --path . --locked --quiet --force --root target/install --target-dir target
bin="$repo/target/install/bin/pressing"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "install: FAILED: $*" >&2; exit 1; }
"$bin" run "$repo/fixtures/album/01-cd-stereo.wav" --out out --quiet || fail "pressing run from $work"
python3 - out/index.json <<'PY' || fail "index.json"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ladder"] == "music", r["ladder"]
assert len(r["tracks"]) == 1 and len(r["tracks"][0]["renditions"]) >= 9, r["tracks"]
PY
"$bin" ladders | grep -q '^music ' || fail "pressing ladders"
"$bin" ladders show music | grep -q '^\[\[rung\]\]' || fail "pressing ladders show music"
"$bin" completions bash | grep -q '_pressing' || fail "completions"
"$bin" man | grep -q '^\.TH pressing 1' || fail "man page"
echo "install: ok (cargo install --path ., run from an empty folder, ladders, completions, man)"
