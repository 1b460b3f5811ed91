"""``reeldb-recorder``: a drop-in for the VideoDB SDK's capture binary, publishing over WebRTC.

The SDK's ``CaptureClient`` spawns the binary and talks to it with lines
``videodb_recorder|<json>\\n`` on stdin/stdout (api notes §9). Commands are
``{"command", "commandId", "params"}``; we answer ``{"type": "response", "commandId",
"status": "success"|"error", "result"}`` and push ``{"type": "event", "event", "payload"}``
(``recording-started``, ``recording-complete``, ``error``). Logs go to stderr only: stdout
belongs to the protocol.

Recording: ``startRecording`` calls ``POST {apiUrl}/capture/session/start`` with the client
token, opens one source per channel (``capture/sources.py``), offers one sendonly track per
channel to ``POST {apiUrl}/capture/session/{id}/offer`` with the mid → channel mapping, and
applies the answer. ``stopRecording`` closes the connection and calls ``…/stop``.
``pauseTracks``/``resumeTracks`` drop frames at the source and tell the server
(``…/pause`` / ``…/resume``, best effort: the server records the pause in the manifest).

Sources come from ``REELDB_CAPTURE_SOURCES``, read once in :func:`main` (``sources.plan_sources``):
unset, this machine's devices (X11 screens, PulseAudio/PipeWire sources: ``devices.py``) when it
has any, else test patterns; or ``patterns``, ``devices``, or a JSON object channel id → file,
pattern or device spec.

While recording, a ``recording-progress`` event goes out every ``REELDB_RECORDER_PROGRESS``
seconds (2; 0: none): elapsed seconds, bytes sent and bitrate per channel and in all, and the
CPU budget: this process's CPU use (percent of one core) since the last event and since the
start, the share of the screens' capture threads (x11grab, swscale and x264's calling thread;
x264's own worker threads count in the process figure only), and ``REELDB_RECORDER_CPU_BUDGET`` (percent
of one core, 100) with ``over_budget``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any, Callable, Optional

import httpx
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from .ice import from_env_value, restrict_host_addresses
from .keyframes import forward_keyframe_requests
from .device_tracks import EncoderSettings
from .sources import (
    DeclaredChannel, PausableTrack, SourceError, declared_channels, kind_of, open_source, plan_sources,
)

PREFIX = "videodb_recorder|"
LOG_LEVELS = {"silent": logging.CRITICAL + 10, "error": logging.ERROR, "warn": logging.WARNING,
              "info": logging.INFO, "debug": logging.DEBUG, "trace": logging.DEBUG}
PERMISSIONS = {"microphone", "screen-capture", "screen_capture", "system_audio", "system-audio",
               "accessibility"}
TRACK_PREFIXES = {"mic": ("mic",), "system_audio": ("system_audio",), "screen": ("display", "screen")}
HTTP_TIMEOUT = 15.0

logger = logging.getLogger("reeldb.recorder")


class CommandError(Exception):
    """A command failed; ``code`` is one of the binary's error codes (api notes §9.4)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def result(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class _Recording:
    def __init__(self, session_id: str, token: str) -> None:
        self.session_id = session_id
        self.token = token
        self.pc: Optional[RTCPeerConnection] = None
        self.tracks: dict[str, PausableTrack] = {}
        self.players: list[Any] = []
        self.senders: dict[str, Any] = {}
        self.started_event_sent = False
        self.started_at = time.monotonic()
        self.progress_task: Optional[asyncio.Task] = None


