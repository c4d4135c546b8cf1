#!/usr/bin/env python3
"""Fixtures of the LMD (landmark distance) parity tests: a seeded random-weight AWing FAN in the
official `alignment_WFLW_4HG.pth` layout, run through facexlib's own code on real faces.

Run with the reference venv (../shared/reference/setup.sh: facexlib 0.3.0, torch, OpenCV 4.6):

  ~/.cache/facerestore-reference/venv/bin/python scripts/make_lmd_fixtures.py

Reference: facexlib 0.3.0 `facexlib/alignment/awing_arch.py` (FAN, calculate_points,
get_landmarks) and `facexlib/alignment/__init__.py` (FAN(num_modules=4, num_landmarks=98),
`torch.load(path)['state_dict']`, strict). VQFR's `vqfr/archs/awing_arch.py` (the paper's LMD
script) is the same network and the same get_landmarks (checked line by line; VQFR adds
`@torch.no_grad` and runs on CUDA).

numpy >= 1.24 removed `np.float`, which facexlib's `calculate_points` uses; this script restores
the alias (`np.float = float`, what it was) before calling it.

The random weights: one `torch.Generator().manual_seed(SEED)`, and for each key of
`FAN(num_modules=4, num_landmarks=98).state_dict()` in its order (the list is written to
keys.json) one `torch.randn(numel, generator=g)` draw z (float32), turned into the tensor by
float32 numpy arithmetic in exactly this order (s = np.float32(python double)):
  conv weight  [o, i, kh, kw]   z * s,  s = GAIN / sqrt(i * kh * kw)   (GAIN_HEAD for l*, al*)
  conv bias                     z * np.float32(0.1)
  BN weight                     np.float32(1) + np.float32(0.2) * z
  BN bias                       np.float32(0.1) * z
  BN running_mean               np.float32(0.1) * z
  BN running_var                np.float32(0.5) + np.float32(0.5) * z * z     ((0.5 z) z)
  BN num_batches_tracked        int64 0, no draw
Swift regenerates them with TorchGenerator (Sources/FaceRestoreEngine/TorchRandom.swift), so only
the key list and the outputs are committed.

Writes (committed) Tests/FaceRestoreEvaluationTests/Fixtures/lmd/:
  keys.json              versions, seed, gains, [key, shape] in state-dict order, the images
  expected.safetensors   per image: landmarks [98, 2] (float64, get_landmarks), an 8x8 grid of
                         the last module's heatmaps (all 99 channels, rows/cols 3, 11, ..., 59),
                         per-channel sums of the last heatmaps (float64), the argmax margin
                         (top-1 minus top-2) and the |neighbour difference| behind each 1/4-pixel
                         shift; crafted heatmaps' calculate_points results; VQFR's
                         distance for three image pairs and their mean (lmd.pairs, lmd.mean)
and (not committed) ~/.cache/facerestore-reference/fixtures/:
  lmd_random_fan.pth               the random weights, {'state_dict': ...} as the official file
  lmd_random_fan_io.safetensors    each image's input tensor and all four modules' outputs
"""
import json
import math
import os
import sys

import cv2
import numpy as np
import torch
import facexlib
from facexlib.alignment.awing_arch import FAN, calculate_points
from safetensors.numpy import save_file

if not hasattr(np, "float"):
    np.float = float  # facexlib's calculate_points predates numpy 1.24

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests/FaceRestoreEvaluationTests/Fixtures/lmd")
CACHE = os.path.expanduser("~/.cache/facerestore-reference/fixtures")
SEED = int(os.environ.get("LMD_SEED", "4"))
GAIN = float(os.environ.get("LMD_GAIN", "0.6"))
GAIN_HEAD = float(os.environ.get("LMD_GAIN_HEAD", "0.6"))
VERSIONS = {"facexlib": facexlib.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "opencv": cv2.__version__, "python": sys.version.split()[0]}


