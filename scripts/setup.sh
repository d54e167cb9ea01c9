#!/usr/bin/env bash
# Installs what pressing needs on a fresh Debian 12 machine; safe to re-run.
#   scripts/setup.sh          build dependencies (FFmpeg libraries, clang) and the FFmpeg/sox CLIs
#   scripts/setup.sh --test   also Chromium, fpcalc (libchromaprint-tools), Node.js and the pinned player packages, GStreamer, rclone (the
#                             publish benchmark's reference), SeaweedFS (the S3 test store) and nats-server (the broker)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(pkg-config clang libclang-dev libavcodec-dev libavformat-dev libavutil-dev
      libswresample-dev libavfilter-dev libavdevice-dev libswscale-dev ffmpeg sox)
if [[ "${1:-}" == "--test" ]]; then
  want+=(chromium rclone python3-pip libchromaprint-tools gstreamer1.0-tools gstreamer1.0-plugins-base
         gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav)
  command -v node >/dev/null && command -v npm >/dev/null || want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi

if [[ "${1:-}" == "--test" ]]; then
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "setup: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --quiet
  fi
  scripts/tools.sh weed >/dev/null
  scripts/tools.sh nats-server >/dev/null
  if [[ ! -d tests/player/node_modules/dashjs ]] || [[ tests/player/package-lock.json -nt tests/player/node_modules ]]; then
    echo "setup: installing the player test packages (npm ci)" >&2
    (cd tests/player && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
