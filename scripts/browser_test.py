#!/usr/bin/env python3
"""Drives `facerestore serve`'s page in a real browser (Debian's chromium + chromium-driver, over
WebDriver, with the standard library only): upload examples/group.jpg, wait for the result, move
the before/after slider, leave one face out, download the result, save a screenshot, then upload
a short MP4 (made with ffmpeg, when installed) and play it in the video card's before/after player.
Exits non-zero if any step fails.

    scripts/browser_test.py [--binary .build/debug/facerestore] [--screenshot out/serve.png]

Uses the tiny random-weight GFP-GAN test model (its faces are noise: this checks the page, not
the restoration) and the RetinaFace the test suite uses.
"""
import argparse, base64, json, os, pathlib, shutil, socket, subprocess, sys, tempfile, time, urllib.error, urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def detector():
    shared = ROOT.parent / "shared/weights/retinaface_mobilenet0.25_Final.pth"
    home = os.environ.get("FACERESTORE_HOME") or os.path.expanduser("~/.cache/facerestore")
    cached = pathlib.Path(home) / "models/retinaface_mobilenet0.25_tiny.onnx"
    for p in (shared, cached):
        if p.exists():
            return str(p)
    sys.exit("browser test: no RetinaFace weights (run ./scripts/setup)")


class WebDriver:
    def __init__(self, url):
        self.url = url
        self.session = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        prefix = "" if self.session is None or path.startswith("/session") and path.count("/") == 1 else f"/session/{self.session}"
        req = urllib.request.Request(self.url + prefix + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"webdriver {method} {path}: {e.read().decode(errors='replace')[:500]}")

    def start(self, downloads):
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400", "--disable-gpu"],
            "prefs": {"download.default_directory": downloads, "download.prompt_for_download": False}}}}}
        value = self.call("POST", "/session", caps)
        self.session = value["sessionId"]
        # Headless Chrome downloads only where it is told to, through the DevTools protocol.
        try:
            self.call("POST", "/goog/cdp/execute", {"cmd": "Browser.setDownloadBehavior",
                                                    "params": {"behavior": "allow", "downloadPath": downloads}})
        except RuntimeError:
            self.call("POST", "/goog/cdp/execute", {"cmd": "Page.setDownloadBehavior",
                                                    "params": {"behavior": "allow", "downloadPath": downloads}})

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", "")
            except Exception:
                pass

    def js(self, script, *args):
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        value = self.call("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(value.values()))

    def wait(self, what, script, timeout=120):
        end = time.time() + timeout
        while time.time() < end:
            value = self.js(script)
            if value:
                return value
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}")


