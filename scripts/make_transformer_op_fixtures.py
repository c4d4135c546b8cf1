#!/usr/bin/env python3
"""Regenerates Tests/FaceRestoreEngineTests/Fixtures/transformer_ops.safetensors: PyTorch outputs
of the ops CodeFormer, RestoreFormer and RestoreFormer++ need (group norm, layer norm, swish,
sigmoid, GELU, matmul, spatial single/multi-head attention, nn.MultiheadAttention, nearest
codeword, top-1, AdaIN, the asymmetric-pad stride-2 conv). Run inside the reference environment:

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_transformer_op_fixtures.py

Inputs and parameters are not stored: both sides compute them from a seed with the integer hash
below (murmur3's fmix32 over `i·0x9E3779B9 + seed·0x85EBCA77 + 1`, top 24 bits as u ∈ [0, 1),
then `(2u − 1)·scale + offset` in float32), which is exact and identical in numpy and Swift
(`hashed` in TransformerOpTests.swift). Large outputs are stored subsampled: `<case>.y` is the
flattened output at every `<case>.s`-th element; `<case>.shape` is the full shape. The library
versions are recorded in the file's metadata.

The reference code follows gfpgan 1.3.8 `gfpgan/archs/restoreformer_arch.py` (MultiHeadAttnBlock,
VectorQuantizer), sczhou/CodeFormer @ b33cc7d639d6 `basicsr/archs/vqgan_arch.py` (AttnBlock,
Downsample) and `basicsr/archs/codeformer_arch.py` (TransformerSALayer's self-attention, AdaIN,
top-1), written out here with the same tensor operations.
"""
import os
import sys
from collections import OrderedDict
from importlib.metadata import version

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests/FaceRestoreEngineTests/Fixtures/transformer_ops.safetensors")
M32 = 0xFFFFFFFF


def hashed(shape, seed, scale=1.0, offset=0.0):
    n = int(np.prod(shape))
    h = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B9) + np.uint64(seed * 0x85EBCA77 + 1)) & np.uint64(M32)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & np.uint64(M32)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & np.uint64(M32)
    h ^= h >> np.uint64(16)
    u = (h >> np.uint64(8)).astype(np.float32) * np.float32(2.0 ** -24)
    x = (u * np.float32(2) - np.float32(1)) * np.float32(scale) + np.float32(offset)
    return torch.from_numpy(x.astype(np.float32).reshape(shape))


