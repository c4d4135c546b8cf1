#!/usr/bin/env python3
"""Reference fixtures for CodeFormer (issue 25). Reference venv, not CI.

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_codeformer_fixtures.py [--out DIR] [--threads 2]
    ~/.cache/facerestore-perf/venv/bin/python scripts/make_codeformer_fixtures.py --bench-only   # timings only

Reference code: CodeFormer's arch as shipped on PyPI by spandrel-extra-arches 0.2.0
(`spandrel_extra_arches/architectures/CodeFormer/__arch/codeformer.py`, arch and VQGAN in one
file; bit-identical output to sczhou/CodeFormer's `basicsr/archs/codeformer_arch.py` with the same
weights, see ../shared/docs/reference-codeformer-restoreformer.md §3). CodeFormer is under the NTU
S-Lab License 1.0 (non-commercial): this script only *runs* that code at fixture-generation time;
never vendor it, and never commit what this writes except as data. This script installs nothing;
set the venv up by hand once:

    ~/.cache/facerestore-reference/venv/bin/pip install --no-deps spandrel==0.4.2 spandrel-extra-arches==0.2.0 einops==0.8.2

(`--no-deps` keeps the venv's torch 1.13; spandrel imports einops.) spandrel's copy hard-codes
`adain=True` and takes `forward(x, weight)`, returning `(out, logits)`; the inference script's
`net(x, w=w, adain=True)[0]` is the same call. For the inpainting checkpoint's `adain=False`
call, the module's `adaptive_instance_normalization` is replaced by the identity for that run.

Weights are random, from fixed seeds: torch's default init under `torch.manual_seed`, then
`position_emb` (zeros by default) = 0.5*randn, every GroupNorm/LayerNorm gamma = 1 + 0.2*randn and
beta = 0.2*randn, the codebook (+-1/codebook_size by default) = randn, and the last conv
(`generator.blocks.24`) scaled so the first face's w=0.5 output peaks at 1.5, as a trained model's
stays near [-1, 1] (unscaled random weights reach about ±9, and float32 rounding with them). The tokens entering the
logit layer (idx_pred_layer's LayerNorm output) are nearly parallel with random weights (cosine
up to 0.999; 25 distinct codes on 512 tokens), so `idx_pred_layer.1.weight` loses its component
along the fixture faces' mean token and is scaled x32 (logit std ~5, ~260 distinct codes); then
rows that come second by less than GAP logits on some token are nudged down along that token
(`separate`) until every token's top-1 logit wins by at least GAP = 0.05. The smallest
top-1/top-2 gap is recorded.

Configurations (`CodeFormer(dim_embd=512, n_head=8, n_layers=9, latent_size=256, ...)`):
  codeformer               connect_list ['32','64','128','256'], codebook 1024  (515 tensors, 94,112,707 parameters, asserted)
                           faces astronaut, grace_hopper; w in {0, 0.5, 1}, adain=True
  codeformer_colorization  connect_list ['32','64','128'], codebook 1024; grace_hopper made gray (cv2 BGR2GRAY, 3 channels); w=0, adain=True
  codeformer_inpainting    connect_list ['32','64','128'], codebook 512; grace_hopper with a white box over the eyes; w=1, adain=False
Inputs as the inference scripts prepare an aligned face: resize to 512, BGR→RGB, /255, (x-0.5)/0.5.

Writes to $FACERESTORE_REFERENCE_FIXTURES (default ~/.cache/facerestore-reference/fixtures), or --out:
  {config}_random.pth          {'params_ema': state_dict} (the released checkpoints' layout, loaded strictly)
  {config}_keys.txt            key, shape per line (the official lists' format)
  {config}_parity.safetensors  per face F, float32 unless noted:
      F.input (1,3,512,512); F.enc.256/128/64/32 encoder blocks 5/8/11/14 outputs; F.lq_feat (1,256,16,16);
      F.feat_emb (256,1,512) and F.ft.0 … ft.8 (256,1,512) transformer layer outputs (sequence-first);
      F.logits (1,256,K); F.top_idx (1,256) int64; F.logit_gap (1,256) top-1 minus top-2 logit;
      F.quant (1,256,16,16) codebook rows before AdaIN; F.quant_adain (after AdaIN; = F.quant when adain=False);
      per call tag T (w000, w050, w100): F.T.gen.16/32/64/128[/256] generator blocks 7/10/13/16/19 outputs,
      F.T.fuse.32/64/128[/256] Fuse_sft_block outputs (w > 0 only), F.T.output (1,3,512,512),
      F.T.output_u8 (512,512,3) BGR uint8 (tensor2img); the 256² tensors only for w050 and the single-call configs
  codeformer_summary.json      versions, key/parameter counts, key-list comparison, smallest logit gaps, codes used
  codeformer_timings.json      seconds per 512² face (median of the forwards run here)
Every file except the timings is byte-identical between runs.
"""
import argparse
import importlib
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
KEYS_DIR = os.path.join(ROOT, "..", "shared", "docs", "keys")
DEFAULT_OUT = os.environ.get("FACERESTORE_REFERENCE_FIXTURES", os.path.expanduser("~/.cache/facerestore-reference/fixtures"))
ARCH_MODULE = "spandrel_extra_arches.architectures.CodeFormer.__arch.codeformer"
GAP = 0.05
LEVEL_BLOCKS = {7: "16", 10: "32", 13: "64", 16: "128", 19: "256"}
ENC_BLOCKS = {5: "256", 8: "128", 11: "64", 14: "32"}

