#!/usr/bin/env python3
"""Times torch.nn.functional.conv2d on the shapes given as JSON on stdin (reference side of
`facerestore-bench conv --reference PYTHON`). Prints JSON {"torch": version, "results": [ms, ...]}.
Each shape is timed in NCHW and in channels_last; the faster is reported, as a fair baseline."""
import json
import sys
import time

import torch
import torch.nn.functional as F

req = json.load(sys.stdin)
torch.set_num_threads(req["threads"])
results = []
with torch.no_grad():
    for cin, cout, k, stride, hw in req["shapes"]:
        best = float("inf")
        for channels_last in (False, True):
            x = torch.randn(1, cin, hw, hw)
            w = torch.randn(cout, cin, k, k) * 0.05
            b = torch.zeros(cout)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
                w = w.contiguous(memory_format=torch.channels_last)
            F.conv2d(x, w, b, stride=stride, padding=k // 2)
            times = []
            deadline = time.perf_counter() + req["seconds"]
            while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 50):
                t0 = time.perf_counter()
                F.conv2d(x, w, b, stride=stride, padding=k // 2)
                times.append(time.perf_counter() - t0)
            times.sort()
            best = min(best, times[len(times) // 2] * 1000)
        results.append(best)
print(json.dumps({"torch": torch.__version__, "results": results}))
