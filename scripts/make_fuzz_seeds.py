#!/usr/bin/python3
"""Writes the fuzz seed corpus, Tests/FaceRestoreFuzzingTests/corpus/TARGET/ (Debian's python3 with
PIL and numpy). Every seed is ours: the weight seeds are random-weight fixtures that
scripts/make_fixtures.py and scripts/make_lightning_fixtures.py made, copied; the ONNX and ncnn
seeds are written here byte by byte; the image seeds are the codec fixtures plus a PNG with an
eXIf orientation; the archive-format seeds (TIFF, WebP, BMP by PIL or by hand, HEIF by Debian's
heif-enc, tiled and separate-plane TIFFs by tiffcp) are drawn here. Deterministic, except HEIF's
bytes, which follow the installed x265.

    scripts/make_fuzz_seeds.py            # everything
    scripts/make_fuzz_seeds.py archive    # the TIFF, WebP, BMP and HEIF seeds only
"""
import pathlib, shutil, struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "Tests/FaceRestoreFuzzingTests/corpus"
WEIGHTS = ROOT / "Tests/FaceRestoreWeightsTests/Fixtures"
CODECS = ROOT / "Tests/FaceRestoreImagingTests/Fixtures/codecs"


def varint(v):
    out = b""
    while True:
        b, v = v & 0x7F, v >> 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def field_bytes(n, data):
    return varint(n << 3 | 2) + varint(len(data)) + data


def field_varint(n, v):
    return varint(n << 3) + varint(v)


def onnx_seed():
    """A ModelProto with one Conv node and three initializers: raw floats, packed float_data, int64_data."""
    t1 = field_varint(1, 2) + field_varint(1, 2) + field_varint(2, 1) + field_bytes(8, b"w") + field_bytes(9, struct.pack("<4f", 1, 2, 3, 4))
    t2 = field_bytes(1, varint(2)) + field_varint(2, 1) + field_bytes(8, b"b") + field_bytes(4, struct.pack("<2f", 0.5, -1))
    t3 = field_varint(1, 3) + field_varint(2, 7) + field_bytes(8, b"shape") + field_bytes(7, varint(1) + varint(2) + varint(3))
    attr = field_bytes(1, b"kernel_shape") + field_varint(20, 7) + field_bytes(8, varint(1) + varint(1))
    node = field_bytes(1, b"x") + field_bytes(1, b"w") + field_bytes(2, b"y") + field_bytes(3, b"n0") + field_bytes(4, b"Conv") + field_bytes(5, attr)
    graph = field_bytes(1, node) + field_bytes(5, t1) + field_bytes(5, t2) + field_bytes(5, t3) + field_bytes(11, field_bytes(1, b"x")) + field_bytes(12, field_bytes(1, b"y"))
    return field_varint(1, 7) + field_bytes(2, b"fuzz") + field_bytes(7, graph)


def ncnn_seeds():
    """A .param and .bin pair packed as the ncnn fuzz target reads it: float32 and fp16 weights."""
    param = b"7767517\n3 3\nInput in 0 1 data\nConvolution conv 1 1 data c 0=2 1=1 5=1 6=4\nPReLU p 1 1 c out 0=2\n"
    head = struct.pack("<H", len(param)) + param
    tail = struct.pack("<2f", 0, 1) + struct.pack("<2f", 0.1, 0.2)   # bias, slopes
    raw = struct.pack("<I", 0) + struct.pack("<4f", 1, 2, 3, 4)
    fp16 = struct.pack("<I", 0x01306B47) + struct.pack("<4e", 1, 2, 3, 4)
    return {"tiny.ncnn": head + raw + tail, "fp16.ncnn": head + fp16 + tail}