def random_state_dict(model):
    modules = dict(model.named_modules())
    g = torch.Generator().manual_seed(SEED)
    sd = {}
    keys = []
    for key, t in model.state_dict().items():
        keys.append([key, list(t.shape)])
        owner, _, leaf = key.rpartition(".")
        m = modules[owner]
        if leaf == "num_batches_tracked":
            sd[key] = torch.zeros((), dtype=torch.int64)
            continue
        z = torch.randn(t.numel(), generator=g).numpy()
        if isinstance(m, torch.nn.BatchNorm2d):
            v = {"weight": lambda: np.float32(1) + np.float32(0.2) * z,
                 "bias": lambda: np.float32(0.1) * z,
                 "running_mean": lambda: np.float32(0.1) * z,
                 "running_var": lambda: np.float32(0.5) + np.float32(0.5) * z * z}[leaf]()
        elif isinstance(m, torch.nn.Conv2d):
            if leaf == "weight":
                o, i, kh, kw = t.shape
                head = owner.startswith("l") or owner.startswith("al")
                v = z * np.float32((GAIN_HEAD if head else GAIN) / math.sqrt(i * kh * kw))
            else:
                v = z * np.float32(0.1)
        else:
            raise SystemExit(f"unexpected parameter {key} of {type(m).__name__}")
        assert v.dtype == np.float32
        sd[key] = torch.from_numpy(np.ascontiguousarray(v.reshape(tuple(t.shape))))
    return sd, keys


def images():
    """name → BGR uint8 image as cv2.imread gives it (the Swift test derives the same variants)."""
    a = cv2.imread(os.path.join(ROOT, "examples/faces/astronaut.jpg"))
    g = cv2.imread(os.path.join(ROOT, "examples/faces/grace_hopper.jpg"))
    return {
        "astronaut": a,                                      # 512² → 256: OpenCV's 2× INTER_AREA path
        "grace_hopper": g,
        "astronaut_crop": np.ascontiguousarray(a[40:340, 100:460]),   # 300×360: general bilinear, W≠H
        "grace_hopper_256": cv2.resize(g, (256, 256)),       # already 256: the resize is a copy
        "astronaut_small_flipped": np.ascontiguousarray(a[200:300, 150:270][:, ::-1]),  # 100×120: upscale
    }


def crafted_heatmaps(kind):
    """98 × 64 × 64 float32 heatmaps with a known peak per landmark: −((x−cx)² + (y−cy)²) plus a
    small tilt, all exact in float32. The Swift test builds the same ones."""
    ys, xs = np.mgrid[0:64, 0:64].astype(np.float32)
    out = np.zeros((1, 98, 64, 64), np.float32)
    for n in range(98):
        cx, cy = (7 * n + 3) % 62 + 1, (11 * n + 5) % 62 + 1        # interior: 1 ... 62
        if kind == 1 and n == 17:
            cy = 0                                                    # a peak in row 0
        if kind == 2 and n == 40:
            cy = 63                                                   # a peak in row 63
        if kind == 3:
            if n == 5:
                cx = 63                                               # x + 1 wraps to the next row
            if n == 9:
                cx, cy = 0, 0                                         # x − 1 wraps to index −1; row 0
            if n == 60:
                cx = 0
        tx, ty = np.float32(0.25 * ((n % 3) - 1)), np.float32(0.125 * ((n % 5) - 2))
        out[0, n] = -((xs - cx) ** 2 + (ys - cy) ** 2) + tx * xs + ty * ys
    return out