class Recorder:
    """The protocol state machine; ``emit`` writes one message (dict) to the client."""

    def __init__(self, sources: dict[str, str], emit: Callable[[dict], None],
                 http: Optional[httpx.AsyncClient] = None, names: Optional[dict[str, str]] = None,
                 notes: Optional[list[str]] = None, encoder: Optional[EncoderSettings] = None,
                 progress_interval: float = 2.0, cpu_budget: float = 100.0) -> None:
        self.sources = sources
        self.channels: list[DeclaredChannel] = declared_channels(sources, names)
        self.notes = list(notes or [])
        self.encoder = encoder or EncoderSettings()
        self.progress_interval = progress_interval
        self.cpu_budget = cpu_budget
        self.api_url: Optional[str] = None
        self.recording: Optional[_Recording] = None
        self.shutdown_requested = asyncio.Event()
        self._emit = emit
        self._http = http or httpx.AsyncClient(timeout=HTTP_TIMEOUT)
        self._busy = asyncio.Lock()

    # -- framing --------------------------------------------------------------------------------
    def respond(self, command_id: Any, ok: bool, result: Any) -> None:
        self._emit({"type": "response", "commandId": command_id,
                    "status": "success" if ok else "error", "result": result})

    def event(self, name: str, payload: dict) -> None:
        self._emit({"type": "event", "event": name, "payload": payload})

    async def handle_line(self, line: str) -> None:
        """Parse one input line and answer it (lines without the prefix are ignored)."""
        line = line.strip()
        if not line.startswith(PREFIX):
            if line:
                logger.debug("Ignoring line without protocol prefix")
            return
        try:
            message = json.loads(line[len(PREFIX):])
        except json.JSONDecodeError as exc:
            logger.warning("Failed to parse StdioCommand: %s", exc)
            return
        if not isinstance(message, dict):
            logger.warning("Failed to parse StdioCommand: not an object")
            return
        command_id = message.get("commandId")
        command = message.get("command")
        params = message.get("params") or {}
        if not isinstance(command, str) or not isinstance(params, dict):
            self.respond(command_id, False, CommandError("INVALID_REQUEST", "command must be a string and params an object").result())
            return
        handler = getattr(self, "cmd_" + command, None)
        if handler is None:
            self.respond(command_id, False, CommandError("UNKNOWN_COMMAND", f"Unknown command: {command}").result())
            return
        try:
            result = await handler(params)
        except CommandError as exc:
            logger.warning("%s failed: %s %s", command, exc.code, exc.message)
            self.respond(command_id, False, exc.result())
        except Exception as exc:  # noqa: BLE001 - answer, never hang the client
            logger.exception("%s failed", command)
            self.respond(command_id, False, {"code": "INTERNAL_ERROR", "message": str(exc)})
        else:
            self.respond(command_id, True, result)

    # -- commands -------------------------------------------------------------------------------
    async def cmd_init(self, params: dict) -> dict:
        api_url = params.get("apiUrl")
        if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
            raise CommandError("INIT_FAILED", "Missing or invalid 'apiUrl' parameter")
        self.api_url = api_url.rstrip("/")
        logger.info("Initializing with API URL %s", self.api_url)
        return {"initialized": True}

    async def cmd_ping(self, params: dict) -> dict:
        return {"pong": True}

    async def cmd_getChannels(self, params: dict) -> dict:
        result: dict[str, Any] = {"channels": [c.to_dict() for c in self.channels]}
        if self.notes:
            result["notes"] = self.notes
        return result

    async def cmd_requestPermission(self, params: dict) -> dict:
        permission = params.get("permission")
        if not permission:
            raise CommandError("INVALID_REQUEST", "Missing 'permission' parameter")
        if permission not in PERMISSIONS:
            raise CommandError("INVALID_PERMISSION", f"Unknown permission: {permission}")
        if permission in ("screen-capture", "screen_capture") and not any(c.type == "video" for c in self.channels):
            return {"status": "denied", "message": "; ".join(self.notes) or "no screen to capture"}
        return {"status": "granted"}  # X11 and PulseAudio ask no permission

    async def cmd_setLogLevel(self, params: dict) -> dict:
        level = params.get("level")
        if level not in LOG_LEVELS:
            raise CommandError("INVALID_LOG_LEVEL", f"Invalid log level {level!r}: one of {', '.join(LOG_LEVELS)}")
        logging.getLogger().setLevel(LOG_LEVELS[level])
        self._log_level = level
        return {"level": level}

    async def cmd_getLogLevel(self, params: dict) -> dict:
        return {"level": getattr(self, "_log_level", "info")}

    async def cmd_startRecording(self, params: dict) -> dict:
        session_id = params.get("sessionId")
        token = params.get("uploadToken")
        channels = params.get("channels")
        if not session_id or not isinstance(session_id, str):
            raise CommandError("INVALID_REQUEST", "Missing required 'sessionId' parameter")
        if not token or not isinstance(token, str):
            raise CommandError("INVALID_TOKEN", "Missing required 'uploadToken' parameter")
        if not channels or not isinstance(channels, list):
            raise CommandError("MISSING_CHANNELS", "Missing required 'channels' parameter")
        if self.api_url is None:
            raise CommandError("INVALID_STATE", "Recorder not initialized: send init{apiUrl} first")
        wanted = self._validate_channels(channels)
        if self._busy.locked() or self.recording is not None:
            raise CommandError("OPERATION_IN_PROGRESS", "A recording is already running; stop it first")
        async with self._busy:
            rec = _Recording(session_id, token)
            await self._post(rec, "/capture/session/start", {"session_id": session_id, "channels": wanted})
            try:
                await self._connect(rec, wanted)
            except BaseException:
                await self._teardown(rec)
                try:  # the server opened the session: let it stop instead of waiting forever
                    await self._post(rec, f"/capture/session/{session_id}/stop", {"session_id": session_id})
                except CommandError:
                    pass
                raise
            self.recording = rec
        return {"sessionId": session_id, "status": "starting"}

    async def cmd_stopRecording(self, params: dict) -> dict:
        rec = self.recording
        if rec is None:
            raise CommandError("NO_ACTIVE_SESSION", "No active recording to stop")
        session_id = params.get("sessionId")
        if session_id not in (None, "current", rec.session_id):
            raise CommandError("SESSION_NOT_FOUND", f"Not recording session {session_id}")
        await self._stop(rec)
        return {"sessionId": rec.session_id, "status": "stopped"}

    async def cmd_pauseTracks(self, params: dict) -> dict:
        return await self._set_paused(params, True)

    async def cmd_resumeTracks(self, params: dict) -> dict:
        return await self._set_paused(params, False)

    async def cmd_shutdown(self, params: dict) -> dict:
        logger.info("Received shutdown command")
        self.shutdown_requested.set()
        return {"shutdown": True}

    # -- recording ------------------------------------------------------------------------------
    def _validate_channels(self, channels: list) -> list[dict]:
        known = {c.channel_id: c for c in self.channels}
        out, seen = [], set()
        for raw in channels:
            if not isinstance(raw, dict) or not raw.get("channel_id"):
                raise CommandError("INVALID_CHANNELS", "Each channel needs a channel_id")
            cid = raw["channel_id"]
            if cid not in known:
                raise CommandError("INVALID_CHANNELS", f"Unknown channel {cid!r}; use getChannels (known: {', '.join(known)})")
            if cid in seen:
                raise CommandError("INVALID_CHANNELS", f"Channel {cid!r} listed twice")
            seen.add(cid)
            ctype = raw.get("type") or raw.get("channel_type") or known[cid].type
            if ctype not in ("audio", "video"):
                raise CommandError("INVALID_CHANNELS", f"Invalid channel type {ctype!r} for {cid}. Must be 'audio' or 'video'")
            if ctype != kind_of(cid):
                raise CommandError("INVALID_CHANNELS", f"Channel {cid} is {kind_of(cid)}, not {ctype}")
            out.append({"channel_id": cid, "type": ctype,
                        "name": raw.get("name") or raw.get("channel_name") or known[cid].name,
                        "store": bool(raw.get("store", False)), "is_primary": bool(raw.get("is_primary", False))})
        return out

    async def _connect(self, rec: _Recording, channels: list[dict]) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        rec.pc = pc
        transceivers = {}
        for ch in channels:
            cid = ch["channel_id"]
            try:
                track, player = open_source(cid, self.sources[cid], self.encoder)
            except SourceError as exc:
                raise CommandError("CAPTURE_INIT_FAILED", str(exc)) from exc
            if player is not None:
                rec.players.append(player)
            wrapped = PausableTrack(track)
            rec.tracks[cid] = wrapped
            transceivers[cid] = pc.addTransceiver(wrapped, direction="sendonly")
            rec.senders[cid] = transceivers[cid].sender
            if hasattr(track, "request_keyframe"):  # encodes its own video: hear the server's PLIs
                forward_keyframe_requests(transceivers[cid].sender, track)
        for t in pc.getTransceivers():
            _prefer_h264(t)

        @pc.on("connectionstatechange")
        def _state() -> None:
            state = pc.connectionState
            logger.info("connection %s", state)
            if state == "connected" and not rec.started_event_sent:
                rec.started_event_sent = True
                rec.started_at = time.monotonic()
                self.event("recording-started", {"sessionId": rec.session_id, "channels": list(rec.tracks)})
                if self.progress_interval > 0:
                    rec.progress_task = asyncio.ensure_future(self._progress(rec))
            elif state in ("failed", "closed") and self.recording is rec:  # not our own stop (it clears .recording)
                asyncio.ensure_future(self._connection_ended(rec, state))

        await pc.setLocalDescription(await pc.createOffer())
        mapping = {t.mid: cid for cid, t in transceivers.items()}
        data = await self._post(rec, f"/capture/session/{rec.session_id}/offer",
                                {"sdp": pc.localDescription.sdp, "type": "offer", "tracks": mapping})
        if not isinstance(data, dict) or not data.get("sdp"):
            raise CommandError("SERVER_ERROR", "Offer response has no answer SDP")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type=data.get("type", "answer")))

    async def _stop(self, rec: _Recording) -> None:
        self.recording = None
        await self._teardown(rec)
        try:
            await self._post(rec, f"/capture/session/{rec.session_id}/stop", {"session_id": rec.session_id})
        except CommandError as exc:
            self.event("error", {"sessionId": rec.session_id, "code": exc.code, "message": exc.message})
        self.event("recording-complete", {"sessionId": rec.session_id})

    async def _progress(self, rec: _Recording) -> None:
        """``recording-progress`` every interval until the recording ends (module doc)."""
        cpu_start = last_cpu = time.process_time()
        last_t = rec.started_at
        last_bytes: dict[str, int] = {}
        while True:
            await asyncio.sleep(self.progress_interval)
            if rec.pc is None or rec.pc.connectionState in ("closed", "failed"):
                return
            now, cpu = time.monotonic(), time.process_time()
            span = max(1e-6, now - last_t)
            channels, total, rate = {}, 0, 0.0
            for cid, sender in rec.senders.items():
                sent = 0
                try:
                    for stat in (await sender.getStats()).values():
                        if getattr(stat, "type", "") == "outbound-rtp":
                            sent = stat.bytesSent
                except Exception:  # noqa: BLE001 - stats are best effort
                    pass
                bitrate = (sent - last_bytes.get(cid, 0)) * 8 / span
                last_bytes[cid] = sent
                inner = rec.tracks[cid].inner
                channels[cid] = {"bytes_sent": sent, "bitrate": round(bitrate)}
                if hasattr(inner, "keyframes"):
                    channels[cid].update(frames=inner.frames, keyframes=inner.keyframes,
                                         encoder_cpu_seconds=round(inner.cpu_seconds, 3))
                total += sent
                rate += bitrate
            elapsed = now - rec.started_at
            percent = 100 * (cpu - last_cpu) / span
            encode = sum(getattr(t.inner, "cpu_seconds", 0.0) for cid, t in rec.tracks.items() if kind_of(cid) == "video"
                         and hasattr(t.inner, "keyframes"))
            self.event("recording-progress", {
                "sessionId": rec.session_id, "elapsed": round(elapsed, 2), "bytes_sent": total, "bitrate": round(rate),
                "channels": channels,
                "cpu": {"percent": round(percent, 1), "average_percent": round(100 * (cpu - cpu_start) / max(elapsed, 1e-6), 1),
                        "screen_thread_percent": round(100 * encode / max(elapsed, 1e-6), 1),
                        "budget_percent": self.cpu_budget, "over_budget": percent > self.cpu_budget,
                        "encoder": f"libx264 {self.encoder.preset} {self.encoder.fps} fps"}})
            if percent > self.cpu_budget:
                logger.warning("recorder CPU %.0f%% of a core is over its budget of %.0f%%", percent, self.cpu_budget)
            last_t, last_cpu = now, cpu

    async def _teardown(self, rec: _Recording) -> None:
        if rec.progress_task is not None:
            rec.progress_task.cancel()
        for track in rec.tracks.values():
            track.stop()
        if rec.pc is not None:
            await rec.pc.close()

    async def _set_paused(self, params: dict, paused: bool) -> dict:
        tracks = params.get("tracks")
        if not isinstance(tracks, list) or not tracks:
            raise CommandError("INVALID_REQUEST", "Missing 'tracks' parameter (list of mic, system_audio, screen)")
        bad = [t for t in tracks if t not in TRACK_PREFIXES]
        if bad:
            raise CommandError("INVALID_REQUEST", f"Unknown track(s) {bad}: use mic, system_audio, screen")
        rec = self.recording
        if rec is None:
            verb = "pause" if paused else "resume"
            raise CommandError("NO_ACTIVE_SESSION", f"Cannot {verb} tracks: recording not running")
        prefixes = tuple(p for t in tracks for p in TRACK_PREFIXES[t])
        affected = [cid for cid in rec.tracks if cid.split(":", 1)[0] in prefixes]
        # The server drops what reaches it while it holds a channel paused. So a pause stops the
        # source before the server hears of it, and a resume tells the server before the source
        # sends again: no frame of the recording falls between the two (the first one after a
        # resume is the keyframe asked for here).
        if paused:
            self._pause_sources(rec, affected, True)
        if affected:
            path = f"/capture/session/{rec.session_id}/{'pause' if paused else 'resume'}"
            try:
                await self._post(rec, path, {"channels": affected})
            except CommandError as exc:  # the media is paused anyway; the server may not know
                logger.warning("server not told about %s: %s", path, exc.message)
        if not paused:
            self._pause_sources(rec, affected, False)
        return {"tracks": tracks, "channels": affected, "paused": paused}

    @staticmethod
    def _pause_sources(rec: _Recording, channel_ids: list[str], paused: bool) -> None:
        for cid in channel_ids:
            rec.tracks[cid].paused = paused
            if not paused and hasattr(rec.tracks[cid].inner, "request_keyframe"):
                rec.tracks[cid].inner.request_keyframe()  # decodable from the first frame after the hole

    async def _connection_ended(self, rec: _Recording, state: str) -> None:
        """The server's side went away: say why if the server stopped the session itself (its disk
        fell below its floor), else that the connection failed."""
        reason = None
        try:
            r = await self._http.get(f"{self.api_url}/capture/session/{rec.session_id}",
                                     headers={"x-access-token": rec.token})
            reason = (r.json().get("data") or {}).get("stop_reason")
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
        if reason:
            self.event("error", {"sessionId": rec.session_id, "code": "SESSION_STOPPED_BY_SERVER", "message": reason})
        elif state == "failed":
            self.event("error", {"sessionId": rec.session_id, "code": "RTC_CONNECTION_FAILED",
                                 "message": "WebRTC connection to the server failed"})

    async def _post(self, rec: _Recording, path: str, body: dict) -> Any:
        """POST to the server with the client token; return ``data`` or raise CommandError."""
        url = f"{self.api_url}{path}"
        try:
            r = await self._http.post(url, json=body, headers={"x-access-token": rec.token})
        except httpx.HTTPError as exc:
            raise CommandError("SERVER_ERROR", f"POST {url} failed: {exc}") from exc
        try:
            payload = r.json()
        except ValueError:
            payload = {}
        if r.status_code in (401, 403):
            raise CommandError("AUTHENTICATION_FAILED", payload.get("message") or f"POST {path}: HTTP {r.status_code}")
        if r.status_code == 404:
            raise CommandError("SESSION_NOT_FOUND", payload.get("message") or f"POST {path}: HTTP 404")
        if r.status_code >= 400 or not payload.get("success", False):
            raise CommandError("SERVER_ERROR", payload.get("message") or f"POST {path}: HTTP {r.status_code}")
        return payload.get("data")

    async def close(self) -> None:
        """Stop a running recording (as stopRecording would) and release HTTP resources."""
        if self.recording is not None:
            await self._stop(self.recording)
        await self._http.aclose()


