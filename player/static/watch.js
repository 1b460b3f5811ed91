// ReelDB's watch page: Media Chrome's controls around a <video> fed by hls.js (native HLS on
// Safari), plus what is ours: the title, captions and a transcript from the video's index, search
// hits marked on the progress bar, and t= starts and spans. Everything comes from this server.
//
// The server passes the stream in <html data-src>, and may pass data-start/data-end (seconds) and
// data-title. Without data-start the page reads t= from its query or hash: t=90, t=1:30, t=1m30s
// for a start; t=20-25 (or t=0:20-0:25, several spans comma-separated) for spans that stop at
// their end. Beside a video stream …/stream/<token>/index.m3u8 the server serves info.json,
// poster.jpg, storyboard.vtt, captions.vtt, transcript.json and search?q=, with the same token.
"use strict";

(() => {
  const root = document.documentElement;
  const $ = (id) => document.getElementById(id);
  const video = $("video");
  const player = $("player");
  const state = { spans: [], spanIndex: -1, segments: [], hits: [], info: null, hls: null, engine: null };
  window.reeldbPlayer = Object.assign(state, { video, player });

  // ---------------------------------------------------------------- times and t= --------------
  /** "90", "90.5", "1:30", "1:02:03", "1m30s", "1h2m", "90s" → seconds, or NaN. */
  function parseTime(text) {
    text = String(text || "").trim().toLowerCase();
    if (/^\d+(\.\d+)?$/.test(text)) return parseFloat(text);
    if (/^\d+(:\d{1,2}){1,2}(\.\d+)?$/.test(text)) {
      return text.split(":").reduce((total, part) => total * 60 + parseFloat(part), 0);
    }
    const m = text.match(/^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/);
    if (m && text) return (+m[1] || 0) * 3600 + (+m[2] || 0) * 60 + (+m[3] || 0);
    return NaN;
  }

  /** "90" → {start: 90}; "20-25,40-45" → {spans: [[20, 25], [40, 45]]}; junk → null. */
  function parseT(text) {
    if (!text) return null;
    text = text.trim();
    if (!text.includes("-")) {
      const start = parseTime(text);
      return Number.isFinite(start) ? { start, spans: [] } : null;
    }
    const spans = [];
    for (const part of text.split(",")) {
      const [a, b, extra] = part.split("-");
      const start = parseTime(a), end = parseTime(b);
      if (extra !== undefined || !Number.isFinite(start) || !Number.isFinite(end) || end <= start) return null;
      spans.push([start, end]);
    }
    return spans.length ? { start: spans[0][0], spans } : null;
  }

  function fromLocation() {
    const query = new URLSearchParams(location.search).get("t");
    const hash = new URLSearchParams(location.hash.replace(/^#/, "")).get("t");
    return parseT(hash) || parseT(query);
  }

  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  // The viewer's names of a capture's channels (player/captions.py SPEAKERS says the same).
  const SPEAKERS = { mic: "Mic", system_audio: "System audio" };

  // A transcript line or a search hit: its time, who spoke (a capture) and text; a click seeks there.
  // `seekTo` is declared further down; it exists by the time a line is clicked.
  function fillLine(button, cue) {
    button.className = "line";
    button.dataset.start = cue.start;
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = clock(cue.start);
    const text = document.createElement("span");
    text.className = "text";
    if (cue.index_type === "scene") {
      // A search hit in the text on screen (OCR), not in what was said.
      const where = document.createElement("span");
      where.className = "speaker";
      where.dataset.index = "scene";
      where.textContent = "On screen";
      text.append(where, " ");
    } else if (cue.channel) {
      // A capture's channels are transcribed each on its own: say who spoke.
      const who = document.createElement("span");
      who.className = "speaker";
      who.dataset.channel = cue.channel;
      who.textContent = SPEAKERS[cue.channel] || cue.channel;
      text.append(who, " ");
    }
    text.append(cue.text);
    button.append(time, text);
    button.addEventListener("click", () => seekTo(cue.start, true));
  }

  // ---------------------------------------------------------------- the stream ----------------
  let src = root.dataset.src || "";
  // A video's stream: …/stream/<token>/index.m3u8, or a timeline of it …/stream/<token>/t/<spans>.m3u8.
  // Its player files sit beside index.m3u8; a compilation (…/compile/<token>.m3u8) has none.
  const streamMatch = src.match(/^(.*\/stream\/[^/]+\/)(?:index\.m3u8|t\/([0-9.,\-]+)\.m3u8)(\?.*)?$/);
  const folder = streamMatch ? streamMatch[1] : null;

  let wanted = null;
  if (root.dataset.start !== undefined && root.dataset.start !== "") {
    const start = parseFloat(root.dataset.start), end = parseFloat(root.dataset.end);
    if (Number.isFinite(start)) {
      wanted = Number.isFinite(end) && end > start ? { start, spans: [[start, end]] } : { start, spans: [] };
    }
  }
  if (!wanted) wanted = fromLocation();
  if (!wanted && streamMatch && streamMatch[2]) wanted = parseT(streamMatch[2]);
  // A timeline of a video plays from the whole video's rendition, seeking and stopping at the
  // spans: captions, transcript and search keep the video's own clock.
  if (folder) src = folder + "index.m3u8";
  if (wanted) state.spans = wanted.spans;
  state.start = wanted ? wanted.start : 0;
  state.src = src;

  const embedded = /^\/embed\b/.test(location.pathname) || root.dataset.embed !== undefined;
  if (embedded) document.body.classList.add("embed");

  function fail(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = false;
    root.dataset.state = "error";
  }

  function setTitle(title) {
    if (!title) return;
    $("title").textContent = title;
    $("embed-title").textContent = title;
    document.title = title + " · ReelDB";
  }
  setTitle(root.dataset.title);

  function isSafari() {
    const ua = navigator.userAgent;
    return /safari/i.test(ua) && !/chrome|chromium|crios|fxios|edg|android/i.test(ua);
  }

  function load() {
    if (!src) {  // a bad or expired link: the server says why in data-error
      document.body.classList.add("broken");
      setTitle("This video can't be played");
      fail(root.dataset.error || "This link does not point at a video.");
      return;
    }
    if (new URL(src, location.href).origin !== location.origin) video.crossOrigin = "anonymous";
    const forced = new URLSearchParams(location.search).get("engine");
    const native = video.canPlayType("application/vnd.apple.mpegurl");
    const useNative = forced === "native" ? !!native : forced === "hls" ? false : isSafari() && !!native;
    if (!useNative && window.Hls && Hls.isSupported()) {
      const hls = new Hls({ startPosition: state.start > 0 ? state.start : -1, enableWorker: true });
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) { hls.recoverMediaError(); return; }
        const status = data.response && data.response.code;
        fail(status === 404 || status === 403
          ? "This link has expired or does not point at a video any more."
          : "Playback failed (" + data.details + "). Reload the page to try again.");
      });
      hls.loadSource(src);
      hls.attachMedia(video);
      state.hls = hls;
      state.engine = "hls.js";
    } else if (native) {
      video.src = src;
      state.engine = "native";
      video.addEventListener("error", () => fail("Playback failed: this link may have expired."));
    } else {
      fail("This browser cannot play HLS video.");
      return;
    }
    root.dataset.engine = state.engine;
    video.addEventListener("loadedmetadata", () => {
      if (state.start > 0 && Math.abs(video.currentTime - state.start) > 0.25) video.currentTime = state.start;
      root.dataset.state = "ready";
      const attempt = video.play();
      if (attempt) attempt.catch(() => {});  // autoplay refused: the play button is there
    }, { once: true });
    if (state.spans.length) state.spanIndex = 0;
    video.addEventListener("durationchange", drawMarks);
  }

  // ---------------------------------------------------------------- spans ---------------------
  // While a span is active, a frame-accurate watcher moves to the next span at each end and
  // pauses after the last; a seek outside the spans hands the video back to the viewer.
  let ownSeek = false;
  function seekTo(seconds, play) {
    ownSeek = true;
    video.currentTime = Math.max(0, seconds);
    if (play) { const p = video.play(); if (p) p.catch(() => {}); }
  }

  function watchSpans() {
    if (state.spanIndex < 0 || video.paused) return;
    const [, end] = state.spans[state.spanIndex];
    if (video.currentTime >= end - 0.01) {
      state.spanIndex += 1;
      if (state.spanIndex < state.spans.length) {
        seekTo(state.spans[state.spanIndex][0], false);
      } else {
        state.spanIndex = -1;
        video.pause();
        state.stoppedAt = video.currentTime;
        video.currentTime = end;
        root.dataset.spanDone = "true";
      }
    }
    schedule();
  }
  function schedule() {
    if (state.spanIndex < 0 || video.paused) return;
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(watchSpans);
    else requestAnimationFrame(watchSpans);
  }
  video.addEventListener("play", schedule);
  video.addEventListener("playing", schedule);
  video.addEventListener("timeupdate", () => { if (state.spanIndex >= 0) watchSpans(); });
  video.addEventListener("seeking", () => {
    if (ownSeek) { ownSeek = false; return; }
    if (state.spanIndex < 0) return;
    const t = video.currentTime;
    const inside = state.spans.findIndex(([a, b]) => t >= a - 0.5 && t < b);
    state.spanIndex = inside;  // -1 outside: the viewer took over
  });

  // ---------------------------------------------------------------- marks on the timeline -----
  function markPercent(seconds) {
    const d = video.duration;
    return Number.isFinite(d) && d > 0 ? Math.min(100, Math.max(0, (seconds / d) * 100)) : null;
  }

  function drawMarks() {
    const marks = $("marks");
    marks.querySelectorAll(".hit").forEach((el) => el.remove());
    const band = $("span-band");
    const d = video.duration;
    if (!Number.isFinite(d) || d <= 0) return;
    if (state.spans.length) {
      const a = state.spans[0][0], b = state.spans[state.spans.length - 1][1];
      band.style.left = markPercent(a) + "%";
      band.style.width = (markPercent(b) - markPercent(a)) + "%";
      band.hidden = false;
    }
    state.hits.forEach((hit, i) => {
      const mark = document.createElement("button");
      mark.type = "button";
      mark.className = hit.index_type === "scene" ? "hit screen" : "hit";
      mark.dataset.start = hit.start;
      mark.style.left = markPercent(hit.start) + "%";
      const kind = hit.index_type === "scene" ? "Screen text hit" : "Search hit";
      mark.setAttribute("aria-label", `${kind} ${i + 1} at ${clock(hit.start)}: ${hit.text}`);
      mark.title = `${clock(hit.start)} ${hit.text}`;
      mark.addEventListener("click", (e) => { e.stopPropagation(); seekTo(hit.start, true); });
      marks.appendChild(mark);
    });
    marks.hidden = !state.hits.length && !state.spans.length;
  }

  // ---------------------------------------------------------------- info, captions, transcript
  async function getJSON(name) {
    const response = await fetch(folder + name, { credentials: "omit" });
    if (!response.ok) throw Object.assign(new Error(name + ": " + response.status), { status: response.status });
    return response.json();
  }

  function addTrack(attrs) {
    const track = document.createElement("track");
    for (const [k, v] of Object.entries(attrs)) {
      if (v === true) track.setAttribute(k, "");
      else track.setAttribute(k, v);
    }
    video.appendChild(track);
    return track;
  }

  async function loadInfo() {
    if (!src) return;
    if (!folder) {
      setTitle(root.dataset.title || "Compilation");
      return;
    }
    let info;
    try {
      info = await getJSON("info.json");
    } catch (err) {
      return;  // the stream itself reports a dead link
    }
    state.info = info;
    setTitle(root.dataset.title || info.title || "Untitled video");
    if (Number.isFinite(info.length)) $("meta").textContent = clock(info.length);
    showPreviews(info, 0);
    $("side").hidden = false;
    await Promise.all([showIndex(info), loadScreenText()]);
  }

  // The text on screen, scene by scene (the video's latest scene index): each scene's picture and
  // first lines; a click seeks to it. Nothing when the video has no scene index.
  async function loadScreenText() {
    const body = await getJSONOrNothing("scenes.json");
    if (!body) return;
    const scenes = (body.scenes || []).map((scene) => (
      { start: scene.start, text: scene.text.split("\n").slice(0, 3).join(" · ") || "(no text)" }));
    const list = fillList($("screen"), scenes, (button, i) => {
      button.classList.add("scene");
      const picture = document.createElement("img");
      picture.src = folder + "scene-" + i + ".jpg";
      picture.alt = "";
      picture.loading = "lazy";
      button.prepend(picture);
    });
    $("screen-heading").hidden = !list.children.length;
    root.dataset.scenes = String(list.children.length);
  }

  // Lines a list shows (the transcript, the text on screen): a button each, filled by fillLine, which
  // `decorate` adds to; a click seeks to the line.
  function fillList(list, cues, decorate) {
    list.textContent = "";
    cues.forEach((cue, i) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      fillLine(button, cue);
      decorate(button, i);
      item.appendChild(button);
      list.appendChild(item);
    });
    return list;
  }

  async function getJSONOrNothing(name) {
    try {
      return await getJSON(name);
    } catch (err) {
      return null;
    }
  }

  // The poster and the seek storyboard follow the stream (a job of their own after an upload or a
  // render): while info.json says neither yet, it is asked again, less often each time, for a few
  // minutes; each is shown once, when it arrives, without a reload.
  const PREVIEW_WAITS = [1000, 2000, 3000, 5000, 8000, 13000, 21000, 34000, 55000, 60000];
  function showPreviews(info, attempt) {
    if (info.poster && !state.poster) {
      state.poster = true;
      if (!video.poster) video.poster = folder + info.poster;
    }
    if (info.storyboard && !state.storyboard) {
      state.storyboard = true;
      addTrack({ kind: "metadata", label: "thumbnails", src: folder + info.storyboard, default: true });
    }
    if ((state.poster && state.storyboard) || attempt >= PREVIEW_WAITS.length) return;
    setTimeout(async () => {
      try {
        showPreviews(await getJSON("info.json"), attempt + 1);
      } catch (err) {
        // a dead link: the stream says so
      }
    }, PREVIEW_WAITS[attempt]);
  }

  // Captions and the transcript once the spoken words are indexed; while an index runs (a recording
  // is indexed right after its export), its progress, asked again every few seconds until it is done.
  async function showIndex(info) {
    if (info.captions) {
      $("search-status").textContent = "";
      $("transcript-heading").hidden = false;
      const track = addTrack({ kind: "captions", label: "English", srclang: "en", src: folder + "captions.vtt", default: true });
      track.addEventListener("load", placeCues);
      await loadTranscript();
      return;
    }
    $("transcript-heading").hidden = true;
    if (!info.indexing) {
      $("search-status").textContent = "Search and the transcript appear once this video's spoken words are indexed.";
      return;
    }
    $("search-status").textContent = "Indexing spoken words… " + Math.round((info.indexing.progress || 0) * 100) + " %";
    setTimeout(async () => {
      try {
        await showIndex(await getJSON("info.json"));
      } catch (err) {
        $("search-status").textContent = "Search and the transcript appear once this video's spoken words are indexed.";
      }
    }, 2000);
  }

  async function loadTranscript() {
    const body = await getJSONOrNothing("transcript.json");
    if (!body) return;
    state.segments = body.segments || [];
    fillList($("transcript"), state.segments, (button, i) => { button.dataset.index = i; });
    root.dataset.transcript = String(state.segments.length);
    followTranscript();
  }

  let activeLine = -1;
  function followTranscript() {
    if (!state.segments.length) return;
    const t = video.currentTime;
    let index = -1;
    for (let i = 0; i < state.segments.length; i++) {
      if (state.segments[i].start <= t + 0.05) index = i;
      else break;
    }
    if (index === activeLine) return;
    const list = $("transcript");
    const old = list.querySelector('[aria-current="true"]');
    if (old) old.removeAttribute("aria-current");
    activeLine = index;
    if (index < 0) return;
    const line = list.querySelector(`[data-index="${index}"]`);
    line.setAttribute("aria-current", "true");
    // Scroll the panel only (never the page), and not while the viewer is reading it.
    if (list.matches(":hover") || list.contains(document.activeElement)) return;
    const top = line.offsetTop - list.offsetTop, bottom = top + line.offsetHeight;
    if (top < list.scrollTop || bottom > list.scrollTop + list.clientHeight) {
      list.scrollTo({ top: Math.max(0, top - list.clientHeight / 3), behavior: "smooth" });
    }
  }
  video.addEventListener("timeupdate", followTranscript);
  video.addEventListener("seeked", followTranscript);

  // Captions rise above the controls while they show (native cues sit at the video's bottom).
  function placeCues() {
    const shown = !player.hasAttribute("userinactive") || player.hasAttribute("mediapaused");
    const height = video.getBoundingClientRect().height;
    const bars = video.getBoundingClientRect().bottom - $("timeline").getBoundingClientRect().top;
    // Chromium and Safari size cue text at 5 % of the video's height (the CSS makes it 1.1em).
    const lineHeight = Math.max(1, height * 0.05 * 1.1 * 1.25);
    const line = shown && height > 0 ? -2 - Math.ceil(bars / lineHeight) : "auto";
    for (const track of video.textTracks) {
      if (track.kind !== "captions" && track.kind !== "subtitles") continue;
      let moved = false;
      for (const cue of track.cues || []) {
        if (cue.line !== line) { cue.line = line; moved = true; }
      }
      // Browsers lay a showing cue out once: have them lay it out again.
      if (moved && track.mode === "showing") { track.mode = "hidden"; track.mode = "showing"; }
    }
  }
  new MutationObserver(placeCues).observe(player, { attributes: true, attributeFilter: ["userinactive", "mediapaused"] });
  window.addEventListener("resize", placeCues);

  // ---------------------------------------------------------------- search --------------------
  $("search").addEventListener("submit", async (e) => {
    e.preventDefault();
    const q = $("q").value.trim();
    const status = $("search-status");
    const list = $("results");
    list.textContent = "";
    state.hits = [];
    drawMarks();
    if (!q) { status.textContent = ""; return; }
    status.textContent = "Searching…";
    let body;
    try {
      body = await getJSON("search?q=" + encodeURIComponent(q));
    } catch (err) {
      status.textContent = err.status === 404
        ? "This video's spoken words are not indexed yet."
        : "Search failed; try again.";
      return;
    }
    state.hits = (body.results || []).slice().sort((a, b) => a.start - b.start);
    status.textContent = state.hits.length
      ? `${state.hits.length} ${state.hits.length === 1 ? "match" : "matches"}, marked on the timeline`
      : "No matches.";
    for (const hit of state.hits) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      fillLine(button, hit);
      item.appendChild(button);
      list.appendChild(item);
    }
    drawMarks();
    root.dataset.hits = String(state.hits.length);
  });

  // ---------------------------------------------------------------- keyboard ------------------
  // Media Chrome handles space/k, f, m, c and </> while focus is in the player, and the page hands
  // it the same keys from anywhere else; the page seeks itself for j/l (±10 s) and ←/→ (±5 s).
  const STEPS = { ArrowLeft: -5, ArrowRight: 5, j: -10, l: 10 };
  const KEYS = new Set([" ", "k", "j", "l", "f", "m", "c", "<", ">", "ArrowLeft", "ArrowRight"]);
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || !KEYS.has(e.key)) return;
    const target = e.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
    const tag = (target.tagName || "").toLowerCase();
    if (tag === "media-time-range" || tag === "media-volume-range") return;  // arrows move the slider
    if (STEPS[e.key]) {  // seek from the video's own clock, so quick repeats add up
      e.preventDefault();
      const d = Number.isFinite(video.duration) ? video.duration : Infinity;
      video.currentTime = Math.min(Math.max(0, video.currentTime + STEPS[e.key]), d);
      return;
    }
    if (player.contains(target)) return;  // Media Chrome's own handler
    if (e.key === " " && (tag === "button" || tag === "a" || tag === "summary")) return;
    e.preventDefault();
    player.keyboardShortcutHandler(e);
  });

  // ---------------------------------------------------------------- accessibility -------------
  // Media Chrome marks its captions toggle role=button with aria-checked, which a button may not
  // carry: it is an on/off switch, so it is named one (aria-checked then means what it says).
  const captions = document.querySelector("media-captions-button");
  if (captions) {
    const asSwitch = () => { if (captions.getAttribute("role") !== "switch") captions.setAttribute("role", "switch"); };
    new MutationObserver(asSwitch).observe(captions, { attributes: true, attributeFilter: ["role"] });
    customElements.whenDefined("media-captions-button").then(asSwitch);
    asSwitch();
  }

  // The time display and the speed button show their value ("0:03 / 0:10", "1x") but Media Chrome
  // names them otherwise ("playback time"); named by what they show, speech and sight agree (the
  // time display keeps its aria-description, "3 seconds of 10 seconds").
  for (const el of document.querySelectorAll("media-time-display, media-playback-rate-button")) {
    const byContent = () => { if (el.hasAttribute("aria-label")) el.removeAttribute("aria-label"); };
    new MutationObserver(byContent).observe(el, { attributes: true, attributeFilter: ["aria-label"] });
    byContent();
  }

  load();
  loadInfo();
})();
