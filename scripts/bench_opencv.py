#!/usr/bin/env python3
"""Per-frame cost of OpenCV 5.0 running Rostro's three models, next to `rostro bench`, in one run.

OpenCV's side: cv2.FaceDetectorYN (YuNet), the liveness model through cv2.dnn
on the 2.7x crop resized to 128x128, cv2.FaceRecognizerSF alignCrop + feature
(SFace), 2 threads, on the same 640x480 JPEG, decode included. OpenCV comes
from PyPI into a throw-away folder (.cache/opencv-bench, removed with
--clean); nothing is installed system-wide.

Usage: scripts/bench_opencv.py [--frames N] [--rostro target/release/rostro] [--] [rostro flags...]
Prints one table and the ratio Rostro / OpenCV of the medians.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPS = ROOT / ".cache" / "opencv-bench"
PINS = ["opencv-python-headless==5.0.0.93", "numpy==2.4.6"]


def ensure_opencv():
    stamp = DEPS / ".pins"
    if not stamp.is_file() or stamp.read_text() != "\n".join(PINS):
        shutil.rmtree(DEPS, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--root-user-action=ignore", "--only-binary=:all:", "--target", DEPS, *PINS],
                       check=True, env=dict(os.environ, PIP_BREAK_SYSTEM_PACKAGES="1"))
        stamp.write_text("\n".join(PINS))
    sys.path.insert(0, str(DEPS))


def opencv_frames(image, models, frames):
    import cv2
    import numpy as np
    cv2.setNumThreads(2)
    data = np.frombuffer(image.read_bytes(), np.uint8)
    first = cv2.imdecode(data, cv2.IMREAD_COLOR)
    h, w = first.shape[:2]
    det = cv2.FaceDetectorYN.create(str(models / "original/face_detection_yunet_2023mar.onnx"), "", (w, h), 0.75, 0.3, 5000)
    rec = cv2.FaceRecognizerSF.create(str(models / "original/face_recognition_sface_2021dec.onnx"), "")
    live = cv2.dnn.readNetFromONNX(str(models / "original/fr_liveness.onnx"))
    stages = {"decode": [], "detect": [], "liveness": [], "align+embed": [], "frame (all)": []}
    for i in range(frames + frames // 10):
        t0 = time.perf_counter()
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        _, faces = det.detect(img)
        t2 = time.perf_counter()
        face = faces[0]
        x, y, fw, fh = face[:4]
        cx, cy, side = x + fw / 2, y + fh / 2, max(fw, fh) * 2.7
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        crop = img[y0:int(min(h, cy + side / 2)), x0:int(min(w, cx + side / 2))]
        live.setInput(cv2.dnn.blobFromImage(cv2.resize(crop, (128, 128)), 1.0, (128, 128)))
        live.forward()
        t3 = time.perf_counter()
        rec.feature(rec.alignCrop(img, face))
        t4 = time.perf_counter()
        if i >= frames // 10:
            for name, ms in zip(stages, [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0]):
                stages[name].append(ms * 1000)
    return {k: statistics.median(v) for k, v in stages.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--image", type=Path, default=ROOT.parent / "shared/testdata/bench/frame_640x480.jpg")
    p.add_argument("--rostro", type=Path, default=ROOT / "target/release/rostro")
    p.add_argument("--clean", action="store_true", help="remove the OpenCV folder afterwards")
    p.add_argument("flags", nargs="*", help="flags passed to rostro before `bench`, e.g. --backend ort")
    args = p.parse_args()
    ensure_opencv()
    cv = opencv_frames(args.image, ROOT / "models", args.frames)
    out = subprocess.run([args.rostro, *args.flags, "bench", args.image, "--frames", str(args.frames), "--json"],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    ro = {k: v["p50"] for k, v in json.loads(out.strip().splitlines()[-1])["ms"].items()}
    print(f"{'stage (ms, p50)':<16}{'OpenCV':>9}{'Rostro':>9}")
    for k in cv:
        print(f"{k:<16}{cv[k]:>9.2f}{ro.get(k, float('nan')):>9.2f}")
    print(f"ratio Rostro / OpenCV per frame: {ro['frame (all)'] / cv['frame (all)']:.2f} "
          f"(rostro {' '.join(args.flags) or 'defaults'})")
    if args.clean:
        shutil.rmtree(DEPS, ignore_errors=True)


if __name__ == "__main__":
    main()
