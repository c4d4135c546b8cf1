// The FaceRestore page: uploads, live progress (Server-Sent Events), a before/after slider with
// zoom and pan, per-face choices and strength re-blended on the server (CodeFormer's fidelity
// weight instead restores the upload again as a new job), downloads and a zip of all results.
// No build step, no libraries; everything comes from this server.
"use strict";

const api = "/api/v1";
const $ = (sel, root = document) => root.querySelector(sel);
const cards = new Map(); // job id -> card state

// ---------- options and models ----------

async function loadModels() {
  const select = $("#model");
  try {
    const r = await fetch(api + "/models");
    const m = await r.json();
    select.innerHTML = "";
    const def = document.createElement("option");
    def.value = "";
    def.textContent = "Server default (" + m.default + ")";
    select.append(def);
    for (const f of m.face_models) {
      if (!f.installed || f.name === m.default_name) continue;
      const o = document.createElement("option");
      o.value = f.name;
      o.textContent = f.title + (f.non_commercial ? " (non-commercial)" : "");
      select.append(o);
    }
    select.disabled = select.options.length < 2;
    $("#background-label").hidden = !m.background_models.some((b) => b.installed);
    const note = $("#model-note");
    if (m.offline_fallback) {
      note.hidden = false;
      note.textContent = "No face model is installed on this server, so photos go through the general restorer (" +
        m.offline_fallback + "): they are upscaled and cleaned, but faces are not restored by a face model. " + m.install;
    } else if (m.warnings.length) {
      note.hidden = false;
      note.textContent = m.warnings.join(" ");
    }
  } catch (e) {
    select.innerHTML = "<option value=''>Server default</option>";
  }
}

function options() {
  return {
    model: $("#model").value,
    upscale: $("#upscale").value,
    background: $("#background").checked ? "realesrgan" : "none",
    only_center_face: $("#center").checked ? "true" : "false",
    keep_gray: $("#keep-gray").checked ? "true" : "false",
  };
}

// ---------- uploading ----------

function addFiles(files) {
  for (const file of files) upload(file, options());
}

function upload(file, opts, attempt = 0) {
  const card = newCard(file.name);
  send(card, file, opts, attempt);
}

function send(card, file, opts, attempt) {
  const form = new FormData();
  form.append("image", file, file.name);
  for (const [k, v] of Object.entries(opts)) if (v !== "") form.append(k, v);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", api + "/jobs");
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) setProgress(card, 0.1 * e.loaded / e.total, "uploading " + Math.round(100 * e.loaded / e.total) + "%");
  };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* shown below */ }
    if (xhr.status === 202 && body.jobs && body.jobs.length) {
      attach(card, body.jobs[0].id);
    } else if (xhr.status === 503 && attempt < 20) {
      const wait = parseInt(xhr.getResponseHeader("Retry-After") || "5", 10);
      setProgress(card, 0, "the server is busy: trying again in " + wait + " s");
      setTimeout(() => send(card, file, opts, attempt + 1), wait * 1000);
    } else {
      fail(card, body.error || ("upload failed (HTTP " + xhr.status + ")"));
    }
  };
  xhr.onerror = () => fail(card, "the upload did not reach the server");
  setProgress(card, 0, "uploading");
  xhr.send(form);
}

// ---------- cards ----------

function newCard(name) {
  const el = $("#card-template").content.firstElementChild.cloneNode(true);
  $(".name", el).textContent = name;
  $(".name", el).title = name;
  $(".status", el).textContent = "uploading";
  $("#cards").prepend(el);
  $("#bar").hidden = false;
  const card = { el, name, id: null, snap: null, source: null, viewer: null, pending: null, busy: false };
  $(".remove", el).onclick = () => removeCard(card);
  return card;
}

function attach(card, id) {
  card.id = id;
  card.el.dataset.job = id;
  cards.set(id, card);
  watch(card);
}

