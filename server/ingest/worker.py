"""``reeldb worker ingest``: a process that hosts capture sessions for a control node.

Why processes: one asyncio loop receives every in-process session, and that loop is the ceiling
at about one core of ingest (issue 13). Each worker is its own process with its own loop, like
mediasoup's workers; ``reeldb serve`` starts one per core with ``REELDB_INGEST_WORKERS=auto`` or
they run on other machines sharing the media root.

What a worker does, and nothing else:
- answers offers with an :class:`~reeldb.capture.ingest.IngestSession` per session, writing stored
  channels into ``<media root>/sessions/<cap-id>/`` exactly as the control node would (ephemeral
  channels never touch disk, here either);
- pause/resume, stop (answers once every file is finalized), and live transcripts and screen
  readers of a channel (they run here, next to the decoded media; only their results travel);
- reports to the control node: a heartbeat every second (its sessions, CPU, bitrate written, and
  per session how long ago media was fresh and the channel counters) and events as they happen
  (a channel's first frame, connection state, transcript results, screen-text records), in order, retried until the
  control node takes them.

It is stateless beyond the sessions it is receiving: no database, no metadata. Its internal API
(:func:`create_worker_app`) refuses any request without the worker secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx
from litestar import Litestar, Request, get, post

from reeldb.capture.ingest import IngestSession, UnknownChannelError
from reeldb.index import ocr
from reeldb.index.live import LiveTranscriber
from reeldb.index.live_screen import LiveScreenReader

from ..error_responses import handle_exception
from ..errors import BadRequest, Conflict, NotFound, Unauthorized
from ..ids import is_id
from .backend import (WORKER_TOKEN_HEADER, CpuMeter, LocalTranscript, fresh_media_at, new_ingest,
                             session_stats, token_matches)
from .. import heap
from ..runtime import Runtime
from ..settings import Settings
from . import wire

log = logging.getLogger("reeldb.worker")

HEARTBEAT_EVERY = 1.0
#: A session the control node does not list as this worker's is closed only once it is this old
#: (seconds): the control node lists a session before it forwards its offer, so only a heartbeat
#: answer already on its way while the offer arrived can miss it (one round trip).
ORPHAN_AFTER = 3.0


@dataclass
class Hosted:
    ingest: IngestSession
    created: float = field(default_factory=time.monotonic)
    #: Live transcripts and screen readers by (``transcripts`` | ``screens``, channel id).
    live: dict[tuple[str, str], LocalTranscript] = field(default_factory=dict)


class IngestWorker:
    """The sessions this process receives and its reports to the control node."""

    def __init__(self, settings: Settings, worker_id: str, url: str, control_url: str, token: str) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.url = url
        self.control_url = control_url.rstrip("/")
        self.token = token
        self.runtime = Runtime()
        self.sessions: dict[str, Hosted] = {}
        self._decoders = self.runtime.pool("live-whisper", 2)
        self._readers = self.runtime.pool("live-ocr", 1)
        self._cpu = CpuMeter()
        self._sizes: dict[str, int] = {}
        self._outbox: list[wire.Event] = []
        self._wrong_version = False  # (said once)
        self._queued = 0  # events ever queued
        self._sent = 0  # events the control node has taken
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._client: httpx.AsyncClient | None = None
        self._stopping: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._client = httpx.AsyncClient(headers={WORKER_TOKEN_HEADER: self.token}, timeout=10.0, trust_env=False)
        self.runtime.spawn(self._heartbeats(), name="heartbeat")
        self.runtime.spawn(self._send_events(), name="events")
        if self.settings.heap_trim_every > 0:  # this process runs the live transcripts' whisper
            self.runtime.spawn(heap.keep_trimmed(self.settings.heap_trim_every, self.runtime.io), name="heap-trim")

    async def close(self) -> None:
        """Finalize every session's files (SIGTERM from the supervisor lands here)."""
        self._closing = True  # a control node that is gone must not hold the files up
        for session_id in list(self.sessions):
            await self.stop(session_id)
        await self.runtime.close()
        if self._client is not None:
            await self._client.aclose()

    # -- what the control node asks ----------------------------------------------------------------
    async def offer(self, session_id: str, channels: list[dict[str, Any]], sdp: str, tracks: dict[str, str]) -> str:
        if not is_id("capture_session", session_id):  # it names a folder under sessions/
            raise BadRequest("session_id is not a capture session id")
        if session_id in self._stopping:
            raise Conflict(f"Capture session {session_id} is stopping")
        hosted = self.sessions.get(session_id)
        if hosted is None:
            ingest = new_ingest(
                self.settings, self.settings.sessions_dir / session_id, session_id, channels,
                on_media=lambda channel_id: self._queue(wire.MediaArrived(session_id, channel_id)),
                on_state=lambda state: self._queue_now(wire.StateChanged(session_id, state)),
            )
            hosted = self.sessions[session_id] = Hosted(ingest)
            log.debug("session %s: hosting (%d sessions)", session_id, len(self.sessions))
        return await hosted.ingest.accept_offer(sdp, tracks)

    def hosted(self, session_id: str) -> Hosted:
        hosted = self.sessions.get(session_id)
        if hosted is None:
            raise NotFound(f"Capture session {session_id} is not on ingest worker {self.worker_id}")
        return hosted

    def pause(self, session_id: str, channel_ids: list[str], paused: bool) -> None:
        ingest = self.hosted(session_id).ingest
        (ingest.pause if paused else ingest.resume)(channel_ids)

    async def stop(self, session_id: str) -> None:
        """Live transcripts and screen readers flush and send their last results, then every file
        is finalized."""
        task = self._stopping.get(session_id)
        if task is None:
            if session_id not in self.sessions:
                return
            task = self._stopping[session_id] = self.runtime.spawn(self._stop(session_id), name=f"stop-{session_id}")
        await asyncio.shield(task)

    async def _stop(self, session_id: str) -> None:
        try:
            hosted = self.sessions[session_id]
            for what, channel_id in list(hosted.live):
                await self.stop_live(session_id, what, channel_id)
            await hosted.ingest.close()
            self.sessions.pop(session_id, None)
            log.debug("session %s: stopped (%d sessions)", session_id, len(self.sessions))
        finally:
            self._stopping.pop(session_id, None)

    async def start_live(self, session_id: str, what: str, channel_id: str) -> None:
        """Start a live transcript (``what``: ``transcripts``) or screen reader (``screens``) of a
        channel; its results travel to the control node as events."""
        hosted = self.hosted(session_id)
        if channel_id not in hosted.ingest.channel_ids:
            raise UnknownChannelError(f"unknown channel {channel_id!r}")
        if (what, channel_id) in hosted.live:
            return
        message = wire.LIVE_KINDS[what]

        async def emit(channel: str, item: dict[str, Any]) -> None:
            self._queue_now(message(session_id, channel, wire.to_builtins(item)))

        consumer: LiveTranscriber | LiveScreenReader
        if what == "screens":
            consumer = LiveScreenReader(emit, langs=ocr.parse_langs(self.settings.ocr_langs),
                                        data=self.settings.ocr_folders, executor=self._readers)
        else:
            consumer = LiveTranscriber(emit, model_spec=self.settings.whisper_model, executor=self._decoders)
        hosted.live[what, channel_id] = LocalTranscript(consumer, hosted.ingest.live.attach(channel_id, consumer))

    async def stop_live(self, session_id: str, what: str, channel_id: str) -> None:
        """Answers once the last results have reached the control node."""
        hosted = self.sessions.get(session_id)
        running = hosted.live.pop((what, channel_id), None) if hosted else None
        if running is not None:
            await running.stop()
        if not await self.delivered(self._queued, timeout=2.0 if self._closing else 60.0):
            log.warning("session %s: the last live %s results of %s did not reach the control node",
                        session_id, what, channel_id)

    # -- reports ---------------------------------------------------------------------------------
    async def _queue(self, event: wire.Event) -> None:
        self._queue_now(event)

    def _queue_now(self, event: wire.Event) -> None:
        self._outbox.append(event)
        self._queued += 1
        self._wake.set()

    async def delivered(self, upto: int, timeout: float = 60.0) -> bool:
        """Wait until the control node has taken the first ``upto`` events; False on timeout."""
        try:
            async with self._progress:
                await asyncio.wait_for(self._progress.wait_for(lambda: self._sent >= upto), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def _send_events(self) -> None:
        """One batch at a time, in order; a batch the control node did not take is sent again."""
        assert self._client is not None
        backoff = 0.2
        while True:
            if not self._outbox:
                self._wake.clear()
                await self._wake.wait()
            batch = self._outbox[:100]
            try:
                response = await self._client.post(
                    f"{self.control_url}/internal/ingest/events",
                    json=wire.to_builtins(wire.Events(self.worker_id, batch, wire.VERSION)))
                self._refused(response)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("events to the control node: %s; retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)
                continue
            backoff = 0.2
            del self._outbox[:len(batch)]
            async with self._progress:
                self._sent += len(batch)
                self._progress.notify_all()

    async def report(self) -> wire.Heartbeat:
        now = time.time()
        sessions: dict[str, wire.SessionReport] = {}
        sizes: dict[str, int] = {}
        for session_id, hosted in list(self.sessions.items()):
            channels = await session_stats(hosted.ingest)
            for ch in channels:
                if ch["store"] and ch["path"]:
                    with contextlib.suppress(OSError):
                        sizes[ch["path"]] = os.stat(ch["path"]).st_size
            fresh = fresh_media_at(hosted.ingest.manifest)
            sessions[session_id] = wire.SessionReport(None if fresh is None else max(0.0, now - fresh), channels)
        grown = sum(max(0, size - self._sizes.get(path, size)) for path, size in sizes.items())
        self._sizes = sizes
        return wire.Heartbeat(self.worker_id, self.url, wire.VERSION, self._cpu.read(), grown * 8 / HEARTBEAT_EVERY,
                              sessions)

    def _refused(self, response: httpx.Response) -> None:
        """A control node of another version refuses us: say so once (and keep asking: an upgrade
        of either side ends it)."""
        if response.status_code == 409 and wire.WRONG_VERSION in response.text:
            if not self._wrong_version:
                self._wrong_version = True
                try:
                    said = str(response.json()["message"])
                except (ValueError, KeyError, TypeError):
                    said = response.text[:300]
                log.error("the control node %s refused this worker (wire version %s): %s", self.control_url,
                          wire.VERSION, said)
            response.raise_for_status()

    async def _heartbeats(self) -> None:
        assert self._client is not None
        failing = False
        while True:
            started = time.monotonic()
            try:
                body = wire.to_builtins(await self.report())
                response = await self._client.post(f"{self.control_url}/internal/ingest/heartbeat", json=body)
                self._refused(response)
                response.raise_for_status()
                owned = set(response.json()["data"]["owned"])
                if failing and not self._wrong_version:
                    log.info("control node %s reachable again", self.control_url)
                failing = False
                self._close_orphans(owned)
            except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
                if not failing and not self._wrong_version:
                    log.warning("heartbeat to %s failed: %s", self.control_url, exc)
                failing = True
            await asyncio.sleep(max(0.05, HEARTBEAT_EVERY - (time.monotonic() - started)))

    def _close_orphans(self, owned: set[str]) -> None:
        now = time.monotonic()
        for session_id, hosted in list(self.sessions.items()):
            if session_id not in owned and session_id not in self._stopping and now - hosted.created > ORPHAN_AFTER:
                log.warning("session %s: the control node no longer lists it here; closing it", session_id)
                self._stopping[session_id] = self.runtime.spawn(self._stop(session_id), name=f"stop-{session_id}")


# -- the internal API -----------------------------------------------------------------------------

def create_worker_app(worker: IngestWorker) -> Litestar:
    """The worker's internal API; every route but ``/health`` needs the worker secret."""

    async def check_token(request: Request[Any, Any, Any]) -> None:
        if request.url.path != "/health" and not token_matches(worker.token, request.headers.get(WORKER_TOKEN_HEADER)):
            raise Unauthorized("this ingest worker answers its control node only (x-reeldb-worker-token)")

    @get("/health", sync_to_thread=False)
    def health() -> dict[str, Any]:
        return {"success": True, "data": {"status": "ok", "worker_id": worker.worker_id}}

    @get("/stats")
    async def stats() -> dict[str, Any]:
        return {"success": True, "data": wire.to_builtins(await worker.report())}

    @post("/sessions/{session_id:str}/offer", status_code=200)
    async def offer(session_id: str, data: wire.Offer) -> dict[str, Any]:
        answer = await worker.offer(session_id, data.channels, data.sdp, data.tracks)
        return {"success": True, "data": {"sdp": answer, "type": "answer"}}

    @post("/sessions/{session_id:str}/pause", status_code=200)
    async def pause(session_id: str, data: wire.Pause) -> dict[str, Any]:
        if not data.channels:
            raise BadRequest("channels is required")
        worker.pause(session_id, data.channels, data.paused)
        return {"success": True, "data": {}}

    @post("/sessions/{session_id:str}/stop", status_code=200)
    async def stop(session_id: str) -> dict[str, Any]:
        await worker.stop(session_id)
        return {"success": True, "data": {}}

    @post("/sessions/{session_id:str}/{what:str}/{channel_id:str}/start", status_code=200)
    async def start_live(session_id: str, what: str, channel_id: str) -> dict[str, Any]:
        if what not in wire.LIVE_KINDS:
            raise NotFound(f"no live {what} on an ingest worker")
        await worker.start_live(session_id, what, channel_id)
        return {"success": True, "data": {}}

    @post("/sessions/{session_id:str}/{what:str}/{channel_id:str}/stop", status_code=200)
    async def stop_live(session_id: str, what: str, channel_id: str) -> dict[str, Any]:
        if what not in wire.LIVE_KINDS:
            raise NotFound(f"no live {what} on an ingest worker")
        await worker.stop_live(session_id, what, channel_id)
        return {"success": True, "data": {}}

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await worker.start()
        try:
            yield
        finally:
            await worker.close()

    return Litestar(route_handlers=[health, stats, offer, pause, stop, start_live, stop_live],
                    before_request=check_token, exception_handlers={Exception: handle_exception},
                    lifespan=[lifespan], openapi_config=None, debug=False,
                    logging_config=None)  # the process's logging is server/logs.py's


def run(settings: Settings, worker_id: str | None = None) -> int:
    """Listen, register, serve until SIGTERM/SIGINT (then finalize every session's files)."""
    import uvicorn

    from .backend import worker_token

    token = worker_token(settings)
    if not token:
        raise SystemExit("reeldb worker ingest: no worker secret: set REELDB_WORKER_TOKEN, or share the control "
                         f"node's data folder (its {settings.data_dir / 'worker_token'})")
    sock = socket.socket(socket.AF_INET6 if ":" in settings.worker_host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.worker_host, settings.worker_port))
    port = sock.getsockname()[1]
    host = settings.worker_host if settings.worker_host not in ("0.0.0.0", "::", "") else socket.gethostname()
    url = settings.worker_url or f"http://{host}:{port}"
    control = settings.control_url or f"http://127.0.0.1:{settings.port}"
    worker = IngestWorker(settings, worker_id or f"{socket.gethostname()}-{os.getpid()}", url, control, token)
    app = create_worker_app(worker)
    print(f"ReelDB ingest worker {worker.worker_id} listening on {url} for {control}", flush=True)
    # log_config=None, log_level=None: uvicorn's loggers propagate to the worker's (server/logs.py)
    config = uvicorn.Config(app, log_config=None, log_level=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=60)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
    return 0
