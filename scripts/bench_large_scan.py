#!/usr/bin/env python3
"""Peak memory and time of restoring a large 16-bit TIFF scan (not CI): a W×H 16-bit RGB TIFF
(Deflate, strips of 64 rows) made of examples/group.jpg tiled 2×2 with noise in the low bytes,
restored with the random-weight GFP-GAN v1.4 and ParseNet of scripts/parity_photo.py, -s 1, no
background upsampler (or, with --realesrgan MODEL, that Real-ESRGAN model on tiles of 400); once band by band from the file (the default above --stream-pixels) and,
with --whole, once decoded whole (--stream-pixels past the photo's size). Peak RSS from
/usr/bin/time -v.

    swift build -c release --product facerestore
    ~/.cache/facerestore-reference/venv/bin/python scripts/bench_large_scan.py            # 10000×10000
    ~/.cache/facerestore-reference/venv/bin/python scripts/bench_large_scan.py --whole    # and in memory
    ~/.cache/facerestore-reference/venv/bin/python scripts/bench_large_scan.py --realesrgan realesr-animevideov3-ncnn

Needs numpy, OpenCV and tifffile (the reference venv has them).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import tifffile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.expanduser("~/.cache/facerestore-reference/fixtures")
CKPT = os.path.join(FIXTURES, "gfpgan_v1.4_parity.pth")
PARSER = os.path.join(FIXTURES, "parsenet_random.pth")
DETECTOR = os.path.join(ROOT, "..", "shared", "weights", "retinaface_mobilenet0.25_Final.pth")
CLI = os.path.join(ROOT, ".build", "release", "facerestore")


def make_scan(path, w, h):
    tile = cv2.resize(cv2.imread(os.path.join(ROOT, "examples", "group.jpg")), (w // 2, h // 2), interpolation=cv2.INTER_CUBIC)
    img = np.tile(tile, (2, 2, 1))[:h, :w]
    rng = np.random.default_rng(0)
    img16 = img.astype(np.uint16) * 257 + rng.integers(0, 200, img.shape, dtype=np.uint16)
    tifffile.imwrite(path, img16[:, :, ::-1], photometric="rgb", compression="zlib", rowsperstrip=64)


def restore(scan, out, extra):
    cmd = ["/usr/bin/time", "-v", CLI, "restore", "-i", scan, "-o", out, "--model-path", CKPT, "--detector", DETECTOR,
           "--parser", PARSER, "-s", "1", "--verbose", "--threads", "2"] + extra
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_large_scan: {' '.join(cmd)} failed: {r.stderr[-600:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024 / 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", r.stderr).group(1)
    text = (r.stdout + r.stderr).replace("\r", "\n")
    line = next((l.strip() for l in text.splitlines() if "[1/1]" in l and "total" in l), "")
    return rss, wall, line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=10000)
    ap.add_argument("--height", type=int, default=10000)
    ap.add_argument("--whole", action="store_true", help="also restore it decoded whole")
    ap.add_argument("--realesrgan", metavar="MODEL", help="the background through this Real-ESRGAN model (--bg-model), tiles of 400")
    ap.add_argument("--stream-pixels", type=int, help="restore band by band above this many pixels (the CLI's --stream-pixels)")
    a = ap.parse_args()
    background = ["--bg-upsampler", "realesrgan", "--bg-model", a.realesrgan, "--bg-tile", "400"] if a.realesrgan else ["--bg-upsampler", "none"]
    streaming = ["--stream-pixels", str(a.stream_pixels)] if a.stream_pixels else []
    for f in (CKPT, PARSER, DETECTOR, CLI):
        if not os.path.exists(f):
            sys.exit(f"bench_large_scan: {f} is missing (see scripts/parity_photo.py and the README's build)")
    with tempfile.TemporaryDirectory() as tmp:
        scan = os.path.join(tmp, "scan.tif")
        make_scan(scan, a.width, a.height)
        mb = os.path.getsize(scan) / 1e6
        print(f"{a.width}×{a.height} 16-bit RGB TIFF, {mb:.0f} MB (Deflate)")
        runs = [("band by band", streaming)] + ([("decoded whole", ["--stream-pixels", str(a.width * a.height + 1)])] if a.whole else [])
        for name, extra in runs:
            rss, wall, line = restore(scan, os.path.join(tmp, name.replace(" ", "_")), background + extra)
            print(f"{name:14s} peak RSS {rss:.2f} GiB, wall {wall}\n    {line}")


if __name__ == "__main__":
    main()