def dlib_seed():
    """A dlib network file with dlib_face_recognition_resnet_model_v1's structure (anet_type, as
    Sources/FaceRestoreModels/DlibResNet.swift lists it) and one-value tensors: dlib's
    serialization written here field by field (dlib/serialize.h, dlib/dnn/*.h)."""
    def sint(v):
        neg, m = (0x80, -v) if v < 0 else (0, v)
        body = b""
        while True:
            body += bytes([m & 0xFF]); m >>= 8
            if m == 0:
                return bytes([len(body) | neg]) + body

    def uint(v):
        return sint(v)

    def string(t):
        return uint(len(t)) + t.encode()

    def flt(v):
        # float_details: mantissa·2^exponent (exact for these values).
        m, e = v, 0
        while m != int(m):
            m, e = m * 2, e - 1
        return sint(int(m)) + sint(e)

    def tensor(shape, values):
        return sint(2) + b"".join(sint(d) for d in shape) + struct.pack(f"<{len(values)}f", *values)

    def alias(shape):
        return sint(1) + b"".join(sint(d) for d in shape)

    empty = tensor((0, 0, 0, 0), [])
    res = ["relu", "add_prev", "affine", "con", "relu", "affine", "con", "tag"]
    down = ["relu", "add_prev", "avg_pool", "skip", "tag", "affine", "con", "relu", "affine", "con", "tag"]
    blocks = [True, False, False, True, False, False, True, False, False, False, True, False, False, False]
    structure = ["fc", "avg_pool"] + sum((down if d else res for d in blocks), []) + ["max_pool", "relu", "affine", "con"]
    out = sint(1) + string("loss_metric_2") + flt(0.25) + flt(0.5)
    out += b"".join(sint(1 if n in ("tag", "skip") else 2) for n in structure)
    out += string("input_rgb_image_sized") + flt(122.5) + flt(117.0) + flt(104.25) + uint(150) + uint(150)
    for i in range(len(structure) - 1, -1, -1):
        n = structure[i]
        if n in ("tag", "skip"):
            continue
        if n == "con":
            out += string("con_4") + tensor((1, 1, 1, 2), [0.5, -0.25]) + sint(1) + sint(1) + sint(1) + sint(1) + sint(1)
            out += sint(0) + sint(0) + alias((1, 1, 1, 1)) + alias((1, 1, 1, 1)) + flt(1) + flt(1) + flt(1) + flt(0)
        elif n == "affine":
            out += string("affine_") + tensor((1, 2, 1, 1), [2.0, 0.5]) + alias((1, 1, 1, 1)) + alias((1, 1, 1, 1)) + sint(0)
        elif n == "relu":
            out += string("relu_")
        elif n in ("max_pool", "avg_pool"):
            out += string(n + "_2") + sint(2) + sint(2) + sint(2) + sint(2) + sint(0) + sint(0)
        elif n == "fc":
            out += string("fc_2") + uint(2) + uint(1) + tensor((1, 2, 1, 1), [1.0, -1.0]) + alias((1, 2, 1, 1)) + alias((1, 2, 1, 1))
            out += sint(1) + flt(1) + flt(1) + flt(1) + flt(0)
        elif n == "add_prev":
            out += string("add_prev_")
        out += b"110" + empty + empty + empty
    return out


def main():
    for target in ("pth", "safetensors", "onnx", "ncnn", "png", "jpeg", "npz", "cvyaml", "dlib"):
        (CORPUS / target).mkdir(parents=True, exist_ok=True)
    for name in ("plain_zip.pth", "plain_legacy.pth", "nested_zip.pth", "parameter.pth", "lightning.ckpt", "lightning_p4.ckpt"):
        shutil.copyfile(WEIGHTS / name, CORPUS / "pth" / name)
    shutil.copyfile(WEIGHTS / "expected.safetensors", CORPUS / "safetensors/expected.safetensors")
    (CORPUS / "onnx/tiny.onnx").write_bytes(onnx_seed())
    (CORPUS / "dlib/anet_tiny.dat").write_bytes(dlib_seed())
    for name, data in ncnn_seeds().items():
        (CORPUS / "ncnn" / name).write_bytes(data)
    for f in sorted(CODECS.iterdir()):
        if f.suffix in (".png", ".jpg"):
            shutil.copyfile(f, CORPUS / ("png" if f.suffix == ".png" else "jpeg") / f.name)

    import numpy as np
    from PIL import Image
    a = np.zeros((3, 5, 3), np.uint8)
    a[0, 0] = (255, 0, 0)
    a[2, 4] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6   # rotate 90° clockwise
    Image.fromarray(a).save(CORPUS / "png/orient6_exif.png", exif=exif.tobytes())

    # NIQE parameters in the layout of basicsr's niqe_pris_params.npz, with our own numbers.
    rng = np.random.RandomState(5)
    m = rng.randn(36, 36)
    with open(CORPUS / "npz/niqe_layout.npz", "wb") as f:
        np.savez(f, mu_pris_param=rng.randn(1, 36), cov_pris_param=m @ m.T, gaussian_window=np.full((7, 7), 1 / 49.0))
    fix_zip_times(CORPUS / "npz/niqe_layout.npz")
    (CORPUS / "cvyaml/brisque_layout.bin").write_bytes(cvyaml_seed(rng))


