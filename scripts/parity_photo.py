#!/usr/bin/env python3
"""Whole-photo parity and end-to-end speed against the reference (reference env, not CI).

    ~/.cache/facerestore-reference/venv/bin/python scripts/parity_photo.py [--threads 2] [--runs 2]

Uses the random-weight GFPGAN v1.4 checkpoint in the official layout made by
scripts/parity_gfpgan.py (GFPGANv1Clean, 512, channel multiplier 2), the real RetinaFace
MobileNet0.25 weights from ../shared/weights, and the random-weight ParseNet made by
scripts/make_fixtures.py (make_parsenet). For each example photo it runs
  - the reference: `GFPGANer.enhance(img, has_aligned=False, paste_back=True)` step by step with
    facexlib's FaceRestoreHelper (the detector and parser injected instead of downloaded; the
    network with randomize_noise=False), upscale 2, with and without the parsing mask;
  - ours: `facerestore restore -i PHOTO --model-path … --detector … [--parser … | --no-parse] --ext png`;
and reports the share of restored-image values equal and within 1 gray level (goal ≥ 99.9%).
Then it times one photo with one face end to end, process start to file written, for both: a
Python process that imports the reference stack, loads the models and runs enhance + imwrite
(what `inference_gfpgan.py` does), and our CLI process, same thread count, in this same run.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import BIG, EXAMPLES, PHOTOS, SHARED_WEIGHTS, gfpgan_net, load_mnet_detector, reference_enhance  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CKPT = os.path.join(BIG, "gfpgan_v1.4_parity.pth")
PARSER = os.path.join(BIG, "parsenet_random.pth")
DETECTOR = os.path.join(SHARED_WEIGHTS, "retinaface_mobilenet0.25_Final.pth")
CLI = os.path.join(ROOT, ".build/release/facerestore")

REFERENCE_PROCESS = r'''
import sys, time, cv2, torch
sys.path.insert(0, {scripts!r})
torch.set_num_threads({threads})
from make_fixtures import gfpgan_net, load_mnet_detector, reference_enhance
from facexlib.parsing.parsenet import ParseNet
net = gfpgan_net("clean", 512, 512, 2, 1)
net.load_state_dict(torch.load({ckpt!r})["params_ema"], strict=True)
net.eval()
parser = ParseNet(in_size=512, out_size=512, parsing_ch=19)
parser.load_state_dict(torch.load({parser!r}), strict=True)
parser.eval()
img = cv2.imread({photo!r}, cv2.IMREAD_COLOR)
_, _, out = reference_enhance(img, net, load_mnet_detector(), parser, upscale=2)
cv2.imwrite({out!r}, out)
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    for path, how in [(CKPT, "run scripts/parity_gfpgan.py --only v1.4 first"), (PARSER, "run scripts/make_fixtures.py first"),
                      (DETECTOR, "../shared/weights is needed"), (CLI, "run swift build -c release first")]:
        if not os.path.exists(path):
            sys.exit(f"parity_photo: {path} is missing ({how})")
    torch.set_num_threads(args.threads)
    from facexlib.parsing.parsenet import ParseNet
    net = gfpgan_net("clean", 512, 512, 2, 1)
    net.load_state_dict(torch.load(CKPT)["params_ema"], strict=True)
    net.eval()
    parser = ParseNet(in_size=512, out_size=512, parsing_ch=19)
    parser.load_state_dict(torch.load(PARSER), strict=True)
    parser.eval()
    det = load_mnet_detector()
    print(f"whole-photo parity: GFPGAN v1.4 layout (random weights), RetinaFace MobileNet0.25 (real), upscale 2")
    print(f"{'photo':<14} {'mask':<6} {'faces':>5} {'identical':>10} {'within 1':>9} {'max diff':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for photo in PHOTOS:
            img = cv2.imread(os.path.join(EXAMPLES, photo), cv2.IMREAD_COLOR)
            for mask in ("parse", "soft"):
                crops, _, ref = reference_enhance(img, net, det, parser if mask == "parse" else None, upscale=2)
                out = os.path.join(tmp, mask)
                flags = ["--parser", PARSER] if mask == "parse" else ["--no-parse"]
                r = subprocess.run([CLI, "restore", "-i", os.path.join(EXAMPLES, photo), "-o", out, "--model-path", CKPT,
                                    "--detector", DETECTOR, "--ext", "png", "--threads", str(args.threads)] + flags,
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"facerestore failed on {photo}: {r.stderr.strip()}")
                ours = cv2.imread(os.path.join(out, "restored_imgs", os.path.splitext(photo)[0] + ".png"), cv2.IMREAD_COLOR)
                d = np.abs(ours.astype(int) - ref.astype(int))
                print(f"{photo:<14} {mask:<6} {len(crops):>5} {100 * (d == 0).mean():>9.3f}% {100 * (d <= 1).mean():>8.3f}% {d.max():>8}")

        # End to end, process start to file written: one photo, one face.
        photo = os.path.join(EXAMPLES, "grace_hopper.jpg")
        script = REFERENCE_PROCESS.format(scripts=os.path.dirname(os.path.abspath(__file__)), threads=args.threads,
                                          ckpt=CKPT, parser=PARSER, photo=photo, out=os.path.join(tmp, "ref.png"))
        ref_t, our_t = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
            ref_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run([CLI, "restore", "-i", photo, "-o", os.path.join(tmp, "speed"), "--model-path", CKPT, "--detector",
                            DETECTOR, "--parser", PARSER, "--threads", str(args.threads)], check=True, capture_output=True)
            our_t.append(time.perf_counter() - t)
        r, o = statistics.median(ref_t), statistics.median(our_t)
        print(f"end to end, grace_hopper.jpg (1 face, parse mask, upscale 2, {args.threads} threads, median of {args.runs}): "
              f"reference {r:.2f} s, facerestore {o:.2f} s, {r / o:.2f}x")


if __name__ == "__main__":
    main()
