#!/usr/bin/env python3
"""Fixtures for LPIPS (VGG, AlexNet) and the ArcFace "Deg." identity angle, with random weights.

Run with the reference environment's python:

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_lpips_arcface_fixtures.py [--full-only|--small-only]

Reference code (never a build dependency): lpips 0.1.4 (PyPI; `pip install lpips==0.1.4` into the
venv), Debian's torch 1.13 and torchvision 0.14.1, gfpgan 1.3.8 `gfpgan/archs/arcface_arch.py`
(`ResNetArcFace`, the same module tree as arcface-pytorch's `resnet_face18`), OpenCV 4.6 (Debian).
The exact versions are written to the fixtures' VERSIONS.

Random weights. Tensor i of a state dict (in the order of the list written next to the expected
values; BatchNorm's num_batches_tracked left out) is z = first n of
`torch.manual_seed(seed + i); torch.empty(max(n, 16)).normal_()`, reshaped, then by its kind:
  conv / linear weight   z · 2^-k with k = (bit_length(fan_in) − 1) // 2
  ArcFace fc5 weight     z · 2^-(k+6)   (embeddings of magnitude ~1, not ~70)
  bias                   z · 2^-4
  lpips linear (lin)     |z| · 2^-4
  BatchNorm weight       z · 2^-3 + 1      bias, running_mean  z · 2^-3
  BatchNorm running_var  |z| · 2^-1 + 2^-1
  PReLU weight           z · 2^-4 + 2^-2
Every factor is a power of two, so the products are exact and FaceRestoreEngine's TorchGenerator
rebuilds the same tensors in the Swift tests (nothing of 60–100 MB is committed).

Writes
  Tests/FaceRestoreEvaluationTests/Fixtures/lpips/   small PNG pairs (64², 48×80), weights.json
      (the key lists with shapes, kinds and seeds), expected.json (LPIPS-VGG and -Alex with random
      backbone and random linear layers, and with the lpips wheel's linear layers).
  Tests/FaceRestoreEvaluationTests/Fixtures/arcface/ gray/colour PNG inputs, the 128² gray inputs
      VQFR's load_image makes of them (cv2.imread(p, 0) + INTER_LINEAR resize) as PNG, weights.json,
      expected.json (embeddings of the random ResNetArcFace, with and without SE, and the angles).
  ~/.cache/facerestore-reference/fixtures/lpips_arcface/ (or $FACERESTORE_REFERENCE_FIXTURES/
      lpips_arcface): full-size files as users have them — vgg16/alexnet random backbones in
      torchvision's layout (features.* plus one classifier tensor), one lpips.LPIPS() state-dict
      dump, the random ArcFace in GFP-GAN's plain layout and in arcface-pytorch's DataParallel
      layout (module.*) — 512² image pairs, full.json with the reference values and the reference's
      time per image.
"""
import argparse
import json
import os
import platform
import sys
import time

import cv2
import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests/FaceRestoreEvaluationTests/Fixtures")
FACES = [os.path.join(ROOT, "examples/faces", n) for n in ("grace_hopper.jpg", "astronaut.jpg")]
FULL = os.path.join(os.environ.get("FACERESTORE_REFERENCE_FIXTURES")
                    or os.path.join(os.path.expanduser("~"), ".cache/facerestore-reference/fixtures"), "lpips_arcface")

LPIPS_SEED = {"vgg": 1000, "alex": 2000}
LIN_SEED = {"vgg": 3000, "alex": 4000}
ARCFACE_SEED = {False: 5000, True: 6000}


def versions():
    import torchvision
    from importlib.metadata import version
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "lpips": version("lpips"), "gfpgan": version("gfpgan"), "numpy": np.__version__,
            "opencv": cv2.__version__}


# ------------------------------------------------------------------------------------------------
# the random-weight generator (mirrored in Tests/FaceRestoreEvaluationTests/RandomWeights.swift)

def kind_of(key, shape):
    name = key.rsplit(".", 1)[-1]
    if key.startswith("lin") and ".model." in key:
        return "lin"
    if "prelu" in key or (".se.fc.1." in key):
        return "prelu"
    if name in ("running_mean", "running_var"):
        return name
    if name == "weight" and len(shape) == 1:
        return "bn_weight"
    if name == "bias" and (key.rsplit(".", 1)[0] + ".running_mean") in BN_MODULES:
        return "bn_bias"
    if name == "bias":
        return "bias"
    if key == "fc5.weight":
        return "head"
    return "weight"


BN_MODULES = set()


