#!/usr/bin/env python3
"""Committed parity fixtures for CodeFormer, RestoreFormer and RestoreFormer++ at full size, small
enough to commit: the weights are not stored but drawn from an integer hash that the Swift test
recomputes bit for bit, and only the reference's outputs (strided) are kept. Reference venv, not CI:

    ~/.cache/facerestore-reference/venv/bin/pip install --no-deps spandrel==0.4.2 spandrel-extra-arches==0.2.0 einops==0.8.2
    ~/.cache/facerestore-reference/venv/bin/python scripts/make_codebook_ci_fixtures.py

Weights, per tensor in the official key order (Tests/FaceRestoreModelsTests/Fixtures/*_keys.txt;
index t from 0), element i: u = (splitmix64((t << 40) ^ i ^ 0x9E3779B97F4A7C15) >> 40) / 2^24 − 0.5,
exact in float32. Then, in float32: 1-D `weight` (the norms) 1 + 0.4·u; 1-D `bias` 0.2·u;
`position_emb` u; the codebook u·√12 (unit variance); every other weight u·float32(√(12/fan_in)).
The network's last conv (`generator.blocks.24`, `decoder.conv_out`) is then multiplied by the
float32 `out_scale` stored here, chosen so the w = 0.5 (RestoreFormer: the) output peaks at 1.5 as
a trained model's stays near [-1, 1]. The input is the same hash for tensor index 100000: 2·u.

Reference code: CodeFormer's arch from spandrel-extra-arches 0.2.0 (bit-identical to
sczhou/CodeFormer; S-Lab licence: run here, never vendored), RestoreFormer and RF++ as
scripts/make_restoreformer_fixtures.py builds them on gfpgan 1.3.8.

Writes Tests/FaceRestoreModelsTests/Fixtures/codebook_ci.safetensors (float32 unless noted):
  cf.out_scale (1,); cf.top_idx (256,) int64; cf.logit_gap (256,); cf.logits (64, K) tokens 0, 4, 8, …;
  cf.lq_feat_strided every 7th value; cf.w050 and cf.w000 outputs every 97th value (the generator
  from the reference's codes in the test); rf.* and rfpp.*: out_scale, indices (256,) int64,
  gap (256,) nearest-codeword distance gap, output every 97th value.
"""
import importlib
import math
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests", "FaceRestoreModelsTests", "Fixtures")
STRIDE = 97
M64 = (1 << 64) - 1


def hashed(t, count):
    i = np.arange(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (np.uint64(t) << np.uint64(40)) ^ i ^ np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(40)).astype(np.float64) / 2.0 ** 24 - 0.5).astype(np.float32)


def keys(listing):
    out = []
    for line in open(os.path.join(FIX, listing)):
        name, shape = line.rstrip("\n").split(" (")
        out.append((name, tuple(int(s) for s in shape.rstrip(")").split(",") if s.strip())))
    return out


def weights(listing):
    sd = {}
    for t, (name, shape) in enumerate(keys(listing)):
        n = int(np.prod(shape))
        u = hashed(t, n)
        if len(shape) == 1 and name.endswith("weight"):
            v = np.float32(1) + np.float32(0.4) * u
        elif len(shape) == 1:
            v = np.float32(0.2) * u
        elif name == "position_emb":
            v = u
        elif name.endswith("quantize.embedding.weight"):
            v = u * np.float32(math.sqrt(12.0))
        else:
            v = u * np.float32(math.sqrt(12.0 / int(np.prod(shape[1:]))))
        sd[name] = torch.from_numpy(v.reshape(shape).copy())
    return sd


def scale_last(net, sd, last, run):
    with torch.no_grad():
        peak = float(run().abs().max())
    s = np.float32(1.5 / peak)
    for k in (last + ".weight", last + ".bias"):
        sd[k] = sd[k] * torch.tensor(s)
    net.load_state_dict(sd, strict=True)
    return s


def main():
    torch.set_num_threads(2)
    x = torch.from_numpy((np.float32(2) * hashed(100000, 3 * 512 * 512)).reshape(1, 3, 512, 512))
    out = {}

    arch = importlib.import_module("spandrel_extra_arches.architectures.CodeFormer.__arch.codeformer")
    cf = arch.CodeFormer(dim_embd=512, n_head=8, n_layers=9, codebook_size=1024, latent_size=256,
                         connect_list=["32", "64", "128", "256"]).eval()
    sd = weights("codeformer_keys.txt")
    cf.load_state_dict(sd, strict=True)
    s = scale_last(cf, sd, "generator.blocks.24", lambda: cf(x, weight=0.5)[0])
    rec = {}
    h = cf.encoder.blocks[24].register_forward_hook(lambda m, i, o: rec.__setitem__("lq", o))
    with torch.no_grad():
        y50, logits = cf(x, weight=0.5)
        y0, _ = cf(x, weight=0.0)
    h.remove()
    top2 = torch.topk(logits[0], 2, dim=1)
    out["cf.out_scale"] = np.array([s], dtype=np.float32)
    out["cf.top_idx"] = top2.indices[:, 0].numpy().astype(np.int64)
    out["cf.logit_gap"] = (top2.values[:, 0] - top2.values[:, 1]).numpy()
    out["cf.logits"] = logits[0, ::4].numpy().copy()
    out["cf.lq_feat_strided"] = rec["lq"].numpy().ravel()[::7].copy()
    out["cf.w050"] = y50.numpy().ravel()[::STRIDE].copy()
    out["cf.w000"] = y0.numpy().ravel()[::STRIDE].copy()
    print(f"codeformer: out_scale {s:.4g}, {len(set(out['cf.top_idx'].tolist()))} distinct codes, smallest gap "
          f"{out['cf.logit_gap'].min():.3g}, output range [{float(y50.min()):.3f}, {float(y50.max()):.3f}]")

    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    rfmod = importlib.import_module("make_restoreformer_fixtures")
    for tag, kind, listing in (("rf", "rf", "restoreformer_keys.txt"), ("rfpp", "rfpp", "restoreformer_pp_keys.txt")):
        net = rfmod.build(kind).eval()
        sd = weights(listing)
        net.load_state_dict(sd, strict=True)
        s = scale_last(net, sd, "decoder.conv_out", lambda: net(x)[0])
        got = {}
        orig = net.quantize.forward

        def quantize(z, orig=orig, got=got):
            r = orig(z)
            two = torch.topk(r[2][3], 2, dim=1, largest=False)
            got["gap"] = two.values[:, 1] - two.values[:, 0]
            got["idx"] = r[2][2].view(-1)
            return r
        net.quantize.forward = quantize
        with torch.no_grad():
            y = net(x)[0]
        out[f"{tag}.out_scale"] = np.array([s], dtype=np.float32)
        out[f"{tag}.indices"] = got["idx"].numpy().astype(np.int64)
        out[f"{tag}.gap"] = got["gap"].numpy()
        out[f"{tag}.output"] = y.numpy().ravel()[::STRIDE].copy()
        print(f"{tag}: out_scale {s:.4g}, {len(set(out[f'{tag}.indices'].tolist()))} distinct codes, smallest gap "
              f"{float(got['gap'].min()):.3g}, output range [{float(y.min()):.3f}, {float(y.max()):.3f}]")
    path = os.path.join(FIX, "codebook_ci.safetensors")
    save_file(out, path, metadata={"torch": torch.__version__, "stride": str(STRIDE)})
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
