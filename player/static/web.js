// The library's page script (server/views/web.py): drag-and-drop upload with a progress bar, and
// each search moment's thumbnail cut from its video's storyboard. Plain JS, no build step; every
// request goes to this server (the session cookie rides along; changes carry x-csrf-token).
(function () {
  "use strict";

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrf-token"] || ""; }
    catch (e) { return ""; }
  }

  async function post(path, params) {
    const res = await fetch(path + "?" + new URLSearchParams(params), {
      method: "POST", headers: { "x-csrf-token": csrf() }, credentials: "same-origin",
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || body.success === false) throw new Error(body.message || "The server refused the upload.");
    return body.data;
  }

  function sizeInWords(n) {
    for (const [unit, scale] of [["GB", 1024 ** 3], ["MB", 1024 ** 2], ["KB", 1024]]) {
      if (n >= scale) { const v = n / scale; return (v >= 10 || v === Math.round(v) ? v.toFixed(0) : v.toFixed(1)) + " " + unit; }
    }
    return n + " bytes";
  }

  // -- upload ------------------------------------------------------------------------------------
  function setupUpload(drop) {
    const box = document.getElementById("upload"), bar = document.getElementById("upload-progress");
    const state = document.getElementById("upload-state"), retry = document.getElementById("upload-retry");
    const input = document.getElementById("file");
    const limit = Number(drop.dataset.max), limitWords = drop.dataset.maxWords;
    let last = null;

    function say(text) { box.hidden = false; state.textContent = text; }

    function send(file, url) { // XHR, not fetch: only it reports upload progress
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open("POST", url);
        xhr.upload.onprogress = (e) => {
          if (!e.lengthComputable) return;
          const pct = Math.floor((e.loaded / e.total) * 100);
          bar.value = pct;
          say(`Uploading “${file.name}”: ${pct} %`);
        };
        xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new Error(
          xhr.status === 413 ? `“${file.name}” is larger than the limit of ${limitWords}.`
            : "The server did not take the file.")));
        xhr.onerror = () => reject(new Error("The connection to the server was lost."));
        const form = new FormData();
        form.append("file", file, file.name);
        xhr.send(form);
      });
    }

    async function waitAdded(jobId, file) {
      for (;;) {
        const res = await fetch(`/library/upload/${encodeURIComponent(jobId)}`, { credentials: "same-origin" });
        const body = await res.json().catch(() => ({}));
        const status = body.data && body.data.status;
        if (status === "done") return;
        if (status === "failed" || !res.ok) throw new Error(`“${file.name}” could not be added: ${
          (body.data && body.data.error) || body.message || "it is not a video ReelDB can read"}.`);
        say(`Preparing “${file.name}” for playback…`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }

    async function upload(file) {
      last = file;
      retry.hidden = true;
      bar.value = 0;
      if (file.size > limit) { // refused before a byte is sent
        say(`“${file.name}” is ${sizeInWords(file.size)}: larger than the upload limit of ${limitWords}.`);
        return;
      }
      try {
        say(`Uploading “${file.name}”: 0 %`);
        const name = file.name.replace(/\.[^.]+$/, "") || file.name;
        const { upload_url } = await post("/library/upload-slot", { collection: drop.dataset.collection, name });
        await send(file, upload_url);
        bar.value = 100;
        const { job_id } = await post("/library/upload-add", {
          collection: drop.dataset.collection, url: upload_url, name });
        await waitAdded(job_id, file);
        say(`Added “${file.name}”.`);
        location.reload();
      } catch (e) {
        say(e.message || String(e));
        retry.hidden = false;
      }
    }

    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      const file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) upload(file);
    });
    input.addEventListener("change", () => { if (input.files[0]) upload(input.files[0]); });
    retry.addEventListener("click", () => { if (last) upload(last); });
  }

  // -- a search moment's thumbnail: the storyboard's tile at its time -----------------------------
  const boards = new Map();
  async function storyboard(url) {
    if (!boards.has(url)) {
      boards.set(url, fetch(url).then((r) => (r.ok ? r.text() : "")).then((text) => {
        const cues = [];
        const re = /([\d:.]+) --> ([\d:.]+)\s*\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/g;
        const secs = (t) => t.split(":").reduce((a, b) => a * 60 + Number(b), 0);
        for (let m; (m = re.exec(text));) cues.push({ start: secs(m[1]), end: secs(m[2]), file: m[3], xywh: m.slice(4, 8).map(Number) });
        return cues;
      }).catch(() => []));
    }
    return boards.get(url);
  }

  async function thumbs(root) {
    for (const el of root.querySelectorAll(".thumb[data-storyboard]")) {
      const cues = await storyboard(el.dataset.storyboard);
      const t = Number(el.dataset.time);
      const cue = cues.find((c) => t >= c.start && t < c.end) || cues[cues.length - 1];
      if (!cue) continue;
      const [x, y, w, h] = cue.xywh, scale = el.clientWidth / w || 1;
      const src = new URL(cue.file, new URL(el.dataset.storyboard, location.href)).href;
      el.style.backgroundImage = `url("${src}")`;
      el.style.backgroundSize = "auto";
      el.style.backgroundPosition = `-${x}px -${y}px`;
      el.style.width = `${w}px`; el.style.height = `${h}px`;
      if (scale !== 1 && w > el.parentElement.clientWidth) el.style.zoom = String(scale);
    }
  }

  function init() {
    const drop = document.getElementById("drop");
    if (drop) setupUpload(drop);
    thumbs(document);
    document.body.addEventListener("htmx:afterSwap", (e) => thumbs(e.target));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