def generate(spec, seed):
    """spec: [(key, shape, kind)] → {key: tensor}."""
    out = {}
    for i, (key, shape, kind) in enumerate(spec):
        n = int(np.prod(shape)) if shape else 1
        torch.manual_seed(seed + i)
        z = torch.empty(max(n, 16)).normal_()[:n].reshape(shape).clone()
        if kind in ("weight", "head"):
            fan_in = n // shape[0]
            t = z * 2.0 ** -((fan_in.bit_length() - 1) // 2 + (6 if kind == "head" else 0))
        elif kind == "bias":
            t = z * 2.0 ** -4
        elif kind == "lin":
            t = z.abs() * 2.0 ** -4
        elif kind == "bn_weight":
            t = z * 2.0 ** -3 + 1
        elif kind in ("bn_bias", "running_mean"):
            t = z * 2.0 ** -3
        elif kind == "running_var":
            t = z.abs() * 2.0 ** -1 + 2.0 ** -1
        elif kind == "prelu":
            t = z * 2.0 ** -4 + 2.0 ** -2
        else:
            raise ValueError(kind)
        out[key] = t.contiguous()
    return out


def spec_of(state_dict):
    BN_MODULES.update(k for k in state_dict if k.endswith(".running_mean"))
    return [(k, list(v.shape), kind_of(k, list(v.shape))) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")]


# ------------------------------------------------------------------------------------------------
# LPIPS

def lpips_model(net, linear):
    """lpips.LPIPS(net, pnet_rand=True) with our random backbone; linear: 'wheel' or 'random'."""
    import lpips
    import torchvision
    lp = lpips.LPIPS(net=net, pretrained=(linear == "wheel"), pnet_rand=True, verbose=False)
    tv = torchvision.models.vgg16() if net == "vgg" else torchvision.models.alexnet()
    feat_spec = spec_of({"features." + k: v for k, v in tv.features.state_dict().items()})
    feats = generate(feat_spec, LPIPS_SEED[net])
    ends = [4, 9, 16, 23, 30] if net == "vgg" else [2, 5, 8, 10, 12]
    sd = {}
    for k, v in feats.items():
        i = int(k.split(".")[1])
        s = next(j for j, e in enumerate(ends) if i < e)
        sd[f"slice{s + 1}.{i}.{k.split('.')[2]}"] = v
    lp.net.load_state_dict(sd, strict=True)
    lin_spec = [(f"lin{k}.model.1.weight", list(getattr(lp, f"lin{k}").model[1].weight.shape), "lin") for k in range(5)]
    if linear == "random":
        for k, v in generate(lin_spec, LIN_SEED[net]).items():
            getattr(lp, k.split(".")[0]).model[1].weight.data.copy_(v)
    lp.eval()
    return lp, feat_spec, lin_spec, feats


def lpips_input(path):
    """basicsr scripts/metrics/calculate_lpips.py: imread UNCHANGED /255, BGR→RGB, normalize 0.5/0.5."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.
    t = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))).float()
    t.sub_(0.5).div_(0.5)
    return t.unsqueeze(0)


def lpips_pairs_small(out):
    os.makedirs(out, exist_ok=True)
    faces = [cv2.imread(p) for p in FACES]
    small = [cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in faces]
    blurred = cv2.GaussianBlur(small[0], (5, 5), 1.2)
    ok, enc = cv2.imencode(".jpg", blurred, [cv2.IMWRITE_JPEG_QUALITY, 25])
    degraded = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    rng = np.random.RandomState(7)
    noise = rng.randint(0, 256, (48, 80, 3)).astype(np.uint8)
    yy, xx = np.mgrid[0:48, 0:80]
    gradient = np.stack([(xx * 3) % 256, (yy * 5) % 256, ((xx + yy) * 2) % 256], axis=2).astype(np.uint8)
    files = {"grace_64.png": small[0], "astronaut_64.png": small[1], "grace_64_degraded.png": degraded,
             "noise_48x80.png": noise, "gradient_48x80.png": gradient}
    for name, img in files.items():
        cv2.imwrite(os.path.join(out, name), img)
    return [("grace_64_degraded.png", "grace_64.png"), ("astronaut_64.png", "grace_64.png"),
            ("noise_48x80.png", "gradient_48x80.png"), ("grace_64.png", "grace_64.png")]


def make_lpips_small():
    out = os.path.join(FIX, "lpips")
    pairs = lpips_pairs_small(out)
    weights, expected = {}, {"pairs": [{"restored": r, "reference": g} for r, g in pairs]}
    with torch.no_grad():
        for net in ("vgg", "alex"):
            for linear in ("random", "wheel"):
                lp, feat_spec, lin_spec, _ = lpips_model(net, linear)
                weights[net] = {"backbone_seed": LPIPS_SEED[net], "backbone": feat_spec,
                                "linear_seed": LIN_SEED[net], "linear": lin_spec}
                values = [float(lp(lpips_input(os.path.join(out, r)), lpips_input(os.path.join(out, g))).item())
                          for r, g in pairs]
                expected[f"{net}_{linear}_linear"] = values
                print(f"lpips {net} {linear} linear: {values}")
    expected["versions"] = versions()
    with open(os.path.join(out, "weights.json"), "w") as f:
        json.dump(weights, f)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


# ------------------------------------------------------------------------------------------------
# ArcFace

def arcface_model(use_se):
    from gfpgan.archs.arcface_arch import ResNetArcFace
    m = ResNetArcFace(block="IRBlock", layers=[2, 2, 2, 2], use_se=use_se)
    spec = spec_of(m.state_dict())
    sd = generate(spec, ARCFACE_SEED[use_se])
    m.load_state_dict(sd, strict=False)
    missing = [k for k in m.state_dict() if k not in sd and not k.endswith("num_batches_tracked")]
    assert not missing, missing
    m.eval()
    return m, spec


def vqfr_load_image(path):
    """VQFR metric_paper/calculate_cos_dist.py load_image."""
    image = cv2.imread(path, 0)
    image = cv2.resize(image, (128, 128), interpolation=cv2.INTER_LINEAR)
    gray = image.copy()
    image = image[np.newaxis, :, :].astype(np.float32, copy=False)
    image -= 127.5
    image /= 127.5
    return torch.from_numpy(image), gray


def vqfr_angle(e0, e1):
    """cosin_metric + arccos in degrees as the script computes it (float32 numpy)."""
    cos = np.dot(e0, e1) / (np.linalg.norm(e0) * np.linalg.norm(e1))
    return float(np.arccos(cos) / np.pi * 180)


def angle64(e0, e1):
    a, b = np.float64(e0), np.float64(e1)
    cos = np.clip(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1)
    return float(np.degrees(np.arccos(cos)))


def arcface_inputs_small(out):
    os.makedirs(out, exist_ok=True)
    faces = [cv2.imread(p) for p in FACES]
    g = faces[0]
    files = {}
    blurred = cv2.GaussianBlur(cv2.resize(g, (200, 200), interpolation=cv2.INTER_AREA), (7, 7), 2.0)
    files["grace_blur_200.png"] = blurred
    rgba = cv2.cvtColor(cv2.resize(faces[1], (256, 256), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2BGRA)
    rgba[:, :, 3] = 200
    files["astronaut_rgba_256.png"] = cv2.GaussianBlur(rgba, (5, 5), 1.5)
    files["grace_gray_150x170.png"] = cv2.GaussianBlur(cv2.cvtColor(cv2.resize(g, (150, 170), interpolation=cv2.INTER_AREA),
                                                                   cv2.COLOR_BGR2GRAY), (5, 5), 1.0)
    ok, enc = cv2.imencode(".jpg", cv2.resize(g, (180, 180), interpolation=cv2.INTER_AREA), [cv2.IMWRITE_JPEG_QUALITY, 30])
    with open(os.path.join(out, "grace_q30_180.jpg"), "wb") as f:
        f.write(enc.tobytes())
    for name, img in files.items():
        cv2.imwrite(os.path.join(out, name), img)
    inputs = {"grace_hopper.jpg": FACES[0], "astronaut.jpg": FACES[1]}
    inputs.update({n: os.path.join(out, n) for n in list(files) + ["grace_q30_180.jpg"]})
    return inputs


def make_arcface_small():
    out = os.path.join(FIX, "arcface")
    inputs = arcface_inputs_small(out)
    grays = {}
    tensors = {}
    for name, path in inputs.items():
        t, gray = vqfr_load_image(path)
        tensors[name] = t
        stem = os.path.splitext(name)[0]
        cv2.imwrite(os.path.join(out, f"input128_{stem}.png"), gray)
        grays[name] = f"input128_{stem}.png"
    pairs = [("grace_blur_200.png", "grace_hopper.jpg"), ("grace_q30_180.jpg", "grace_hopper.jpg"),
             ("grace_gray_150x170.png", "grace_hopper.jpg"), ("astronaut_rgba_256.png", "astronaut.jpg"),
             ("astronaut.jpg", "grace_hopper.jpg"), ("grace_hopper.jpg", "grace_hopper.jpg")]
    expected = {"inputs": {n: {"file": os.path.basename(p) if not p.startswith(os.path.join(ROOT, "examples")) else
                               os.path.relpath(p, ROOT), "input128": grays[n]} for n, p in inputs.items()},
                "pairs": [{"restored": r, "reference": g} for r, g in pairs]}
    weights = {}
    with torch.no_grad():
        for use_se in (False, True):
            m, spec = arcface_model(use_se)
            weights["se" if use_se else "plain"] = {"seed": ARCFACE_SEED[use_se], "tensors": spec}
            names = list(inputs)
            emb = m(torch.stack([tensors[n] for n in names])).numpy()
            emb1 = {n: m(tensors[n][None]).numpy()[0] for n in names[:2]}
            print("arcface batch vs single max diff", max(float(np.abs(emb[i] - emb1[n]).max()) for i, n in enumerate(names[:2])))
            key = "se" if use_se else "plain"
            # 9 significant digits: each float32 exactly, in half the text of repr(double).
            expected[key] = {"embeddings": {n: [float("%.9g" % v) for v in emb[i]] for i, n in enumerate(names)},
                             "angles_vqfr": [vqfr_angle(emb[names.index(r)], emb[names.index(g)]) for r, g in pairs],
                             "angles": [angle64(emb[names.index(r)], emb[names.index(g)]) for r, g in pairs]}
            print(f"arcface {key}: |e| ~ {float(np.abs(emb).mean()):.4f}, angles {expected[key]['angles']}")
    expected["versions"] = versions()
    with open(os.path.join(out, "weights.json"), "w") as f:
        json.dump(weights, f)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


# ------------------------------------------------------------------------------------------------
# full size (out of the repository)

def degrade(img, sigma, quality, scale):
    h, w = img.shape[:2]
    x = cv2.GaussianBlur(img, (0, 0), sigma)
    x = cv2.resize(x, (int(w / scale), int(h / scale)), interpolation=cv2.INTER_LINEAR)
    ok, enc = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, quality])
    x = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    return cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)


def timed(fn, runs=3):
    fn()
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def make_full():
    os.makedirs(FULL, exist_ok=True)
    faces = [cv2.imread(p) for p in FACES]
    names = []
    for i, f in enumerate(faces):
        stem = os.path.splitext(os.path.basename(FACES[i]))[0]
        cv2.imwrite(os.path.join(FULL, f"{stem}_gt.png"), f)
        cv2.imwrite(os.path.join(FULL, f"{stem}_restored.png"), degrade(f, 2.0 + i, 40, 3.0))
        names.append(stem)
    rng = np.random.RandomState(11)
    cv2.imwrite(os.path.join(FULL, "noise_gt.png"), rng.randint(0, 256, (512, 512, 3)).astype(np.uint8))
    cv2.imwrite(os.path.join(FULL, "noise_restored.png"), cv2.GaussianBlur(cv2.imread(os.path.join(FULL, "noise_gt.png")), (0, 0), 1.0))
    names.append("noise")
    result = {"images": names, "threads": torch.get_num_threads(), "versions": versions()}
    with torch.no_grad():
        for net in ("vgg", "alex"):
            lp, feat_spec, lin_spec, feats = lpips_model(net, "wheel")
            tv_sd = dict(feats)
            tv_sd["classifier.6.bias"] = torch.zeros(1000)   # torchvision's head: read by nobody
            torch.save(tv_sd, os.path.join(FULL, f"{net}_random_torchvision.pth"))
            if net == "vgg":
                torch.save(lp.state_dict(), os.path.join(FULL, "vgg_random_lpips_dump.pth"))
            values = []
            for n in names:
                r, g = lpips_input(os.path.join(FULL, f"{n}_restored.png")), lpips_input(os.path.join(FULL, f"{n}_gt.png"))
                values.append(float(lp(r, g).item()))
            ms = timed(lambda: lp(r, g))
            result[f"lpips_{net}"] = values
            result[f"lpips_{net}_ms"] = ms
            print(f"full lpips {net}: {values}; reference {ms:.0f} ms per pair at 512²")
        m, spec = arcface_model(False)
        sd = {k: v for k, v in m.state_dict().items()}
        torch.save(sd, os.path.join(FULL, "arcface_random_plain.pth"))
        torch.save({"module." + k: v for k, v in sd.items()}, os.path.join(FULL, "arcface_random_dataparallel.pth"))
        emb, angles, angles_vqfr = {}, [], []
        for n in names:
            tr, _ = vqfr_load_image(os.path.join(FULL, f"{n}_restored.png"))
            tg, _ = vqfr_load_image(os.path.join(FULL, f"{n}_gt.png"))
            out = m(torch.stack([tg, tr])).numpy()
            emb[n] = {"reference": [float(v) for v in out[0]], "restored": [float(v) for v in out[1]]}
            angles.append(angle64(out[0], out[1]))
            angles_vqfr.append(vqfr_angle(out[0], out[1]))
        result["arcface_embeddings"] = emb
        result["arcface_angles"] = angles
        result["arcface_angles_vqfr"] = angles_vqfr
        result["arcface_ms"] = timed(lambda: m(tr[None]))
        print(f"full arcface angles {angles}; reference {result['arcface_ms']:.1f} ms per image")
    with open(os.path.join(FULL, "full.json"), "w") as f:
        json.dump(result, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small-only", action="store_true")
    ap.add_argument("--full-only", action="store_true")
    args = ap.parse_args()
    if not args.full_only:
        make_lpips_small()
        make_arcface_small()
    if not args.small_only:
        make_full()


if __name__ == "__main__":
    main()