function watch(card) {
  if (!window.EventSource) return poll(card);
  const es = new EventSource(api + "/jobs/" + card.id + "/events");
  card.source = es;
  es.addEventListener("job", (e) => {
    const snap = JSON.parse(e.data);
    update(card, snap);
    if (snap.status === "done" || snap.status === "failed") { es.close(); card.source = null; }
  });
  es.onerror = () => {
    es.close();
    card.source = null;
    if (!card.snap || (card.snap.status !== "done" && card.snap.status !== "failed")) setTimeout(() => poll(card), 1000);
  };
}

async function poll(card) {
  try {
    const r = await fetch(api + "/jobs/" + card.id);
    if (!r.ok) return fail(card, (await r.json()).error);
    const snap = await r.json();
    update(card, snap);
    if (snap.status !== "done" && snap.status !== "failed") setTimeout(() => poll(card), 1000);
  } catch (e) {
    setTimeout(() => poll(card), 2000);
  }
}

function setProgress(card, p, stage) {
  $(".fill", card.el).style.width = Math.round(100 * p) + "%";
  $(".stage", card.el).textContent = stage;
}

function fail(card, message) {
  card.el.classList.remove("done");
  card.el.classList.add("failed");
  card.el.dataset.status = "failed";
  $(".status", card.el).textContent = "failed";
  $(".stage", card.el).textContent = "";
  const err = $(".error", card.el);
  err.hidden = false;
  err.textContent = message;
  // A failed new run of a shown result: its fidelity can be tried again.
  if (card.viewer && card.fidelity) $(".weight", card.el).disabled = false;
}

const stageWords = { queued: "waiting in the queue", loading: "loading the model", decoding: "reading the photo",
  detecting: "finding faces", restoring: "restoring faces", background: "upscaling the background",
  pasting: "pasting faces back", writing: "saving", restoring_faces: "restoring the video's frames" };

function update(card, snap) {
  const first = !card.snap || card.snap.status !== "done";
  card.snap = snap;
  card.el.dataset.status = snap.status;
  $(".status", card.el).textContent = snap.status;
  const license = $(".license", card.el);
  license.hidden = !snap.license;
  license.textContent = snap.license ? "Model terms: " + snap.license : "";
  if (snap.status === "failed") return fail(card, snap.error || "the restoration failed");
  if (snap.status !== "done") {
    const words = stageWords[snap.stage] || snap.stage;
    const frames = snap.video && snap.frames ? " (frame " + snap.frames + (snap.totalFrames ? " of " + snap.totalFrames : "") + ")" : "";
    return setProgress(card, 0.1 + 0.9 * snap.progress, words + frames);
  }
  card.el.classList.add("done");
  setProgress(card, 1, "");
  if (first) showResult(card);
  else refreshResult(card);
}

function resultURL(card) { return api + "/jobs/" + card.id + "/result?rev=" + card.snap.revision; }

// A video job: the original and the restored video one over the other, the split dragged with
// the slider, one play button and scrub bar driving both; the download is the restored video.
function showVideo(card) {
  const el = card.el, snap = card.snap;
  $(".result", el).hidden = false;
  for (const sel of [".compare", ".zoom", ".tune label", ".faces"]) $(sel, el).hidden = true;
  const player = $(".player", el);
  player.hidden = false;
  const after = $(".after-video", el), before = $(".before-video", el), clip = $(".before-video-clip", el);
  const split = $(".split", el), scrub = $(".scrub", el), play = $(".play", el), time = $(".time", el);
  after.src = resultURL(card);
  before.src = api + "/jobs/" + card.id + "/input";
  const fmt = (t) => Math.floor(t / 60) + ":" + String(Math.floor(t % 60)).padStart(2, "0");
  const showSplit = () => { clip.style.width = split.value + "%"; };
  split.oninput = showSplit;
  showSplit();
  const sync = () => { if (Math.abs(before.currentTime - after.currentTime) > 0.08) before.currentTime = after.currentTime; };
  play.onclick = () => {
    if (after.paused) { sync(); after.play(); before.play(); play.textContent = "Pause"; }
    else { after.pause(); before.pause(); sync(); play.textContent = "Play"; }
  };
  after.onended = () => { before.pause(); play.textContent = "Play"; };
  after.ontimeupdate = () => {
    if (after.duration) scrub.value = Math.round(1000 * after.currentTime / after.duration);
    time.textContent = fmt(after.currentTime) + " / " + fmt(after.duration || 0);
    if (!after.paused) sync();
  };
  scrub.oninput = () => {
    if (!after.duration) return;
    after.currentTime = before.currentTime = Number(scrub.value) / 1000 * after.duration;
  };
  const bits = [];
  if (snap.model) bits.push("model: " + snap.model);
  if (snap.width) bits.push(snap.width + "×" + snap.height);
  if (snap.frames) bits.push(snap.frames + " frames");
  showSummary(card, bits);
}

