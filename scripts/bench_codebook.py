#!/usr/bin/env python3
"""Speed of the codebook restorers' networks against PyTorch in the same run (not CI): CodeFormer
(w = 0.5), RestoreFormer and RestoreFormer++ at 512², 2 threads, the two sides alternating
(`--rounds`), on the random-weight fixtures of scripts/make_codeformer_fixtures.py and
scripts/make_restoreformer_fixtures.py:

    swift build -c release --product facerestore-bench
    ~/.cache/facerestore-perf/venv/bin/python scripts/bench_codebook.py --rounds 3        # latest torch
    ~/.cache/facerestore-reference/venv/bin/python scripts/bench_codebook.py --rounds 3   # torch 1.13

The reference networks: CodeFormer's arch from spandrel-extra-arches 0.2.0 (bit-identical to
sczhou/CodeFormer; S-Lab licence, only run here), RestoreFormer and RF++ from gfpgan 1.3.8 when installed
(as make_restoreformer_fixtures.py builds them), else spandrel's RestoreFormer (no RF++). Both venvs need
`pip install --no-deps spandrel==0.4.2 spandrel-extra-arches==0.2.0 einops==0.8.2`.
Prints, per network, the reference's and our median forward seconds per round and the ratios. Each network
is measured in a fresh Python process, as a user runs one model: in one shared process torch's time for a
network depended on what ran before it (RestoreFormer++ 3.55 s after RestoreFormer, 4.15-4.35 s alone).
"""
import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.expanduser("~/.cache/facerestore-reference/fixtures")


def codeformer():
    arch = importlib.import_module("spandrel_extra_arches.architectures.CodeFormer.__arch.codeformer")
    net = arch.CodeFormer(dim_embd=512, n_head=8, n_layers=9, codebook_size=1024, latent_size=256,
                          connect_list=["32", "64", "128", "256"]).eval()
    net.load_state_dict(torch.load(os.path.join(FIXTURES, "codeformer_random.pth"))["params_ema"], strict=True)
    return net, (lambda x: net(x, weight=0.5)), os.path.join(FIXTURES, "codeformer_random.pth"), "codeformer"


def restoreformer(plus):
    path = os.path.join(FIXTURES, "restoreformer_pp_random.pth" if plus else "restoreformer_random.pth")
    sd = torch.load(path)["params_ema"]
    try:
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        net = importlib.import_module("make_restoreformer_fixtures").build("rfpp" if plus else "rf")
    except ImportError:
        if plus:
            raise
        from spandrel.architectures.RestoreFormer.__arch.restoreformer_arch import RestoreFormer
        net = RestoreFormer()
    net.load_state_dict(sd, strict=True)
    net.eval()
    return net, (lambda x: net(x)), path, "restoreformer"


def ours(command, model, io, threads, runs):
    bench = os.path.join(ROOT, ".build/release/facerestore-bench")
    r = subprocess.run([bench, command, "--model", model, "--io", io, "--threads", str(threads), "--runs", str(runs)]
                       + (["--fidelity", "0.5"] if command == "codeformer" else []), capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"facerestore-bench failed: {r.stderr}")
    return float(r.stdout.split("forward median ")[1].split(" s")[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=["codeformer", "restoreformer", "restoreformer++"])
    a = ap.parse_args()
    if not a.only:
        for name in ["codeformer", "restoreformer", "restoreformer++"]:
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--only", name, "--threads", str(a.threads),
                                "--runs", str(a.runs), "--rounds", str(a.rounds)], capture_output=True, text=True)
            lines = r.stdout.strip().splitlines()
            if name == "codeformer" and lines:
                print(lines[0])
            print(lines[-1] if r.returncode == 0 and lines else f"{name}: failed ({r.stderr.strip()[-300:]})")
        return
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} threads, {a.runs} runs per side per round, {a.rounds} rounds")
    builders = {"codeformer": codeformer, "restoreformer": lambda: restoreformer(False), "restoreformer++": lambda: restoreformer(True)}
    x = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    with tempfile.TemporaryDirectory() as tmp:
        io = os.path.join(tmp, "io.safetensors")
        save_file({"x": x.contiguous()}, io)
        for name, build in builders.items():
            if a.only and a.only != name:
                continue
            try:
                net, forward, model, command = build()
            except Exception as e:  # a reference arch that is not installed
                print(f"{name}: skipped ({e})")
                continue
            with torch.no_grad():
                forward(x)
            ref_t, our_t = [], []
            for _ in range(a.rounds):
                times = []
                with torch.no_grad():
                    for _ in range(a.runs):
                        t0 = time.perf_counter()
                        forward(x)
                        times.append(time.perf_counter() - t0)
                ref_t.append(statistics.median(times))
                our_t.append(ours(command, model, io, a.threads, a.runs))
            ratios = [r / o for r, o in zip(ref_t, our_t)]
            print(f"{name:16s} torch {statistics.median(ref_t):.2f} s, ours {statistics.median(our_t):.2f} s, "
                  f"{statistics.median(ratios):.2f}x (per round {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
