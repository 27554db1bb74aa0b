#!/usr/bin/env bash
# Installs the system packages Rostro needs on a fresh Debian machine, then
# fetches models and fixtures. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v python3 >/dev/null || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v npm >/dev/null || need+=(npm)
command -v cc >/dev/null || need+=(build-essential)
command -v pkg-config >/dev/null || need+=(pkg-config)

if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # An install of many packages has been seen to fail once on vanished cached
  # .deb files and succeed when repeated.
  apt-get install -y -qq --no-install-recommends "${need[@]}" \
    || apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Debian's own python3 refuses pip installs outside a venv; ours go to .cache.
export PIP_BREAK_SYSTEM_PACKAGES=1
python3 scripts/fetch.py