CONFIGS = {
    "codeformer": dict(connect_list=["32", "64", "128", "256"], codebook_size=1024, seed=2511,
                       faces=["astronaut", "grace_hopper"], calls=[(0.0, True), (0.5, True), (1.0, True)],
                       expected=(515, 94_112_707), official="codeformer_state_dict_keys.txt"),
    "codeformer_colorization": dict(connect_list=["32", "64", "128"], codebook_size=1024, seed=2512,
                                    faces=["grace_hopper_gray"], calls=[(0.0, True)]),
    "codeformer_inpainting": dict(connect_list=["32", "64", "128"], codebook_size=512, seed=2513,
                                  faces=["grace_hopper_masked"], calls=[(1.0, False)]),
}


def arch():
    return importlib.import_module(ARCH_MODULE)


def build(cfg):
    return arch().CodeFormer(dim_embd=512, n_head=8, n_layers=9, codebook_size=cfg["codebook_size"],
                             latent_size=256, connect_list=list(cfg["connect_list"])).eval()


def load_face(name):
    import cv2
    from basicsr.utils import img2tensor
    from torchvision.transforms.functional import normalize
    base = name.replace("_gray", "").replace("_masked", "")
    img = cv2.imread(os.path.join(EXAMPLES, "faces", base + ".jpg"), cv2.IMREAD_COLOR)
    img = cv2.resize(img, (512, 512), interpolation=cv2.INTER_LINEAR)
    if name.endswith("_gray"):
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if name.endswith("_masked"):
        img = img.copy()
        img[200:270, 150:370] = 255
    t = img2tensor(img / 255., bgr2rgb=True, float32=True)
    normalize(t, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), inplace=True)
    return t.unsqueeze(0).contiguous()


def key_listing(sd):
    return "".join(f"{k} {tuple(v.shape)}\n" for k, v in sd.items())


def compare_keys(cfg, listing):
    if "official" not in cfg:
        return "no official list"
    path = os.path.join(KEYS_DIR, cfg["official"])
    if not os.path.exists(path):
        return "official list absent"
    official, ours = open(path).read().splitlines(), listing.splitlines()
    if official == ours:
        return "identical (keys, shapes and order)"
    if sorted(official) == sorted(ours):
        return "same keys and shapes, different order"
    a, b = set(official), set(ours)
    return f"DIFFERENT: only official {sorted(a - b)[:10]}, only ours {sorted(b - a)[:10]}"


class _Stop(Exception):
    pass


def token_states(net, x):
    """idx_pred_layer's LayerNorm output (256, 512) for input x (stops before the generator)."""
    got = {}

    def hook(_m, _i, out):
        got["h"] = out
        raise _Stop
    h = net.idx_pred_layer[0].register_forward_hook(hook)
    try:
        with torch.no_grad():
            net(x, weight=0.5)
    except _Stop:
        pass
    finally:
        h.remove()
    return got["h"][:, 0, :]


def separate(hs, w, gap=GAP, rounds=1000):
    """While some token's top-1 logit wins by less than `gap`, lowers that token's runner-up row
    along the token (w_j -= delta*h/|h|², which moves logit j on that token to top-1 - 3*gap and
    the row's other logits by the tokens' overlap). One token per round; float64."""
    h, w = hs.double(), w.double().clone()
    for _ in range(rounds):
        logits = h @ w.t()
        v, i = torch.topk(logits, 2, dim=1)
        bad = torch.nonzero(v[:, 0] - v[:, 1] < gap).flatten()
        if len(bad) == 0:
            break
        t = int(bad[0])
        j = int(i[t, 1])
        delta = float(logits[t, j]) - (float(v[t, 0]) - 3 * gap)
        w[j] -= delta * h[t] / float(h[t] @ h[t])
    v = torch.topk(h @ w.t(), 2, dim=1).values
    return w.float(), float((v[:, 0] - v[:, 1]).min())


