#!/bin/sh
# A newer PyTorch to benchmark against, beside the reference environment (Debian's torch 1.13):
# torch 2.5.1 from PyPI (its CUDA runtime wheels come along; only the CPU is used) in its own venv.
# Only the benchmarks use it (scripts/bench_realesrgan.py --torch-python …); parity stays on the
# reference environment. About 4 GB of downloads.
#   ./scripts/setup_torch2_reference.sh [VENV]   (default ~/.cache/facerestore-reference/torch2-venv)
set -eu
VENV=${1:-$HOME/.cache/facerestore-reference/torch2-venv}
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.5.1" numpy
"$VENV/bin/python" -c 'import torch; print("torch", torch.__version__, "in", "'"$VENV"'")'
