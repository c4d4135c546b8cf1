#!/usr/bin/env python3
"""Whole-photo parity of `facerestore restore` with CodeFormer's own pipeline (reference env, not CI).

    swift build -c release --product facerestore
    ~/.cache/facerestore-reference/venv/bin/python scripts/parity_codeformer_pipeline.py \
        [--codeformer /work/.mirror/sczhou+CodeFormer/repo] [--threads 2] [--keep DIR] [--cases NAME ...]

The reference is `inference_codeformer.py` for one image, step by step, with the `facelib` of
sczhou/CodeFormer (S-Lab licence, non-commercial: nothing of it is in this repository). The
script exports `facelib/` and `basicsr/utils/img_util.py` at run time into a temporary folder,
from a bare git directory (`git archive HEAD`, the mirror by default) or from a checkout given
with `--codeformer`, and imports them from there. The venv's basicsr 1.4.2 stands in for
CodeFormer's fork (it lacks `basicsr.utils.misc.get_device`: set to the CPU here), and facelib's
`load_file_from_url` is patched to return the local weights:
  - CodeFormer: `codeformer_random.pth` from `scripts/make_codeformer_fixtures.py`, loaded
    strictly into spandrel-extra-arches' copy of the arch (bit-identical to upstream's), called as
    `net(x, weight=w)[0]` (spandrel's forward always runs with adain=True; upstream's is
    `net(x, w=w, adain=True)[0]`);
  - detector: RetinaFace MobileNet0.25, the real weights from ../shared/weights
    (`init_detection_model('retinaface_mobile0.25')`); our CLI gets the same file;
  - parser: the random ParseNet of `scripts/make_fixtures.py` (`init_parsing_model('parsenet')`
    loads it strictly).
Per image: `read_image`, `get_face_landmarks_5(only_center_face, resize=640,
eye_dist_threshold=5)`, `align_warp_face`, per face img2tensor/normalize → net →
`tensor2img(rgb2bgr, min_max=(-1, 1))` → uint8 → `add_restored_face(restored, cropped)`,
`get_inverse_affine`, `paste_faces_to_input_image(upsample_img=None)`; `--has_aligned` resizes to
512² and restores. `use_parse=False` runs facelib's square-mask-only path. The `_faceup` cases
are `--face_upsample` without a background upsampler: `face_upsampler` is realesrgan 0.3.0's
`RealESRGANer` (the same code as CodeFormer's `basicsr/utils/realesrgan_utils.py`) with
`set_realesrgan`'s settings (RRDBNet x2, tile 400, tile_pad 40, pre_pad 0) on the random x2plus
of `scripts/make_fixtures.py`; ours gets `--face-upsample --bg-model` that file.

Ours: `facerestore restore -i PHOTO -o DIR --model-path … --detector … (--parser … | --no-parse)
-s S -w W --ext png [--aligned]`, then the final images are compared: shape, max |Δ|, share of
values and of pixels (all three channels) within 1 gray level; the script exits 1 when a case
is under the gate (below). It also compares the number of faces and the crops and restored faces
the CLI writes (`cropped_faces/`, `restored_faces/`).

Gray photos: upstream keeps the gray-toned face (`adain_npy(bgr2gray(face), crop)`) in float64
through the parse mask and the paste, ours rounds (and clamps) it to 8 bits first. When that
float face goes above 256, `paste_faces_to_input_image` returns uint16 (its "16-bit image"
test), negatives wrapping; such a result is compared as the float image clipped to 0…255. For
gray cases the script also runs the reference with the toned face rounded (np.round, clipped,
uint8) and reports ours against it and the rounding's own cost (reference vs rounded reference).

With random weights the codebook lookup turns crop differences of a few gray levels (the
detector's landmarks differ from torch's in float32's last bits, which moves a few of
warpAffine's 1/32-pixel sample positions) into a few flipped tokens, and a flipped token changes
a whole patch of the face. So each case also checks the stages on equal inputs: `facerestore
detect` on the image facelib's detector saw, the crops, the reference network on our crops
against our restored faces, and facelib's paste of our restored faces against our image. The
gate (≥ 99.9 % of pixels within 1) applies to the last two; `--strict` gates end to end too.
"""
import argparse
import contextlib
import glob
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
FIXTURES = os.environ.get("FACERESTORE_REFERENCE_FIXTURES", os.path.expanduser("~/.cache/facerestore-reference/fixtures"))
SHARED_WEIGHTS = os.path.join(ROOT, "..", "shared", "weights")
MIRROR = "/work/.mirror/sczhou+CodeFormer/repo"
ARCH_MODULE = "spandrel_extra_arches.architectures.CodeFormer.__arch.codeformer"
GATE = 0.999


