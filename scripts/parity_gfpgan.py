#!/usr/bin/env python3
"""Full-size GFPGAN parity and speed against the reference, in one run (reference env, not CI).

    ~/.cache/facerestore-reference/venv/bin/python scripts/parity_gfpgan.py [--threads 2] [--runs 3]

Builds GFPGANv1Clean at the v1.4 configuration (out 512, channel multiplier 2) with random
weights in the official layout (every parameter and noise buffer randomized, seed fixed), saves it
as a checkpoint, runs upstream gfpgan 1.3.8 (`randomize_noise=False`) and our
`facerestore-bench gfpgan` on the same random input, and reports max abs error on the [-1, 1]
output, the share of PNG pixels within 1 gray level after `tensor2img`, and the speed ratio.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import BIG, make_gfpgan_clean  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tensor2img(t):
    """basicsr tensor2img for a [1,3,H,W] RGB tensor in [-1, 1] → HWC BGR uint8."""
    x = ((t[0].float().clamp(-1, 1) + 1) / 2).numpy().transpose(1, 2, 0)[:, :, ::-1]
    return (x * 255.0).round().astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(BIG, exist_ok=True)
    ckpt = os.path.join(BIG, "gfpgan_v1.4_parity.pth")
    io = os.path.join(BIG, "gfpgan_v1.4_parity_io.safetensors")
    ours_out = os.path.join(BIG, "gfpgan_v1.4_parity_ours.safetensors")

    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
    x, y = make_gfpgan_clean(out_size=512, style=512, cm=2, narrow=1, seed=2024, path=ckpt)
    save_file({"x": x.contiguous(), "y": y.contiguous()}, io)

    # Reference timing: load the same checkpoint as a user would, then time forward calls.
    net = GFPGANv1Clean(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None,
                        fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)
    net.load_state_dict(torch.load(ckpt)["params_ema"], strict=True)
    net.eval()
    times = []
    with torch.no_grad():
        net(x, return_rgb=False, randomize_noise=False)
        for _ in range(args.runs):
            t0 = time.perf_counter()
            net(x, return_rgb=False, randomize_noise=False)
            times.append(time.perf_counter() - t0)
    ref_time = statistics.median(times)
    print(f"reference: torch {torch.__version__}, forward median {ref_time:.3f} s ({args.runs} runs, {args.threads} threads)")

    bench = os.path.join(ROOT, ".build/release/facerestore-bench")
    out = subprocess.run([bench, "gfpgan", "--model", ckpt, "--io", io, "--out", ours_out, "--threads", str(args.threads),
                          "--runs", str(args.runs)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"facerestore-bench failed: {out.stderr}")
    print(out.stdout.strip())
    ours_time = float(out.stdout.split("forward median ")[1].split(" s")[0])
    ours = load_file(ours_out)["y"]
    err = (ours - y).abs().max().item()
    err_clamped = (ours.clamp(-1, 1) - y.clamp(-1, 1)).abs().max().item()
    a, b = tensor2img(ours).astype(int), tensor2img(y).astype(int)
    within = (np.abs(a - b) <= 1).mean() * 100
    print(f"GFPGAN v1.4 config (512, cm 2), random weights: max abs error {err:.3g} on the raw output "
          f"(range {y.min().item():.2f}..{y.max().item():.2f}), {err_clamped:.3g} after clamping to [-1,1]; "
          f"PNG pixels within 1 gray level: {within:.4f}%; "
          f"identical: {(a == b).mean() * 100:.4f}%")
    print(f"speed: ours {ours_time:.3f} s, reference {ref_time:.3f} s, ratio {ref_time / ours_time:.2f}x")


if __name__ == "__main__":
    main()
