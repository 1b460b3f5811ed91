"""Where a capture session's media is received: in this process, or on an ingest worker.

Why a seam: one asyncio loop carries every in-process session, and near two cores' worth of
streams that loop is the ceiling whatever the machine has (issue 13). The control node
(:class:`~reeldb.server.capture_runtime.CaptureRuntime`) keeps the session's status machine, the
media watchdog and the reconnect grace; an :class:`IngestBackend` only says where the WebRTC peer
and the writers live. Two stand behind it:

- :class:`LocalIngest` (this module): today's behaviour, an
  :class:`~reeldb.capture.ingest.IngestSession` on the server's own loop (``REELDB_INGEST_WORKERS=0``).
- :class:`~reeldb.server.ingest.remote.RemoteIngest`: sessions handed to ``reeldb worker ingest``
  processes, least-loaded first.

A handle answers the same questions either way (the offer, pauses, when media was last fresh,
channel counters, a live transcript or screen reader of one channel, close), so the watchdog and the metrics
neither know nor care where the session runs.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol

from aiortc import RTCConfiguration

from reeldb.capture.ice import parse_ice_servers
from reeldb.capture.ingest import IngestSession
from reeldb.capture.manifest import SessionManifest
from reeldb.index.live import Emit, LiveTranscriber
from reeldb.index.live_screen import LiveScreenReader

from ..settings import Settings

#: Called with a channel id when that channel's first frame arrives.
OnMedia = Callable[[str], Awaitable[None]]
#: Called with ``connected`` / ``disconnected`` / ``failed`` / ``closed``.
OnState = Callable[[str], None]
#: Called when the session's ingest is gone for good (its worker died): stop the session now.
OnLost = Callable[[], None]
#: Builds a live transcriber around an emit function (the host owns the model and the threads).
MakeTranscriber = Callable[[Emit], LiveTranscriber]
#: Builds a live screen-text reader around an emit function (the host owns the OCR threads).
MakeScreenReader = Callable[[Emit], LiveScreenReader]

#: Header that carries the worker secret, both ways between the control node and ingest workers.
WORKER_TOKEN_HEADER = "x-reeldb-worker-token"


@dataclass(frozen=True)
class Callbacks:
    on_media: OnMedia
    on_state: OnState
    on_lost: OnLost


class RunningTranscript(Protocol):
    """A live transcript of one channel, wherever it runs."""

    async def stop(self) -> None:
        """Finalise the words in progress, deliver them to the emit function, then end."""
        ...


class IngestHandle(Protocol):
    """One session's ingest, as the control node drives it."""

    @property
    def channel_ids(self) -> list[str]: ...

    @property
    def where(self) -> str:
        """``local`` or the id of the ingest worker that hosts the session."""
        ...

    async def accept_offer(self, sdp: str, tracks: dict[str, str]) -> str: ...

    async def set_paused(self, channel_ids: list[str], paused: bool) -> None: ...

    def fresh_media_at(self) -> float | None:
        """When a stored, unpaused channel last had media (a resume counts as fresh); None when
        every such channel is paused or none has had a frame yet."""
        ...

    async def live_stats(self) -> list[dict[str, Any]]:
        """Each channel's counters (``IngestSession.stats`` plus RTP packets received and lost)."""
        ...

    async def transcribe(self, channel_id: str, emit: Emit, make: MakeTranscriber) -> RunningTranscript:
        """Start a live transcript of ``channel_id``; its results reach ``emit`` on this loop."""
        ...

    async def read_screen(self, channel_id: str, emit: Emit, make: MakeScreenReader) -> RunningTranscript:
        """Start reading the screen text of display ``channel_id``; its records reach ``emit``."""
        ...

    async def close(self) -> None:
        """Stop the connection and finalize every file (return once they are flushed)."""
        ...


@dataclass(frozen=True)
class WorkerStatus:
    """An ingest worker as the control node last heard of it (for /metrics and doctor)."""

    worker_id: str
    url: str
    up: bool
    sessions: int
    cpu: float  # fraction of one core, last second
    bitrate: float  # bits per second written for stored channels, last second
    last_seen: float


class IngestBackend(Protocol):
    async def start(self) -> None: ...

    async def open(self, session_id: str, folder: Path, channels: list[dict[str, Any]],
                   callbacks: Callbacks) -> IngestHandle: ...

    def workers(self) -> list[WorkerStatus]: ...

    async def close(self) -> None: ...


def fresh_media_at(manifest: SessionManifest) -> float | None:
    """See :meth:`IngestHandle.fresh_media_at`; computed where the manifest lives."""
    latest = [max(c.last_frame_at, c.pauses[-1][1] if c.pauses else 0.0) for c in manifest.channels
              if c.last_frame_at and not (c.pauses and c.pauses[-1][1] is None)]
    return max(latest) if latest else None