// The download link, the meta line (`bits` and the time taken) and the warnings of a finished card.
function showSummary(card, bits) {
  const el = card.el, snap = card.snap;
  $(".download", el).href = api + "/jobs/" + card.id + "/result?download=1&rev=" + snap.revision;
  if (snap.seconds) bits.push(snap.seconds.toFixed(1) + " s");
  $(".meta", el).textContent = bits.join(" · ");
  const warnings = $(".warnings", el);
  warnings.innerHTML = "";
  for (const w of snap.warnings) {
    const li = document.createElement("li");
    li.textContent = w;
    warnings.append(li);
  }
}

function showResult(card) {
  const el = card.el, snap = card.snap;
  if (snap.video) return showVideo(card);
  $(".result", el).hidden = false;
  const before = $(".before", el), after = $(".after", el);
  before.src = api + "/jobs/" + card.id + "/input";
  after.src = resultURL(card);
  if (!card.viewer) card.viewer = new Compare($(".compare", el), before, after, el);
  // CodeFormer: the slider is its fidelity weight, which needs the network again (a new job on
  // release); other models: the strength, re-blended from the cached faces as it moves.
  const weight = $(".weight", el);
  card.fidelity = typeof snap.fidelity === "number";
  weight.disabled = false;
  weight.value = card.fidelity ? snap.fidelity : snap.weight;
  $(".weight-label", el).textContent = card.fidelity ? "Fidelity: quality ↔ identity" : "Strength";
  weight.title = card.fidelity
    ? "CodeFormer's fidelity weight: 0 favours quality, 1 stays closest to your photo. Changing it restores the photo again."
    : "Blend of the restored faces with the original";
  $(".weight-value", el).textContent = Number(weight.value).toFixed(2);
  weight.oninput = () => {
    $(".weight-value", el).textContent = Number(weight.value).toFixed(2);
    if (!card.fidelity) reblend(card, { weight: Number(weight.value) });
  };
  weight.onchange = () => {
    if (!card.fidelity) return;
    clearTimeout(card.timer);
    card.timer = setTimeout(() => {
      if (card.snap && Number(weight.value) !== card.snap.fidelity) rerun(card, { fidelity: Number(weight.value) });
    }, 400);
  };
  const bits = [];
  if (snap.model) bits.push("model: " + snap.model);
  if (snap.width) bits.push(snap.width + "×" + snap.height + (snap.upscale ? ", upscaled " + snap.upscale + "×" : ""));
  bits.push(snap.faces.length + " face" + (snap.faces.length === 1 ? "" : "s"));
  showSummary(card, bits);
  const faces = $(".faces", el);
  faces.innerHTML = "";
  $(".tune label", el).hidden = snap.faces.length === 0;
  for (const f of snap.faces) {
    const box = document.createElement("div");
    box.className = "face";
    const pair = document.createElement("div");
    pair.className = "pair";
    for (const kind of ["cropped", "restored"]) {
      const img = document.createElement("img");
      img.src = api + "/jobs/" + card.id + "/faces/" + f.index + "/" + kind;
      img.alt = "Face " + (f.index + 1) + ", " + kind;
      img.loading = "lazy";
      pair.append(img);
    }
    const label = document.createElement("label");
    const check = document.createElement("input");
    check.type = "checkbox";
    check.className = "include";
    check.checked = f.included;
    check.dataset.face = f.index;
    check.onchange = () => {
      const chosen = [...faces.querySelectorAll(".include")].filter((c) => c.checked).map((c) => Number(c.dataset.face));
      box.classList.toggle("left-out", !check.checked);
      reblend(card, { faces: chosen });
    };
    let text = " face " + (f.index + 1) + " (" + Math.round(100 * f.score) + "%)";
    if (typeof f.identity === "number") text += " · identity drift " + f.identity.toFixed(3);
    if (typeof f.weight === "number") text += " · weight lowered to " + f.weight.toFixed(2);
    label.append(check, document.createTextNode(text));
    if (typeof f.identity === "number") label.title = "ID-dlib distance between the face as pasted and the face in your photo (1 − cosine of dlib face-recognition embeddings; 0 = the same embedding)";
    box.append(pair, label);
    faces.append(box);
  }
}

