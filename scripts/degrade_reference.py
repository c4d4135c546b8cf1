#!/usr/bin/env python3
"""The reference degradation for `facerestore degrade` parity (run with the reference venv:
basicsr 1.4.2, numpy, OpenCV 4.6; see ../shared/reference/setup.sh).

Image i of the name-sorted input folder is degraded with random.seed(S+i) and np.random.seed(S+i),
calling basicsr's own functions in the order of gfpgan 1.3.8 `FFHQDegradationDataset.__getitem__`
(preset gfpgan), GPEN's `GFPGAN_degradation.degrade_process` (gpen) or CodeFormer's
`FFHQBlindDataset.__getitem__` (codeformer), without the flip, without the torch colour jitter,
and with `int(quality)` for JPEG. Writes OUT/<name>.png and OUT/<name>.json like the Swift tool.

  python scripts/degrade_reference.py IN_DIR OUT_DIR --seed 0 [--preset gfpgan] [--no-jpeg]
"""
import argparse
import json
import math
import os
import random

import cv2
import numpy as np
from basicsr.data import degradations

PRESETS = {
    "gfpgan": dict(sigma=[0.1, 10], scale=[0.8, 8], noise=[0, 20], jpeg=[60, 100], jitter=0.3, gray=0.01, jitter_pt=0.3),
    "gpen": dict(sigma=[0.1, 10], scale=[0.8, 8], noise=[0, 20], jpeg=[60, 100], jitter=0.0, gray=0.2, jitter_pt=None),
    "codeformer": dict(sigma=[1, 15], scale=[4, 30], noise=[0, 20], jpeg=[30, 80], jitter=None, gray=None, jitter_pt=None),
}


def jpeg(img, q):
    img = np.clip(img, 0, 1)
    _, enc = cv2.imencode(".jpg", img * 255., [int(cv2.IMWRITE_JPEG_QUALITY), q])
    return np.float32(cv2.imdecode(enc, 1)) / 255.


def kernel_with_record(p, rec):
    # random_mixed_kernels, recording what it drew (the same draws: choices, then uniforms).
    state_py, state_np = random.getstate(), np.random.get_state()
    k = degradations.random_mixed_kernels(["iso", "aniso"], [0.5, 0.5], 41, p["sigma"], p["sigma"], [-math.pi, math.pi], noise_range=None)
    random.setstate(state_py)
    np.random.set_state(state_np)
    kind = random.choices(["iso", "aniso"], [0.5, 0.5])[0]
    sx = np.random.uniform(p["sigma"][0], p["sigma"][1])
    sy, theta = sx, 0.0
    if kind == "aniso":
        sy = np.random.uniform(p["sigma"][0], p["sigma"][1])
        theta = np.random.uniform(-math.pi, math.pi)
    rec.update(kernel=kind, sigma_x=sx, sigma_y=sy, theta=theta)
    return k


def degrade(img_gt, p, preset, use_jpeg, rec):
    h, w = img_gt.shape[:2]
    if preset == "gpen":
        random.random()  # flip draw
        if np.random.uniform() < p["jitter"]:
            jitter = np.random.uniform(-20 / 255., 20 / 255., 3).astype(np.float32)
            rec["color_jitter"] = [float(v) for v in jitter]
            img_gt = np.clip(img_gt + jitter, 0, 1)
        rec["gt_gray"] = False
        if np.random.uniform() < p["gray"]:
            img_gt = np.tile(cv2.cvtColor(img_gt, cv2.COLOR_BGR2GRAY)[:, :, None], [1, 1, 3])
            rec["gt_gray"] = True
    kernel = kernel_with_record(p, rec)
    lq = cv2.filter2D(img_gt, -1, kernel)
    scale = np.random.uniform(p["scale"][0], p["scale"][1])
    rec["scale"] = scale
    size = (int(w // scale), int(h // scale))
    rec["downsampled_size"] = list(size)
    lq = cv2.resize(lq, size, interpolation=cv2.INTER_LINEAR)
    if preset == "codeformer":
        sigma = np.random.uniform(p["noise"][0] / 255., p["noise"][1] / 255.)
        rec["noise_sigma"] = sigma * 255
        lq = np.clip(lq + np.float32(np.random.randn(*lq.shape)) * sigma, 0, 1)
    else:
        state = np.random.get_state()
        sigma = np.random.uniform(p["noise"][0], p["noise"][1])
        np.random.set_state(state)
        rec["noise_sigma"] = sigma
        lq = degradations.random_add_gaussian_noise(lq, p["noise"])
    if use_jpeg:
        q = int(np.random.uniform(p["jpeg"][0], p["jpeg"][1]))
        rec["jpeg_quality"] = q
        lq = jpeg(lq, q)
    if preset == "gpen":
        lq = np.clip((lq * 255.0).round(), 0, 255) / 255.
        lq = cv2.resize(lq, (w, h), interpolation=cv2.INTER_LINEAR)
        out = np.clip((lq * 255.0).round(), 0, 255).astype(np.uint8)
        return out, img_gt
    lq = cv2.resize(lq, (w, h), interpolation=cv2.INTER_LINEAR)
    if p["jitter"] is not None and np.random.uniform() < p["jitter"]:
        jitter = np.random.uniform(-20 / 255., 20 / 255., 3).astype(np.float32)
        rec["color_jitter"] = [float(v) for v in jitter]
        lq = np.clip(lq + jitter, 0, 1)
    rec["gray"] = False
    if p["gray"] and np.random.uniform() < p["gray"]:
        lq = np.tile(cv2.cvtColor(lq, cv2.COLOR_BGR2GRAY)[:, :, None], [1, 1, 3])
        rec["gray"] = True
    rec["torch_jitter_skipped"] = bool(p["jitter_pt"] is not None and np.random.uniform() < p["jitter_pt"])
    out = np.clip(np.round(lq.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return out, img_gt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="gfpgan", choices=sorted(PRESETS))
    ap.add_argument("--no-jpeg", action="store_true")
    a = ap.parse_args()
    p = PRESETS[a.preset]
    os.makedirs(a.output, exist_ok=True)
    names = sorted(n for n in os.listdir(a.input) if not n.startswith(".") and n.lower().endswith((".png", ".jpg", ".jpeg")))
    for i, n in enumerate(names):
        random.seed(a.seed + i)
        np.random.seed(a.seed + i)
        img = cv2.imread(os.path.join(a.input, n), cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        if a.preset == "gpen" and h == w and w > 512 and w % 512 == 0:
            # GPEN's dataset_face.py: the ground truth is resized to 512 with INTER_AREA first
            # (done here for 512·k squares, as FaceRestore does).
            img = cv2.resize(img, (512, 512), interpolation=cv2.INTER_AREA)
        img = img.astype(np.float32) / 255.
        rec = {"pipeline": a.preset, "seed": a.seed + i, "noise_sigma": None, "jpeg_quality": None, "color_jitter": None,
               "gray": False, "gt_gray": False, "torch_jitter_skipped": False}
        out, _ = degrade(img, p, a.preset, not a.no_jpeg, rec)
        base = os.path.splitext(n)[0]
        cv2.imwrite(os.path.join(a.output, base + ".png"), out)
        with open(os.path.join(a.output, base + ".json"), "w") as f:
            json.dump(rec, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