async def session_stats(ingest: IngestSession) -> list[dict[str, Any]]:
    channels = ingest.stats()
    rtp = await ingest.rtp_stats()
    for ch in channels:
        ch["packets_received"], ch["packets_lost"] = rtp.get(ch["channel_id"], (0, 0))
    return channels


def new_ingest(settings: Settings, folder: Path, session_id: str, channels: list[dict[str, Any]],
               on_media: OnMedia, on_state: OnState) -> IngestSession:
    """An IngestSession with the install's keyframe cadence and ICE servers (control node and
    worker build it the same way)."""
    return IngestSession(
        folder, session_id, channels, on_media=on_media, on_state=on_state,
        keyframe_interval=settings.keyframe_interval,
        rtc_configuration=RTCConfiguration(iceServers=parse_ice_servers(settings.ice_servers)),
    )


class LocalTranscript:
    """A transcriber (or screen reader) attached to an in-process ingest's decoded media."""

    def __init__(self, transcriber: LiveTranscriber | LiveScreenReader, detach: Callable[[], None]) -> None:
        self.transcriber = transcriber
        self._detach = detach

    async def stop(self) -> None:
        self._detach()
        try:
            await self.transcriber.flush()
        finally:
            await self.transcriber.aclose()


class LocalHandle:
    def __init__(self, ingest: IngestSession) -> None:
        self.ingest = ingest

    @property
    def channel_ids(self) -> list[str]:
        return self.ingest.channel_ids

    @property
    def where(self) -> str:
        return "local"

    async def accept_offer(self, sdp: str, tracks: dict[str, str]) -> str:
        return await self.ingest.accept_offer(sdp, tracks)

    async def set_paused(self, channel_ids: list[str], paused: bool) -> None:
        (self.ingest.pause if paused else self.ingest.resume)(channel_ids)

    def fresh_media_at(self) -> float | None:
        return fresh_media_at(self.ingest.manifest)

    async def live_stats(self) -> list[dict[str, Any]]:
        return await session_stats(self.ingest)

    async def transcribe(self, channel_id: str, emit: Emit, make: MakeTranscriber) -> RunningTranscript:
        transcriber = make(emit)
        return LocalTranscript(transcriber, self.ingest.live.attach(channel_id, transcriber))

    async def read_screen(self, channel_id: str, emit: Emit, make: MakeScreenReader) -> RunningTranscript:
        reader = make(emit)
        return LocalTranscript(reader, self.ingest.live.attach(channel_id, reader))

    async def close(self) -> None:
        await self.ingest.close()


class LocalIngest:
    """Sessions on the server's own loop: the embedded default."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def start(self) -> None:
        return None

    async def open(self, session_id: str, folder: Path, channels: list[dict[str, Any]],
                   callbacks: Callbacks) -> IngestHandle:
        return LocalHandle(new_ingest(self.settings, folder, session_id, channels,
                                      callbacks.on_media, callbacks.on_state))

    def workers(self) -> list[WorkerStatus]:
        return []

    async def close(self) -> None:
        return None


# -- the worker secret ----------------------------------------------------------------------------
def worker_token(settings: Settings, create: bool = False) -> str | None:
    """The secret ingest workers and the control node show each other.

    ``REELDB_WORKER_TOKEN`` when set (workers on other machines need it); else one derived from
    ``REELDB_SECRET_KEY`` (the data dir then holds no working secret, as for every other
    credential); else ``<data_dir>/worker_token``, which the control node creates (mode 0600) for
    workers started elsewhere that share the data folder. Returns None when none of these exists
    and ``create`` is false: workers that ``reeldb serve`` starts itself are handed a secret that
    lives in memory only (:func:`new_worker_token`), so the default writes none to disk."""
    if settings.worker_token:
        return settings.worker_token
    if settings.secret_key:
        return "wk-" + hmac.new(settings.secret_key.encode(), b"reeldb ingest worker token", "sha256").hexdigest()
    path = settings.data_dir / "worker_token"
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        if not create:
            return None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = "wk-" + secrets.token_urlsafe(32)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    os.replace(tmp, path)
    return token


def new_worker_token() -> str:
    return "wk-" + secrets.token_urlsafe(32)


def token_matches(expected: str | None, presented: str | None) -> bool:
    return bool(expected) and bool(presented) and hmac.compare_digest(
        expected.encode(), (presented or "").encode())


def cpu_seconds() -> float:
    """This process's CPU time (user + system), seconds."""
    t = os.times()
    return t.user + t.system


class CpuMeter:
    """Fraction of one core this process used since the previous reading."""

    def __init__(self) -> None:
        self._cpu = cpu_seconds()
        self._at = time.monotonic()

    def read(self) -> float:
        cpu, now = cpu_seconds(), time.monotonic()
        share = (cpu - self._cpu) / (now - self._at) if now > self._at else 0.0
        self._cpu, self._at = cpu, now
        return max(0.0, share)
