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
# GStreamer decodes the enrolment/verification videos (and, later, cameras);
# -tools and -ugly are only for making test clips with gst-launch-1.0.
for pkg in libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base \
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav \
  gstreamer1.0-tools; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
# The test suite (ROSTRO_SETUP_TEST=1, set by `make test`) also drives the kiosk
# page in headless Chromium with a fake camera.
if [[ "${ROSTRO_SETUP_TEST:-}" == 1 ]]; then
  command -v chromium >/dev/null || need+=(chromium)
fi

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

# Python tools the tests start (aiosmtpd), pinned by sha256.
if [[ "${ROSTRO_SETUP_TEST:-}" == 1 ]]; then
  testdeps=.cache/testdeps
  if ! cmp -s scripts/test-requirements.txt "$testdeps/.requirements"; then
    rm -rf "$testdeps"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
      --require-hashes --no-deps --only-binary=:all: --target "$testdeps" -r scripts/test-requirements.txt
    cp scripts/test-requirements.txt "$testdeps/.requirements"
  fi
fi
