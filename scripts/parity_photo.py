#!/usr/bin/env python3
"""Whole-photo parity and end-to-end speed against the reference (reference env, not CI).

    ~/.cache/facerestore-reference/venv/bin/python scripts/parity_photo.py [--threads 2] [--runs 2] [--background]

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
Python process that imports the reference stack, loads the models, runs enhance and writes each
face's crop, restoration and side-by-side comparison and the whole image (what
`inference_gfpgan.py` does), and our CLI process (which writes the same four files), same thread
count, in this same run.

With --background it also runs a 1024×768 photo (the example photos on one canvas, two faces)
with the background upscaled by Real-ESRGAN x2plus (random weights in the official layout, from
`make_fixtures.py make_realesrgan`; tile 400, as `inference_gfpgan.py --bg_upsampler realesrgan`):
the two outputs compared, and both processes timed end to end.
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
from make_fixtures import BIG, EXAMPLES, restore_photo, PHOTOS, SHARED_WEIGHTS, gfpgan_net, load_mnet_detector, reference_enhance  # noqa: E402

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
bg = None
if {background!r}:
    from basicsr.archs.rrdbnet_arch import RRDBNet
    from realesrgan import RealESRGANer
    bg = RealESRGANer(scale=2, model_path={background!r}, tile=400, tile_pad=10, pre_pad=0, half=False,
                      model=RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=2))
crops, faces, out = reference_enhance(img, net, load_mnet_detector(), parser, upscale=2, bg_upsampler=bg)
# The files inference_gfpgan.py writes for each face and the whole image (our CLI writes the same four).
import numpy as np, os
folder = os.path.dirname({out!r})
for k, (crop, face) in enumerate(zip(crops, faces)):
    cv2.imwrite(os.path.join(folder, f"ref_crop_{{k:02d}}.png"), crop)
    cv2.imwrite(os.path.join(folder, f"ref_face_{{k:02d}}.png"), face)
    cv2.imwrite(os.path.join(folder, f"ref_cmp_{{k:02d}}.png"), np.concatenate((crop, face), axis=1))
cv2.imwrite({out!r}, out)
'''
BACKGROUND = os.path.join(BIG, "realesrgan_x2plus_random.pth")


def canvas_1024x768(path):
    """The example photos on one 1024×768 canvas (grace_hopper left, astronaut right)."""
    canvas = np.full((768, 1024, 3), 128, np.uint8)
    canvas[84:684, 0:512] = cv2.imread(os.path.join(EXAMPLES, "grace_hopper.jpg"), cv2.IMREAD_COLOR)
    canvas[128:640, 512:1024] = cv2.imread(os.path.join(EXAMPLES, "astronaut.jpg"), cv2.IMREAD_COLOR)
    cv2.imwrite(path, canvas)


def end_to_end(photo, tmp, args, background=None):
    """Medians of process-start-to-file-written times (reference, ours), rounds alternating, and
    the two outputs."""
    ref_out, our_dir = os.path.join(tmp, "ref_e2e.png"), os.path.join(tmp, "ours_e2e")
    script = REFERENCE_PROCESS.format(scripts=os.path.dirname(os.path.abspath(__file__)), threads=args.threads,
                                      ckpt=CKPT, parser=PARSER, photo=photo, out=ref_out, background=background)
    flags = ["--bg-upsampler", "realesrgan", "--bg-model", background, "--bg-tile", "400"] if background else []
    ref_t, our_t = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
        ref_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([CLI, "restore", "-i", photo, "-o", our_dir, "--model-path", CKPT, "--detector", DETECTOR,
                        "--parser", PARSER, "--threads", str(args.threads), "--ext", "png"] + flags, check=True, capture_output=True)
        our_t.append(time.perf_counter() - t)
    ours = cv2.imread(os.path.join(our_dir, "restored_imgs", os.path.splitext(os.path.basename(photo))[0] + ".png"), cv2.IMREAD_COLOR)
    print(f"  rounds (reference / facerestore, s): " + ", ".join(f"{r:.2f}/{o:.2f}" for r, o in zip(ref_t, our_t)), flush=True)
    return statistics.median(ref_t), statistics.median(our_t), cv2.imread(ref_out, cv2.IMREAD_COLOR), ours


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--timing-only", action="store_true", help="skip the parity comparisons, only time end to end")
    ap.add_argument("--background", action="store_true", help="also time a 1024×768 photo with a Real-ESRGAN x2plus background")
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
    print("whole-photo parity: GFPGAN v1.4 layout (random weights), RetinaFace MobileNet0.25 (real), upscale 2")
    print(f"{'photo':<14} {'mask':<6} {'faces':>5} {'identical':>10} {'within 1':>9} {'max diff':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for photo in [] if args.timing_only else PHOTOS:
            img = cv2.imread(os.path.join(EXAMPLES, photo), cv2.IMREAD_COLOR)
            for mask in ("parse", "soft"):
                crops, _, ref = reference_enhance(img, net, det, parser if mask == "parse" else None, upscale=2)
                ours = restore_photo(os.path.join(EXAMPLES, photo), os.path.join(tmp, mask), CKPT, DETECTOR, args.threads,
                                     ["--parser", PARSER] if mask == "parse" else ["--no-parse"])
                d = np.abs(ours.astype(int) - ref.astype(int))
                print(f"{photo:<14} {mask:<6} {len(crops):>5} {100 * (d == 0).mean():>9.3f}% {100 * (d <= 1).mean():>8.3f}% {d.max():>8}")

        # End to end, process start to file written: one photo, one face.
        r, o, _, _ = end_to_end(os.path.join(EXAMPLES, "grace_hopper.jpg"), tmp, args)
        print(f"end to end, grace_hopper.jpg (1 face, parse mask, upscale 2, {args.threads} threads, median of {args.runs}): "
              f"reference {r:.2f} s, facerestore {o:.2f} s, {r / o:.2f}x")
        if args.background:
            if not os.path.exists(BACKGROUND):
                sys.exit(f"parity_photo: {BACKGROUND} is missing (run scripts/make_fixtures.py first)")
            photo = os.path.join(tmp, "photo1024x768.png")
            canvas_1024x768(photo)
            r, o, ref, ours = end_to_end(photo, tmp, args, background=BACKGROUND)
            d = np.abs(ours.astype(int) - ref.astype(int))
            print(f"end to end, 1024×768 photo (2 faces, parse mask, Real-ESRGAN x2plus background, tile 400, upscale 2, "
                  f"{args.threads} threads, median of {args.runs}): reference {r:.2f} s, facerestore {o:.2f} s, {r / o:.2f}x; "
                  f"outputs: {100 * (d == 0).mean():.3f}% identical, {100 * (d <= 1).mean():.3f}% within 1 gray level, max diff {d.max()}")


if __name__ == "__main__":
    main()
