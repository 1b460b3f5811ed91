"""The control node's side of ingest workers: who is up, how loaded, which sessions each hosts.

Workers (``reeldb worker ingest``, :mod:`reeldb.server.ingest.worker`) register by reporting every
second (``POST /internal/ingest/heartbeat``: sessions, CPU, bitrate, and per session how long ago
media was fresh plus its channel counters) and push events as they happen (``POST
/internal/ingest/events``: a channel's first frame, connection states, live transcript results).
This module turns those into what :class:`~reeldb.server.capture_runtime.CaptureRuntime` needs
from any :class:`~reeldb.server.ingest.backend.IngestHandle`:

- **Routing.** At the first offer of a session the least-loaded live worker takes it, by (sessions
  it was handed, reported CPU, reported bitrate): sessions first because one session's CPU is
  only visible a second after it starts, so a burst of offers would otherwise all land on the
  worker that looked idle. Later offers of the session (a recorder reconnecting) and its
  pause/resume/stop go to the same worker.
- **Death.** A worker silent for ``REELDB_MEDIA_TIMEOUT`` is down: each of its sessions is
  reported lost and stops at once with what the worker flushed (files are flushed every 0.5 s
  and the manifest every second, the same promise as a crashed server's). A worker that comes
  back is a new registration; the heartbeat answer lists the sessions it owns, and it closes
  any others (sessions of a control node that restarted and stopped them).
- **Trust.** Both directions carry the worker secret (``x-reeldb-worker-token``); a worker is an
  ``http`` URL the control node calls, so only processes that know the secret can register one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from reeldb.index.live import Emit

from ..errors import ApiError
from .backend import (WORKER_TOKEN_HEADER, Callbacks, IngestHandle, MakeScreenReader, MakeTranscriber, RunningTranscript,
                             WorkerStatus)
from ..runtime import Runtime
from ..settings import Settings
from . import wire

log = logging.getLogger("reeldb.ingest")

#: How long an offer waits for a first worker to register (a control node that just started its own).
WORKER_WAIT = 20.0
#: Down workers stay listed (``up 0`` in /metrics) this long.
FORGET_AFTER = 600.0


class WorkerUnavailable(ApiError):
    status_code = 503
    error_code = "INGEST_UNAVAILABLE"


class WorkerRefused(ApiError):
    """A worker's own 4xx, passed on with its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, error_code=code)
        self.status_code = status


@dataclass
class Worker:
    worker_id: str
    url: str
    last_seen: float  # monotonic
    cpu: float = 0.0
    bitrate: float = 0.0
    reported_sessions: int = 0
    up: bool = True
    owned: dict[str, "RemoteHandle"] = field(default_factory=dict)

    def status(self) -> WorkerStatus:
        return WorkerStatus(self.worker_id, self.url, self.up, len(self.owned), self.cpu, self.bitrate,
                            time.time() - (time.monotonic() - self.last_seen))


class RemoteTranscript:
    """A live transcript (``what``: ``transcripts``) or screen reader (``screens``) on the worker."""

    def __init__(self, handle: "RemoteHandle", what: str, channel_id: str) -> None:
        self.handle = handle
        self.what = what
        self.channel_id = channel_id

    async def stop(self) -> None:
        """The worker flushes the transcriber and sends every result before it answers."""
        try:
            if not self.handle.lost:
                await self.handle.call("post", f"{self.what}/{self.channel_id}/stop", {}, timeout=120.0)
        except (WorkerUnavailable, WorkerRefused) as exc:
            log.warning("session %s: stopping the live %s of %s on %s: %s", self.handle.session_id, self.what,
                        self.channel_id, self.handle.worker.worker_id, exc)
        finally:
            self.handle.emits.pop((self.what, self.channel_id), None)


