#!/usr/bin/env python3
"""Degradation parity: `facerestore degrade` against scripts/degrade_reference.py (basicsr 1.4.2,
numpy, OpenCV 4.6) on HQ faces made from the public-domain examples (crops and resizes, 20
images), for every preset, with and without the JPEG step.

Checks: the drawn parameters are identical; without JPEG ≥ 99% of values within 1 gray level;
with JPEG a mean absolute difference ≤ 0.5 gray level, on every image. Prints a table; exit 1 on
a failure. Run with the reference venv's python:

  ~/.cache/facerestore-reference/venv/bin/python scripts/parity_degrade.py [--binary .build/release/facerestore]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_hq(folder, count):
    sources = [cv2.imread(os.path.join(ROOT, "examples", n)) for n in ("astronaut.jpg", "grace_hopper.jpg", "group.jpg")]
    rng = np.random.RandomState(1234)
    for i in range(count):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        side = int(rng.randint(min(h, w) // 2, min(h, w) + 1))
        y, x = int(rng.randint(0, h - side + 1)), int(rng.randint(0, w - side + 1))
        size = [512, 1024, 256, 384, 1536][i % 5]   # 1024 and 1536: GPEN's INTER_AREA to 512 first
        crop = cv2.resize(src[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
        cv2.imwrite(os.path.join(folder, f"hq{i:02d}.png"), crop)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build/release/facerestore"))
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--seed", type=int, default=100)
    a = ap.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        hq = os.path.join(tmp, "hq")
        os.makedirs(hq)
        make_hq(hq, a.count)
        for preset in ("gfpgan", "gpen", "codeformer"):
            for use_jpeg in (False, True):
                ref, ours = os.path.join(tmp, f"ref-{preset}-{use_jpeg}"), os.path.join(tmp, f"ours-{preset}-{use_jpeg}")
                subprocess.run([sys.executable, os.path.join(ROOT, "scripts/degrade_reference.py"), hq, ref, "--seed", str(a.seed),
                                "--preset", preset] + ([] if use_jpeg else ["--no-jpeg"]), check=True)
                subprocess.run([a.binary, "degrade", "-i", hq, "-o", ours, "--seed", str(a.seed), "--preset", preset]
                               + ([] if use_jpeg else ["--jpeg-range", "none"]), check=True, capture_output=True)
                worst_within, worst_mad, param_mismatch = 1.0, 0.0, 0
                for n in sorted(os.listdir(hq)):
                    base = os.path.splitext(n)[0]
                    r = json.load(open(os.path.join(ref, base + ".json")))
                    o = json.load(open(os.path.join(ours, base + ".json")))
                    for k, v in r.items():
                        ov = o.get(k)
                        if v is None or ov is None:
                            same = v is None and ov is None
                        else:
                            same = (np.allclose(v, ov, rtol=0, atol=1e-6) if k == "color_jitter" else v == ov)
                        if not same:
                            param_mismatch += 1
                            print(f"  {preset} {base}: {k} reference {v} ours {ov}")
                    x = cv2.imread(os.path.join(ref, base + ".png")).astype(np.int32)
                    y = cv2.imread(os.path.join(ours, base + ".png")).astype(np.int32)
                    d = np.abs(x - y)
                    worst_within = min(worst_within, float((d <= 1).mean()))
                    worst_mad = max(worst_mad, float(d.mean()))
                ok = param_mismatch == 0 and (worst_mad <= 0.5 if use_jpeg else worst_within >= 0.99)
                failures += not ok
                print(f"{preset:10s} jpeg={'on ' if use_jpeg else 'off'} params mismatched {param_mismatch}  "
                      f"worst within-1 {worst_within * 100:.3f}%  worst mean |diff| {worst_mad:.4f}  {'ok' if ok else 'FAIL'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
