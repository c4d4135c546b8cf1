#!/usr/bin/env python3
"""Regenerates the committed NIQE fixtures: small PNG images and basicsr 1.4.2's NIQE of each.

Run with the reference environment's python (basicsr 1.4.2, numpy, scipy, torch, OpenCV):

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_niqe_fixtures.py

Writes Tests/FaceRestoreEvaluationTests/Fixtures/niqe/:
  *.png          crops and resizes of public-domain pictures (scikit-image's astronaut.png,
                 matplotlib's grace_hopper.jpg, the repository's examples/), one JPEG-degraded,
                 one gray, one partly flat (blocks whose features are NaN), one 96×96 block only
  expected.json  for each image: how it is read, crop_border, and
                 basicsr.metrics.niqe.calculate_niqe(img, crop_border) with img as cv2 reads it
                 (IMREAD_COLOR, BGR uint8; or IMREAD_GRAYSCALE, a 2-D uint8 array, for "gray");
                 VERSIONS records the libraries used.

    ... scripts/make_niqe_fixtures.py --extra DIR [--count 20] [--seed 1]

instead writes DIR/*.png (random crops and sizes of the two faces, 256–768 px, some JPEG-degraded
or with a crop border) and DIR/expected.json in the same format, for a wider parity run:

    FACERESTORE_NIQE_EXTRA=DIR swift test --filter NIQE

(NIQETests reads it when that variable is set and prints the largest difference.)
"""
import argparse
import json
import os
import sys
import warnings

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests/FaceRestoreEvaluationTests/Fixtures/niqe")
ASTRONAUT = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"
GRACE_CANDIDATES = ["/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                    os.path.join(ROOT, "examples/grace_hopper.jpg")]
GROUP = os.path.join(ROOT, "examples/group.jpg")


def versions():
    import platform
    import basicsr
    import scipy
    import torch
    return {"python": platform.python_version(), "basicsr": basicsr.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "torch": torch.__version__, "opencv": cv2.__version__}


def niqe_of(path, read, crop_border):
    from basicsr.metrics.niqe import calculate_niqe
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE if read == "gray" else cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"make_niqe_fixtures: cannot read {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # numpy's "Mean of empty slice" on flat blocks (NaN features)
        return float(calculate_niqe(img, crop_border))


def load(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"make_niqe_fixtures: cannot read {path}")
    return img


def jpeg(img, quality):
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def write(directory, name, img):
    path = os.path.join(directory, name)
    if not cv2.imwrite(path, img, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        sys.exit(f"make_niqe_fixtures: cannot write {path}")
    return path


def fixtures():
    astronaut = load(ASTRONAUT)                                   # 512×512
    grace = load(next(p for p in GRACE_CANDIDATES if os.path.exists(p)))   # 600×512 (h×w)
    group = load(GROUP)
    cases = []   # (name, image, read, crop_border)
    # Colour, width not a multiple of 96 (basicsr crops to 192×192 from the top left).
    a = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)[8:200, 40:280]
    cases.append(("astronaut_192x240.png", a, "color", 0))
    # crop_border 7: 210×210 → 196×196 → 192×192.
    g = cv2.resize(grace, (260, 305), interpolation=cv2.INTER_AREA)[44:254, 24:234]
    cases.append(("grace_hopper_210_crop7.png", g, "color", 7))
    # JPEG-degraded (quality 30), then stored losslessly.
    h, w = group.shape[:2]
    q = jpeg(cv2.resize(group, (w * 208 // h, 208), interpolation=cv2.INTER_AREA)[:, :200], 30)
    cases.append(("group_jpeg_q30_208x200.png", q, "color", 0))
    # One channel: cv2.IMREAD_GRAYSCALE gives a 2-D array, which basicsr takes as is (no Y).
    gray = cv2.cvtColor(cv2.resize(astronaut, (288, 288), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)[40:232, 48:240]
    cases.append(("astronaut_gray_192x192.png", gray, "gray", 0))
    # Partly flat: the flat 96×96 block's features are NaN (alpha falls back to the grid's first
    # value), which exercises nanmean and the NaN-row filter of the covariance.
    pf = cv2.resize(grace, (240, 281), interpolation=cv2.INTER_AREA)[50:242, 24:216].copy()
    pf[72:192, 72:192] = (90, 120, 150)
    cases.append(("grace_hopper_partflat_192x192.png", pf, "color", 0))
    # A single 96×96 block: np.cov of one row is a scalar variance (a basicsr quirk kept).
    s = cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA)[20:120, 50:150]
    cases.append(("astronaut_single_block_100x100.png", s, "color", 0))
    return cases


def extra(count, seed):
    rng = np.random.default_rng(seed)
    faces = [("astronaut", load(ASTRONAUT)), ("grace_hopper", load(next(p for p in GRACE_CANDIDATES if os.path.exists(p)))),
             ("group", load(GROUP)), ("astronaut_jpg", load(os.path.join(ROOT, "examples/astronaut.jpg")))]
    cases = []
    for i in range(count):
        name, src = faces[i % len(faces)]
        side = int(rng.integers(256, 769))
        aspect = rng.uniform(0.75, 1.33)
        w, h = side, max(192, min(900, int(side * aspect)))
        scale = max(w / src.shape[1], h / src.shape[0]) * rng.uniform(1.0, 1.3)
        big = cv2.resize(src, (int(np.ceil(src.shape[1] * scale)), int(np.ceil(src.shape[0] * scale))),
                         interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        y = int(rng.integers(0, big.shape[0] - h + 1))
        x = int(rng.integers(0, big.shape[1] - w + 1))
        img = big[y:y + h, x:x + w]
        tag = ""
        if i % 3 == 1:
            quality = int(rng.integers(10, 90))
            img = jpeg(img, quality)
            tag = f"_q{quality}"
        read = "gray" if i % 7 == 5 else "color"
        if read == "gray":
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        crop = int(rng.integers(1, 20)) if i % 5 == 2 else 0
        cases.append((f"extra{i:02d}_{name}_{w}x{h}{tag}.png", img, read, crop))
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extra", metavar="DIR", help="write random parity cases to DIR instead of the fixtures")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    directory = args.extra or OUT
    os.makedirs(directory, exist_ok=True)
    cases = extra(args.count, args.seed) if args.extra else fixtures()
    entries = []
    for name, img, read, crop in cases:
        path = write(directory, name, img)
        value = niqe_of(path, read, crop)
        entries.append({"file": name, "read": read, "crop_border": crop, "niqe": value})
        print(f"{name}: {img.shape[1]}×{img.shape[0]} {read} crop {crop}: NIQE {value:.9f}")
    doc = {"source": "basicsr.metrics.niqe.calculate_niqe (basicsr 1.4.2), images read with cv2.imread",
           "VERSIONS": versions(), "cases": entries}
    with open(os.path.join(directory, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(directory, e["file"])) for e in entries)
    print(f"wrote {len(entries)} images ({total // 1024} KiB) and expected.json to {directory}")


if __name__ == "__main__":
    main()
