#!/usr/bin/env python3
"""Reference fixtures for RestoreFormer and RestoreFormer++ (issue 25). Reference venv, not CI.

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_restoreformer_fixtures.py [--out DIR] [--threads 2] [--no-photo]
    ~/.cache/facerestore-perf/venv/bin/python scripts/make_restoreformer_fixtures.py --bench-only   # timings only

Reference code: gfpgan 1.3.8 from PyPI (`gfpgan/archs/restoreformer_arch.py`, Apache-2.0), already in
the reference venv (../shared/reference/setup.sh); this script installs nothing. RestoreFormer is
gfpgan's `RestoreFormer()` (what `GFPGANer(arch='RestoreFormer')` builds). RestoreFormer++ is not on
PyPI: `RestoreFormerPP` below is our own fixture class, a subclass of gfpgan's RestoreFormer with
head_size=4 whose decoder also has attention at 32² (level 4) cross-attending the encoder's
`hs['block_4']`, as wzhouxiff/RestoreFormerPlusPlus' `VQVAEGANMultiHeadTransformer(head_size=4,
ex_multi_scale_num=1)` does (no upstream file is copied).

Weights are random, from fixed seeds: torch's default init under `torch.manual_seed`, then every
GroupNorm gamma/beta randomised, and the codebook replaced by random directions with norms
R*(1 + 0.02*u) where R is the RMS norm of the quantiser input z over the fixture faces' tokens, so
tokens pick many different codewords (default init: +-1/1024, near-degenerate). Then codewords
that come second by less than GAP on some token are pushed away from it (`separate`) until every
token's nearest codeword wins by at least GAP = 0.05 (distances are ~20). The smallest gap
between the best and second-best squared distance over all tokens is recorded.

Writes to $FACERESTORE_REFERENCE_FIXTURES (default ~/.cache/facerestore-reference/fixtures), or --out:
  restoreformer_random.pth / restoreformer_pp_random.pth     {'params_ema': state_dict} (GFPGAN's RestoreFormer.pth layout)
  restoreformer_random.ckpt / restoreformer_pp_random.ckpt   Lightning layout: {'state_dict': {'vqvae.'+k: v, 'loss.*': …}, 'epoch', 'global_step', …}
  restoreformer{,_pp}_keys.txt                               key, shape per line (the official lists' format)
  restoreformer{,_pp}_parity.safetensors                     per face F (astronaut, grace_hopper), float32 NCHW unless noted:
      F.input (1,3,512,512) normalised RGB; F.output (1,3,512,512) network output; F.output_u8 (512,512,3) BGR uint8 (tensor2img)
      F.hs.block_1 … block_4, F.hs.block_5_atten, F.hs.mid_atten, F.hs.out   encoder features (256² and smaller; the 512² ones are left out)
      F.quant.z (1,256,16,16) quant_conv output; F.quant.d (256,1024) squared distances; F.quant.indices (256,) int64;
      F.quant.gap (256,) second-best minus best distance; F.quant.z_q (1,256,16,16) as the network computes it
      (straight-through z + (e[idx] - z): equal to the codebook rows up to rounding); F.dec.conv_in, F.dec.mid (16²),
      F.dec.up5 … up1 level outputs (after the level's blocks/attention, before its upsample); level 0 (512²) is left out
  restoreformer_summary.json       versions, key/parameter counts, smallest gaps, codes used, GFPGANer faces
  restoreformer_timings.json       seconds per 512² face (median of the forwards run here)
  restoreformer_group_s2.png, restoreformer_group_{crop,restored}_NN.png, restoreformer_group.safetensors
      `GFPGANer(arch='RestoreFormer', model_path=restoreformer_random.pth, upscale=2).enhance(group.jpg)` (paste_back,
      parse mask) with facexlib's RetinaFace MobileNet0.25 (real weights from ../shared/weights) injected as the detector
      and the random ParseNet from make_fixtures.py (parsenet_random.pth) as the parser; skipped when either is absent.
Every file except the timings is byte-identical between runs.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
FACES = ["astronaut", "grace_hopper"]
SHARED_WEIGHTS = os.path.join(ROOT, "..", "shared", "weights")
DEFAULT_OUT = os.environ.get("FACERESTORE_REFERENCE_FIXTURES", os.path.expanduser("~/.cache/facerestore-reference/fixtures"))

EXPECTED = {"rf": (405, 72_680_003), "rfpp": (441, 73_472_579)}
NAMES = {"rf": "restoreformer", "rfpp": "restoreformer_pp"}
OFFICIAL_KEYS = {"rf": "restoreformer_state_dict_keys.txt", "rfpp": "restoreformer_pp_state_dict_keys.txt"}
KEYS_DIR = os.path.join(ROOT, "..", "shared", "docs", "keys")
SEEDS = {"rf": 2501, "rfpp": 2502}


def build(kind):
    from gfpgan.archs.restoreformer_arch import MultiHeadDecoderTransformer, RestoreFormer

    class DecoderPP(MultiHeadDecoderTransformer):
        """Attention at a level without an encoder `block_N_atten` feature cross-attends `block_N`."""

        def forward(self, z, hs):
            hs = dict(hs)
            for level in range(self.num_resolutions):
                if len(self.up[level].attn) > 0 and f"block_{level}_atten" not in hs:
                    hs[f"block_{level}_atten"] = hs[f"block_{level}"]
            return super().forward(z, hs)

    class RestoreFormerPP(RestoreFormer):
        def __init__(self):
            super().__init__(head_size=4)
            self.decoder = DecoderPP(ch=64, out_ch=3, ch_mult=(1, 2, 2, 4, 4, 8), num_res_blocks=2,
                                     attn_resolutions=(16, 32), dropout=0.0, in_channels=3, resolution=512,
                                     z_channels=256, enable_mid=True, head_size=4)

    return RestoreFormer() if kind == "rf" else RestoreFormerPP()


def load_face(name):
    """An aligned 512² face as GFPGANer (has_aligned=True) feeds it: resize to 512, BGR→RGB, /255, (x-0.5)/0.5."""
    import cv2
    from basicsr.utils import img2tensor
    from torchvision.transforms.functional import normalize
    img = cv2.imread(os.path.join(EXAMPLES, "faces", name + ".jpg"), cv2.IMREAD_COLOR)
    img = cv2.resize(img, (512, 512))
    t = img2tensor(img / 255., bgr2rgb=True, float32=True)
    normalize(t, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), inplace=True)
    return t.unsqueeze(0).contiguous()


def key_listing(sd):
    return "".join(f"{k} {tuple(v.shape)}\n" for k, v in sd.items())


def compare_keys(kind, listing):
    path = os.path.join(KEYS_DIR, OFFICIAL_KEYS[kind])
    if not os.path.exists(path):
        return "official list absent"
    official = open(path).read().splitlines()
    ours = listing.splitlines()
    if official == ours:
        return "identical (keys, shapes and order)"
    if sorted(official) == sorted(ours):
        return "same keys and shapes, different order"
    a, b = set(official), set(ours)
    return f"DIFFERENT: only official {sorted(a - b)[:10]}, only ours {sorted(b - a)[:10]}"


GAP = 0.05   # wanted smallest best/second-best squared-distance gap (distances are ~20)


def separate(z, e, gap=GAP, rounds=200):
    """Moves runner-up codewords away from the tokens they nearly tie on (e_j <- t + (e_j - t)*s,
    which scales their distance to that token by s²) until every token's best codeword wins by at
    least `gap`. float64; returns the new codebook and the smallest gap reached."""
    z, e = z.double(), e.double().clone()
    for _ in range(rounds):
        d = (z * z).sum(1, keepdim=True) + (e * e).sum(1) - 2 * z @ e.t()
        v, i = torch.topk(d, 2, dim=1, largest=False)
        bad = torch.nonzero(v[:, 1] - v[:, 0] < gap).flatten()
        if len(bad) == 0:
            break
        for t in bad.tolist():
            j = int(i[t, 1])
            s = ((float(v[t, 0]) + 2 * gap) / float(d[t, j])) ** 0.5
            e[j] = z[t] + (e[j] - z[t]) * s
    d = (z * z).sum(1, keepdim=True) + (e * e).sum(1) - 2 * z @ e.t()
    v = torch.topk(d, 2, dim=1, largest=False).values
    return e.float(), float((v[:, 1] - v[:, 0]).min())


def randomise(net, kind, faces):
    """GroupNorm gamma/beta random; codebook spread (see the header), then separated on the
    fixture faces' tokens. Deterministic."""
    g = torch.Generator().manual_seed(SEEDS[kind] + 1000)
    with torch.no_grad():
        for name, m in net.named_modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
        zs = []
        for x in faces:
            z = net.quant_conv(net.encoder(x)["out"])
            zs.append(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]))
        z = torch.cat(zs)
        r = z.norm(dim=1).pow(2).mean().sqrt()
        e = net.quantize.embedding.weight
        d = torch.randn(e.shape, generator=g)
        d = d / d.norm(dim=1, keepdim=True)
        e.copy_(d * (r * (1 + 0.02 * torch.rand(e.shape[0], 1, generator=g))))
        sep, reached = separate(z, e)
        print(f"codebook: z RMS norm {float(r):.4g}; {int((sep != e).any(1).sum())} codewords moved; smallest gap (float64, calibration) {reached:.4g}")
        e.copy_(sep)
    return float(r)


