#!/usr/bin/env python3
"""Full-size GFPGAN parity and speed against the reference, in one run (reference env, not CI).

    ~/.cache/facerestore-reference/venv/bin/python scripts/parity_gfpgan.py [--threads 2] [--runs 3] [--rounds 1] [--only v1.4|v1]

For GFPGAN v1.4 (GFPGANv1Clean, out 512, channel multiplier 2) and GFPGAN v1 (GFPGANv1, the
paper architecture, channel multiplier 1): builds the upstream architecture with random weights
in the official state-dict layout (every parameter and noise buffer randomized, seed fixed) and
saves it as a checkpoint; then
  1. network: runs upstream gfpgan 1.3.8 (`randomize_noise=False`) and `facerestore-bench gfpgan`
     on the same random input; reports max abs error on the [-1, 1] output and the speed ratio
     (reference and ours timed in this same run, same thread count);
  2. CLI: runs the steps of `GFPGANer.enhance(has_aligned=True)` (cv2.imread, cv2.resize to 512,
     img2tensor + normalize, the network, tensor2img) and `facerestore restore --aligned` on a
     real photo (Grace Hopper, public domain, from matplotlib's sample data), and reports the
     share of PNG pixels within 1 gray level and identical.
Upstream's GFPGANv1 needs basicsr's CUDA-only fused_act; its CPU equivalent is installed here
(make_fixtures.install_cpu_fused_act).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import alternate_rounds, median_seconds, BIG, gfpgan_net, make_gfpgan_clean, make_gfpgan_v1  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTO = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"


def tensor2img(t):
    """basicsr tensor2img for a [1,3,H,W] RGB tensor in [-1, 1] → HWC BGR uint8."""
    from basicsr.utils import tensor2img as t2i
    return t2i(t, rgb2bgr=True, min_max=(-1, 1))


def build(name):
    ckpt = os.path.join(BIG, f"gfpgan_{name}_parity.pth")
    if name == "v1.4":
        x, y = make_gfpgan_clean(out_size=512, style=512, cm=2, narrow=1, seed=2024, path=ckpt)
        net = gfpgan_net("clean", 512, 512, 2, 1)
    else:
        x, y = make_gfpgan_v1(out_size=512, style=512, cm=1, narrow=1, seed=2025, path=ckpt)
        net = gfpgan_net("original", 512, 512, 1, 1)
    # Load the saved checkpoint as GFPGANer does (params_ema, strict).
    net.load_state_dict(torch.load(ckpt)["params_ema"], strict=True)
    return ckpt, net.eval(), x, y


def reference_aligned(net, path):
    """GFPGANer.enhance(has_aligned=True) for one image, without its (network-bound) helper."""
    from basicsr.utils import img2tensor
    from torchvision.transforms.functional import normalize
    img = cv2.resize(cv2.imread(path, cv2.IMREAD_COLOR), (512, 512))
    t = img2tensor(img / 255., bgr2rgb=True, float32=True)
    normalize(t, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), inplace=True)
    with torch.no_grad():
        out = net(t.unsqueeze(0), return_rgb=False, randomize_noise=False)[0]
    return tensor2img(out)


def bench_ours(ckpt, io, ours_out, y, args):
    """`facerestore-bench` on the input in `io`: its output (stdout), forward median, and max abs
    error against the reference output `y`, raw and clamped to [-1, 1]."""
    bench = os.path.join(ROOT, ".build/release/facerestore-bench")
    out = subprocess.run([bench, "gfpgan", "--model", ckpt, "--io", io, "--out", ours_out, "--threads", str(args.threads),
                          "--runs", str(args.runs)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"facerestore-bench failed: {out.stderr}")
    ours_time = float(out.stdout.split("forward median ")[1].split(" s")[0])
    ours = load_file(ours_out)["y"]
    return out, ours_time, (ours - y).abs().max().item(), (ours.clamp(-1, 1) - y.clamp(-1, 1)).abs().max().item()


def compare(name, args):
    ckpt, net, x, y = build(name)
    io = os.path.join(BIG, f"gfpgan_{name}_parity_io.safetensors")
    ours_out = os.path.join(BIG, f"gfpgan_{name}_parity_ours.safetensors")
    save_file({"x": x.contiguous(), "y": y.contiguous()}, io)

    with torch.no_grad():
        net(x, return_rgb=False, randomize_noise=False)

    def reference():
        return median_seconds(lambda: net(x, return_rgb=False, randomize_noise=False), args.runs)

    def ours():
        out, t, err, err_clamped = bench_ours(ckpt, io, ours_out, y, args)
        return t, (out, err, err_clamped)

    ref_time, ours_time, ratios, (out, err, err_clamped) = alternate_rounds(reference, ours, args.rounds)

    # CLI on a real photo against the reference aligned pipeline.
    tmp = tempfile.mkdtemp()
    try:
        photo = os.path.join(tmp, "hopper.jpg")
        shutil.copy(PHOTO, photo)
        expected = reference_aligned(net, photo)
        cli = subprocess.run([os.path.join(ROOT, ".build/release/facerestore"), "restore", "-i", photo, "-o", tmp,
                              "--aligned", "--model-path", ckpt, "--threads", str(args.threads)], capture_output=True, text=True)
        if cli.returncode != 0:
            sys.exit(f"facerestore restore failed: {cli.stderr}")
        got = cv2.imread(os.path.join(tmp, "restored_faces", "hopper_00.png"), cv2.IMREAD_COLOR)
    finally:
        shutil.rmtree(tmp)
    d = np.abs(got.astype(int) - expected.astype(int))
    print(f"GFPGAN {name} (512, random weights): network max abs {err:.3g} raw (output range "
          f"{y.min().item():.2f}..{y.max().item():.2f}), {err_clamped:.3g} clamped to [-1,1]; "
          f"CLI on grace_hopper.jpg: {(d <= 1).mean() * 100:.4f}% of PNG values within 1 gray level, "
          f"{(d == 0).mean() * 100:.4f}% identical, max diff {d.max()}")
    print(f"  {out.stdout.strip()}")
    print(f"  speed: ours {ours_time:.3f} s, reference (torch {torch.__version__}) {ref_time:.3f} s, "
          f"ratio {ref_time / ours_time:.2f}x ({args.runs} runs, {args.threads} threads)"
          + (f"; per round ({args.rounds} rounds, alternating): " + ", ".join(f"{r:.2f}x" for r in ratios) if args.rounds > 1 else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="alternate reference and ours this many times (noisy machines)")
    ap.add_argument("--only", choices=["v1.4", "v1"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(BIG, exist_ok=True)
    for name in ["v1.4", "v1"]:
        if args.only in (None, name):
            compare(name, args)


if __name__ == "__main__":
    main()
