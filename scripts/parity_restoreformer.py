#!/usr/bin/env python3
"""RestoreFormer and RestoreFormer++ network parity against gfpgan 1.3.8's code (reference env,
not CI), on the random-weight fixtures `scripts/make_restoreformer_fixtures.py` writes to
~/.cache/facerestore-reference/fixtures/:

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_restoreformer_fixtures.py
    ~/.cache/facerestore-reference/venv/bin/python scripts/parity_restoreformer.py [--binary .build/release/facerestore-bench] [--threads 2]

For each network (RF: 8 heads; RF++: 4 heads, decoder attention at 32² too), each file layout
(GFPGAN's `{'params_ema': …}` .pth and the Lightning `.ckpt` with `vqvae.` keys and `loss.*`
entries) and each fixture face, runs `facerestore-bench restoreformer` on the reference's input
and reports the max abs difference of the output (raw, and clamped to [-1, 1] as GFPGANer's
tensor2img uses it), the share of 8-bit pixels within 1 gray level of the reference's, and our
forward time (the reference's torch 1.13 time per face is in restoreformer_timings.json).
Exits 1 when a clamped output differs by more than 1e-4.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.expanduser("~/.cache/facerestore-reference/fixtures")


def to_u8(y):
    """gfpgan's tensor2img: clamp to [-1, 1], (x + 1) / 2, RGB→BGR HWC, ·255, round."""
    x = (np.clip(y[0], -1, 1) + 1) / 2
    return (x.transpose(1, 2, 0)[:, :, ::-1] * 255.0).round().astype(np.uint8)


def output_figures(y, want, want_u8):
    """Max abs difference of our output `y` from the reference's `want`, raw and clamped to
    [-1, 1], and the share of 8-bit values within 1 gray level of the reference's `want_u8`."""
    raw = float(np.abs(y - want).max())
    clamped = float(np.abs(np.clip(y, -1, 1) - np.clip(want, -1, 1)).max())
    within = float((np.abs(to_u8(y).astype(int) - want_u8.astype(int)) <= 1).mean())
    return raw, clamped, within


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build/release/facerestore-bench"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    failures = 0
    timings = json.load(open(os.path.join(FIXTURES, "restoreformer_timings.json")))
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("restoreformer", "restoreformer_pp"):
            ref = load_file(os.path.join(FIXTURES, f"{name}_parity.safetensors"))
            faces = sorted({k.split(".")[0] for k in ref})
            for ext in ("pth", "ckpt"):
                model = os.path.join(FIXTURES, f"{name}_random.{ext}")
                for face in faces:
                    io, out = os.path.join(tmp, "io.safetensors"), os.path.join(tmp, "out.safetensors")
                    save_file({"x": ref[f"{face}.input"]}, io)
                    r = subprocess.run([a.binary, "restoreformer", "--model", model, "--io", io, "--out", out, "--runs", "1",
                                        "--threads", str(a.threads)], capture_output=True, text=True)
                    if r.returncode != 0:
                        print(f"{name} {ext} {face}: {r.stderr.strip()}")
                        failures += 1
                        continue
                    raw, clamped, within = output_figures(load_file(out)["y"], ref[f"{face}.output"], ref[f"{face}.output_u8"])
                    seconds = re.search(r"forward median ([0-9.]+) s", r.stdout)
                    ok = clamped <= 1e-4
                    failures += not ok
                    print(f"{name:17s} {ext:4s} {face:12s} max|Δ| {raw:.2e} (clamped {clamped:.2e})  8-bit within 1: {within * 100:.3f}%  "
                          f"ours {seconds.group(1) if seconds else '?'} s  {'ok' if ok else 'FAIL'}")
            print(f"{name}: torch 1.13 {timings[name]['seconds_per_face_median']:.2f} s per face ({timings['threads']} threads, "
                  "when the fixtures were made)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