class RemoteHandle:
    """A session hosted on an ingest worker, as last reported."""

    def __init__(self, backend: "RemoteIngest", worker: Worker, session_id: str, channels: list[dict[str, Any]],
                 callbacks: Callbacks) -> None:
        self.backend = backend
        self.worker = worker
        self.session_id = session_id
        self.channels = channels
        self.callbacks = callbacks
        self.lost = False
        self.closed = False
        self.emits: dict[tuple[str, str], Emit] = {}  # (transcripts|screens, channel id) → emit
        self._fresh: float | None = None
        self._stats: list[dict[str, Any]] = []

    @property
    def channel_ids(self) -> list[str]:
        return [str(c.get("channel_id")) for c in self.channels]

    @property
    def where(self) -> str:
        return self.worker.worker_id

    async def call(self, method: str, path: str, body: dict[str, Any] | None, timeout: float = 30.0) -> dict[str, Any]:
        if self.lost:
            raise WorkerUnavailable(f"the ingest worker of session {self.session_id} is gone")
        return await self.backend.call(self.worker, method, f"/sessions/{self.session_id}/{path}", body, timeout)

    async def accept_offer(self, sdp: str, tracks: dict[str, str]) -> str:
        data = await self.call("post", "offer", wire.to_builtins(wire.Offer(self.channels, sdp, tracks)))
        return str(data["sdp"])

    async def set_paused(self, channel_ids: list[str], paused: bool) -> None:
        await self.call("post", "pause", wire.to_builtins(wire.Pause(channel_ids, paused)))

    def fresh_media_at(self) -> float | None:
        return self._fresh

    async def live_stats(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self._stats]

    async def transcribe(self, channel_id: str, emit: Emit, make: MakeTranscriber) -> RunningTranscript:
        return await self._live("transcripts", channel_id, emit)

    async def read_screen(self, channel_id: str, emit: Emit, make: MakeScreenReader) -> RunningTranscript:
        return await self._live("screens", channel_id, emit)

    async def _live(self, what: str, channel_id: str, emit: Emit) -> RunningTranscript:
        self.emits[what, channel_id] = emit  # before the call: the first results may come before its answer
        try:
            await self.call("post", f"{what}/{channel_id}/start", {})
        except BaseException:
            self.emits.pop((what, channel_id), None)
            raise
        return RemoteTranscript(self, what, channel_id)

    async def close(self) -> None:
        """The worker finalizes every file before it answers; a dead worker flushed what it could."""
        if self.closed:
            return
        self.closed = True
        try:
            if not self.lost and self.worker.up:
                await self.call("post", "stop", {}, timeout=120.0)
        except (WorkerUnavailable, WorkerRefused) as exc:
            log.warning("session %s: stop on ingest worker %s: %s", self.session_id, self.worker.worker_id, exc)
        finally:
            self.worker.owned.pop(self.session_id, None)

    def report(self, received_at: float, info: wire.SessionReport) -> None:
        self._fresh = received_at - info.media_age if info.media_age is not None else None
        self._stats = info.channels