function refreshResult(card) {
  $(".after", card.el).src = resultURL(card);
  $(".download", card.el).href = api + "/jobs/" + card.id + "/result?download=1&rev=" + card.snap.revision;
  for (const c of card.el.querySelectorAll(".include")) {
    const f = card.snap.faces[Number(c.dataset.face)];
    if (f) c.checked = f.included;
  }
}

// Re-blends one at a time: while one runs, only the latest change waits.
function reblend(card, change) {
  card.pending = Object.assign(card.pending || {}, change);
  if (card.busy) return;
  const body = card.pending;
  card.pending = null;
  card.busy = true;
  $(".stage", card.el).textContent = "re-blending";
  fetch(api + "/jobs/" + card.id + "/reblend", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  }).then(async (r) => {
    const snap = await r.json();
    if (!r.ok) throw new Error(snap.error || ("HTTP " + r.status));
    card.snap = snap;
    card.el.dataset.revision = snap.revision;
    refreshResult(card);
    $(".stage", card.el).textContent = "";
  }).catch((e) => {
    $(".stage", card.el).textContent = "re-blend failed: " + e.message;
  }).finally(() => {
    card.busy = false;
    if (card.pending) reblend(card, {});
  });
}

// A new job for the card's upload with `change` (another fidelity weight: the network runs
// again); the card follows the new job, and the one it replaces is deleted once it is accepted.
function rerun(card, change, attempt = 0) {
  const old = card.id, el = card.el, was = card.snap.status, error = $(".error", el);
  for (const input of el.querySelectorAll(".result input")) input.disabled = true;
  el.classList.remove("done", "failed");
  error.hidden = true;
  setProgress(card, 0, "restoring again");
  fetch(api + "/jobs/" + old + "/rerun", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(change),
  }).then(async (r) => {
    const body = await r.json().catch(() => ({}));
    if (r.status === 202 && body.jobs && body.jobs.length) {
      if (card.source) { card.source.close(); card.source = null; }
      cards.delete(old);
      fetch(api + "/jobs/" + old, { method: "DELETE" }).catch(() => {});
      card.snap = null;
      $(".download", el).removeAttribute("href");
      attach(card, body.jobs[0].id);
    } else if (r.status === 503 && attempt < 20) {
      const wait = parseInt(r.headers.get("Retry-After") || "5", 10);
      setProgress(card, 0, "the server is busy: trying again in " + wait + " s");
      setTimeout(() => rerun(card, change, attempt + 1), wait * 1000);
    } else {
      throw new Error(body.error || ("HTTP " + r.status));
    }
  }).catch((e) => {
    // Refused: the card stays as it was.
    el.classList.add(was);
    error.hidden = was !== "failed";
    for (const input of el.querySelectorAll(".result input")) input.disabled = was !== "done" && !input.classList.contains("weight");
    if (typeof card.snap.fidelity === "number") {
      $(".weight", el).value = card.snap.fidelity;
      $(".weight-value", el).textContent = Number(card.snap.fidelity).toFixed(2);
    }
    $(".stage", el).textContent = "restoring again failed: " + e.message;
  });
}