def _prefer_h264(transceiver: Any) -> None:
    """Offer H.264 first for video: the server stores it as is and players take it everywhere."""
    if transceiver.kind != "video":
        return
    from aiortc import RTCRtpSender

    caps = RTCRtpSender.getCapabilities("video").codecs
    order = [c for c in caps if c.mimeType.lower() == "video/h264"]
    order += [c for c in caps if c.mimeType.lower() == "video/vp8"]
    order += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    transceiver.setCodecPreferences(order)


async def serve(sources: dict[str, str], reader: asyncio.StreamReader, write: Callable[[bytes], None],
                **options: Any) -> None:
    """Run the protocol until ``shutdown`` or end of input (``options`` go to :class:`Recorder`)."""

    def emit(message: dict) -> None:
        write((PREFIX + json.dumps(message, separators=(",", ":")) + "\n").encode())

    recorder = Recorder(sources, emit, **options)
    tasks: set[asyncio.Task] = set()
    shutdown = asyncio.ensure_future(recorder.shutdown_requested.wait())
    try:
        while not recorder.shutdown_requested.is_set():
            read = asyncio.ensure_future(reader.readline())
            done, _ = await asyncio.wait({read, shutdown}, return_when=asyncio.FIRST_COMPLETED)
            if read not in done:
                read.cancel()
                break
            line = read.result()
            if not line:
                logger.info("stdin closed - parent process disconnected")
                break
            task = asyncio.ensure_future(recorder.handle_line(line.decode("utf-8", errors="replace")))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=10)
    finally:
        shutdown.cancel()
        await recorder.close()


