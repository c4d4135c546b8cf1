#!/usr/bin/env python3
"""Throughput on a folder (not CI): 20 photos with one to four faces each, restored by our CLI as
one batch (the default: one photo at a time on every thread, the next decoded and the last
written beside it, and `--jobs 2`: two photos side by side, one thread each) and by the reference
(`inference_gfpgan.py`'s loop: one Python process that loads the models once and restores every
photo of the folder, writing the same files), the three alternating, in this same run, on the same
threads:

    swift build -c release --product facerestore
    ~/.cache/facerestore-perf/venv/bin/python scripts/bench_batch.py --rounds 2      # latest torch

The models are those of scripts/parity_photo.py: the random-weight GFPGAN v1.4 checkpoint in the
official layout (scripts/parity_gfpgan.py), the real RetinaFace MobileNet0.25 from ../shared/weights
and the random-weight ParseNet (scripts/make_fixtures.py make_parsenet); upscale 2, no background
upsampler (LANCZOS4), PNG outputs. The folder is made here from the example photos: each as it is,
turned by ±8°, scaled by 0.75 and 1.3, and canvases of two to four of them (1–4 faces per photo).
Prints photos and faces, the seconds of each side per round and the ratios.

`--scans N` times an archive's folder instead: N 4000×3000 16-bit RGB TIFF scans (Deflate, a
photo with one or two faces pasted on a noisy enlarged background), restored at -s 1 into 16-bit
TIFFs, where decoding and encoding weigh as much as the networks. There is no reference run (the
reference reads 8 bits); `--baseline-cli PATH` times another build of ours (say, an earlier commit)
alternately with this one:

    ~/.cache/facerestore-perf/venv/bin/python scripts/bench_batch.py --scans 6 --baseline-cli /tmp/old/facerestore
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import EXAMPLES  # noqa: E402
from parity_photo import CKPT, CLI, DETECTOR, PARSER  # noqa: E402

REFERENCE_BATCH = r'''
import glob, os, sys, cv2, numpy as np, torch
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
detector = load_mnet_detector()
out = {out!r}
for sub in ("cropped_faces", "restored_faces", "cmp", "restored_imgs"):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
faces = 0
for path in sorted(glob.glob(os.path.join({folder!r}, "*"))):
    name = os.path.splitext(os.path.basename(path))[0]
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    crops, restored, whole = reference_enhance(img, net, detector, parser, upscale=2)
    faces += len(restored)
    for k, (crop, face) in enumerate(zip(crops, restored)):   # what inference_gfpgan.py writes
        cv2.imwrite(os.path.join(out, "cropped_faces", f"{{name}}_{{k:02d}}.png"), crop)
        cv2.imwrite(os.path.join(out, "restored_faces", f"{{name}}_{{k:02d}}.png"), face)
        cv2.imwrite(os.path.join(out, "cmp", f"{{name}}_{{k:02d}}.png"), np.concatenate((crop, face), axis=1))
    cv2.imwrite(os.path.join(out, "restored_imgs", name + ".png"), whole)
print(faces)
'''


def rotated(img, degrees):
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def canvas(images, height=600):
    scaled = [cv2.resize(i, (round(i.shape[1] * height / i.shape[0]), height), interpolation=cv2.INTER_AREA) for i in images]
    return np.concatenate(scaled, axis=1)


def make_folder(folder):
    grace = cv2.imread(os.path.join(EXAMPLES, "grace_hopper.jpg"), cv2.IMREAD_COLOR)
    astronaut = cv2.imread(os.path.join(EXAMPLES, "astronaut.jpg"), cv2.IMREAD_COLOR)
    group = cv2.imread(os.path.join(EXAMPLES, "group.jpg"), cv2.IMREAD_COLOR)
    photos = {}
    for name, img in (("grace", grace), ("astronaut", astronaut), ("group", group)):
        photos[name] = img
        photos[name + "_cw8"] = rotated(img, -8)
        photos[name + "_ccw8"] = rotated(img, 8)
        photos[name + "_x075"] = cv2.resize(img, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)
        photos[name + "_x13"] = cv2.resize(img, None, fx=1.3, fy=1.3, interpolation=cv2.INTER_CUBIC)
    photos["pair"] = canvas([grace, astronaut])
    photos["trio"] = canvas([grace, astronaut, grace[:, ::-1]])
    photos["quartet"] = canvas([group, astronaut, grace], height=520)
    photos["pair_flipped"] = canvas([astronaut[:, ::-1], grace])
    photos["trio_small"] = cv2.resize(photos["trio"], None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    assert len(photos) == 20, len(photos)
    for name, img in photos.items():
        cv2.imwrite(os.path.join(folder, name + ".jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])


def make_scans(folder, count):
    grace = cv2.imread(os.path.join(EXAMPLES, "grace_hopper.jpg"), cv2.IMREAD_COLOR)
    astronaut = cv2.imread(os.path.join(EXAMPLES, "astronaut.jpg"), cv2.IMREAD_COLOR)
    rng = np.random.default_rng(0)
    for k in range(count):
        h, w = 3000, 4000
        back = cv2.resize(cv2.GaussianBlur(astronaut if k % 2 else grace, (0, 0), 3), (w, h), interpolation=cv2.INTER_CUBIC)
        img = (back.astype(np.float32) * 257 + rng.normal(0, 300, back.shape)).clip(0, 65535).astype(np.uint16)
        photo = cv2.resize(grace if k % 2 else astronaut, (900, 1100) if k % 2 else (1000, 1000)).astype(np.uint16) * 257
        img[200:200 + photo.shape[0], 300:300 + photo.shape[1]] = photo
        cv2.imwrite(os.path.join(folder, f"scan{k}.tif"), img, [cv2.IMWRITE_TIFF_COMPRESSION, 8])   # Adobe Deflate


def bench_scans(a):
    clis = [("ours", CLI)] + ([("baseline", a.baseline_cli)] if a.baseline_cli else [])
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "scans")
        os.makedirs(folder)
        make_scans(folder, a.scans)
        print(f"{a.scans} scans of 4000×3000, 16-bit TIFF, -s 1, {a.threads} threads, {a.rounds} rounds (seconds per folder)")
        times = {name: [] for name, _ in clis}
        for k in range(a.rounds):
            for name, cli in clis:
                out = os.path.join(tmp, "out")
                shutil.rmtree(out, ignore_errors=True)
                cmd = [cli, "restore", "-i", folder, "-o", out, "--model-path", CKPT, "--detector", DETECTOR, "--parser", PARSER,
                       "--threads", str(a.threads), "-s", "1"]
                t = time.perf_counter()
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"bench_batch: {' '.join(cmd)} failed: {r.stderr[-400:]}")
                times[name].append(time.perf_counter() - t)
            print(f"round {k + 1}: " + ", ".join(f"{name} {times[name][-1]:.1f} s" for name, _ in clis), flush=True)
        if a.baseline_cli:
            ratios = [b / o for b, o in zip(times["baseline"], times["ours"])]
            print(f"ours vs the baseline: {statistics.median(ratios):.2f}x (per round {', '.join(f'{x:.2f}' for x in ratios)})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--skip-reference", action="store_true", help="time only our two modes")
    ap.add_argument("--scans", type=int, help="time a folder of this many 16-bit TIFF scans instead")
    ap.add_argument("--baseline-cli", help="with --scans: another build of facerestore to time alternately")
    a = ap.parse_args()
    for path in (CKPT, PARSER, DETECTOR, CLI):
        if not os.path.exists(path):
            sys.exit(f"bench_batch: {path} is missing (see scripts/parity_photo.py)")
    if a.scans:
        return bench_scans(a)
    import torch
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "photos")
        os.makedirs(folder)
        make_folder(folder)
        script = REFERENCE_BATCH.format(scripts=os.path.dirname(os.path.abspath(__file__)), threads=a.threads, ckpt=CKPT,
                                        parser=PARSER, folder=folder, out=os.path.join(tmp, "ref"))

        def ours(jobs):
            out = os.path.join(tmp, "ours")
            shutil.rmtree(out, ignore_errors=True)
            cmd = [CLI, "restore", "-i", folder, "-o", out, "--model-path", CKPT, "--detector", DETECTOR, "--parser", PARSER,
                   "--threads", str(a.threads), "--ext", "png"] + (["--jobs", str(jobs)] if jobs else [])
            t = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"bench_batch: {' '.join(cmd)} failed: {r.stderr[-400:]}")
            return time.perf_counter() - t, len(os.listdir(os.path.join(out, "restored_faces")))

        def reference():
            shutil.rmtree(os.path.join(tmp, "ref"), ignore_errors=True)
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"bench_batch: the reference failed: {r.stderr[-400:]}")
            return time.perf_counter() - t, int(r.stdout.split()[-1])

        print(f"torch {torch.__version__}, {a.threads} threads, 20 photos, {a.rounds} rounds (seconds per folder)")
        seq, par, ref = [], [], []
        for k in range(a.rounds):
            p, faces_p = ours(None)
            s, faces_s = ours(2)
            seq.append(s)
            par.append(p)
            line = f"round {k + 1}: ours default {p:.1f} s ({faces_p} faces), ours --jobs 2 {s:.1f} s ({faces_s} faces)"
            if not a.skip_reference:
                r, faces_r = reference()
                ref.append(r)
                line += f", reference {r:.1f} s ({faces_r} faces)"
            print(line, flush=True)
        print(f"ours default vs ours --jobs 2: {statistics.median([s / p for s, p in zip(seq, par)]):.2f}x "
              f"(per round {', '.join(f'{s / p:.2f}' for s, p in zip(seq, par))})")
        if ref:
            print(f"ours default vs the reference: {statistics.median([r / p for r, p in zip(ref, par)]):.2f}x "
                  f"(per round {', '.join(f'{r / p:.2f}' for r, p in zip(ref, par))}); "
                  f"ours --jobs 2 vs the reference: {statistics.median([r / s for r, s in zip(ref, seq)]):.2f}x")


if __name__ == "__main__":
    main()
