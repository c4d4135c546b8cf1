#!/usr/bin/env python3
"""Speed of `facerestore eval` (PSNR + SSIM + NIQE) and `facerestore degrade` against the
reference in the same run: basicsr 1.4.2's calculate_psnr / calculate_ssim / calculate_niqe on
images loaded as its scripts load them, and scripts/degrade_reference.py (basicsr's degradation
functions), on N 512² faces made from the public-domain examples. Run with the reference venv:

  ~/.cache/facerestore-reference/venv/bin/python scripts/bench_eval.py [--count 100] [--binary .build/release/facerestore]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def reference_eval(restored, reference):
    from basicsr.metrics.niqe import calculate_niqe
    from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
    for n in sorted(os.listdir(restored)):
        if not n.endswith(".png"):
            continue
        res = cv2.imread(os.path.join(restored, n), cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.
        gt = cv2.imread(os.path.join(reference, n), cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.
        calculate_psnr(res * 255, gt * 255, 0)
        calculate_ssim(res * 255, gt * 255, 0)
        calculate_niqe(cv2.imread(os.path.join(restored, n)), 0, input_order="HWC", convert_to="y")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build/release/facerestore"))
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from parity_degrade import make_hq
    with tempfile.TemporaryDirectory() as tmp:
        hq = os.path.join(tmp, "hq")
        os.makedirs(hq)
        make_hq(hq, a.count)
        for n in os.listdir(hq):  # every face 512²
            p = os.path.join(hq, n)
            cv2.imwrite(p, cv2.resize(cv2.imread(p), (512, 512), interpolation=cv2.INTER_CUBIC))
        t = time.perf_counter()
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/degrade_reference.py"), hq, os.path.join(tmp, "ref"), "--seed", "0"], check=True)
        t_ref_degrade = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([a.binary, "degrade", "-i", hq, "-o", os.path.join(tmp, "lq"), "--seed", "0"], check=True, capture_output=True)
        t_degrade = time.perf_counter() - t
        t = time.perf_counter()
        reference_eval(os.path.join(tmp, "lq"), hq)
        t_ref_eval = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([a.binary, "eval", "--restored", os.path.join(tmp, "lq"), "--reference", hq, "--metrics", "psnr", "ssim", "niqe"],
                       check=True, capture_output=True)
        t_eval = time.perf_counter() - t
    print(f"{a.count} faces of 512², one run each, same machine and session")
    print(f"degrade: reference {t_ref_degrade:.2f} s, ours {t_degrade:.2f} s: {t_ref_degrade / t_degrade:.2f}x")
    print(f"eval PSNR+SSIM+NIQE: basicsr {t_ref_eval:.2f} s, ours {t_eval:.2f} s: {t_ref_eval / t_eval:.2f}x")


if __name__ == "__main__":
    main()