def main():
    torch.set_num_threads(1)
    out = OrderedDict()

    def put(name, y, stride=1, **extra):
        out[f"{name}.y"] = y.detach().reshape(-1)[::stride].clone().contiguous()
        out[f"{name}.s"] = torch.tensor([stride], dtype=torch.int64)
        out[f"{name}.shape"] = torch.tensor(list(y.shape), dtype=torch.int64)
        for k, v in extra.items():
            out[f"{name}.{k}"] = v.detach().clone().contiguous()

    with torch.no_grad():
        # Group norm (32 groups, eps 1e-6), with and without the swish that follows it.
        for name, shape, seeds, stride in [("gn16", (1, 512, 16, 16), (1, 2, 3), 3),
                                           ("gn128", (1, 64, 128, 128), (4, 5, 6), 17)]:
            x = hashed(shape, seeds[0], 2.0, 0.5)
            gamma = hashed((shape[1],), seeds[1], 0.5, 1.0)
            beta = hashed((shape[1],), seeds[2], 0.5)
            y = F.group_norm(x, 32, gamma, beta, eps=1e-6)
            put(name, y, stride)
            put(name + "_swish", y * torch.sigmoid(y), stride)
        x = hashed((2, 96, 5, 7), 40, 3.0, -1.0)
        put("gn_plain", F.group_norm(x, 32, None, None, eps=1e-6))

        # Layer norm over the last dim (eps 1e-5), (L, B, E).
        x = hashed((256, 1, 512), 7, 3.0, 1.0)
        put("ln", F.layer_norm(x, (512,), hashed((512,), 8, 0.5, 1.0), hashed((512,), 9, 0.5), eps=1e-5), 3)

        # Activations.
        x = hashed((4096,), 10, 8.0)
        put("sigmoid", torch.sigmoid(x))
        put("swish", x * torch.sigmoid(x))
        put("gelu", F.gelu(x))

        # matmul: batched, and 2-D with a bias (F.linear's form a·b + bias).
        put("mm", torch.matmul(hashed((3, 40, 72), 11), hashed((3, 72, 56), 12)))
        put("mm_bias", torch.matmul(hashed((40, 72), 13), hashed((72, 56), 14)) + hashed((56,), 15))

        # CodeFormer AttnBlock core (single head), vqgan_arch.py.
        q, k, v = (hashed((1, 512, 16, 16), s, 2.0) for s in (16, 17, 18))
        b, c, h, w = q.shape
        qq = q.reshape(b, c, h * w).permute(0, 2, 1)
        w_ = torch.bmm(qq, k.reshape(b, c, h * w)) * (int(c) ** (-0.5))
        w_ = F.softmax(w_, dim=2)
        h_ = torch.bmm(v.reshape(b, c, h * w), w_.permute(0, 2, 1)).reshape(b, c, h, w)
        put("attn1", h_, 3)

        # RestoreFormer MultiHeadAttnBlock core, restoreformer_arch.py (8 heads at 16², 4 at 32²).
        def multi_head(q, k, v, heads):
            b, c, h, w = q.shape
            att = c // heads
            q = q.reshape(b, heads, att, h * w).permute(0, 3, 1, 2)
            k = k.reshape(b, heads, att, h * w).permute(0, 3, 1, 2)
            v = v.reshape(b, heads, att, h * w).permute(0, 3, 1, 2)
            q = q.transpose(1, 2)
            v = v.transpose(1, 2)
            k = k.transpose(1, 2).transpose(2, 3)
            q = q * (int(att) ** (-0.5))
            w_ = F.softmax(torch.matmul(q, k), dim=3).matmul(v)
            return w_.transpose(1, 2).contiguous().view(b, h, w, -1).permute(0, 3, 1, 2)

        put("attn8", multi_head(*(hashed((1, 512, 16, 16), s, 2.0) for s in (19, 20, 21)), 8), 3)
        put("attn4", multi_head(*(hashed((1, 256, 32, 32), s, 2.0) for s in (22, 23, 24)), 4), 5)

        # nn.MultiheadAttention(512, 8) as TransformerSALayer calls it: q = k = y + pos, v = y.
        mha = torch.nn.MultiheadAttention(512, 8, dropout=0.0)
        mha.in_proj_weight.copy_(hashed((1536, 512), 25, 0.0625))
        mha.in_proj_bias.copy_(hashed((1536,), 26, 0.1))
        mha.out_proj.weight.copy_(hashed((512, 512), 27, 0.0625))
        mha.out_proj.bias.copy_(hashed((512,), 28, 0.1))
        mha.eval()
        y = hashed((256, 1, 512), 29, 1.0)
        qk = y + hashed((256, 1, 512), 30, 0.5)
        put("mha", mha(qk, qk, value=y, attn_mask=None, key_padding_mask=None)[0], 3)

        # Nearest codeword, RestoreFormer's VectorQuantizer (N=256 tokens, K=1024, D=256).
        z = hashed((256, 256), 31, 1.0)
        e = hashed((1024, 256), 32, 1.0)
        d = torch.sum(z ** 2, dim=1, keepdim=True) + torch.sum(e ** 2, dim=1) - 2 * torch.matmul(z, e.t())
        dmin, idx = torch.min(d, dim=1)
        two = torch.topk(d, 2, dim=1, largest=False).values
        put("codebook", dmin, idx=idx.to(torch.int64), gap=two[:, 1] - two[:, 0])

        # CodeFormer's top-1: topk(softmax(logits), 1) over (B, 256, 1024).
        logits = hashed((1, 256, 1024), 33, 4.0)
        soft = F.softmax(logits, dim=2)
        _, top = torch.topk(soft, 1, dim=2)
        two = torch.topk(logits, 2, dim=2).values
        put("top1", top.reshape(-1).float(), idx=top.reshape(-1).to(torch.int64), gap=(two[..., 0] - two[..., 1]).reshape(-1))

        # AdaIN, codeformer_arch.py: unbiased variance + 1e-5.
        content = hashed((1, 256, 16, 16), 34, 1.0, 0.3)
        style = hashed((1, 256, 16, 16), 35, 2.0, -0.5)

        def mean_std(feat, eps=1e-5):
            b, c = feat.size()[:2]
            var = feat.view(b, c, -1).var(dim=2) + eps
            return feat.view(b, c, -1).mean(dim=2).view(b, c, 1, 1), var.sqrt().view(b, c, 1, 1)

        cm, cs = mean_std(content)
        sm, ss = mean_std(style)
        put("adain", (content - cm.expand(content.size())) / cs.expand(content.size()) * ss.expand(content.size())
            + sm.expand(content.size()), 3)

        # Downsample: F.pad(x, (0, 1, 0, 1)) then conv 3×3 stride 2 padding 0.
        x = hashed((1, 64, 32, 32), 36, 1.0)
        wt = hashed((64, 64, 3, 3), 37, 1 / 24)
        bias = hashed((64,), 38, 0.1)
        put("down", F.conv2d(F.pad(x, (0, 1, 0, 1), mode="constant", value=0), wt, bias, stride=2, padding=0))

    meta = {"generator": "scripts/make_transformer_op_fixtures.py", "torch": torch.__version__,
            "numpy": np.__version__, "safetensors": version("safetensors"), "gfpgan": version("gfpgan"),
            "python": sys.version.split()[0]}
    save_file(dict(out), OUT, metadata=meta)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes), {meta}")


if __name__ == "__main__":
    main()