def randomise(net, cfg, faces):
    g = torch.Generator().manual_seed(cfg["seed"] + 1000)
    with torch.no_grad():
        net.position_emb.copy_(0.5 * torch.randn(net.position_emb.shape, generator=g))
        for _, m in net.named_modules():
            if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
        e = net.quantize.embedding.weight
        e.copy_(torch.randn(e.shape, generator=g))
        # The tokens entering the logit layer share one dominant direction (cosine up to 0.999):
        # take it out of the rows so the logits follow what differs between tokens, then scale up.
        hs = torch.cat([token_states(net, x) for x in faces]).double()
        mean = hs.mean(0)
        mean = mean / mean.norm()
        w = net.idx_pred_layer[1].weight
        w64 = w.double()
        w64 = (w64 - (w64 @ mean)[:, None] * mean[None, :]) * 32
        sep, reached = separate(hs, w64)
        print(f"logit rows moved: {int((sep != w64.float()).any(1).sum())}; smallest top-1/top-2 gap (float64, calibration) {reached:.4g}")
        w.copy_(sep)
        # A trained model's output lies in [-1, 1]; random weights reach about ±9, and float32
        # rounding grows with the values. The last conv is scaled so the first face's w=0.5 output
        # peaks at 1.5 (a linear layer: the output scales exactly).
        peak = float(net(faces[0], weight=0.5)[0].abs().max())
        last = net.generator.blocks[24]
        last.weight.mul_(1.5 / peak)
        last.bias.mul_(1.5 / peak)
        print(f"output peak {peak:.3g} scaled to 1.5")


def run_traced(net, x, weight, adain, keep_256):
    """One forward with intermediates recorded: encoder and generator block outputs by hooks,
    AdaIN's input/output through the module's function (replaced by the identity when adain=False)."""
    m = arch()
    rec, hooks = {}, []

    def keep(name):
        def hook(_m, _i, out):
            rec[name] = out
        return hook
    for i, s in ENC_BLOCKS.items():
        hooks.append(net.encoder.blocks[i].register_forward_hook(keep("enc." + s)))
    hooks.append(net.encoder.blocks[24].register_forward_hook(keep("lq_feat")))
    hooks.append(net.feat_emb.register_forward_hook(keep("feat_emb")))
    for i, layer in enumerate(net.ft_layers):
        hooks.append(layer.register_forward_hook(keep(f"ft.{i}")))
    for i, s in LEVEL_BLOCKS.items():
        if s != "256" or keep_256:
            hooks.append(net.generator.blocks[i].register_forward_hook(keep("gen." + s)))
    for s, block in net.fuse_convs_dict.items():
        if s != "256" or keep_256:
            hooks.append(block.register_forward_hook(keep("fuse." + s)))
    orig = m.adaptive_instance_normalization

    def adain_fn(content, style):
        rec["quant"] = content
        out = orig(content, style) if adain else content
        rec["quant_adain"] = out
        return out
    m.adaptive_instance_normalization = adain_fn
    try:
        with torch.no_grad():
            t0 = time.perf_counter()
            out, logits = net(x, weight=weight)
            seconds = time.perf_counter() - t0
    finally:
        m.adaptive_instance_normalization = orig
        for h in hooks:
            h.remove()
    rec["logits"] = logits
    top2 = torch.topk(logits, 2, dim=2)
    rec["top_idx"] = top2.indices[:, :, 0]
    rec["logit_gap"] = top2.values[:, :, 0] - top2.values[:, :, 1]
    # top_idx is the code the network used: its codebook rows are the recorded quant.
    emb = net.quantize.embedding.weight
    assert torch.equal(emb[rec["top_idx"][0]].view(1, 16, 16, 256).permute(0, 3, 1, 2), rec["quant"])
    return out, rec, seconds


def tag(w):
    return f"w{int(round(w * 100)):03d}"


