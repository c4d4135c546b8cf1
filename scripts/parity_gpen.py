#!/usr/bin/env python3
"""Full-size GPEN parity and speed against the reference, in one run (reference env, not CI).

    ~/.cache/facerestore-reference/venv/bin/python scripts/parity_gpen.py [--threads 2] [--runs 3] [--rounds 1] [--only 512|256] [--no-photos]

Needs yangxy/GPEN's code at $GPEN_REPO (see DEVELOPERS.md) and a release build
(`swift build -c release`). For GPEN-BFR-512 (FullGenerator 512, channel multiplier 2, narrow 1)
and GPEN-BFR-256 (256, multiplier 1, narrow 0.5): builds the reference FullGenerator with random
weights in GPEN's own state-dict layout (every parameter randomized, seed fixed; the blur kernel
buffers kept) and saves it as GPEN saves its models; then
  1. network: the reference forward and `facerestore-bench gpen` on the same random input; max abs
     error on the output (raw, and clamped to [-1, 1]) and the speed ratio (same run, same threads);
  2. CLI, aligned: FaceGAN.process's steps (cv2.resize, img2tensor, the network, the truncating
     tensor2img) against `facerestore restore --aligned` on a real photo (Grace Hopper, public
     domain); share of PNG values within 1 gray level and identical;
  3. CLI, whole photos (512 only): GPEN's FaceEnhancement.process on the example photos, its
     detector replaced by facexlib's MobileNet0.25 with the real weights (../shared/weights) and
     its ParseNet loading the random-weight ParseNet from make_fixtures.py (make_parsenet), against
     `facerestore restore` with the same detector and parser, and with the square mask (--no-parse).
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
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import (alternate_rounds, median_seconds, restore_photo, BIG, EXAMPLES, PHOTOS, SHARED_WEIGHTS, FacexlibBoxes, gpen_enhancement, gpen_import,  # noqa: E402
                           load_mnet_detector, randomize_gpen)
from parity_gfpgan import bench_ours  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTO = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"
CLI = os.path.join(ROOT, ".build/release/facerestore")
CONFIGS = {"512": (512, 2, 1.0, 4096), "256": (256, 1, 0.5, 4097)}


def build(name):
    size, cm, narrow, seed = CONFIGS[name]
    gm = gpen_import()
    ckpt = os.path.join(BIG, f"gpen_{name}_parity.pth")
    net = randomize_gpen(gm.FullGenerator(size, 512, 8, channel_multiplier=cm, narrow=narrow, device="cpu"), seed)
    torch.save(net.state_dict(), ckpt)
    net.load_state_dict(torch.load(ckpt), strict=True)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed + 1)) * 2 - 1
    return ckpt, net.eval(), x


def reference_aligned(net, size, path):
    """FaceGAN.process: cv2.resize to the model size, /255, (x − 0.5)/0.5, BGR→RGB, the network,
    x·0.5 + 0.5, clip, ·255, astype(uint8)."""
    img = cv2.resize(cv2.imread(path, cv2.IMREAD_COLOR), (size, size))
    t = ((torch.from_numpy(img) / 255. - 0.5) / 0.5).permute(2, 0, 1).unsqueeze(0).flip(1)
    with torch.no_grad():
        out, _ = net(t)
    out = (out * 0.5 + 0.5).squeeze(0).permute(1, 2, 0).flip(2)
    return (np.clip(out.float().numpy(), 0, 1) * 255.0).astype(np.uint8)


def gray(a, b):
    d = np.abs(a.astype(int) - b.astype(int))
    return (d <= 1).mean() * 100, (d == 0).mean() * 100, d.max()


def compare(name, args):
    ckpt, net, x = build(name)
    size = CONFIGS[name][0]
    with torch.no_grad():
        y, _ = net(x)
    io = os.path.join(BIG, f"gpen_{name}_parity_io.safetensors")
    ours_out = os.path.join(BIG, f"gpen_{name}_parity_ours.safetensors")
    save_file({"x": x.contiguous(), "y": y.contiguous()}, io)

    def reference():
        return median_seconds(lambda: net(x), args.runs)

    def ours():
        out, t, err, err_clamped = bench_ours(ckpt, io, ours_out, y, args)   # the model is read from the file
        return t, (out, err, err_clamped)

    ref_time, ours_time, ratios, (out, err, err_clamped) = alternate_rounds(reference, ours, args.rounds)

    tmp = tempfile.mkdtemp()
    try:
        photo = os.path.join(tmp, "hopper.jpg")
        shutil.copy(PHOTO, photo)
        expected = reference_aligned(net, size, photo)
        cli = subprocess.run([CLI, "restore", "-i", photo, "-o", tmp, "--aligned", "--model-path", ckpt,
                              "--threads", str(args.threads)], capture_output=True, text=True)
        if cli.returncode != 0:
            sys.exit(f"facerestore restore failed: {cli.stderr}")
        got = cv2.imread(os.path.join(tmp, "restored_faces", "hopper_00.png"), cv2.IMREAD_COLOR)
    finally:
        shutil.rmtree(tmp)
    within, equal, worst = gray(got, expected)
    print(f"GPEN-{name} (random weights): network max abs {err:.3g} raw (output range {y.min().item():.2f}.."
          f"{y.max().item():.2f}), {err_clamped:.3g} clamped to [-1,1]; CLI --aligned on grace_hopper.jpg: "
          f"{within:.4f}% of PNG values within 1 gray level, {equal:.4f}% identical, max diff {worst}")
    print(f"  {out.stdout.strip()}")
    print(f"  speed: ours {ours_time:.3f} s, reference (yangxy/GPEN, torch {torch.__version__}) {ref_time:.3f} s, "
          f"ratio {ref_time / ours_time:.2f}x ({args.runs} runs, {args.threads} threads)"
          + (f"; per round ({args.rounds} rounds, alternating): " + ", ".join(f"{r:.2f}x" for r in ratios) if args.rounds > 1 else ""))
    return ckpt, net


def photos(ckpt, net, args):
    detector = os.path.join(SHARED_WEIGHTS, "retinaface_mobilenet0.25_Final.pth")
    parser = os.path.join(BIG, "parsenet_random.pth")
    if not os.path.exists(detector) or not os.path.exists(parser):
        print("photos: needs ../shared/weights and make_fixtures.py make_parsenet; skipped")
        return
    det = FacexlibBoxes(load_mnet_detector())
    for use_parse in (True, False):
        enh = gpen_enhancement(net, 512, det, parser_path=parser if use_parse else None)
        for photo in PHOTOS:
            img = cv2.imread(os.path.join(EXAMPLES, photo), cv2.IMREAD_COLOR)
            with torch.no_grad():
                expected, faces, _ = enh.process(img)
            tmp = tempfile.mkdtemp()
            try:
                got = restore_photo(os.path.join(EXAMPLES, photo), tmp, ckpt, detector, args.threads,
                                    ["--parser", parser] if use_parse else ["--no-parse"])
            finally:
                shutil.rmtree(tmp)
            within, equal, worst = gray(got, expected)
            print(f"  photo {photo} ({len(faces)} face(s), {'ParseNet' if use_parse else 'square'} mask): "
                  f"{within:.4f}% within 1 gray level, {equal:.4f}% identical, max diff {worst}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="alternate reference and ours this many times (noisy machines)")
    ap.add_argument("--only", choices=list(CONFIGS))
    ap.add_argument("--no-photos", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(BIG, exist_ok=True)
    for name in CONFIGS:
        if args.only in (None, name):
            ckpt, net = compare(name, args)
            if name == "512" and not args.no_photos:
                photos(ckpt, net, args)


if __name__ == "__main__":
    main()
