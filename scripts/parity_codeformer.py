#!/usr/bin/env python3
"""CodeFormer network parity against the reference code (spandrel-extra-arches 0.2.0's copy,
bit-identical to sczhou/CodeFormer) on the random-weight fixtures `scripts/make_codeformer_fixtures.py`
writes to ~/.cache/facerestore-reference/fixtures/ (reference env, not CI):

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_codeformer_fixtures.py
    swift build -c release --product facerestore-bench
    ~/.cache/facerestore-reference/venv/bin/python scripts/parity_codeformer.py [--binary .build/release/facerestore-bench] [--threads 2]

For every configuration (restoration: w = 0, 0.5, 1 with AdaIN; colorization: w = 0; inpainting:
w = 1 without AdaIN, as `CodeFormer.call(fidelity:)` picks) and fixture face, runs
`facerestore-bench codeformer` on the reference's input and reports the max abs difference of the
output (raw, and clamped to [-1, 1] as `tensor2img` uses it), the share of 8-bit pixels within
1 gray level of the reference's, and our forward time (the reference's torch 1.13 time per face
is in codeformer_timings.json). Exits 1 when a clamped output differs by more than 1e-4.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_restoreformer import FIXTURES, ROOT, output_figures  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build/release/facerestore-bench"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    failures = 0
    timings = json.load(open(os.path.join(FIXTURES, "codeformer_timings.json")))
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("codeformer", "codeformer_colorization", "codeformer_inpainting"):
            ref = load_file(os.path.join(FIXTURES, f"{name}_parity.safetensors"))
            model = os.path.join(FIXTURES, f"{name}_random.pth")
            faces = sorted({k.split(".")[0] for k in ref})
            tags = sorted({k.split(".")[1] for k in ref if k.endswith(".output")})
            for face in faces:
                for tag in tags:
                    io, out = os.path.join(tmp, "io.safetensors"), os.path.join(tmp, "out.safetensors")
                    save_file({"x": ref[f"{face}.input"]}, io)
                    w = int(tag[1:]) / 100
                    r = subprocess.run([a.binary, "codeformer", "--model", model, "--io", io, "--out", out, "--runs", "1",
                                        "--threads", str(a.threads), "--fidelity", str(w)], capture_output=True, text=True)
                    if r.returncode != 0:
                        print(f"{name} {face} {tag}: {r.stderr.strip()}")
                        failures += 1
                        continue
                    raw, clamped, within = output_figures(load_file(out)["y"], ref[f"{face}.{tag}.output"],
                                                          ref[f"{face}.{tag}.output_u8"])
                    seconds = re.search(r"forward median ([0-9.]+) s", r.stdout)
                    ok = clamped <= 1e-4
                    failures += not ok
                    print(f"{name:23s} {face:19s} {tag}  max|Δ| {raw:.2e} (clamped {clamped:.2e})  8-bit within 1: {within * 100:.3f}%  "
                          f"ours {seconds.group(1) if seconds else '?'} s  {'ok' if ok else 'FAIL'}")
            t = timings.get(name, {}).get("seconds_per_face_median")
            if t:
                print(f"{name}: torch {timings.get('torch', '1.13')} {t:.2f} s per face (when the fixtures were made)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