def margins(h):
    """Per landmark: top-1 minus top-2 heat, and |x_up − x_down|, |y_up − y_down| at the argmax
    (interior neighbours; where the reference's quirks apply the test checks those separately)."""
    n, hh, ww = h.shape
    line = h.reshape(n, hh * ww).astype(np.float64)
    idx = line.argmax(1)
    top = np.sort(line, 1)
    peak = top[:, -1] - top[:, -2]
    sign = np.zeros((n, 2))
    for k in range(n):
        i = idx[k]
        sign[k, 0] = abs(line[k, min(i + 1, hh * ww - 1)] - line[k, i - 1])
        sign[k, 1] = abs(line[k, min(i + ww, hh * ww - 1)] - line[k, max(i - ww, 0)])
    return peak, sign, idx


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(CACHE, exist_ok=True)
    torch.set_grad_enabled(False)
    model = FAN(num_modules=4, num_landmarks=98, device="cpu")
    sd, keys = random_state_dict(model)
    model.load_state_dict(sd, strict=True)
    model.eval()
    torch.save({"state_dict": sd}, os.path.join(CACHE, "lmd_random_fan.pth"))

    expected, io = {}, {}
    summary = []
    for name, img in images().items():
        try:
            lm = model.get_landmarks(img)
        except IndexError as e:
            # calculate_points reads heatline[inr + 1]: an argmax at the last pixel (63, 63) is
            # out of bounds and the reference raises. Recorded; the Swift code throws there too.
            lm = None
            print(f"{name}: the reference raises IndexError ({e})")
        # The same forward, kept: the input get_landmarks builds and every module's output.
        small = cv2.resize(img, (256, 256))
        inp = torch.from_numpy(np.ascontiguousarray(small[..., ::-1].transpose((2, 0, 1)))).float().div_(255.0).unsqueeze_(0)
        outs, _ = model(inp)
        last = outs[-1][0].numpy()
        if lm is not None:
            assert np.array_equal(calculate_points(last[None, :-1]).reshape(-1, 2) * (img.shape[1] / 64, img.shape[0] / 64), lm)
        peak, sign, idx = margins(last[:-1])
        boundary = last[-1]
        expected[f"{name}.landmarks"] = lm.astype(np.float64) if lm is not None else np.full((98, 2), np.nan)
        expected[f"{name}.grid"] = np.ascontiguousarray(last[:, 3::8, 3::8])
        expected[f"{name}.channel_sums"] = last.astype(np.float64).sum((1, 2))
        expected[f"{name}.peak_margin"] = peak
        expected[f"{name}.sign_margin"] = sign
        expected[f"{name}.pixel_sum"] = np.array([img.astype(np.float64).sum()])
        io[f"{name}.input"] = inp.numpy()
        for i, o in enumerate(outs):
            io[f"{name}.out{i}"] = o.numpy()
        info = {"name": name, "height": img.shape[0], "width": img.shape[1],
                "heat_std": float(last[:-1].std()), "heat_absmax": float(np.abs(last).max()),
                "boundary_above_0.05": [int((o[0, -1].numpy() > np.float32(0.05)).sum()) for o in outs],
                "boundary_min_gap_to_0.05": min(float(np.abs(o[0, -1].numpy() - np.float32(0.05)).min()) for o in outs[:-1]),
                "reference_raises": lm is None, "min_peak_margin": float(peak.min()), "min_sign_margin": float(sign.min()),
                "edge_argmax": int(((idx // 64) == 0).sum() + ((idx // 64) == 63).sum() + ((idx % 64) == 0).sum() + ((idx % 64) == 63).sum())}
        summary.append(info)
        print(json.dumps(info))
    # VQFR's per-pair distance and folder mean on pairs of these images' landmarks.
    pairs = [("astronaut", "astronaut_crop"), ("astronaut_crop", "astronaut_small_flipped"), ("grace_hopper", "astronaut")]
    dists = [float(np.sqrt(((expected[f"{b}.landmarks"] - expected[f"{a}.landmarks"]) ** 2).sum(1)).mean()) for a, b in pairs]
    expected["lmd.pairs"] = np.array(dists)
    expected["lmd.mean"] = np.array([sum(dists) / len(dists)])
    for kind in range(4):
        h = crafted_heatmaps(kind)
        expected[f"crafted{kind}.points"] = calculate_points(h).reshape(-1, 2).astype(np.float64)
    save_file(expected, os.path.join(OUT, "expected.safetensors"))
    save_file(io, os.path.join(CACHE, "lmd_random_fan_io.safetensors"))
    with open(os.path.join(OUT, "keys.json"), "w") as f:
        head = json.dumps({"versions": VERSIONS, "seed": SEED, "gain": GAIN, "gain_head": GAIN_HEAD,
                           "images": summary}, indent=1)
        f.write(head[:-2] + ',\n "keys": [\n' + ",\n".join("  " + json.dumps(k) for k in keys) + "\n ]\n}\n")


if __name__ == "__main__":
    main()