def run_traced(net, x):
    """Forward pass with the intermediate tensors recorded by hooks."""
    rec, hooks = {}, []

    def keep(name):
        def hook(_m, _i, out):
            rec[name] = out
        return hook

    dec = net.decoder
    hooks.append(net.quant_conv.register_forward_hook(keep("quant.z")))
    hooks.append(dec.conv_in.register_forward_hook(keep("dec.conv_in")))
    hooks.append(dec.mid.block_2.register_forward_hook(keep("dec.mid")))
    for level in range(1, dec.num_resolutions):
        last = dec.up[level].attn[-1] if len(dec.up[level].attn) > 0 else dec.up[level].block[-1]
        hooks.append(last.register_forward_hook(keep(f"dec.up{level}")))
    orig_q = net.quantize.forward

    def quantize(z):
        out = orig_q(z)
        rec["quant.z_q"] = out[0]
        rec["quant.indices"] = out[2][2][:, 0]
        rec["quant.d"] = out[2][3]
        return out
    net.quantize.forward = quantize
    orig_e = net.encoder.forward

    def encode(x):
        hs = orig_e(x)
        rec["hs"] = hs
        return hs
    net.encoder.forward = encode
    try:
        with torch.no_grad():
            t0 = time.perf_counter()
            out = net(x)[0]
            seconds = time.perf_counter() - t0
    finally:
        for h in hooks:
            h.remove()
        del net.quantize.forward, net.encoder.forward
    tensors = {}
    for k, v in rec.pop("hs").items():
        if v.shape[-1] <= 256:
            tensors["hs." + k] = v
    tensors.update(rec)
    d = tensors["quant.d"]
    top2 = torch.topk(d, 2, dim=1, largest=False).values
    tensors["quant.gap"] = top2[:, 1] - top2[:, 0]
    assert torch.equal(torch.argmin(d, dim=1), tensors["quant.indices"])
    return out, tensors, seconds