def recorder_options(env: Any) -> dict[str, Any]:
    """``REELDB_RECORDER_*`` → Recorder keyword arguments (raises ValueError on a bad value)."""
    def num(name: str, default: float) -> float:
        raw = env.get(name)
        try:
            return float(raw) if raw not in (None, "") else default
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number") from None

    encoder = EncoderSettings(fps=int(num("REELDB_RECORDER_FPS", 30)), preset=env.get("REELDB_RECORDER_PRESET") or "ultrafast",
                              keyint=num("REELDB_RECORDER_KEYINT", 2.0), crf=int(num("REELDB_RECORDER_CRF", 26)),
                              max_bitrate=int(num("REELDB_RECORDER_MAX_BITRATE", 0)),
                              draw_mouse=env.get("REELDB_RECORDER_DRAW_MOUSE", "1") not in ("0", "false", "no"))
    return {"encoder": encoder, "progress_interval": num("REELDB_RECORDER_PROGRESS", 2.0),
            "cpu_budget": num("REELDB_RECORDER_CPU_BUDGET", 100.0)}


def main() -> None:
    """Console script ``reeldb-recorder``."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    restrict_host_addresses(from_env_value(os.environ.get("REELDB_ICE_ADDRESSES")))
    try:
        plan = plan_sources(os.environ)
        options = recorder_options(os.environ)
    except (SourceError, ValueError) as exc:
        print(f"reeldb-recorder: {exc}", file=sys.stderr)
        sys.exit(2)
    for note in plan.notes:
        logger.warning("%s", note)
    logger.info("sources (%s): %s", plan.origin, ", ".join(f"{c}={s}" for c, s in plan.sources.items()))
    sources = plan.sources
    options.update(names=plan.names, notes=plan.notes)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        out = sys.stdout.buffer

        def write(data: bytes) -> None:
            out.write(data)
            out.flush()

        await serve(sources, reader, write, **options)

    asyncio.run(run())


if __name__ == "__main__":
    main()