def step(name):
    print(f"browser test: {name}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / ".build/debug/facerestore"))
    ap.add_argument("--screenshot", default=str(ROOT / "out/serve.png"))
    args = ap.parse_args()
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(chromedriver):
        sys.exit("browser test: chromedriver not found (apt-get install chromium chromium-driver)")

    work = pathlib.Path(tempfile.mkdtemp(prefix="frbrowser-"))
    downloads = work / "downloads"
    downloads.mkdir()
    model = ROOT / "Tests/FaceRestoreModelsTests/Fixtures/gfpgan_clean_tiny.pth"
    env = dict(os.environ, FACERESTORE_HOME=str(work / "home"))
    # dlib's face-recognition model, when the set-up installed it: the page shows each face's
    # identity distance.
    home = os.environ.get("FACERESTORE_HOME") or os.path.expanduser("~/.cache/facerestore")
    dlib = pathlib.Path(home) / "models/dlib_face_recognition_resnet_model_v1.dat"
    if dlib.exists():
        (work / "home/models").mkdir(parents=True)
        os.symlink(dlib, work / "home/models" / dlib.name)
    server = subprocess.Popen([args.binary, "serve", "--port", "0", "--model-path", str(model), "--detector", detector(),
                               "--no-parse", "--data", str(work / "data"), "--threads", "2"],
                              stdout=subprocess.PIPE, stderr=sys.stderr, text=True, env=env)
    driver_port = free_port()
    driver = subprocess.Popen([chromedriver, f"--port={driver_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wd = WebDriver(f"http://127.0.0.1:{driver_port}")
    try:
        line = server.stdout.readline()
        if "http://" not in line:
            raise RuntimeError(f"the server did not start: {line!r}")
        base = line.split("http://", 1)[1].split("/", 1)[0]
        base = "http://" + base
        step(f"server at {base}")
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{driver_port}/status", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        wd.start(str(downloads))
        wd.call("POST", "/url", {"url": base + "/"})
        wd.wait("the page", "return document.readyState === 'complete' && document.querySelector('#model option') !== null")

        step("upload examples/group.jpg")
        files = wd.find("#files")
        wd.call("POST", f"/element/{files}/value", {"text": str(ROOT / "examples/group.jpg")})
        wd.wait("the job to finish", "const c = document.querySelector('.card'); "
                "if (c && c.dataset.status === 'failed') throw new Error(c.querySelector('.error').textContent); "
                "return c && c.dataset.status === 'done' && document.querySelector('.after').naturalWidth > 0")
        job = wd.js("return document.querySelector('.card').dataset.job")
        faces = wd.js("return document.querySelectorAll('.card .include').length")
        if faces != 2:
            raise RuntimeError(f"expected 2 faces on the card, found {faces}")
        if dlib.exists():
            step("each face's identity distance")
            labels = wd.js("return [...document.querySelectorAll('.card .faces label')].map((l) => l.textContent)")
            if len(labels) != 2 or not all("identity drift" in t for t in labels):
                raise RuntimeError(f"the faces do not show their identity distance: {labels}")

        step("move the before/after slider")
        before = wd.js("return parseFloat(document.querySelector('.before-clip').style.width)")
        wd.js("document.querySelector('.compare').scrollIntoView({block: 'center'})")
        box = wd.js("const r = document.querySelector('.compare').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]")
        cx, cy = int(box[0] + box[2] / 2), int(box[1] + box[3] / 2)
        wd.call("POST", "/actions", {"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
            {"type": "pointerMove", "origin": "viewport", "x": cx, "y": cy},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerMove", "origin": "viewport", "x": cx - int(box[2] * 0.3), "y": cy, "duration": 200},
            {"type": "pointerUp", "button": 0}]}]})
        after = wd.js("return parseFloat(document.querySelector('.before-clip').style.width)")
        if not after < before * 0.6:
            raise RuntimeError(f"the slider did not move (clip width {before} -> {after})")
        wd.call("DELETE", "/actions")

        step("leave face 1 out")
        check = wd.find(".card .include")
        wd.call("POST", f"/element/{check}/click", {})
        wd.wait("the re-blend", "return document.querySelector('.card').dataset.revision === '2'")
        with urllib.request.urlopen(f"{base}/api/v1/jobs/{job}") as r:
            snap = json.loads(r.read())
        if [f["included"] for f in snap["faces"]] != [False, True]:
            raise RuntimeError(f"the server did not leave face 1 out: {snap['faces']}")
        wd.wait("the new result on the page", "const i = document.querySelector('.after'); return i.complete && i.src.endsWith('rev=2')")

        step("download the result")
        link = wd.find(".card .download")
        wd.call("POST", f"/element/{link}/click", {})
        end = time.time() + 30
        got = []
        while time.time() < end:
            got = [p for p in downloads.iterdir() if not p.name.endswith(".crdownload")]
            if got:
                break
            time.sleep(0.2)
        if not got:
            raise RuntimeError("no file was downloaded")
        with urllib.request.urlopen(f"{base}/api/v1/jobs/{job}/result") as r:
            served = r.read()
        if got[0].read_bytes() != served or got[0].name != "group_restored.jpg":
            raise RuntimeError(f"the download ({got[0].name}, {got[0].stat().st_size} bytes) is not the result ({len(served)} bytes)")

        step(f"screenshot -> {args.screenshot}")
        wd.js("window.scrollTo(0, 0)")
        png = base64.b64decode(wd.call("GET", "/screenshot"))
        pathlib.Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.screenshot).write_bytes(png)
        if shutil.which("ffmpeg"):
            step("upload a video: the player plays both videos and the split moves")
            clip = work / "clip.mp4"
            subprocess.run(["ffmpeg", "-loglevel", "error", "-loop", "1", "-framerate", "10", "-i", str(ROOT / "examples/group.jpg"),
                            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", "1", "-r", "10",
                            "-vf", "crop=320:240:x=100+10*n:y=60", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                            "-shortest", "-y", str(clip)], check=True)
            files = wd.find("#files")
            wd.call("POST", f"/element/{files}/value", {"text": str(clip)})
            # The video's card: the one that is not the photo's.
            card = f"const c = [...document.querySelectorAll('.card')].find((x) => x.dataset.job && x.dataset.job !== '{job}'); "
            wd.wait("the video job", card + "if (c && c.dataset.status === 'failed') throw new Error(c.querySelector('.error').textContent); "
                    "return !!c && c.dataset.status === 'done' && !c.querySelector('.player').hidden")
            playable = wd.js("return document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.64001e\"')")
            if playable:
                wd.wait("the videos to load", card + "return c.querySelector('.after-video').readyState >= 2 && "
                        "c.querySelector('.before-video').readyState >= 2")
                wd.js(card + "const s = c.querySelector('.split'); s.value = 20; s.dispatchEvent(new Event('input'))")
                width = wd.js(card + "return c.querySelector('.before-video-clip').style.width")
                if width != "20%":
                    raise RuntimeError(f"the split did not move the clip ({width})")
                wd.js(card + "c.querySelector('.after-video').muted = true; c.querySelector('.play').click()")
                wd.wait("playback", card + "return c.querySelector('.after-video').currentTime > 0.2 && "
                        "c.querySelector('.before-video').currentTime > 0.1")
            else:
                step("this Chromium plays no H.264: playback not checked")
            link = wd.js(card + "return c.querySelector('.download').href")
            if "/result?download=1" not in link:
                raise RuntimeError(f"the video card's download link is {link}")

        errors = wd.js("return [...document.querySelectorAll('.error')].filter(e => !e.hidden && e.textContent).map(e => e.textContent)")
        if errors:
            raise RuntimeError(f"the page shows errors: {errors}")
        step("passed")
    finally:
        wd.quit()
        driver.terminate()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)
    if server.returncode not in (0, -15):
        sys.exit(f"browser test: the server exited with {server.returncode} after SIGTERM")


if __name__ == "__main__":
    main()