def lightning_ckpt(sd, seed):
    """The RestoreFormer(++) release .ckpt layout: vqvae.* plus training-only loss.* keys."""
    g = torch.Generator().manual_seed(seed)
    state = {"vqvae." + k: v for k, v in sd.items()}
    for k, shape in [("loss.perceptual_loss.scaling_layer.shift", (1, 3, 1, 1)),
                     ("loss.perceptual_loss.lin0.model.1.weight", (1, 64, 1, 1)),
                     ("loss.discriminator.main.0.weight", (64, 3, 4, 4)),
                     ("loss.discriminator.main.0.bias", (64,))]:
        state[k] = torch.randn(shape, generator=g)
    return {"epoch": 0, "global_step": 0, "pytorch-lightning_version": "1.0.8", "state_dict": state}


def save_file(tensors, path):
    from safetensors.torch import save_file as st_save
    st_save({k: v.detach().clone().contiguous() for k, v in tensors.items()}, path)


def make_network(kind, out_dir, faces, summary, timings):
    import cv2  # noqa: F401  (basicsr.utils needs it)
    from basicsr.utils import tensor2img
    name = NAMES[kind]
    torch.manual_seed(SEEDS[kind])
    net = build(kind).eval()
    sd = net.state_dict()
    n_keys, n_params = len(sd), sum(v.numel() for v in sd.values())
    assert (n_keys, n_params) == EXPECTED[kind], (kind, n_keys, n_params)
    listing = key_listing(sd)
    print(f"== {name}: {n_keys} tensors, {n_params:,} parameters")
    print(listing, end="")
    with open(os.path.join(out_dir, f"{name}_keys.txt"), "w") as f:
        f.write(listing)
    keys_vs_official = compare_keys(kind, listing)
    print(f"{name} keys vs ../shared/docs/keys/{OFFICIAL_KEYS[kind]}: {keys_vs_official}")

    r = randomise(net, kind, list(faces.values()))
    sd = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    torch.save({"params_ema": sd}, os.path.join(out_dir, f"{name}_random.pth"))
    torch.save(lightning_ckpt(sd, SEEDS[kind] + 2000), os.path.join(out_dir, f"{name}_random.ckpt"))
    # Both layouts load back strictly into a fresh network.
    fresh = build(kind)
    fresh.load_state_dict(torch.load(os.path.join(out_dir, f"{name}_random.pth"))["params_ema"], strict=True)
    ck = torch.load(os.path.join(out_dir, f"{name}_random.ckpt"))["state_dict"]
    fresh.load_state_dict({k[6:]: v for k, v in ck.items() if k.startswith("vqvae.")}, strict=True)

    tensors, seconds, gaps, codes = {}, [], [], set()
    for face, x in faces.items():
        out, rec, s = run_traced(net, x)
        seconds.append(s)
        tensors[f"{face}.input"] = x
        tensors[f"{face}.output"] = out
        tensors[f"{face}.output_u8"] = torch.from_numpy(tensor2img(out.squeeze(0).clone(), rgb2bgr=True, min_max=(-1, 1)).astype(np.uint8))
        for k, v in rec.items():
            tensors[f"{face}.{k}"] = v
        gaps.append(float(rec["quant.gap"].min()))
        codes.update(rec["quant.indices"].tolist())
        print(f"{name} {face}: {s:.1f} s, output range [{out.min():.3f}, {out.max():.3f}], "
              f"{len(set(rec['quant.indices'].tolist()))} distinct codes, smallest distance gap {gaps[-1]:.4g} "
              f"(median {float(rec['quant.gap'].median()):.4g}, distances ~{float(rec['quant.d'].min(dim=1).values.mean()):.4g})")
    # The recorded run equals a plain forward (hooks change nothing).
    with torch.no_grad():
        assert torch.equal(net(faces[FACES[0]])[0], tensors[f"{FACES[0]}.output"])
    save_file(tensors, os.path.join(out_dir, f"{name}_parity.safetensors"))
    summary[name] = {"tensors": n_keys, "parameters": n_params, "keys_vs_official": keys_vs_official,
                     "z_rms_norm": r, "smallest_distance_gap": min(gaps), "distinct_codes": len(codes),
                     "head_size": 8 if kind == "rf" else 4}
    timings[name] = {"seconds_per_face_median": statistics.median(seconds), "runs": seconds}
    return net


