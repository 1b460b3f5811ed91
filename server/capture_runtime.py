"""Live capture: one :class:`reeldb.capture.ingest.IngestSession` per recording session.

The capture stage knows WebRTC and files; this module ties it to the session's status machine: the
first frame makes the session ``active`` (with one rtstream per channel), a dropped recorder gets
``reconnect_grace`` seconds to come back before the session stops, and a stop finalizes every file
before the session says ``stopped``. After a crash, sessions left live are stopped on start: their
files were flushed every second, so they keep what was received.

Where the media is received is the :class:`~reeldb.server.ingest.backend.IngestBackend`'s
business (this process, or an ingest worker): this module drives a handle, and a worker that dies
makes its sessions stop at once (``on_lost``), exactly as a crashed server's are stopped on start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from . import lifecycle
from .database import Conn
from .errors import BadRequest, Conflict, InsufficientStorage
from .ingest.backend import Callbacks, IngestBackend, IngestHandle, LocalIngest, WorkerStatus
from .rows import CaptureSession
from .runtime import Runtime
from .sessions import Also, Sessions, rtstreams_stopped
from .settings import Settings
from .storage import headroom

log = logging.getLogger("reeldb.capture")

#: Called with a session id before its media stops (live consumers finish their work).
Closing = Callable[[str], Awaitable[None]]


class CaptureRuntime:
    """Owns the live ingests, their watchdogs and grace timers."""

    def __init__(self, settings: Settings, sessions: Sessions, runtime: Runtime, on_stopped: Also,
                 backend: IngestBackend | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.runtime = runtime
        self.backend: IngestBackend = backend or LocalIngest(settings)
        self._on_stopped = on_stopped
        self._closing: list[Closing] = []
        self._ingests: dict[str, IngestHandle] = {}
        self._grace: dict[str, asyncio.Task[None]] = {}
        self._connected: dict[str, bool] = {}
        self._stopping: dict[str, asyncio.Task[None]] = {}
        self._watchdogs: dict[str, asyncio.Task[None]] = {}

    def on_closing(self, listener: Closing) -> None:
        self._closing.append(listener)

    def folder(self, session_id: str) -> Path:
        return self.settings.sessions_dir / session_id

    # -- recorder requests -----------------------------------------------------------------------
    async def offer(self, row: CaptureSession, sdp: str, tracks: dict[str, str]) -> str:
        if not lifecycle.is_live(row.status):
            raise Conflict(f"Capture session {row.id} is {row.status}; start it before sending media")
        sid = row.id
        low = await self.runtime.io(self.disk_low)
        if low and any(c.get("store") for c in row.channels):
            raise InsufficientStorage(f"{low}: nothing can be stored now")
        ingest = self._ingests.get(sid)
        if ingest is not None and self._connected.get(sid):
            raise Conflict(f"Capture session {sid} already has a connected recorder")
        if ingest is None:
            channels = row.channels
            ingest = await self.backend.open(sid, self.folder(sid), channels, Callbacks(
                on_media=lambda channel_id: self._on_media(sid, channel_id),
                on_state=lambda state: self._on_state(sid, state),
                on_lost=lambda: self._on_lost(sid),
            ))
            if sid in self._ingests:  # another offer of the same session won the race
                await ingest.close()
                raise Conflict(f"Capture session {sid} already has a connected recorder")
            self._ingests[sid] = ingest
            self._watchdogs[sid] = self.runtime.spawn(self._watch(sid), name=f"watchdog-{sid}")
        candidates = sorted({line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")
                             and len(line.split()) > 4})
        log.debug("session %s: offer with ICE candidates %s (ingest: %s)", sid, ", ".join(candidates) or "none",
                 ingest.where)
        return await ingest.accept_offer(sdp, tracks)  # its IngestErrors are the API's 400s

    def ingest_for(self, session_id: str) -> IngestHandle | None:
        """The live ingest of a session, if it is streaming (for live consumers such as transcripts)."""
        return self._ingests.get(session_id)

    async def live_stats(self) -> dict[str, list[dict[str, Any]]]:
        """Every live ingest's channel counters (with RTP packets received and lost), by session id."""
        out: dict[str, list[dict[str, Any]]] = {}
        for sid, ingest in list(self._ingests.items()):
            out[sid] = await ingest.live_stats()
        return out

    def workers(self) -> list[WorkerStatus]:
        """The ingest workers the backend knows (none when ingest runs in this process)."""
        return self.backend.workers()

    async def pause(self, session_id: str, channel_ids: list[str], paused: bool) -> list[str]:
        ingest = self._ingests.get(session_id)
        if ingest is None:
            raise Conflict(f"Capture session {session_id} has no media connection")
        unknown = [c for c in channel_ids if c not in ingest.channel_ids]
        if unknown:
            raise BadRequest(f"Unknown channel(s) for this session: {', '.join(unknown)}")
        await ingest.set_paused(channel_ids, paused)
        return channel_ids

    async def stop(self, session_id: str) -> None:
        """stopping → finalize files → stopped (→ export). Safe to call twice."""
        task = self._stopping.get(session_id)
        if task is None:
            task = self._stopping[session_id] = self.runtime.spawn(self._stop(session_id), name=f"stop-{session_id}")
        await asyncio.shield(task)

    # -- ingest callbacks ------------------------------------------------------------------------
    async def _on_media(self, session_id: str, channel_id: str) -> None:
        await self.sessions.activate(session_id)

    def _on_lost(self, session_id: str) -> None:
        """The session's ingest worker died: what it flushed is kept, as after a crash."""
        if session_id not in self._ingests or session_id in self._stopping:
            return
        log.warning("session %s: its ingest worker is gone; stopping it with what was flushed", session_id)
        self._stopping[session_id] = self.runtime.spawn(self._stop(session_id), name=f"stop-{session_id}")

    def _on_state(self, session_id: str, state: str) -> None:
        if session_id not in self._ingests:
            return  # our own close() while stopping
        self._connected[session_id] = state == "connected"
        if state == "connected":
            task = self._grace.pop(session_id, None)
            if task:
                task.cancel()
                log.info("session %s: recorder reconnected", session_id)
        elif state in ("disconnected", "failed", "closed"):
            self._start_grace(session_id, state)

    def _start_grace(self, session_id: str, state: str) -> None:
        if session_id in self._grace:
            return
        # A recorder closes its connection just before it asks for the stop: "closed" is what every
        # normal stop looks like, so only a lost connection is worth a line at INFO (a closed one
        # that never stops says so when the grace ends).
        log.log(logging.DEBUG if state == "closed" else logging.INFO, "session %s: recorder %s; waiting %.0fs "
                "for it to come back", session_id, state, self.settings.reconnect_grace)
        self._grace[session_id] = self.runtime.spawn(self._expire(session_id), name=f"grace-{session_id}")

    def _media_stalled(self, session_id: str) -> bool:
        """True when stored, unpaused channels have all been silent for ``media_timeout``."""
        ingest = self._ingests.get(session_id)
        if ingest is None:
            return False
        # A resume counts as fresh media: frames stopped during the pause by request, not loss.
        latest = ingest.fresh_media_at()
        return latest is not None and time.time() - latest > self.settings.media_timeout

    def disk_low(self) -> str | None:
        """Why stored channels cannot go on being written (the media root below its free-space
        floor), or None."""
        room = headroom(self.settings.sessions_dir, self.settings.disk_floor_mb)
        if room >= 0:
            return None
        return (f"The disk that holds recordings has less than {self.settings.disk_floor_mb:g} MB free "
                "(REELDB_DISK_FLOOR_MB)")

    async def _watch(self, session_id: str) -> None:
        while session_id in self._ingests:
            await asyncio.sleep(1.0)
            low = await self.runtime.io(self.disk_low)
            if low and session_id not in self._stopping:
                why = f"{low}: the stored channels were stopped; everything recorded until then is kept"
                log.error("session %s: %s", session_id, why)
                self._stopping[session_id] = self.runtime.spawn(self._stop(session_id, why), name=f"stop-{session_id}")
                return
            if self._media_stalled(session_id):
                self._start_grace(session_id, f"no media for {self.settings.media_timeout:.0f}s")

    async def _expire(self, session_id: str) -> None:
        await asyncio.sleep(self.settings.reconnect_grace)
        self._grace.pop(session_id, None)
        if self._connected.get(session_id) and not self._media_stalled(session_id):
            return  # media came back on the same connection
        log.warning("session %s: recorder did not come back; stopping", session_id)
        try:
            await self.stop(session_id)
        except Conflict:
            pass

    async def _stop(self, session_id: str, reason: str | None = None) -> None:
        """``reason``: why the server itself stopped the session (said in its events and its row)."""
        said = {"reason": reason} if reason else None
        try:
            row = await self.sessions.load(session_id)
            if row.status in ("starting", "active"):
                await self.sessions.transition(session_id, "stopping", said,
                                               **({"stop_reason": reason} if reason else {}))
            elif row.status != "stopping":
                raise Conflict(lifecycle.refusal(row.status, "stopping"))
            for listener in self._closing:
                await listener(session_id)  # live consumers finish before the media stops
            ingest = self._ingests.pop(session_id, None)
            if ingest is not None:
                await ingest.close()
            for tasks in (self._grace, self._watchdogs):
                task = tasks.pop(session_id, None)
                if task and task is not asyncio.current_task():
                    task.cancel()
            self._connected.pop(session_id, None)

            def stopped(conn: Conn, updated: CaptureSession) -> None:
                rtstreams_stopped(conn, session_id)
                self._on_stopped(conn, updated)  # e.g. queue the export, in the same transaction

            await self.sessions.transition(session_id, "stopped", said, also=stopped, stopped_at=time.time())
        finally:
            self._stopping.pop(session_id, None)

    # -- lifecycle -------------------------------------------------------------------------------
    async def recover(self) -> None:
        """Stop sessions a previous process left live: what reached disk is kept."""
        await self.backend.start()
        for session_id in await self.sessions.live_ids():
            log.warning("session %s was live when the server stopped; stopping it", session_id)
            await self.stop(session_id)

    async def close(self) -> None:
        for task in [*self._grace.values(), *self._watchdogs.values()]:
            task.cancel()
        for ingest in list(self._ingests.values()):
            await ingest.close()
        self._ingests.clear()
        await self.backend.close()