function removeCard(card) {
  if (card.source) card.source.close();
  if (card.id) {
    cards.delete(card.id);
    fetch(api + "/jobs/" + card.id, { method: "DELETE" }).catch(() => {});
  }
  card.el.remove();
  $("#bar").hidden = $("#cards").children.length === 0;
}

// ---------- before/after viewer ----------

class Compare {
  constructor(box, before, after, card) {
    this.box = box; this.before = before; this.after = after; this.card = card;
    this.layer = $(".stage-layer", box);
    this.clip = $(".before-clip", box);
    this.handle = $(".handle", box);
    this.split = 0.5; this.scale = 1; this.x = 0; this.y = 0; this.w = 0; this.h = 0;
    after.addEventListener("load", () => this.sized());
    if (after.complete && after.naturalWidth) this.sized();
    this.bind();
  }

  sized() {
    const first = !this.w;
    this.w = this.after.naturalWidth; this.h = this.after.naturalHeight;
    this.after.style.width = this.w + "px"; this.after.style.height = this.h + "px";
    this.before.style.width = this.w + "px"; this.before.style.height = this.h + "px";
    if (first) this.fit(); else this.draw();
  }

  fitScale() {
    const r = this.box.getBoundingClientRect();
    return Math.min(r.width / this.w, r.height / this.h);
  }

  fit() {
    const r = this.box.getBoundingClientRect();
    this.scale = this.fitScale();
    this.x = (r.width - this.w * this.scale) / 2;
    this.y = (r.height - this.h * this.scale) / 2;
    this.draw();
  }

  zoomAt(scale, cx, cy) {
    const s = Math.max(this.fitScale() * 0.5, Math.min(16, scale));
    this.x = cx - (cx - this.x) * s / this.scale;
    this.y = cy - (cy - this.y) * s / this.scale;
    this.scale = s;
    this.draw();
  }

  center() { const r = this.box.getBoundingClientRect(); return [r.width / 2, r.height / 2]; }

  draw() {
    if (!this.w) return;
    const r = this.box.getBoundingClientRect();
    this.layer.style.transform = "translate(" + this.x + "px," + this.y + "px) scale(" + this.scale + ")";
    this.layer.style.width = this.w + "px"; this.layer.style.height = this.h + "px";
    const sx = this.split * r.width;
    const inImage = Math.max(0, Math.min(this.w, (sx - this.x) / this.scale));
    this.clip.style.width = inImage + "px";
    this.handle.style.left = sx + "px";
    this.handle.setAttribute("aria-valuenow", String(Math.round(this.split * 100)));
    this.box.classList.toggle("pixels", this.scale >= 2);
    $(".zoom-level", this.card).textContent = Math.round(this.scale * 100) + "%";
  }