def group_enhance(out_dir, summary):
    """GFPGANer(arch='RestoreFormer') end to end on group.jpg, the detector and parser injected."""
    import cv2
    import facexlib.utils.face_restoration_helper as frh
    from facexlib.detection.retinaface import RetinaFace
    from facexlib.parsing.parsenet import ParseNet
    from gfpgan import GFPGANer
    det_path = os.path.join(SHARED_WEIGHTS, "retinaface_mobilenet0.25_Final.pth")
    parse_path = os.path.join(DEFAULT_OUT, "parsenet_random.pth")
    if not (os.path.exists(det_path) and os.path.exists(parse_path)):
        print("group enhance: detector or parser weights absent; skipped")
        summary["gfpganer_group"] = "skipped (weights absent)"
        return
    det = RetinaFace(network_name="mobile0.25", half=False, device=torch.device("cpu"))
    sd = torch.load(det_path, map_location="cpu")
    det.load_state_dict({k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}, strict=True)
    det.eval()
    parser = ParseNet(in_size=512, out_size=512, parsing_ch=19)
    parser.load_state_dict(torch.load(parse_path), strict=True)
    parser.eval()
    orig = frh.init_detection_model, frh.init_parsing_model
    frh.init_detection_model = lambda *a, **k: det
    frh.init_parsing_model = lambda *a, **k: parser
    try:
        restorer = GFPGANer(model_path=os.path.join(out_dir, "restoreformer_random.pth"), upscale=2,
                            arch="RestoreFormer", channel_multiplier=2, bg_upsampler=None, device=torch.device("cpu"))
    finally:
        frh.init_detection_model, frh.init_parsing_model = orig
    img = cv2.imread(os.path.join(EXAMPLES, "group.jpg"), cv2.IMREAD_COLOR)
    crops, faces, out = restorer.enhance(img, has_aligned=False, only_center_face=False, paste_back=True, weight=0.5)
    cv2.imwrite(os.path.join(out_dir, "restoreformer_group_s2.png"), out)
    t = {"group.input_u8": torch.from_numpy(img), "group.output_u8": torch.from_numpy(out)}
    for i, (c, f) in enumerate(zip(crops, faces)):
        cv2.imwrite(os.path.join(out_dir, f"restoreformer_group_crop_{i:02d}.png"), c)
        cv2.imwrite(os.path.join(out_dir, f"restoreformer_group_restored_{i:02d}.png"), f)
        t[f"group.crop_{i:02d}_u8"] = torch.from_numpy(c)
        t[f"group.restored_{i:02d}_u8"] = torch.from_numpy(f)
    t["group.landmarks"] = torch.from_numpy(np.asarray(restorer.face_helper.all_landmarks_5, dtype=np.float32))
    save_file(t, os.path.join(out_dir, "restoreformer_group.safetensors"))
    summary["gfpganer_group"] = {"faces": len(faces), "output_shape": list(out.shape),
                                 "detector": "facexlib RetinaFace mobile0.25 (../shared/weights)",
                                 "parser": "parsenet_random.pth (make_fixtures.py make_parsenet)", "upscale": 2}
    print(f"GFPGANer(arch='RestoreFormer') on group.jpg: {len(faces)} faces, output {out.shape}")