def export_reference(source, dest):
    """facelib/ and basicsr/utils/img_util.py from a checkout or a bare git dir into `dest`."""
    if os.path.isdir(os.path.join(source, "facelib")):
        shutil.copytree(os.path.join(source, "facelib"), os.path.join(dest, "facelib"))
        os.makedirs(os.path.join(dest, "basicsr", "utils"))
        shutil.copy(os.path.join(source, "basicsr", "utils", "img_util.py"), os.path.join(dest, "basicsr", "utils"))
        return "checkout " + source
    archive = subprocess.run(["git", "--git-dir", source, "archive", "HEAD", "facelib", "basicsr/utils/img_util.py"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    commit = subprocess.run(["git", "--git-dir", source, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return f"{source} @ {commit}"


class Reference:
    """CodeFormer's pipeline with its facelib, the models loaded from local files."""

    def __init__(self, tree, model, detector, parser, face_upsampler=None):
        import basicsr.utils.misc as bmisc
        if not hasattr(bmisc, "get_device"):
            bmisc.get_device = lambda gpu_id=None: torch.device("cpu")
        sys.path.insert(0, tree)
        import facelib.detection as fdet
        import facelib.parsing as fparse
        fdet.load_file_from_url = lambda url, **kw: detector
        fparse.load_file_from_url = lambda url, **kw: parser
        import facelib.utils.face_restoration_helper as frh
        from facelib.utils.misc import is_gray
        self.frh, self.is_gray = frh, is_gray
        spec = importlib.util.spec_from_file_location("cf_img_util", os.path.join(tree, "basicsr", "utils", "img_util.py"))
        self.img_util = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.img_util)
        arch = importlib.import_module(ARCH_MODULE)
        self.net = arch.CodeFormer(dim_embd=512, codebook_size=1024, n_head=8, n_layers=9,
                                   connect_list=["32", "64", "128", "256"])
        self.net.load_state_dict(torch.load(model, map_location="cpu")["params_ema"], strict=True)
        self.net.eval()
        self.helpers = {}
        self.face_upsampler = None
        if face_upsampler:
            from basicsr.archs.rrdbnet_arch import RRDBNet
            from realesrgan import RealESRGANer
            self.face_upsampler = RealESRGANer(
                scale=2, model_path=face_upsampler, tile=400, tile_pad=40, pre_pad=0, half=False,
                model=RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=2))

    def helper(self, upscale, use_parse):
        key = (upscale, use_parse)
        if key not in self.helpers:
            h = self.frh.FaceRestoreHelper(upscale, face_size=512, crop_ratio=(1, 1), det_model="retinaface_mobile0.25",
                                           save_ext="png", use_parse=use_parse, device=torch.device("cpu"))
            detect = h.face_detector.detect_faces

            def recorded(image, *args, **kwargs):
                # what the detector saw and returned, for the detector check
                result = detect(image, *args, **kwargs)
                self.last_detection = (image.copy(), None if result is None else np.array(result))
                return result
            h.face_detector.detect_faces = recorded
            self.helpers[key] = h
        return self.helpers[key]

    def restore_face(self, cropped, w, cache=None):
        """inference_codeformer.py's per-face step: the 8-bit restored face and the codebook
        tokens (argmax of the logits). `cache` maps (crop bytes, w) to them."""
        key = (cropped.tobytes(), w)
        if cache is not None and key in cache:
            return cache[key]
        from torchvision.transforms.functional import normalize
        t = self.img_util.img2tensor(cropped / 255., bgr2rgb=True, float32=True)
        normalize(t, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), inplace=True)
        with torch.no_grad():
            output, logits = self.net(t.unsqueeze(0), weight=w)
            restored = self.img_util.tensor2img(output, rgb2bgr=True, min_max=(-1, 1))
        result = (restored.astype("uint8"), logits[0].argmax(-1).numpy())
        if cache is not None:
            cache[key] = result
        return result

    def run(self, path, upscale, w, use_parse, aligned=False, round_gray=False, faces=None, cache=None, faceup=False):
        """The final image (or the restored face for `aligned`) and intermediates. `round_gray`:
        gray-toned faces rounded before the paste ("clip": and clipped to 8 bits, as ours). `faces`: these restored faces are
        pasted instead of the network's (as they are: no gray toning)."""
        with contextlib.redirect_stdout(io.StringIO()):   # facelib prints "Grayscale input: True"
            return self._run(path, upscale, w, use_parse, aligned, round_gray, faces, cache, faceup)

    def _run(self, path, upscale, w, use_parse, aligned, round_gray, faces, cache, faceup):
        helper = self.helper(upscale, use_parse)
        helper.clean_all()
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        info = {}
        if aligned:
            img = cv2.resize(img, (512, 512), interpolation=cv2.INTER_LINEAR)
            helper.is_gray = self.is_gray(img, threshold=10)
            helper.cropped_faces = [img]
        else:
            helper.read_image(img)
            info["faces"] = helper.get_face_landmarks_5(only_center_face=False, resize=640, eye_dist_threshold=5)
            helper.align_warp_face()
            info["landmarks"] = [np.asarray(l, dtype=np.float64) for l in helper.all_landmarks_5]
        info["gray"] = bool(helper.is_gray)
        info["cropped"] = [c.copy() for c in helper.cropped_faces]
        info["tokens"] = []
        if faces is not None:
            if len(faces) != len(helper.cropped_faces):
                return None, info
            helper.restored_faces = list(faces)
        else:
            for cropped in helper.cropped_faces:
                restored, tokens = self.restore_face(cropped, w, cache)
                info["tokens"].append(tokens)
                helper.add_restored_face(restored, cropped)
                if round_gray and helper.is_gray:
                    helper.restored_faces[-1] = np.round(helper.restored_faces[-1])
                    if round_gray == "clip":
                        helper.restored_faces[-1] = np.clip(helper.restored_faces[-1], 0, 255).astype(np.uint8)
        info["restored"] = [np.clip(np.round(r), 0, 255).astype(np.uint8) for r in helper.restored_faces]
        info["face_range"] = (min(float(r.min()) for r in helper.restored_faces), max(float(r.max()) for r in helper.restored_faces)) \
            if helper.restored_faces else (0.0, 0.0)
        if aligned:
            return info["restored"][0], info
        helper.get_inverse_affine(None)
        return helper.paste_faces_to_input_image(upsample_img=None, face_upsampler=self.face_upsampler if faceup else None), info


def ours(binary, path, out, model, detector, parser, upscale, w, aligned, threads, face_upsampler=None):
    cmd = [binary, "restore", "-i", path, "-o", out, "--model-path", model, "--detector", detector,
           "-s", str(upscale), "-w", str(w), "--ext", "png", "--threads", str(threads)]
    cmd += ["--parser", parser] if parser else ["--no-parse"]
    if aligned:
        cmd.append("--aligned")
    if face_upsampler:
        cmd += ["--face-upsample", "--bg-model", face_upsampler, "--bg-tile", "400"]
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")
    return time.time() - t


def detector_check(binary, detector, detection, tmp, threads):
    """`facerestore detect` on the image facelib's detector saw (threshold 0.8): the largest
    difference of the boxes and landmarks, in that image's pixels."""
    image, boxes = detection
    path = os.path.join(tmp, "detector_input.png")
    cv2.imwrite(path, image)
    r = subprocess.run([binary, "detect", path, "--json", "--threshold", "0.8", "--detector", detector, "--threads", str(threads)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return "failed: " + r.stderr.strip()[-200:]
    faces = json.loads(r.stdout)[0]["faces"]
    ours = np.array([f["box"] + sum(f["landmarks"], []) for f in faces], dtype=np.float64).reshape(-1, 14)
    want = np.zeros((0, 14)) if boxes is None else np.delete(boxes, 4, axis=1).astype(np.float64)
    if ours.shape != want.shape:
        return f"{len(want)}/{len(ours)} faces"
    return f"max|Δ| {np.abs(ours - want).max() if len(ours) else 0:.1e} px on {image.shape[1]}×{image.shape[0]}"


def keep(folder, name, want, got, found, info, out):
    os.makedirs(folder, exist_ok=True)
    cv2.imwrite(os.path.join(folder, f"{name}_ref.png"), want)
    if got is not None:
        shutil.copy(found[0], os.path.join(folder, f"{name}_ours.png"))
        if got.shape == want.shape:
            d = np.abs(want.astype(np.int32) - got.astype(np.int32)).max(axis=2)
            cv2.imwrite(os.path.join(folder, f"{name}_diff.png"), np.clip(d * 16, 0, 255).astype(np.uint8))
    for i, (cr, rf) in enumerate(zip(info["cropped"], info["restored"])):
        cv2.imwrite(os.path.join(folder, f"{name}_ref_crop_{i:02d}.png"), cr)
        cv2.imwrite(os.path.join(folder, f"{name}_ref_face_{i:02d}.png"), rf)
    if "landmarks" in info:
        np.save(os.path.join(folder, f"{name}_ref_landmarks.npy"), np.array(info["landmarks"]))
    if os.path.isdir(out):
        shutil.copytree(out, os.path.join(folder, f"{name}_ours"), dirs_exist_ok=True)


def unwrap16(image):
    """facelib's uint16 result (float → uint16, negatives wrapped) as the 8-bit image it stands for."""
    if image.dtype == np.uint8:
        return image
    v = image.astype(np.int64)
    v[v > 32767] -= 65536
    return np.clip(v, 0, 255).astype(np.uint8)


def compare(a, b):
    """(shape ok, max |Δ|, values within 1, pixels within 1, values equal)."""
    if a is None or b is None or a.shape != b.shape:
        return False, None, 0.0, 0.0, 0.0
    d = np.abs(a.astype(np.int32) - b.astype(np.int32))
    px = d.max(axis=2) if d.ndim == 3 else d
    return True, int(d.max()), float((d <= 1).mean()), float((px <= 1).mean()), float((d == 0).mean())


def fmt(c):
    ok, mx, v1, p1, eq = c
    if not ok:
        return "shape differs"
    return f"max|Δ| {mx:3d}  values ≤1 {v1 * 100:7.3f}%  pixels ≤1 {p1 * 100:7.3f}%  equal {eq * 100:7.3f}%"


def make_inputs(tmp):
    """The derived photos: a small one (group.jpg to a 400 px short side, INTER_AREA), a gray
    one (grace_hopper through BGR→GRAY→BGR) and a large one (grace_hopper ×1.5, INTER_CUBIC: its
    short side is above 640, where facelib shrinks the photo for detection)."""
    group = cv2.imread(os.path.join(EXAMPLES, "group.jpg"))
    grace = cv2.imread(os.path.join(EXAMPLES, "grace_hopper.jpg"))
    f = 400 / min(group.shape[:2])
    small = cv2.resize(group, (round(group.shape[1] * f), round(group.shape[0] * f)), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(cv2.cvtColor(grace, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    large = cv2.resize(grace, (grace.shape[1] * 3 // 2, grace.shape[0] * 3 // 2), interpolation=cv2.INTER_CUBIC)
    paths = {}
    for name, img in (("group_small", small), ("grace_gray", gray), ("grace_large", large)):
        paths[name] = os.path.join(tmp, f"{name}.png")
        cv2.imwrite(paths[name], img)
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codeformer", default=MIRROR, help="bare git dir or checkout of sczhou/CodeFormer (default: the mirror)")
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build/release/facerestore"))
    ap.add_argument("--model", default=os.path.join(FIXTURES, "codeformer_random.pth"))
    ap.add_argument("--detector", default=os.path.join(SHARED_WEIGHTS, "retinaface_mobilenet0.25_Final.pth"))
    ap.add_argument("--parser", default=os.path.join(FIXTURES, "parsenet_random.pth"))
    ap.add_argument("--face-upsampler", default=os.path.join(FIXTURES, "realesrgan_x2plus_random.pth"),
                    help="Real-ESRGAN x2 (RRDBNet) for the _faceup cases")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", help="write the inputs, both outputs and the difference maps here")
    ap.add_argument("--cases", nargs="*", help="run only these cases")
    ap.add_argument("--strict", action="store_true", help="gate on the end-to-end comparison")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for p in (a.binary, a.model, a.detector, a.parser):
        if not os.path.exists(p):
            sys.exit(f"missing {p}")

    tmp = tempfile.mkdtemp(prefix="cf-pipeline-")
    try:
        tree = os.path.join(tmp, "codeformer-ref")
        os.makedirs(tree)
        print(f"reference: {export_reference(a.codeformer, tree)}; torch {torch.__version__}, {a.threads} threads")
        ref = Reference(tree, a.model, a.detector, a.parser,
                        a.face_upsampler if os.path.exists(a.face_upsampler) else None)
        derived = make_inputs(tmp)
        group, grace = os.path.join(EXAMPLES, "group.jpg"), os.path.join(EXAMPLES, "grace_hopper.jpg")
        astronaut = os.path.join(EXAMPLES, "faces", "astronaut.jpg")
        # name, photo, upscale, w, parse, aligned
        cases = [
            ("group_s2_parse", group, 2, 0.5, True, False),
            ("group_s2_noparse", group, 2, 0.5, False, False),
            ("group_s1_parse", group, 1, 0.5, True, False),
            ("group_s2_w0", group, 2, 0.0, True, False),
            ("group_s2_w1", group, 2, 1.0, True, False),
            ("grace_s2_parse", grace, 2, 0.5, True, False),
            ("small_s2_parse", derived["group_small"], 2, 0.5, True, False),
            ("gray_s2_parse", derived["grace_gray"], 2, 0.5, True, False),
            ("gray_s2_noparse", derived["grace_gray"], 2, 0.5, False, False),
            ("large_s2_parse", derived["grace_large"], 2, 0.5, True, False),
            ("astronaut_aligned", astronaut, 2, 0.5, True, True),
            ("grace_s2_faceup", grace, 2, 0.5, True, False),
            ("group_s1_noparse_faceup", group, 1, 0.5, False, False),
            ("gray_s3_faceup", derived["grace_gray"], 3, 0.5, True, False),
        ]
        if ref.face_upsampler is None:
            print(f"no {a.face_upsampler}: the _faceup cases are skipped")
            cases = [c for c in cases if not c[0].endswith("_faceup")]
        if a.cases:
            cases = [c for c in cases if c[0] in a.cases]
        cache = {}
        failures, explained, notes = [], [], []
        for name, photo, s, w, parse, aligned in cases:
            out = os.path.join(tmp, "out", name)
            faceup = name.endswith("_faceup")
            ref.last_detection = None
            t0 = time.time()
            want, info = ref.run(photo, s, w, parse, aligned=aligned, cache=cache, faceup=faceup)
            t_ref = time.time() - t0
            detection = ref.last_detection
            try:
                t_ours = ours(a.binary, photo, out, a.model, a.detector, a.parser if parse else None, s, w, aligned, a.threads,
                              a.face_upsampler if faceup else None)
            except RuntimeError as e:
                print(f"{name:18s} ours failed: {e}", flush=True)
                failures.append(name)
                continue
            base = os.path.splitext(os.path.basename(photo))[0]
            read = lambda files: [cv2.imread(f, cv2.IMREAD_COLOR) for f in files]
            if aligned:
                found = sorted(glob.glob(os.path.join(out, "restored_faces", base + "*.png")) or
                               glob.glob(os.path.join(out, "restored_imgs", base + ".png")))
                got = cv2.imread(found[0], cv2.IMREAD_COLOR) if found else None
                our_faces = [got] if got is not None else []
                our_crops = list(info["cropped"])   # both resize the 512² input to 512²: the same bytes
            else:
                found = glob.glob(os.path.join(out, "restored_imgs", base + ".png"))
                got = cv2.imread(found[0], cv2.IMREAD_COLOR) if found else None
                our_faces = read(sorted(glob.glob(os.path.join(out, "restored_faces", base + "_*.png"))))
                our_crops = read(sorted(glob.glob(os.path.join(out, "cropped_faces", base + "_*.png"))))
            if want.dtype != np.uint8:
                # paste_faces_to_input_image casts to uint16 when a value is above 256 (a gray-toned
                # float face outside 0…255); negatives wrap. Compared as that float image clipped to 8 bits.
                lo, hi = info["face_range"]
                notes.append(f"  {name}: the reference's image came out {want.dtype} (toned face {lo:.1f}…{hi:.1f}: "
                             f"facelib's 16-bit branch, negatives wrapped); compared clipped to 0…255")
                want = unwrap16(want)
            e2e = compare(want, got)
            parts = []
            same_count = len(our_faces) == len(info["cropped"]) == len(our_crops)
            if not aligned:
                parts.append(f"faces {info['faces']}/{len(our_faces)}")
                if detection is not None:
                    parts.append("det " + detector_check(a.binary, a.detector, detection, tmp, a.threads))
            if same_count and info["cropped"]:
                crops = [compare(r, o) for r, o in zip(info["cropped"], our_crops)]
                differing = sum(int((r != o).sum()) for r, o in zip(info["cropped"], our_crops))
                parts.append(f"crops max|Δ| {max(c[1] for c in crops)} ({differing} values differ)")
                # the reference network on our crops against our faces, and its tokens against the
                # reference crops' (the random codebook amplifies tiny crop differences)
                net, flips = [], []
                for i, (crop, face) in enumerate(zip(our_crops, our_faces)):
                    restored, tokens = ref.restore_face(crop, w, cache)
                    if info["gray"]:
                        restored = np.clip(np.round(ref.frh.adain_npy(ref.frh.bgr2gray(restored), crop)), 0, 255).astype(np.uint8)
                    net.append(compare(restored, face))
                    flips.append(int((tokens != info["tokens"][i]).sum()))
                net_px = min(c[3] for c in net)
                parts.append(f"net on our crops max|Δ| {max(c[1] for c in net)} px≤1 {net_px * 100:.3f}%")
                if not aligned:
                    parts.append(f"tokens flipped {'/'.join(map(str, flips))} of 256")
            else:
                net_px = 0.0
            if aligned:
                same = e2e
            else:
                pasted, _ = ref.run(photo, s, w, parse, faces=our_faces, faceup=faceup)
                same = compare(pasted, got)
                parts.append(f"paste of our faces: {fmt(same)}")
            stage_ok = same_count and same[0] and same[3] >= GATE and net_px >= GATE
            e2e_ok = e2e[0] and e2e[3] >= GATE
            status = "ok" if stage_ok and e2e_ok else ("ok by stage (end to end under the gate)" if stage_ok else "FAIL")
            print(f"{name:18s} {want.shape[1]}×{want.shape[0]}  end to end: {fmt(e2e)}  |  {'; '.join(parts)}  |  "
                  f"ref {t_ref:.0f} s, ours {t_ours:.0f} s  {status}", flush=True)
            if info["gray"] and not aligned:
                only_rounded = unwrap16(ref.run(photo, s, w, parse, round_gray="round", cache=cache, faceup=faceup)[0])
                rounded = unwrap16(ref.run(photo, s, w, parse, round_gray="clip", cache=cache, faceup=faceup)[0])
                notes.append(f"  {name}: reference, toned face rounded (not clipped) vs the reference: {fmt(compare(only_rounded, want))}")
                notes.append(f"  {name}: reference, toned face rounded and clipped to 8 bits vs the reference: {fmt(compare(rounded, want))}")
                notes.append(f"  {name}: ours vs the reference with the toned face rounded and clipped:     {fmt(compare(rounded, got))}")
            if not stage_ok or (a.strict and not e2e_ok):
                failures.append(name)
            elif not e2e_ok:
                explained.append(name)
            if a.keep:
                keep(a.keep, name, want, got, found, info, out)
        if notes:
            print("gray photos (upstream keeps the toned face in float64 through the paste):")
            print("\n".join(notes))
        print(f"{len(cases) - len(failures)}/{len(cases)} cases pass (≥ {GATE * 100:.1f}% of pixels within 1 gray level"
              f"{' end to end' if a.strict else ' for the network on our crops and the paste of our faces'})"
              + (f"; under: {', '.join(failures)}" if failures else "")
              + (f"; end to end under the gate (crop differences the random codebook amplifies): {', '.join(explained)}"
                 if explained else ""))
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
