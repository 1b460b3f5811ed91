// ReelDB's browser recorder: getUserMedia (mic) + getDisplayMedia (screens, system audio) sent to the
// server over one WebRTC peer connection, driven by the recorder-facing capture endpoints with the
// client token (DESIGN §2, "Clients"). Plain JS, no build step.
//
// The wire: POST capture/session/start {session_id, channels} → POST capture/session/{id}/offer
// {sdp, type, tracks: {mid: channel_id}} (no trickle ICE) → answer; pause/resume
// {channels}; stop; then GET capture/session/{id} until exported, whose player_url the page links
// to. Every call carries `x-access-token: <client token>`.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const API = (document.documentElement.dataset.api || location.origin).replace(/\/+$/, "");
  const ICE_GATHER_TIMEOUT_MS = 5000;
  const POLL_MS = 2000;
  const FINAL_STATUSES = ["exported", "failed", "expired"];

  const state = {
    sessionId: null,
    token: null,
    channels: [], // {id, name, kind, store, primary, track, stream, row, transceiver, ended, meter}
    phase: "idle", // idle | starting | recording | paused | stopping | stopped | failed
    pc: null,
    elapsedMs: 0, // recorded time before the current run (pauses excluded)
    runStartedAt: null, // performance.now() when the current run (recording, not paused) began
    tick: null,
    poll: null,
    serverStatus: null,
    audioContext: null,
  };
  window.reeldbCapture = state; // for debugging and tests

  // --- small helpers -----------------------------------------------------------------------------
  function setStatus(text) { $("status").textContent = text; }

  function showError(err) {
    const box = $("error");
    box.textContent = typeof err === "string" ? err : (err && err.message) || String(err);
    box.hidden = false;
    console.error("capture:", err);
  }

  function clearError() { $("error").hidden = true; $("error").textContent = ""; }

  class ApiError extends Error {
    constructor(message, status = 0) { super(message); this.status = status; }
  }

  async function call(method, path, body, { keepalive = false } = {}) {
    let res;
    try {
      res = await fetch(API + path, {
        method,
        keepalive,
        headers: { "x-access-token": state.token, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (e) {
      throw new ApiError(UNREACHABLE, 0);
    }
    let payload = null;
    try { payload = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok || !payload || payload.success === false) {
      throw new ApiError(personal(res.status, payload && (payload.message || payload.detail)), res.status);
    }
    return payload.data;
  }

  // What a person reads: what happened and what to do, never a method or a path.
  const UNREACHABLE = "The ReelDB server cannot be reached. Check that it is running and that this computer is online, then try again.";
  function personal(status, message) {
    if (status === 401 || status === 403) {
      return "This recording link is no longer valid (its token expired or was revoked). Start a new recording from the library.";
    }
    if (status === 404) return "This recording session does not exist on the server. Start a new recording from the library.";
    if (status >= 500 && status !== 507) return "The server had a problem with this request. Try again in a moment.";
    return message || "The server refused this request.";
  }

  function formatTime(ms) {
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  function elapsed() {
    return state.elapsedMs + (state.runStartedAt === null ? 0 : performance.now() - state.runStartedAt);
  }

  // --- phase and rendering -----------------------------------------------------------------------
  function setPhase(phase) {
    state.phase = phase;
    document.body.dataset.phase = phase;
    render();
  }

  function render() {
    const p = state.phase;
    const live = p === "recording" || p === "paused";
    const held = p === "interrupted" || (state.unreachable && (live || p === "starting"));
    const editable = p === "idle";
    $("add-mic").disabled = !editable || state.channels.some((c) => c.id === "mic:default");
    $("add-screen").disabled = !editable;
    $("add-screen").textContent = state.channels.some((c) => c.kind === "video") ? "Share another screen" : "Share a screen";
    $("start").disabled = !editable || !state.channels.some((c) => !c.ended);
    $("pause").disabled = !live;
    $("pause").textContent = p === "paused" ? "Resume" : "Pause";
    $("stop").disabled = !(live || p === "starting");
    $("no-channels").hidden = state.channels.length > 0;
    for (const c of state.channels) {
      c.row.querySelector(".store").disabled = !editable;
      c.row.querySelector(".primary-choice").disabled = !editable;
      c.row.querySelector(".primary-choice").checked = c.primary;
      c.row.querySelector(".remove").disabled = !editable;
      c.row.classList.toggle("ended", !!c.ended);
    }
    const rec = $("rec");
    rec.hidden = !live && !held;
    rec.classList.toggle("paused", p === "paused" || held);
    $("rec-label").textContent = held ? "ON HOLD" : p === "paused" ? "PAUSED" : "REC";
    $("resume").hidden = p !== "interrupted";
    $("again").hidden = !["stopped", "kept", "failed"].includes(p);
    $("offline").hidden = !state.unreachable;
    $("elapsed").textContent = formatTime(elapsed());
    document.title = live ? `${p === "paused" ? "❚❚" : "●"} ${formatTime(elapsed())} · ReelDB capture` : "ReelDB capture";
  }

  function setServerStatus(status) {
    if (!status || status === state.serverStatus) return;
    state.serverStatus = status;
    const badge = $("server-status");
    badge.textContent = status;
    badge.className = "badge " + status;
    document.body.dataset.serverStatus = status;
  }

  // Once the session is exported the server's view of it carries the recording's player_url.
  function showPlayerLink(url) {
    if (!url || $("watch-link").getAttribute("href") === url) return;
    $("watch-link").href = url;
    $("watch").hidden = false;
  }

  // --- channels ----------------------------------------------------------------------------------
  function addChannel({ id, name, kind, track, stream, source }) {
    const row = $("channel-row").content.firstElementChild.cloneNode(true);
    const channel = { id, name, kind, store: true, primary: false, track, stream, row, ended: false };
    row.dataset.channel = id;
    row.querySelector(".cid").textContent = id;
    row.querySelector(".name").textContent = name;
    row.querySelector(".name").title = track.label || name;
    row.querySelector(".source").append(source);
    row.querySelector(".store").addEventListener("change", (e) => { channel.store = e.target.checked; });
    row.querySelector(".store").setAttribute("aria-label", `Store ${name}`);
    row.querySelector(".remove").setAttribute("aria-label", `Remove ${name}`);
    row.querySelector(".remove").title = `Remove ${name}`;
    const radio = row.querySelector(".primary-choice");
    radio.setAttribute("aria-label", `${name} is the primary screen`);
    if (kind === "video") {
      radio.addEventListener("change", () => setPrimary(id));
    } else {
      radio.hidden = true;
    }
    row.querySelector(".remove").addEventListener("click", () => removeChannel(channel));
    track.addEventListener("ended", () => onTrackEnded(channel));
    state.channels.push(channel);
    $("channel-rows").append(row);
    if (kind === "video" && !state.channels.some((c) => c.primary)) channel.primary = true;
    render();
    return channel;
  }

  function setPrimary(id) {
    for (const c of state.channels) c.primary = c.id === id;
    render();
  }

  function removeChannel(channel) {
    channel.track.stop();
    if (channel.meter) channel.meter.stop();
    channel.row.remove();
    state.channels = state.channels.filter((c) => c !== channel);
    if (channel.primary) {
      const next = state.channels.find((c) => c.kind === "video");
      if (next) next.primary = true;
    }
    render();
  }

  function onTrackEnded(channel) {
    channel.ended = true;
    if (state.phase === "idle") {
      removeChannel(channel);
      return;
    }
    if (state.phase === "recording" || state.phase === "paused") {
      if (state.channels.every((c) => c.ended)) {
        setStatus("Every source has ended: stopping.");
        stop();
      } else {
        showError(`${channel.name} (${channel.id}) stopped sending: the browser ended the track (was sharing stopped?).`);
      }
    }
    render();
  }

  function levelMeter(stream) {
    const box = document.createElement("div");
    box.className = "meter";
    box.title = "input level";
    const bar = document.createElement("div");
    box.append(bar);
    let raf = 0;
    try {
      state.audioContext = state.audioContext || new AudioContext();
      const source = state.audioContext.createMediaStreamSource(stream);
      const analyser = state.audioContext.createAnalyser();
      analyser.fftSize = 512;
      source.connect(analyser);
      const data = new Float32Array(analyser.fftSize);
      const draw = () => {
        analyser.getFloatTimeDomainData(data);
        let peak = 0;
        for (const v of data) peak = Math.max(peak, Math.abs(v));
        bar.style.width = Math.min(100, Math.round(Math.sqrt(peak) * 100)) + "%";
        raf = requestAnimationFrame(draw);
      };
      draw();
    } catch (e) {
      console.warn("level meter unavailable", e);
    }
    return { el: box, stop: () => { cancelAnimationFrame(raf); bar.style.width = "0"; } };
  }

  function preview(stream) {
    const v = document.createElement("video");
    v.muted = true;
    v.autoplay = true;
    v.playsInline = true;
    v.srcObject = stream;
    return v;
  }

  async function addMic() {
    clearError();
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      const track = stream.getAudioTracks()[0];
      const meter = levelMeter(stream);
      const ch = addChannel({ id: "mic:default", name: track.label || "Microphone", kind: "audio", track, stream,
        source: meter.el });
      ch.meter = meter;
      setStatus("Microphone added.");
    } catch (e) {
      showError(`Microphone unavailable: ${e.name === "NotAllowedError" ? "permission denied" : e.message || e}`);
    }
  }

  async function addScreen() {
    clearError();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
      showError("This browser cannot share a screen (getDisplayMedia is missing).");
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({
        video: { frameRate: { ideal: 30 } },
        audio: true,
        systemAudio: "include",
        surfaceSwitching: "exclude",
      });
    } catch (e) {
      showError(`Screen sharing unavailable: ${e.name === "NotAllowedError" ? "cancelled or denied" : e.message || e}`);
      return;
    }
    const video = stream.getVideoTracks()[0];
    let n = 1;
    while (state.channels.some((c) => c.id === `display:${n}`)) n += 1;
    if ("contentHint" in video) video.contentHint = "detail"; // screen text: keep resolution over frame rate
    addChannel({ id: `display:${n}`, name: `Screen ${n}`, kind: "video", track: video,
      stream: new MediaStream([video]), source: preview(new MediaStream([video])) });
    const audio = stream.getAudioTracks()[0];
    let note = "";
    if (audio && !state.channels.some((c) => c.id === "system_audio:default")) {
      const audioStream = new MediaStream([audio]);
      const meter = levelMeter(audioStream);
      const ch = addChannel({ id: "system_audio:default", name: "System audio", kind: "audio",
        track: audio, stream: audioStream, source: meter.el });
      ch.meter = meter;
      note = " with system audio";
    } else if (audio) {
      audio.stop(); // one system audio channel per session
    } else if (!state.channels.some((c) => c.id === "system_audio:default")) {
      note = " (no system audio: the browser did not share any)";
    }
    setStatus(`Screen ${n} added${note}.`);
  }

  // --- WebRTC ------------------------------------------------------------------------------------
  function preferH264(transceiver) {
    if (!transceiver.setCodecPreferences) return;
    const caps = (RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities("video")) ||
      (RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities("video"));
    if (!caps || !caps.codecs) return;
    const rank = (c) => {
      if (c.mimeType.toLowerCase() !== "video/h264") return 2;
      const fmtp = c.sdpFmtpLine || "";
      if (!/packetization-mode=1/.test(fmtp)) return 3; // mode 0 is of no use to the server
      return /profile-level-id=42e01f/i.test(fmtp) ? 0 : 1; // constrained baseline first
    };
    const codecs = caps.codecs.map((c, i) => [rank(c), i, c]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
    try {
      transceiver.setCodecPreferences(codecs);
    } catch (e) {
      console.warn("setCodecPreferences failed; the browser's default codec order is used", e);
    }
  }

  // Congestion control for a loopback/LAN ingest. aiortc estimates the receive bitrate (REMB) from
  // the abs-send-time header extension, and its estimate collapses whenever the sender is quiet: a
  // pause (disabled tracks send tiny black frames) drops it to ~80 kbit/s and the screen then
  // records at 2-5 fps for many seconds after resuming. So the answer is taken without
  // abs-send-time and goog-remb for video (the server then sends no REMB; Chromium keeps its
  // loss-based controller, which is right for a LAN), and with a starting bitrate above the 300
  // kbit/s default so the first seconds are legible. Chromium reads x-google-start-bitrate from
  // the remote description's fmtp lines; other browsers ignore it. Nothing here changes what the
  // server receives or stores, only how fast the browser sends.
  const VIDEO_START_KBPS = 1500;

  function tuneAnswer(sdp) {
    const lines = sdp.split("\r\n");
    const codecPt = new Set();
    let video = false;
    for (const line of lines) {
      if (line.startsWith("m=")) video = line.startsWith("m=video");
      const rtpmap = video && line.match(/^a=rtpmap:(\d+) (H264|VP8|VP9|AV1)\//i);
      if (rtpmap) codecPt.add(rtpmap[1]);
    }
    const extra = `x-google-start-bitrate=${VIDEO_START_KBPS}`;
    const out = [];
    video = false;
    for (const line of lines) {
      if (line.startsWith("m=")) video = line.startsWith("m=video");
      if (video && /^a=rtcp-fb:\d+ goog-remb/.test(line)) continue;
      if (video && /^a=extmap:\d+(\/\w+)? \S*abs-send-time/.test(line)) continue;
      const fmtp = video && line.match(/^a=fmtp:(\d+) /);
      if (fmtp && codecPt.has(fmtp[1]) && !line.includes("x-google-")) {
        out.push(`${line};${extra}`);
        continue;
      }
      out.push(line);
      const rtpmap = video && line.match(/^a=rtpmap:(\d+) /);
      if (rtpmap && codecPt.has(rtpmap[1]) && !lines.some((l) => l.startsWith(`a=fmtp:${rtpmap[1]} `))) {
        out.push(`a=fmtp:${rtpmap[1]} ${extra}`);
      }
    }
    return out.join("\r\n");
  }

  function iceGatheringComplete(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState !== "complete") return;
        pc.removeEventListener("icegatheringstatechange", done);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => { // send what we have: host candidates come first
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }, ICE_GATHER_TIMEOUT_MS);
      pc.addEventListener("icegatheringstatechange", done);
    });
  }

  async function connect() {
    const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
    state.pc = pc;
    pc.addEventListener("connectionstatechange", () => {
      const s = pc.connectionState;
      document.body.dataset.connection = s;
      if (state.pc !== pc) return;
      if (s === "connected" && state.phase === "starting") {
        state.runStartedAt = performance.now();
        setPhase("recording");
        setStatus("Recording.");
      } else if (s === "failed" && (state.phase === "recording" || state.phase === "paused" || state.phase === "starting")) {
        showError("The media connection to the server was lost. The page is checking what the server kept.");
      } else if (s === "disconnected") {
        setStatus("Media connection interrupted; waiting for it to recover…");
      }
    });
    for (const c of state.channels) {
      c.transceiver = pc.addTransceiver(c.track, { direction: "sendonly", streams: [c.stream] });
      if (c.kind === "video") preferH264(c.transceiver);
    }
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc);
    const tracks = {};
    for (const c of state.channels) tracks[c.transceiver.mid] = c.id;
    const answer = await call("POST", `/capture/session/${encodeURIComponent(state.sessionId)}/offer`,
      { sdp: pc.localDescription.sdp, type: "offer", tracks });
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: tuneAnswer(answer.sdp) });
    } catch (e) { // never let the tuning cost the recording
      console.warn("tuned answer refused, using the server's as is", e);
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    }
  }

  // --- recording controls ------------------------------------------------------------------------
  async function start() {
    clearError();
    const channels = state.channels.filter((c) => !c.ended);
    if (!channels.length) return showError("Add at least one channel first.");
    if (!channels.some((c) => c.store)) {
      setStatus("No channel is stored: nothing will be saved (live use only).");
    }
    state.channels = channels;
    setPhase("starting");
    setStatus("Starting the session…");
    try {
      const data = await call("POST", "/capture/session/start", {
        session_id: state.sessionId,
        channels: channels.map((c) => ({ channel_id: c.id, name: c.name, type: c.kind, store: c.store,
          is_primary: c.primary })),
      });
      setServerStatus(data.status);
      if (state.phase !== "starting") return; // stopped meanwhile
      setStatus("Connecting media…");
      await connect();
      startTimers();
      setTimeout(() => {
        if (state.phase === "starting") showError("The media connection is not up after 15 s: is the server reachable from this browser?");
      }, 15000);
    } catch (e) {
      if (state.phase !== "starting") return; // stop() already tore down
      if (state.pc) { state.pc.close(); state.pc = null; }
      showError(e.status === 0 ? e.message : `The recording could not start: ${e.message}`);
      setPhase("idle"); // the channels are kept: Start again once the server answers
      pollServer();
    }
  }

  async function togglePause() {
    const pausing = state.phase === "recording";
    if (!pausing && state.phase !== "paused") return;
    const ids = state.channels.map((c) => c.id);
    clearError();
    if (pausing) {
      for (const c of state.channels) c.track.enabled = false;
      state.elapsedMs = elapsed();
      state.runStartedAt = null;
      setPhase("paused");
      setStatus("Paused.");
    }
    $("pause").disabled = true;
    try {
      await call("POST", `/capture/session/${encodeURIComponent(state.sessionId)}/${pausing ? "pause" : "resume"}`,
        { channels: ids });
    } catch (e) {
      showError(e);
    }
    if (!pausing && state.phase === "paused") { // (not if Stop was pressed meanwhile)
      for (const c of state.channels) c.track.enabled = true;
      state.runStartedAt = performance.now();
      setPhase("recording");
      setStatus("Recording.");
    }
    render();
  }

  async function stop() {
    if (!["starting", "recording", "paused"].includes(state.phase)) return;
    clearError();
    state.elapsedMs = elapsed();
    state.runStartedAt = null;
    setPhase("stopping");
    setStatus("Stopping: the server is finishing the files…");
    try {
      const data = await call("POST", `/capture/session/${encodeURIComponent(state.sessionId)}/stop`);
      setServerStatus(data.status);
      setPhase("stopped");
      setStatus(`Stopped after ${formatTime(state.elapsedMs)}.`);
    } catch (e) {
      if (e.status === 409) { // the server had already ended it (it restarted): what was recorded is kept
        setPhase("kept");
        setStatus(KEPT);
      } else {
        showError(e.status === 0 ? e.message : `The recording could not be stopped cleanly: ${e.message}`);
        setPhase(e.status === 0 ? "kept" : "failed");
      }
    }
    teardown();
    pollServer(); // keep watching until exported/failed
  }

  const KEPT = "The server ended this recording (it restarted, or lost this page for too long). What was recorded until then is kept.";

  // After a reload: the session is still live on the server, which waits a while for its recorder.
  async function resume() {
    clearError();
    $("resume").disabled = true;
    const wanted = new Set((state.serverChannels || []).map((c) => c.channel_id));
    for (const c of [...state.channels]) removeChannel(c);
    if ([...wanted].some((id) => id.startsWith("mic:"))) await addMic();
    for (const id of [...wanted].filter((i) => i.startsWith("display:"))) { void id; await addScreen(); }
    for (const c of [...state.channels]) if (!wanted.has(c.id)) removeChannel(c);
    $("resume").disabled = false;
    if (!state.channels.length) return showError("Share the screen or the microphone again to continue.");
    setPhase("starting");
    setStatus("Reconnecting to the recording…");
    try {
      for (let attempt = 0; ; attempt++) {
        try { await connect(); break; } catch (e) {
          if (state.pc) { state.pc.close(); state.pc = null; }
          if (e.status !== 409 || attempt >= 20 || state.phase !== "starting") throw e;
          await new Promise((r) => setTimeout(r, 1500)); // the server has not let go of the old page yet
        }
      }
      startTimers();
    } catch (e) {
      if (state.phase !== "starting") return;
      showError(e.status === 0 ? e.message : `The recording could not continue: ${e.message}`);
      setPhase("interrupted");
    }
  }


  function teardown() {
    if (state.pc) { state.pc.close(); state.pc = null; }
    for (const c of state.channels) {
      c.track.stop();
      if (c.meter) c.meter.stop();
    }
    clearInterval(state.tick);
    state.tick = null;
    render();
  }

  function startTimers() {
    clearInterval(state.tick);
    state.tick = setInterval(render, 250);
    pollServer();
  }

  function pollServer() {
    clearTimeout(state.poll);
    const deadline = Date.now() + 10 * 60 * 1000;
    const once = async () => {
      try {
        const data = await call("GET", `/capture/session/${encodeURIComponent(state.sessionId)}`);
        if (state.unreachable) reachable();
        const ended = ["stopping", "stopped", "exported", "failed", "expired"].includes(data.status);
        if (ended && ["starting", "recording", "paused", "interrupted"].includes(state.phase)) {
          state.elapsedMs = elapsed();
          state.runStartedAt = null;
          teardown();
          setPhase("kept");
          setStatus(KEPT);
        }
        if (data.status === "exported" && state.phase === "kept") setStatus(`${KEPT} It is ready to watch.`);
        setServerStatus(data.status);
        if (data.status === "exported" && state.phase === "stopped") setStatus(`Stopped after ${formatTime(state.elapsedMs)}; the recording is exported.`);
        if (data.status === "exported") showPlayerLink(data.player_url);
        if (data.status === "failed" && data.error) showError(`The server reports the session failed: ${data.error}`);
        if (data.stop_reason && !state.stopReasonShown) {  // the server stopped it itself (its disk is full)
          state.stopReasonShown = true;
          showError(`The server stopped this recording: ${data.stop_reason}`);
        }
        if (FINAL_STATUSES.includes(data.status)) return;
      } catch (e) {
        if (e.status === 0) unreachable();
        else console.warn(e);
      }
      // Quicker while the server is between states, so the badge follows the page.
      const soon = ["starting", "stopping", "stopped"].includes(state.serverStatus) ? POLL_MS / 4 : POLL_MS;
      if (Date.now() < deadline) state.poll = setTimeout(once, soon);
    };
    once();
  }

  function unreachable() {
    if (state.unreachable) return;
    state.unreachable = true;
    if (state.runStartedAt !== null) { state.elapsedMs = elapsed(); state.runStartedAt = null; } // the clock stops
    $("offline-text").textContent = UNREACHABLE + " Your recording so far is kept by the server.";
    render();
  }

  function reachable() {
    state.unreachable = false;
    if ((state.phase === "recording") && state.pc && state.pc.connectionState === "connected") {
      state.runStartedAt = performance.now();
    }
    render();
  }

  function retry() {
    clearError();
    if (state.phase === "idle" && !state.serverStatus) return open(state.sessionId, state.token);
    pollServer();
  }

  // --- session from the URL (or the form) --------------------------------------------------------
  async function open(sessionId, token) {
    state.sessionId = sessionId;
    state.token = token;
    $("session-id").textContent = sessionId;
    $("login").hidden = true;
    $("recorder").hidden = false;
    try {
      const data = await call("GET", `/capture/session/${encodeURIComponent(sessionId)}`);
      setServerStatus(data.status);
      state.serverChannels = data.channels || [];
      if (data.status === "starting" || data.status === "active") {
        state.elapsedMs = savedRun(sessionId).elapsedMs || 0;
        setPhase("interrupted");
        setStatus("This recording is still running on the server, waiting for this page. Press Continue recording and share the same screen and microphone again.");
        pollServer();
      } else if (data.status !== "created") {
        setPhase(data.status === "failed" ? "failed" : "kept");
        setStatus(data.status === "failed" ? "This recording failed on the server." :
          data.status === "exported" ? "This recording has ended and is kept. It is ready to watch." :
            "This recording has ended and is kept; it will be ready to watch in a moment.");
        if (data.status === "failed" && data.error) showError(`The server reports: ${data.error}`);
        if (data.status === "exported") showPlayerLink(data.player_url);
        else pollServer();
      } else {
        setStatus("Add the channels to record, then start.");
      }
    } catch (e) {
      if (e.status === 0) { unreachable(); showError(e.message); render(); return; }
      showError(e);
      if (e.status === 401 || e.status === 403) { // wrong or expired token: a signed-in page takes over, or asks
        try { sessionStorage.removeItem(`reeldb-capture-token:${sessionId}`); } catch (err) { /* ignore */ }
        const mine = !state.tookOver && await takeOver(sessionId);
        if (mine) { state.tookOver = true; clearError(); return open(sessionId, mine); }
        showLogin(sessionId);
      }
    }
    render();
  }

  // A recording of the person signed in to the library (its cookie), opened in a tab without its
  // token (another tab, a link from history): the server mints this tab a token and hands the
  // recording over to it. Not signed in, or not theirs: null, and the page asks for a token.
  async function takeOver(sessionId) {
    try {
      const response = await fetch(`/library/record/${encodeURIComponent(sessionId)}/token`, {
        method: "POST", credentials: "same-origin", redirect: "manual",
        headers: { "content-type": "application/json" }, body: "{}",
      });
      if (!response.ok) return null;
      const token = ((await response.json()).data || {}).token;
      if (token) {
        try { sessionStorage.setItem(`reeldb-capture-token:${sessionId}`, token); } catch (e) { /* storage disabled */ }
      }
      return token || null;
    } catch (e) {
      return null;
    }
  }

  function savedRun(sessionId) {
    try { return JSON.parse(sessionStorage.getItem(`reeldb-capture-run:${sessionId}`) || "{}"); } catch (e) { return {}; }
  }

  function showLogin(sessionId) {
    $("recorder").hidden = true;
    $("login").hidden = false;
    if (sessionId) $("login-session").value = sessionId;
    $("login-token").value = "";
  }

  // The token may come as ?token= or #token= (a fragment never reaches the server's logs). Once
  // read it leaves the address bar, which a screen recording would otherwise show, and waits in
  // sessionStorage (this tab only) so a reload still works.
  function credentials() {
    const params = new URLSearchParams(location.search);
    const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
    const sessionId = params.get("session_id") || hash.get("session_id");
    const key = sessionId && `reeldb-capture-token:${sessionId}`;
    let token = params.get("token") || hash.get("token");
    if (token && key) {
      try { sessionStorage.setItem(key, token); } catch (e) { /* storage disabled */ }
    } else if (key) {
      try { token = sessionStorage.getItem(key); } catch (e) { /* storage disabled */ }
    }
    rememberInUrl(sessionId);
    return { sessionId, token };
  }

  function rememberInUrl(sessionId) {
    const url = new URL(location.href);
    url.searchParams.delete("token");
    url.hash = "";
    if (sessionId) url.searchParams.set("session_id", sessionId);
    if (url.href !== location.href) history.replaceState(null, "", url);
  }

  function init() {
    const { sessionId, token } = credentials();
    $("add-mic").addEventListener("click", addMic);
    $("add-screen").addEventListener("click", addScreen);
    $("start").addEventListener("click", start);
    $("pause").addEventListener("click", togglePause);
    $("stop").addEventListener("click", stop);
    // Leaving mid-recording (a reload, most often): the session stays live and the server waits
    // for the page to come back (REELDB_RECONNECT_GRACE, then it stops it, keeping the files);
    // the tab remembers the clock so the reloaded page continues it.
    window.addEventListener("pagehide", () => {
      if (["starting", "recording", "paused", "interrupted"].includes(state.phase)) {
        try {
          sessionStorage.setItem(`reeldb-capture-run:${state.sessionId}`, JSON.stringify({ elapsedMs: elapsed() }));
        } catch (e) { /* storage disabled */ }
      }
    });
    $("resume").addEventListener("click", resume);
    $("retry").addEventListener("click", retry);
    if (!window.RTCPeerConnection || !navigator.mediaDevices) {
      showError("This browser does not support WebRTC capture (use a current Chrome, Edge, Firefox or Safari over http://localhost or https).");
    }
    if (sessionId && token) {
      open(sessionId, token);
    } else if (sessionId) {
      takeOver(sessionId).then((mine) => mine ? open(sessionId, mine) : showLogin(sessionId));
    } else {
      showLogin(sessionId);
    }
    $("login").addEventListener("submit", (e) => {
      e.preventDefault();
      clearError();
      const sid = $("login-session").value.trim(), tok = $("login-token").value.trim();
      try { sessionStorage.setItem(`reeldb-capture-token:${sid}`, tok); } catch (err) { /* storage disabled */ }
      rememberInUrl(sid); // the token stays out of the address bar and history
      open(sid, tok);
    });
    render();
  }

  init();
})();
