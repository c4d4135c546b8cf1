#!/usr/bin/python3
"""Load test for `facerestore serve` (not part of CI's default run): N concurrent uploads from
loopback against `--jobs 2`; every upload must end done (503 answers are retried after their
Retry-After), each result must be the CLI's output for its own input (nothing lost or mixed up),
and the server's peak RSS must stay under --rss-bound-mb. Prints requests, 503s, failures,
p50/p95 time from first try to result, and peak RSS.

    scripts/loadtest.py [--binary .build/release/facerestore] [--uploads 50] [--model FILE]

Inputs are N different crops of examples/group.jpg (Debian's python3 with PIL). The model
defaults to the full-size random-weight GFP-GAN v1.4 fixture when present (real compute),
else the tiny test model.
"""
import argparse, concurrent.futures, json, os, pathlib, re, shutil, statistics, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request, uuid

from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent


def detector():
    shared = ROOT.parent / "shared/weights/retinaface_mobilenet0.25_Final.pth"
    cached = pathlib.Path(os.path.expanduser("~/.cache/facerestore/models/retinaface_mobilenet0.25_tiny.onnx"))
    return str(next(p for p in (shared, cached) if p.exists()))


def multipart(path):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / ".build/release/facerestore"))
    ap.add_argument("--uploads", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--queue", type=int, default=8)
    ap.add_argument("--model", default=None)
    ap.add_argument("--rss-bound-mb", type=float, default=2560)
    args = ap.parse_args()
    fixture = pathlib.Path(os.path.expanduser("~/.cache/facerestore-reference/fixtures/gfpgan_v1.4_parity.pth"))
    model = args.model or str(fixture if fixture.exists() else ROOT / "Tests/FaceRestoreModelsTests/Fixtures/gfpgan_clean_tiny.pth")
    flags = ["--model-path", model, "--detector", detector(), "--no-parse"]

    work = pathlib.Path(tempfile.mkdtemp(prefix="frload-"))
    inputs = work / "in"
    inputs.mkdir()
    base = Image.open(ROOT / "examples/group.jpg").convert("RGB")
    w, h = base.size
    for k in range(args.uploads):
        dx, dy = (k * 7) % 40, (k * 11) % 30
        base.crop((dx, dy, w - 40 + dx, h - 30 + dy)).save(inputs / f"p{k:03d}.jpg", quality=92)
    print(f"model: {model}; {args.uploads} inputs of {w - 40}x{h - 30}", flush=True)

    t = time.time()
    env = dict(os.environ, FACERESTORE_HOME=str(work / "home"))
    subprocess.run([args.binary, "restore", "-i", str(inputs), "-o", str(work / "cli"), "--threads", "2"] + flags,
                   check=True, env=env, stdout=subprocess.DEVNULL)
    cli_seconds = time.time() - t
    print(f"CLI: {args.uploads} photos in {cli_seconds:.1f} s ({cli_seconds / args.uploads:.2f} s each)", flush=True)

    server = subprocess.Popen([args.binary, "serve", "--port", "0", "--jobs", str(args.jobs), "--queue", str(args.queue),
                               "--data", str(work / "data"), "--cache-mb", "256", "--log-level", "warning"] + flags,
                              stdout=subprocess.PIPE, stderr=open(work / "server.log", "w"), text=True, env=env)
    try:
        run_load(args, work, env, flags, server)
    finally:
        if server.poll() is None:
            server.kill()


def run_load(args, work, env, flags, server):
    inputs = work / "in"
    line = server.stdout.readline()
    base_url = "http://" + line.split("http://", 1)[1].split("/", 1)[0]
    peak = [0]
    stop = threading.Event()

    def watch_rss():
        while not stop.is_set():
            try:
                for l in open(f"/proc/{server.pid}/status"):
                    if l.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(l.split()[1]))
            except OSError:
                pass
            time.sleep(0.2)

    threading.Thread(target=watch_rss, daemon=True).start()

    # One one-face photo on the idle server: upload to result, against the CLI's own time for it
    # (its --verbose total: decode to encode, models already loaded), then a re-blend.
    single = ROOT / "examples/grace_hopper.jpg"
    verbose = subprocess.run([args.binary, "restore", "-i", str(single), "-o", str(work / "cli1"), "--verbose"] + flags,
                             check=True, env=env, capture_output=True, text=True)
    verbose = verbose.stdout + verbose.stderr
    m = re.search(r"total ([\d.]+) (ms|s)\b", verbose)
    cli_one = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    body, ctype = multipart(single)
    one_times, blend_times = [], []
    for _ in range(3):
        t = time.time()
        req = urllib.request.Request(base_url + "/api/v1/jobs", data=body, method="POST", headers={"Content-Type": ctype})
        job = json.loads(urllib.request.urlopen(req).read())["jobs"][0]["id"]
        while json.loads(urllib.request.urlopen(f"{base_url}/api/v1/jobs/{job}").read())["status"] not in ("done", "failed"):
            time.sleep(0.01)
        data = urllib.request.urlopen(f"{base_url}/api/v1/jobs/{job}/result").read()
        one_times.append(time.time() - t)
        if data != (work / "cli1/restored_imgs/grace_hopper.jpg").read_bytes():
            sys.exit("load test: the one-face result differs from the CLI's")
        t = time.time()
        req = urllib.request.Request(f"{base_url}/api/v1/jobs/{job}/reblend", data=b'{"weight": 0.5}', method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
        urllib.request.urlopen(f"{base_url}/api/v1/jobs/{job}/result").read()
        blend_times.append(time.time() - t)
    one = statistics.median(one_times)
    print(f"one-face photo (grace_hopper.jpg), median of 3: CLI {cli_one:.2f} s; server upload to result {one:.2f} s "
          f"(+{one - cli_one:.2f} s); re-blend to new result {statistics.median(blend_times):.2f} s", flush=True)
    lock = threading.Lock()
    counts = {"requests": 0, "busy": 0}

    def one(path):
        body, ctype = multipart(path)
        start = time.time()
        while True:
            req = urllib.request.Request(base_url + "/api/v1/jobs", data=body, method="POST", headers={"Content-Type": ctype})
            with lock:
                counts["requests"] += 1
            try:
                with urllib.request.urlopen(req, timeout=600) as r:
                    job = json.loads(r.read())["jobs"][0]["id"]
                break
            except urllib.error.HTTPError as e:
                if e.code != 503:
                    return path.name, None, f"HTTP {e.code}: {e.read()[:200]!r}", 0
                with lock:
                    counts["busy"] += 1
                time.sleep(float(e.headers.get("Retry-After", "1")))
        while True:
            with urllib.request.urlopen(f"{base_url}/api/v1/jobs/{job}", timeout=60) as r:
                snap = json.loads(r.read())
            if snap["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        if snap["status"] != "done":
            return path.name, None, snap.get("error"), 0
        with urllib.request.urlopen(f"{base_url}/api/v1/jobs/{job}/result", timeout=60) as r:
            data = r.read()
        return path.name, data, None, time.time() - start

    files = sorted(inputs.iterdir())
    t = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(files)) as pool:
        results = list(pool.map(one, files))
    wall = time.time() - t
    stop.set()
    server.terminate()
    server.wait(timeout=60)

    failures = [(n, e) for n, d, e, _ in results if d is None]
    mixed = [n for n, d, e, _ in results if d is not None and d != (work / "cli/restored_imgs" / n).read_bytes()]
    times = sorted(s for _, d, _, s in results if d is not None)
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))] if times else float("nan")
    rss = peak[0] / 1024
    print(f"uploads {len(files)}, requests {counts['requests']} ({counts['busy']} answered 503 and retried), "
          f"failures {len(failures)}, results differing from the CLI {len(mixed)}")
    print(f"time to result: p50 {statistics.median(times):.1f} s, p95 {p(0.95):.1f} s, all done in {wall:.1f} s; "
          f"server peak RSS {rss:.0f} MB (bound {args.rss_bound_mb:.0f} MB)")
    shutil.rmtree(work, ignore_errors=True)
    ok = not failures and not mixed and rss < args.rss_bound_mb and server.returncode in (0, -15)
    if not ok:
        print(f"load test FAILED: {failures[:3]} {mixed[:3]} exit {server.returncode}", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
