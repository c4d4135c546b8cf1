#!/usr/bin/env python3
"""Fixtures of the evaluation tests (Tests/FaceRestoreEvaluationTests/Fixtures): random-stream
values, degradations and PSNR/SSIM from the reference code. Run with the reference venv
(../shared/reference/setup.sh: basicsr 1.4.2, numpy, OpenCV 4.6):

  ~/.cache/facerestore-reference/venv/bin/python scripts/make_eval_fixtures.py

  random.json      random.random() and numpy's uniform/randn after seeding, for four seeds
  degrade/         small HQ crops of the public-domain examples, their degradation by
                   scripts/degrade_reference.py (each preset, one seed) and the drawn parameters
  fullref/         for the pairs degrade/gfpgan/X (restored) and degrade/hq/X (reference), basicsr's calculate_psnr / calculate_ssim (as its
                   scripts load images: float32 / 255, scored × 255), with crop 4, Y, and VQFR's
                   correct_mean_var
"""
import json
import os
import random
import subprocess
import sys

import basicsr
import cv2
import numpy as np
from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests/FaceRestoreEvaluationTests/Fixtures")
VERSIONS = {"basicsr": basicsr.__version__, "numpy": np.__version__, "opencv": cv2.__version__, "python": sys.version.split()[0]}


def streams():
    out = {"versions": VERSIONS, "seeds": []}
    for s in (0, 1, 42, 2**32 - 1):
        random.seed(s)
        np.random.seed(s)
        entry = {"seed": s, "python": [random.random() for _ in range(3)], "uniform": [np.random.uniform() for _ in range(2)],
                 "uniform_0.1_10": np.random.uniform(0.1, 10), "randn": [float(v) for v in np.random.randn(5)],
                 "randn_f32": [float(v) for v in np.float32(np.random.randn(2, 2, 3)).ravel()]}
        random.seed(s)
        entry["choices"] = [random.choices(["iso", "aniso"], [0.5, 0.5])[0] for _ in range(6)]
        out["seeds"].append(entry)
    random.seed(2**40 + 5)
    out["python_big_seed"] = {"seed": 2**40 + 5, "random": random.random()}
    with open(os.path.join(OUT, "random.json"), "w") as f:
        json.dump(out, f, indent=1)


def hq_images(folder):
    os.makedirs(folder, exist_ok=True)
    a = cv2.imread(os.path.join(ROOT, "examples/astronaut.jpg"))
    g = cv2.imread(os.path.join(ROOT, "examples/grace_hopper.jpg"))
    cv2.imwrite(os.path.join(folder, "a.png"), cv2.resize(a[0:300, 100:400], (96, 96), interpolation=cv2.INTER_AREA))
    cv2.imwrite(os.path.join(folder, "b.png"), cv2.resize(g[20:420, 80:480], (128, 128), interpolation=cv2.INTER_AREA))
    cv2.imwrite(os.path.join(folder, "c.png"), cv2.resize(a, (80, 80), interpolation=cv2.INTER_AREA))


def degradations():
    base = os.path.join(OUT, "degrade")
    hq = os.path.join(base, "hq")
    hq_images(hq)
    for preset, seed in (("gfpgan", 7), ("gpen", 11), ("codeformer", 3)):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/degrade_reference.py"), hq, os.path.join(base, preset),
                        "--seed", str(seed), "--preset", preset], check=True)
    with open(os.path.join(base, "VERSIONS.json"), "w") as f:
        json.dump(VERSIONS, f, indent=1)


def full_reference():
    base = os.path.join(OUT, "fullref")
    os.makedirs(base, exist_ok=True)
    hq = os.path.join(OUT, "degrade/hq")
    results = {"versions": VERSIONS, "pairs": {}}
    for name in sorted(os.listdir(hq)):
        gt8 = cv2.imread(os.path.join(hq, name))
        lq8 = cv2.imread(os.path.join(OUT, "degrade/gfpgan", name))
        gt = gt8.astype(np.float32) / 255.
        res = lq8.astype(np.float32) / 255.
        r = {}
        r["rgb"] = [calculate_psnr(res * 255, gt * 255, 0), calculate_ssim(res * 255, gt * 255, 0)]
        r["crop4"] = [calculate_psnr(res * 255, gt * 255, 4), calculate_ssim(res * 255, gt * 255, 4)]
        r["y"] = [calculate_psnr(res * 255, gt * 255, 0, test_y_channel=True), calculate_ssim(res * 255, gt * 255, 0, test_y_channel=True)]
        c = res.copy()
        for j in range(3):  # VQFR metric_paper/calculate_psnr_ssim.py --correct_mean_var
            m, s = np.mean(gt[:, :, j]), np.std(gt[:, :, j])
            for _ in range(2):
                c[:, :, j] = c[:, :, j] - np.mean(c[:, :, j]) + m
                c[:, :, j] = c[:, :, j] / np.std(c[:, :, j]) * s
        r["cmv"] = [calculate_psnr(c * 255, gt * 255, 0), calculate_ssim(c * 255, gt * 255, 0)]
        results["pairs"][name] = r
    with open(os.path.join(base, "expected.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    streams()
    degradations()
    full_reference()
