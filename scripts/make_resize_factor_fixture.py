#!/usr/bin/env python3
"""`cv2.resize(img, (0, 0), fx=f, fy=f, interpolation=cv2.INTER_LINEAR)` on 8-bit BGR, as
CodeFormer's facelib enlarges photos under 512 px on the short side (f = 512 / min(h, w)): the size
is round(side·f) and OpenCV samples at 1/f steps, not at the size ratio. Reference venv (OpenCV 4.6),
not CI:

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_resize_factor_fixture.py

Small sources with general factors keep the file small. Also `cv2.resize(img, (w, h),
interpolation=cv2.INTER_AREA)` shrinks (cases area_*: NAME.src, NAME.dst), as facelib's detector
input for photos over 640 px on the short side.
Writes Tests/FaceRestoreImagingTests/Fixtures/resize_factor.safetensors: per case NAME,
NAME.src (h, w, 3) uint8, NAME.dst uint8 and NAME.f (1,) float64. Byte-identical between runs.
"""
import os

import cv2
import numpy as np
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "FaceRestoreImagingTests", "Fixtures", "resize_factor.safetensors")


def main():
    rng = np.random.default_rng(512)
    out = {}
    # (height, width, f): factors that are not the ratio of the rounded sizes, one of them 512/120 (the form of CodeFormer's 512/side).
    cases = {"portrait": (43, 29, 1.37), "landscape": (17, 31, 2.71), "square": (23, 23, 3.3), "wide": (12, 50, 512.0 / 120)}
    for name, (h, w, f) in cases.items():
        # Smooth gradients plus noise: every interpolation weight shows in the output.
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 7) % 256], axis=2)
        img = np.clip(base + rng.integers(-20, 21, size=(h, w, 3)), 0, 255).astype(np.uint8)
        out[f"{name}.src"] = img
        out[f"{name}.dst"] = cv2.resize(img, (0, 0), fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
        out[f"{name}.f"] = np.array([f], dtype=np.float64)
    # INTER_AREA shrinks to a given size (facelib's detector input for photos over 640 px on the
    # short side): non-integer factors, and a whole factor that differs between the axes.
    for name, (h, w, dh, dw) in {"area_frac": (47, 61, 31, 40), "area_mixed": (40, 60, 20, 20), "area_third": (30, 33, 10, 11)}.items():
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * 255 // (w - 1)), (y * 255 // (h - 1)), ((x * 3 + y * 5) * 11) % 256], axis=2)
        img = np.clip(base + rng.integers(-30, 31, size=(h, w, 3)), 0, 255).astype(np.uint8)
        out[f"{name}.src"] = img
        out[f"{name}.dst"] = cv2.resize(img, (dw, dh), interpolation=cv2.INTER_AREA)
    save_file(out, OUT, metadata={"opencv": cv2.__version__})
    print(OUT, {k: v.shape for k, v in out.items() if k.endswith(".dst")})


if __name__ == "__main__":
    main()