def make_config(name, cfg, out_dir, summary, timings):
    from basicsr.utils import tensor2img
    torch.manual_seed(cfg["seed"])
    net = build(cfg)
    sd = net.state_dict()
    n_keys, n_params = len(sd), sum(v.numel() for v in sd.values())
    if "expected" in cfg:
        assert (n_keys, n_params) == cfg["expected"], (name, n_keys, n_params)
    listing = key_listing(sd)
    print(f"== {name}: {n_keys} tensors, {n_params:,} parameters")
    print(listing, end="")
    with open(os.path.join(out_dir, f"{name}_keys.txt"), "w") as f:
        f.write(listing)
    keys_vs_official = compare_keys(cfg, listing)
    print(f"{name} keys vs official: {keys_vs_official}")
    faces = {f: load_face(f) for f in cfg["faces"]}
    randomise(net, cfg, list(faces.values()))
    sd = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    path = os.path.join(out_dir, f"{name}_random.pth")
    torch.save({"params_ema": sd}, path)
    build(cfg).load_state_dict(torch.load(path)["params_ema"], strict=True)

    tensors, seconds, gaps, codes = {}, [], [], set()
    for face, x in faces.items():
        tensors[f"{face}.input"] = x
        logits0 = None
        for w, adain in cfg["calls"]:
            keep_256 = len(cfg["calls"]) == 1 or w == 0.5
            out, rec, s = run_traced(net, x, w, adain, keep_256)
            seconds.append(s)
            t = tag(w)
            if logits0 is None:
                logits0 = rec["logits"]
                for k in ["enc.256", "enc.128", "enc.64", "enc.32", "lq_feat", "feat_emb"] + [f"ft.{i}" for i in range(9)] + \
                         ["logits", "top_idx", "logit_gap", "quant", "quant_adain"]:
                    tensors[f"{face}.{k}"] = rec[k]
                gaps.append(float(rec["logit_gap"].min()))
                codes.update(rec["top_idx"].flatten().tolist())
                print(f"{name} {face}: {len(set(rec['top_idx'].flatten().tolist()))} distinct codes, smallest logit gap "
                      f"{gaps[-1]:.4g} (median {float(rec['logit_gap'].median()):.4g}), lq_feat std {float(rec['lq_feat'].std()):.3g}, "
                      f"quant_adain std {float(rec['quant_adain'].std()):.3g}")
            else:
                assert torch.equal(logits0, rec["logits"])   # everything before the generator ignores w
            for k, v in rec.items():
                if k.startswith("gen.") or k.startswith("fuse."):
                    tensors[f"{face}.{t}.{k}"] = v
            tensors[f"{face}.{t}.output"] = out
            tensors[f"{face}.{t}.output_u8"] = torch.from_numpy(
                tensor2img(out.squeeze(0).clone(), rgb2bgr=True, min_max=(-1, 1)).astype(np.uint8))
            print(f"{name} {face} {t} adain={adain}: {s:.1f} s, output range [{out.min():.3f}, {out.max():.3f}]")
    # A traced run equals a plain forward.
    first, (w, adain) = cfg["faces"][0], cfg["calls"][-1]
    if adain:
        with torch.no_grad():
            assert torch.equal(net(faces[first], weight=w)[0], tensors[f"{first}.{tag(w)}.output"])
    if len(cfg["calls"]) > 1:
        assert not torch.equal(tensors[f"{first}.w000.output"], tensors[f"{first}.w100.output"])
    from safetensors.torch import save_file
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, os.path.join(out_dir, f"{name}_parity.safetensors"))
    summary[name] = {"tensors": n_keys, "parameters": n_params, "keys_vs_official": keys_vs_official,
                     "connect_list": cfg["connect_list"], "codebook_size": cfg["codebook_size"],
                     "calls": [{"w": w, "adain": a} for w, a in cfg["calls"]], "faces": cfg["faces"],
                     "smallest_logit_gap": min(gaps), "distinct_codes": len(codes)}
    timings[name] = {"seconds_per_face_median": statistics.median(seconds), "runs": seconds}


def bench(threads, runs):
    cfg = CONFIGS["codeformer"]
    net = build(cfg)
    x = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        net(x, weight=0.5)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            net(x, weight=0.5)
            times.append(time.perf_counter() - t0)
    print(f"codeformer (w=0.5): torch {torch.__version__}, {threads} threads, median {statistics.median(times):.2f} s per face "
          f"over {runs} runs {['%.2f' % t for t in times]}")


def versions():
    import importlib.metadata as md
    v = {"python": sys.version.split()[0], "torch": torch.__version__, "arch_module": ARCH_MODULE}
    for p in ("spandrel-extra-arches", "spandrel", "einops", "basicsr", "numpy", "safetensors", "torchvision"):
        try:
            v[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    import hashlib
    import cv2
    v["cv2"] = cv2.__version__
    v["codeformer.py sha256"] = hashlib.sha256(open(arch().__file__, "rb").read()).hexdigest()
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="configurations to write (default all)")
    ap.add_argument("--bench-only", action="store_true", help="only time CodeFormer (any venv with the package)")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.bench_only:
        bench(a.threads, a.runs)
        return
    os.makedirs(a.out, exist_ok=True)
    summary, timings = {"versions": versions()}, {"threads": a.threads, "torch": torch.__version__}
    for name, cfg in CONFIGS.items():
        if not a.only or name in a.only:
            make_config(name, cfg, a.out, summary, timings)
    with open(os.path.join(a.out, "codeformer_summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    with open(os.path.join(a.out, "codeformer_timings.json"), "w") as f:
        json.dump(timings, f, indent=1, sort_keys=True)
    print(json.dumps(summary, indent=1, sort_keys=True))
    print(json.dumps(timings, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
