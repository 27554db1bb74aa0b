#!/usr/bin/env bash
# What `make demo` shows: the face pipeline on real photos, from the command line.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/rostro}
f=tests/fixtures
echo "== rostro detect (faces, landmarks, liveness)"
"$bin" detect "$f/astronaut.png" "$f/obama.jpg" ../shared/testdata/faces/deepface/couple.jpg 2>/dev/null \
  || "$bin" detect "$f/astronaut.png" "$f/obama.jpg"
echo
echo "== rostro compare: same person"
"$bin" compare "$f/obama.jpg" "$f/obama2.jpg"
echo
echo "== rostro compare: different people"
"$bin" compare "$f/obama.jpg" "$f/biden.jpg"