def archive_seeds():
    """Small TIFF, WebP, BMP and HEIF files covering the decoders' branches."""
    import subprocess, tempfile
    import numpy as np
    from PIL import Image
    for target in ("tiff", "webp", "bmp", "heic"):
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for f in d.iterdir():
            f.unlink()
    y, x = np.mgrid[0:6, 0:8]
    rgb = np.stack([x * 30, y * 40, (x + y) * 15], -1).astype(np.uint8)
    rgba = np.dstack([rgb, (x * 32).astype(np.uint8)])
    gray16 = (x * 8000 + y * 1000).astype(np.uint16)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x013B] = "Seed"
    t = CORPUS / "tiff"
    Image.fromarray(rgb).save(t / "rgb_deflate.tif", compression="tiff_adobe_deflate", dpi=(300, 300))
    Image.fromarray(rgba).save(t / "rgba_lzw.tif", compression="tiff_lzw")
    Image.fromarray(rgb).save(t / "rgb_packbits_exif.tif", compression="packbits", exif=exif.tobytes())
    Image.fromarray(gray16).save(t / "gray16.tif")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(t / "palette.tif")
    Image.fromarray((x > 3).astype(np.uint8) * 255).convert("1").save(t / "bilevel_g4.tif", compression="group4")
    Image.fromarray(rgb).save(t / "rgb_jpeg.tif", compression="jpeg", quality=80)
    Image.fromarray(rgb).save(t / "two_pages.tif", save_all=True, append_images=[Image.fromarray(rgba)])
    if shutil.which("tiffcp"):
        subprocess.run(["tiffcp", "-t", "-w", "16", "-l", "16", t / "rgba_lzw.tif", t / "rgba_tiled.tif"], check=True)
        subprocess.run(["tiffcp", "-p", "separate", t / "rgb_deflate.tif", t / "rgb_separate.tif"], check=True)
    w = CORPUS / "webp"
    Image.fromarray(rgb).save(w / "lossy.webp", quality=60)
    Image.fromarray(rgba).save(w / "lossless_alpha.webp", lossless=True)
    Image.fromarray(rgb).save(w / "lossy_exif_icc.webp", quality=60, exif=exif.tobytes(), icc_profile=b"\0" * 40)
    b = CORPUS / "bmp"
    Image.fromarray(rgb).save(b / "rgb24.bmp")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(b / "palette8.bmp")
    Image.fromarray((x > 3).astype(np.uint8) * 255).convert("1").save(b / "bilevel.bmp")
    Image.fromarray(rgba).save(b / "rgba32.bmp")

    def bmp(header, palette, rows):
        offset = 14 + len(header) + len(palette)
        return b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + header + palette + rows

    def info(w, h, bpp, compression=0, colors=0):
        return struct.pack("<IiiHHIIiiII", 40, w, h, 1, bpp, compression, 0, 2835, 2835, colors, 0)
    pal = bytes([0, 0, 255, 0, 0, 255, 0, 0])
    (b / "rle8.bmp").write_bytes(bmp(info(4, 2, 8, 1, 2), pal, bytes([3, 1, 0, 0, 0, 2, 0, 1, 1, 0, 0, 1])))
    (b / "rle4.bmp").write_bytes(bmp(info(4, 1, 4, 2, 2), pal, bytes([4, 0x10, 0, 1])))
    masks = struct.pack("<III", 0xF800, 0x07E0, 0x001F)
    (b / "rgb565_topdown.bmp").write_bytes(bmp(info(2, -2, 16, 3) + masks, b"", bytes([0, 0xF8, 0x1F, 0, 0xE0, 0x07, 0, 0])))
    core = struct.pack("<IHHHH", 12, 2, 1, 1, 8)
    (b / "os2_core.bmp").write_bytes(bmp(core, bytes([0, 0, 255, 0, 255, 0]), bytes([1, 0, 0, 0])))
    if shutil.which("heif-enc"):
        with tempfile.TemporaryDirectory() as tmp:
            src = pathlib.Path(tmp) / "src.png"
            Image.fromarray(np.kron(rgb, np.ones((2, 2, 1), np.uint8))).save(src)
            subprocess.run(["heif-enc", "-q", "40", src, "-o", CORPUS / "heic/small.heic"], check=True, capture_output=True)
            Image.fromarray(np.kron(rgba, np.ones((2, 2, 1), np.uint8))).save(src)
            subprocess.run(["heif-enc", "-q", "40", src, "-o", CORPUS / "heic/alpha.heic"], check=True, capture_output=True)


def fix_zip_times(path):
    """Rewrites a zip with fixed member times, so the seed is the same bytes on every run."""
    import zipfile
    with zipfile.ZipFile(path) as z:
        members = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def cvyaml_seed(rng):
    """A BRISQUE model (two support vectors) and range file in OpenCV's YAML storage, packed."""
    def vec(values):
        return "[ " + ", ".join(f"{v:.8e}" for v in values) + " ]"
    svs = "\n".join(f"      - {vec(rng.uniform(-1, 1, 36))}" for _ in range(2))
    model = ("%YAML:1.0\n---\nopencv_ml_svm:\n   format: 3\n   svmType: EPS_SVR\n   kernel:\n      type: RBF\n"
             "      gamma: 5.0000000000000003e-02\n   C: 1024.\n   p: 1.0000000000000001e-01\n"
             "   term_criteria: { epsilon:1.0000000000000000e-03 }\n   var_count: 36\n   sv_total: 2\n"
             f"   support_vectors:\n{svs}\n   decision_functions:\n      -\n         sv_count: 2\n         rho: -10.\n"
             "         alpha: [ -1024., 1024. ]\n")
    low = rng.uniform(-1, 0, 36)
    high = low + rng.uniform(0.1, 1, 36)
    rangef = ("%YAML:1.0\n---\nrange: !!opencv-matrix\n   rows: 2\n   cols: 36\n   dt: f\n"
              f"   data: {vec(list(low) + list(high))}\n")
    m = model.encode()
    return struct.pack("<H", len(m)) + m + rangef.encode()


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["archive"]:
        archive_seeds()
    else:
        main()
        archive_seeds()