  bind() {
    const box = this.box;
    let mode = null, lastX = 0, lastY = 0;
    box.addEventListener("pointerdown", (e) => {
      const r = box.getBoundingClientRect();
      const nearHandle = Math.abs(e.clientX - r.left - this.split * r.width) < 24;
      mode = nearHandle || e.target === this.handle || this.handle.contains(e.target) ? "split" : "pan";
      lastX = e.clientX; lastY = e.clientY;
      box.setPointerCapture(e.pointerId);
      box.classList.toggle("panning", mode === "pan");
      if (mode === "split") this.setSplit(e.clientX);
      e.preventDefault();
    });
    box.addEventListener("pointermove", (e) => {
      if (mode === "split") this.setSplit(e.clientX);
      else if (mode === "pan") {
        this.x += e.clientX - lastX; this.y += e.clientY - lastY;
        lastX = e.clientX; lastY = e.clientY;
        this.draw();
      }
    });
    const end = () => { mode = null; box.classList.remove("panning"); };
    box.addEventListener("pointerup", end);
    box.addEventListener("pointercancel", end);
    box.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = box.getBoundingClientRect();
      this.zoomAt(this.scale * Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    box.addEventListener("dblclick", (e) => {
      const r = box.getBoundingClientRect();
      if (Math.abs(this.scale - 1) < 1e-3) this.fit(); else this.zoomAt(1, e.clientX - r.left, e.clientY - r.top);
    });
    this.handle.addEventListener("keydown", (e) => {
      const step = e.shiftKey ? 0.1 : 0.02;
      if (e.key === "ArrowLeft") { this.split = Math.max(0, this.split - step); this.draw(); e.preventDefault(); }
      if (e.key === "ArrowRight") { this.split = Math.min(1, this.split + step); this.draw(); e.preventDefault(); }
    });
    $(".fit", this.card).onclick = () => this.fit();
    $(".one", this.card).onclick = () => this.zoomAt(1, ...this.center());
    $(".in", this.card).onclick = () => this.zoomAt(this.scale * 1.5, ...this.center());
    $(".out", this.card).onclick = () => this.zoomAt(this.scale / 1.5, ...this.center());
    window.addEventListener("resize", () => this.draw());
  }

  setSplit(clientX) {
    const r = this.box.getBoundingClientRect();
    this.split = Math.max(0, Math.min(1, (clientX - r.left) / r.width));
    this.draw();
  }
}

// ---------- zip of all results (stored, no compression: JPEG and PNG are compressed already) ----------

const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function zip(files) { // [{name, bytes}]
  const enc = new TextEncoder();
  const parts = [], central = [];
  let offset = 0;
  for (const f of files) {
    const name = enc.encode(f.name), crc = crc32(f.bytes), size = f.bytes.length;
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true); local.setUint16(4, 20, true); local.setUint16(6, 0x0800, true);
    local.setUint32(14, crc, true); local.setUint32(18, size, true); local.setUint32(22, size, true);
    local.setUint16(26, name.length, true);
    parts.push(local, name, f.bytes);
    const cen = new DataView(new ArrayBuffer(46));
    cen.setUint32(0, 0x02014b50, true); cen.setUint16(4, 20, true); cen.setUint16(6, 20, true); cen.setUint16(8, 0x0800, true);
    cen.setUint32(16, crc, true); cen.setUint32(20, size, true); cen.setUint32(24, size, true);
    cen.setUint16(28, name.length, true); cen.setUint32(42, offset, true);
    central.push(cen, name);
    offset += 30 + name.length + size;
  }
  const cenSize = central.reduce((n, p) => n + p.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true); end.setUint16(8, files.length, true); end.setUint16(10, files.length, true);
  end.setUint32(12, cenSize, true); end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}

async function downloadAll() {
  const done = [...cards.values()].filter((c) => c.snap && c.snap.status === "done");
  if (!done.length) return;
  const used = new Set(), files = [];
  for (const c of done) {
    const r = await fetch(resultURL(c));
    const ext = (r.headers.get("Content-Type") || "").includes("png") ? "png" : "jpg";
    let base = c.name.replace(/\.[^.]*$/, "").replace(/[^\w\-. ]+/g, "_") || "image", name = base + "_restored." + ext, k = 2;
    while (used.has(name)) name = base + "_restored_" + k++ + "." + ext;
    used.add(name);
    files.push({ name, bytes: new Uint8Array(await r.arrayBuffer()) });
  }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(zip(files));
  a.download = "restored.zip";
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// ---------- wiring ----------

function init() {
  loadModels();
  const drop = $("#drop"), input = $("#files");
  input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
  for (const t of ["dragenter", "dragover"]) drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const t of ["dragleave", "drop"]) drop.addEventListener(t, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); addFiles(e.dataTransfer.files); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  // Dropping outside the zone must not navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  $("#zip").onclick = () => downloadAll();
  $("#clear").onclick = () => { for (const el of [...document.querySelectorAll(".card")]) $(".remove", el).click(); };
}

document.addEventListener("DOMContentLoaded", init);