class RemoteIngest:
    """Sessions on ``reeldb worker ingest`` processes (REELDB_INGEST_WORKERS ≠ 0)."""

    def __init__(self, settings: Settings, runtime: Runtime, token: str) -> None:
        self.settings = settings
        self.runtime = runtime
        self.token = token
        self._workers: dict[str, Worker] = {}
        self._client: httpx.AsyncClient | None = None
        self._changed = asyncio.Event()
        #: Workers already told (and logged) that they speak another wire version: one line each.
        self._refused: set[tuple[str, int]] = set()

    async def start(self) -> None:
        # httpx logs every request at INFO: workers report every second, which would bury the log.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._client = httpx.AsyncClient(headers={WORKER_TOKEN_HEADER: self.token}, trust_env=False)
        self.runtime.spawn(self._monitor(), name="ingest-workers")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def workers(self) -> list[WorkerStatus]:
        return [w.status() for w in sorted(self._workers.values(), key=lambda w: w.worker_id)]

    def describe(self) -> list[dict[str, Any]]:
        """Workers with the sessions each hosts (``GET /internal/ingest/workers``)."""
        return [{**vars(w.status()), "session_ids": sorted(w.owned)}
                for w in sorted(self._workers.values(), key=lambda w: w.worker_id)]

    # -- routing ---------------------------------------------------------------------------------
    async def open(self, session_id: str, folder: Path, channels: list[dict[str, Any]],
                   callbacks: Callbacks) -> IngestHandle:
        worker = await self._pick()
        handle = RemoteHandle(self, worker, session_id, channels, callbacks)
        worker.owned[session_id] = handle  # before the offer: the worker's next heartbeat must see it owned
        log.debug("session %s: on ingest worker %s (%d sessions, cpu %.2f, %.1f Mbit/s)", session_id,
                 worker.worker_id, len(worker.owned), worker.cpu, worker.bitrate / 1e6)
        return handle

    async def _pick(self) -> Worker:
        deadline = time.monotonic() + WORKER_WAIT
        while True:
            live = [w for w in self._workers.values() if w.up]
            if live:
                return min(live, key=lambda w: (len(w.owned), w.cpu, w.bitrate, w.worker_id))
            if time.monotonic() >= deadline:
                raise WorkerUnavailable("No ingest worker is up to receive this session; "
                                        "start `reeldb worker ingest` or set REELDB_INGEST_WORKERS")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.05, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass

    async def call(self, worker: Worker, method: str, path: str, body: dict[str, Any] | None,
                   timeout: float) -> dict[str, Any]:
        if self._client is None:
            raise WorkerUnavailable("the ingest backend is closed")
        try:
            response = await self._client.request(method, worker.url + path, json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise WorkerUnavailable(f"ingest worker {worker.worker_id} did not answer: {type(exc).__name__}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code >= 400:
            message = payload.get("message") if isinstance(payload, dict) else None
            code = payload.get("error_code") if isinstance(payload, dict) else None
            if response.status_code >= 500:
                raise WorkerUnavailable(f"ingest worker {worker.worker_id} failed ({response.status_code})")
            raise WorkerRefused(response.status_code, str(code or "INVALID_REQUEST"),
                                str(message or f"ingest worker answered {response.status_code}"))
        data = payload.get("data") if isinstance(payload, dict) else None
        return data if isinstance(data, dict) else {}

    # -- what workers report -----------------------------------------------------------------------
    def same_version(self, worker_id: str, version: int) -> str | None:
        """None for a worker of this version; else the refusal to answer it (logged once per
        worker and version, not at each of its heartbeats)."""
        if version == wire.VERSION:
            return None
        if (worker_id, version) not in self._refused:
            self._refused.add((worker_id, version))
            log.error("ingest worker %s refused: %s", worker_id, wire.version_refusal(version))
        return wire.version_refusal(version)

    def heartbeat(self, beat: wire.Heartbeat) -> list[str]:
        """Record a worker's report; return the sessions it owns (it closes any others)."""
        worker_id, url, cpu, bitrate, sessions = beat.worker_id, beat.url, beat.cpu, beat.bitrate, beat.sessions
        now_mono, now = time.monotonic(), time.time()
        worker = self._workers.get(worker_id)
        if worker is None or not worker.up:
            if worker is not None and not worker.up:
                log.warning("ingest worker %s reported again after it was declared down; its old sessions "
                            "stay stopped", worker_id)
            worker = self._workers[worker_id] = Worker(worker_id, url, now_mono)
            log.info("ingest worker %s registered at %s", worker_id, url)
            self._changed.set()
        worker.url, worker.last_seen = url, now_mono
        worker.cpu, worker.bitrate, worker.reported_sessions = max(0.0, cpu), max(0.0, bitrate), len(sessions)
        for session_id, info in sessions.items():
            handle = worker.owned.get(session_id)
            if handle is not None:
                handle.report(now, info)
        return sorted(worker.owned)

    async def deliver(self, worker_id: str, events: list[wire.Event]) -> None:
        """A worker's events, in the order it sent them."""
        worker = self._workers.get(worker_id)
        if worker is None or not worker.up:
            return
        for event in events:
            handle = worker.owned.get(event.session_id)
            if handle is None or handle.lost:
                continue
            try:
                await self._apply(handle, event)
            except Exception:  # noqa: BLE001 - one event's failure (a session that stopped meanwhile)
                # must not fail the batch: the worker would send it again, forever
                log.exception("session %s: event %s from ingest worker %s failed", handle.session_id,
                              type(event).__name__, worker_id)

    async def _apply(self, handle: RemoteHandle, event: wire.Event) -> None:
        if isinstance(event, wire.MediaArrived):
            await handle.callbacks.on_media(event.channel_id)
        elif isinstance(event, wire.StateChanged):
            handle.callbacks.on_state(event.state)
        else:
            emit = handle.emits.get(("screens" if isinstance(event, wire.ScreenItem) else "transcripts",
                                     event.channel_id))
            if emit is not None:
                result = emit(event.channel_id, event.item)
                if result is not None:
                    await result

    async def _monitor(self) -> None:
        """Declare silent workers down and stop their sessions."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for worker in list(self._workers.values()):
                if worker.up and now - worker.last_seen > self.settings.media_timeout:
                    worker.up = False
                    log.warning("ingest worker %s sent nothing for %.1f s: down; stopping its %d sessions",
                                worker.worker_id, now - worker.last_seen, len(worker.owned))
                    for handle in list(worker.owned.values()):
                        handle.lost = True
                        handle.callbacks.on_lost()
                elif not worker.up and not worker.owned and now - worker.last_seen > FORGET_AFTER:
                    self._workers.pop(worker.worker_id, None)
