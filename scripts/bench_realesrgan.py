#!/usr/bin/env python3
"""Real-ESRGAN speed: our forward and PyTorch's on the same tile shape, in the same run.

    ~/.cache/facerestore-reference/venv/bin/python scripts/bench_realesrgan.py [--size 400] [--runs 3] [--threads 2] [--only 2|4] [--rounds 1] [--no-bf16] [--no-ncnn]

Uses the full-size random-weight RRDBNet x2plus / x4plus checkpoints that
`scripts/make_fixtures.py make_realesrgan` writes to ~/.cache/facerestore-reference/fixtures, and
the real ncnn x4plus from the model cache when present (ours only: PyTorch cannot read ncnn).
PyTorch is timed in NCHW and channels_last; the better of the two is the reference.

With --torch-python PYTHON (a newer PyTorch, e.g. the venv that scripts/setup_torch2_reference.sh
makes with torch 2.5.1 from PyPI), that PyTorch is timed too, in the same rounds: basicsr's RRDBNet
is traced here (TorchScript, same graph and weights) and the trace is timed by that interpreter,
since basicsr 1.4.2 does not import under torchvision ≥ 0.17.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIG = os.environ.get("FACERESTORE_REFERENCE_FIXTURES", os.path.expanduser("~/.cache/facerestore-reference/fixtures"))
HOME = os.environ.get("FACERESTORE_HOME") or os.path.expanduser("~/.cache/facerestore")


def reference_net(scale):
    from basicsr.archs.rrdbnet_arch import RRDBNet
    net = RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=scale)
    net.load_state_dict(torch.load(os.path.join(BIG, f"realesrgan_x{scale}plus_random.pth"))["params_ema"])
    return net.eval()


# The timing loop, run here for the reference PyTorch and, with --torch-python, by that
# interpreter on a TorchScript trace: NCHW and channels_last, the better median is the result.
TIMING = r'''
import statistics, time, torch


def best_layout_median(net, size, runs, label):
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    best = None
    for layout in ("nchw", "channels_last"):
        m = net.to(memory_format=torch.channels_last) if layout == "channels_last" else net
        xi = x.to(memory_format=torch.channels_last) if layout == "channels_last" else x
        with torch.no_grad():
            m(xi)
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                m(xi)
                times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(f"  torch {torch.__version__} {layout}{label}: median {med:.3f} s over {runs} runs", flush=True)
        best = med if best is None else min(best, med)
    return best
'''
exec(TIMING)

TIMER = TIMING + r'''
import sys
torch.set_num_threads(int(sys.argv[3]))
best = best_layout_median(torch.jit.load(sys.argv[1]).eval(), int(sys.argv[2]), int(sys.argv[4]), " (TorchScript trace)")
print(f"BEST {best}")
'''


def traced(scale, size, folder):
    """basicsr's RRDBNet traced with the reference PyTorch, saved for another interpreter."""
    path = os.path.join(folder, f"rrdbnet_x{scale}_{size}.pt")
    if not os.path.exists(path):
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            torch.jit.trace(reference_net(scale), x, check_trace=False).save(path)
    return path


def other_torch_time(python, trace, size, runs, threads):
    out = subprocess.run([python, "-c", TIMER, trace, str(size), str(threads), str(runs)], capture_output=True, text=True,
                         check=True).stdout
    print("\n".join(l for l in out.splitlines() if not l.startswith("BEST")))
    return float(re.search(r"BEST ([0-9.]+)", out).group(1))


def torch_time(scale, size, runs, threads):
    torch.set_num_threads(threads)
    return best_layout_median(reference_net(scale), size, runs, "")


def ours(model, size, runs, threads, precision="fp32"):
    exe = os.path.join(ROOT, ".build/release/facerestore-bench")
    out = subprocess.run([exe, "esrgan", "--model", model, "--size", str(size), "--runs", str(runs), "--threads", str(threads),
                          "--precision", precision], capture_output=True, text=True, check=True).stdout.strip()
    print("  " + out)
    return float(re.search(r"forward median ([0-9.]+) s", out).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", type=int, choices=[2, 4], help="one model (x2plus or x4plus)")
    ap.add_argument("--rounds", type=int, default=1, help="alternate PyTorch and ours this many times (noisy machines)")
    ap.add_argument("--no-bf16", action="store_true", help="skip our bf16 mode")
    ap.add_argument("--no-ncnn", action="store_true", help="skip the real ncnn x4plus")
    ap.add_argument("--torch-python", help="also time a newer PyTorch: this interpreter runs a TorchScript trace of the net")
    a = ap.parse_args()
    traces = tempfile.TemporaryDirectory()
    subprocess.run(["swift", "build", "-c", "release", "--product", "facerestore-bench"], cwd=ROOT, check=True,
                   capture_output=True)
    for scale in (2, 4):
        if a.only not in (None, scale):
            continue
        print(f"RRDBNet x{scale}plus, {a.size}² tile, {a.threads} threads:")
        path = os.path.join(BIG, f"realesrgan_x{scale}plus_random.pth")
        ratios, newer = [], []
        for _ in range(a.rounds):
            ref = torch_time(scale, a.size, a.runs, a.threads)
            if a.torch_python:
                other = other_torch_time(a.torch_python, traced(scale, a.size, traces.name), a.size, a.runs, a.threads)
            mine = ours(path, a.size, a.runs, a.threads)
            ratios.append(ref / mine)
            print(f"  => fp32 speed-up {ref / mine:.2f}× (torch {torch.__version__})")
            if a.torch_python:
                newer.append(other / mine)
                print(f"  => fp32 speed-up {other / mine:.2f}× (newer torch)")
        if a.rounds > 1:
            for name, rs in ((f"torch {torch.__version__}", ratios), ("newer torch", newer)):
                if rs:
                    print(f"  => fp32 speed-up against {name} per round ({a.rounds} rounds, alternating): "
                          + ", ".join(f"{r:.2f}×" for r in rs) + f"; median {statistics.median(rs):.2f}×")
        if not a.no_bf16:
            mine16 = ours(path, a.size, a.runs, a.threads, "bf16")
            print(f"  => bf16 speed-up {ref / mine16:.2f}×")
    ncnn = os.path.join(HOME, "models", "realesrgan-x4plus.param")
    if os.path.exists(ncnn) and not a.no_ncnn and a.only in (None, 4):
        print(f"ncnn realesrgan-x4plus (real weights, ours only), {a.size}² tile:")
        ours(ncnn, a.size, a.runs, a.threads)


if __name__ == "__main__":
    main()