def bench(threads, runs):
    """Seconds per 512² face with default-init weights (speed does not depend on the values)."""
    x = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    res = {}
    for kind in ("rf", "rfpp"):
        net = build(kind).eval()
        with torch.no_grad():
            net(x)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - t0)
        res[NAMES[kind]] = statistics.median(times)
        print(f"{NAMES[kind]}: torch {torch.__version__}, {threads} threads, median {res[NAMES[kind]]:.2f} s per face over {runs} runs {['%.2f' % t for t in times]}")
    return res


def versions():
    import importlib.metadata as md
    v = {"python": sys.version.split()[0], "torch": torch.__version__}
    for p in ("gfpgan", "basicsr", "facexlib", "numpy", "safetensors", "torchvision"):
        try:
            v[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    import hashlib
    import cv2
    import gfpgan.archs.restoreformer_arch as ra
    v["cv2"] = cv2.__version__
    v["restoreformer_arch.py sha256"] = hashlib.sha256(open(ra.__file__, "rb").read()).hexdigest()
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-photo", action="store_true", help="skip the GFPGANer group.jpg run")
    ap.add_argument("--bench-only", action="store_true", help="only time the networks (any venv with gfpgan)")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.bench_only:
        bench(a.threads, a.runs)
        return
    os.makedirs(a.out, exist_ok=True)
    faces = {f: load_face(f) for f in FACES}
    summary, timings = {"versions": versions(), "faces": FACES}, {"threads": a.threads, "torch": torch.__version__}
    for kind in ("rf", "rfpp"):
        make_network(kind, a.out, faces, summary, timings)
    if not a.no_photo:
        group_enhance(a.out, summary)
    with open(os.path.join(a.out, "restoreformer_summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    with open(os.path.join(a.out, "restoreformer_timings.json"), "w") as f:
        json.dump(timings, f, indent=1, sort_keys=True)
    print(json.dumps(summary, indent=1, sort_keys=True))
    print(json.dumps(timings, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
