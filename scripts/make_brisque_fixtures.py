#!/usr/bin/env python3
"""Regenerates the committed BRISQUE fixtures: small PNG images and OpenCV's BRISQUE of each.

Run with the reference environment's python (python3-opencv 4.6 with the contrib quality module;
the model from Debian's opencv-data):

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_brisque_fixtures.py

Writes Tests/FaceRestoreEvaluationTests/Fixtures/brisque/:
  *.png          crops and resizes of public-domain pictures (scikit-image's astronaut.png,
                 matplotlib's grace_hopper.jpg, the repository's examples/), one JPEG-degraded,
                 one blurred, one gray, one tiny
  expected.json  for each image: how it is read ("color": cv2.imread's BGR uint8; "gray": one
                 channel, cv2.IMREAD_GRAYSCALE), OpenCV's score
                 cv2.quality.QualityBRISQUE_compute(img, model, range)[0], the SVR's output before
                 the clamp to [0, 100] ("svr", from cv2.ml.SVM_load(model).predict on the scaled
                 features), and the 36 features cv2.quality.QualityBRISQUE_computeFeatures(img);
                 VERSIONS records the versions.

    ... scripts/make_brisque_fixtures.py --extra DIR [--count 20] [--seed 1]

instead writes DIR/*.png (random crops, 128-768 px, of the two faces and the group photo, some
resized, JPEG-degraded or blurred, some gray) and DIR/expected.json in the same format, for a
wider parity run (not committed):

    FACERESTORE_BRISQUE_EXTRA=DIR swift test --filter BRISQUE

(BRISQUETests reads it when that variable is set and prints the largest difference.)
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests/FaceRestoreEvaluationTests/Fixtures/brisque")
MODEL = "/usr/share/opencv4/quality/brisque_model_live.yml"
RANGE = "/usr/share/opencv4/quality/brisque_range_live.yml"
ASTRONAUT = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"
GRACE_CANDIDATES = ["/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                    os.path.join(ROOT, "examples/grace_hopper.jpg")]
GROUP = os.path.join(ROOT, "examples/group.jpg")


def fail(message):
    sys.exit(f"make_brisque_fixtures: {message}")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def versions():
    import platform
    try:
        data = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "opencv-data"],
                              capture_output=True, text=True).stdout.strip() or "unknown"
    except OSError:
        data = "unknown"
    return {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
            "opencv-data": data, "brisque_model_live.yml sha256": sha256(MODEL),
            "brisque_range_live.yml sha256": sha256(RANGE)}


def read(path, flags=cv2.IMREAD_COLOR):
    img = cv2.imread(path, flags)
    if img is None:
        fail(f"cannot read {path}")
    return img


def sources():
    grace = next((p for p in GRACE_CANDIDATES if os.path.exists(p)), None)
    if grace is None:
        fail("grace_hopper.jpg not found (install python3-matplotlib)")
    return read(ASTRONAUT), read(grace), read(GROUP)


def jpeg(img, quality):
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        fail("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def svr_output(features):
    """The SVR's prediction before the clamp to [0, 100], as QualityBRISQUE computes it: the features
    scaled to [-1, 1] by the range file in float32 (quality_utils::scale), then SVM::predict."""
    storage = cv2.FileStorage(RANGE, cv2.FILE_STORAGE_READ)   # kept alive while its node is read
    rng = storage.getNode("range").mat().astype(np.float32)
    storage.release()
    lo, hi = rng[0], rng[1]
    x = (np.float32(-1) + (np.float32(2) * (features.astype(np.float32) - lo)) / (hi - lo)).astype(np.float32)
    svm = cv2.ml.SVM_load(MODEL)
    return float(svm.predict(x.reshape(1, -1))[1][0, 0])


def case(directory, name, img, read_as):
    """Writes name.png and returns its expected.json entry (scored as cv2.imread reads the PNG)."""
    path = os.path.join(directory, name)
    if not cv2.imwrite(path, img, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        fail(f"cannot write {path}")
    back = read(path, cv2.IMREAD_GRAYSCALE if read_as == "gray" else cv2.IMREAD_COLOR)
    score = float(cv2.quality.QualityBRISQUE_compute(back, MODEL, RANGE)[0])
    features = cv2.quality.QualityBRISQUE_computeFeatures(back).ravel()
    h, w = back.shape[:2]
    return {"file": name, "read": read_as, "width": int(w), "height": int(h), "score": score,
            "svr": svr_output(features), "features": [None if np.isnan(x) else float(x) for x in features]}


def committed():
    astronaut, grace, group = sources()
    os.makedirs(OUT, exist_ok=True)
    cases = [
        case(OUT, "astronaut_face_160x176.png", astronaut[20:196, 160:320], "color"),   # scores 0 (clamped)
        case(OUT, "astronaut_resized_150x150.png",
             cv2.resize(astronaut, (150, 150), interpolation=cv2.INTER_AREA), "color"),
        case(OUT, "grace_hopper_resized_131x157.png",
             cv2.resize(grace, (131, 157), interpolation=cv2.INTER_AREA), "color"),
        case(OUT, "group_crop_201x133.png", group[40:173, 100:301], "color"),
        case(OUT, "astronaut_jpeg_q15_128x128.png",
             jpeg(cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA), 15), "color"),
        case(OUT, "grace_hopper_blur_96x120.png",
             cv2.GaussianBlur(cv2.resize(grace, (96, 120), interpolation=cv2.INTER_AREA), (0, 0), 2.0), "color"),
        case(OUT, "grace_hopper_gray_97x123.png",
             cv2.cvtColor(grace, cv2.COLOR_BGR2GRAY)[150:273, 200:297], "gray"),
        case(OUT, "astronaut_tiny_13x9.png", astronaut[100:109, 200:213], "color"),
    ]
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"source": "cv2.quality.QualityBRISQUE_compute / computeFeatures (opencv_contrib 4.6), "
                             "model and range from Debian opencv-data, images read with cv2.imread",
                   "VERSIONS": versions(), "cases": cases}, f, indent=1)
    total = sum(os.path.getsize(os.path.join(OUT, c["file"])) for c in cases)
    for c in cases:
        print(f"{c['file']:36s} {c['score']:.6f}  (svr {c['svr']:.6f})")
    print(f"wrote {len(cases)} images ({total // 1024} KiB) and expected.json to {OUT}")


def extra(directory, count, seed):
    rng = np.random.default_rng(seed)
    pictures = sources()
    os.makedirs(directory, exist_ok=True)
    cases = []
    for i in range(count):
        src = pictures[i % len(pictures)]
        h, w = src.shape[:2]
        size = int(rng.integers(128, min(768, h, w) + 1))
        aspect = rng.uniform(0.75, 1.33)
        ch, cw = min(h, max(16, int(size * aspect))), size
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        img = src[y:y + ch, x:x + cw]
        label = f"crop{cw}x{ch}"
        if rng.random() < 0.4:   # resized to another size in 128-768
            tw = int(rng.integers(128, 769))
            th = max(16, int(tw * ch / cw))
            img = cv2.resize(img, (tw, th), interpolation=[cv2.INTER_AREA, cv2.INTER_CUBIC][int(rng.integers(2))])
            label += f"_to{tw}x{th}"
        kind = int(rng.integers(4))
        if kind == 1:
            q = int(rng.integers(5, 60))
            img = jpeg(img, q)
            label += f"_jpeg{q}"
        elif kind == 2:
            sigma = float(rng.uniform(0.5, 3.0))
            img = cv2.GaussianBlur(img, (0, 0), sigma)
            label += f"_blur{sigma:.1f}"
        read_as = "gray" if rng.random() < 0.2 else "color"
        if read_as == "gray":
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        cases.append(case(directory, f"extra_{i:02d}_{label}.png", img, read_as))
        print(f"{cases[-1]['file']:48s} {cases[-1]['score']:.6f}")
    with open(os.path.join(directory, "expected.json"), "w") as f:
        json.dump({"source": "make_brisque_fixtures.py --extra", "VERSIONS": versions(), "cases": cases}, f, indent=1)
    print(f"wrote {count} images and expected.json to {directory}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extra", metavar="DIR", help="write random variants to DIR instead")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not hasattr(cv2, "quality"):
        fail("this OpenCV has no contrib quality module (python3-opencv from Debian has it)")
    for path in (MODEL, RANGE):
        if not os.path.exists(path):
            fail(f"{path} is missing (apt-get install opencv-data)")
    if args.extra:
        extra(args.extra, args.count, args.seed)
    else:
        committed()


if __name__ == "__main__":
    main()
