"""Live transcripts of capture rtstreams: ``rts.start_transcript()`` while the session streams.

The index stage's :class:`~reeldb.index.live.LiveTranscriber` is attached to the channel's decoded
audio through the capture stage's live seam; its results go to the caller's websocket (VideoDB's
``transcript`` messages) and into memory for ``get_transcript`` and ``search``. Nothing of it is
written to disk: ephemeral channels must leave no trace there, and a stored channel's words are
indexed durably from its export instead.

Sessions hosted on an ingest worker (``reeldb worker ingest``): the transcriber runs in the
worker, next to the decoded audio, and only its results (a few small JSON items a second) travel
to this process, which records and forwards them exactly as for a local session. Why there and not
here: shipping the audio would put 48 kHz PCM (or re-encoded Opus) of every transcribed channel
on the network and decode it twice; the worker already receives and decodes it, and a transcriber
is where decoding is cheapest. The worker loads its own whisper model for that.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import numpy as np

from reeldb.index import embed
from reeldb.index.live import Emit, LiveTranscriber

from .capture_runtime import CaptureRuntime
from .ingest.backend import RunningTranscript
from .errors import BadRequest, Conflict
from .events import WebSocketHub
from .rows import RTStream
from .runtime import Runtime
from .text import strip
from .settings import Settings

log = logging.getLogger("reeldb.live")

MAX_RECORDS = 20_000  # per rtstream: ~ a day of speech; older records fall off

#: Told each final (``{start, end, text}``, unix seconds) of a running transcript, then ``None``
#: once when the transcript stops (its last words included): a live index (server/live_indexes.py).
Listener = Callable[[dict[str, Any] | None], Awaitable[None]]


@dataclass
class Transcription:
    """A live reader of one rtstream running: its transcript (here) or its display's screen reader
    (server/live_screens.py), and who is told its results."""

    rtstream: RTStream
    running: RunningTranscript
    started_at: float
    stopped_at: float | None = None
    #: Whether the caller asked for it (``start_transcript``); a transcript started only for
    #: live indexes stops when the last of them detaches.
    explicit: bool = True
    listeners: dict[str, Listener] = field(default_factory=dict)


@dataclass
class Records:
    """What a live reader of one rtstream took in: a transcript's finals, or a display's screen
    records (server/live_screens.py)."""

    finals: deque = field(default_factory=lambda: deque(maxlen=MAX_RECORDS))
    session_id: str = ""
    #: When its session ended (wall clock); records go ``live_retention`` seconds later.
    ended_at: float | None = None
    #: Where its transcript's messages went last (finals flushed after a stop still go there).
    ws_connection_id: str | None = None
    #: When a reader first ran on it, and whether one stopped before its session ended: what
    #: :func:`whole` needs to say the finals cover the whole channel.
    started_at: float | None = None
    interrupted: bool = False


@dataclass(frozen=True)
class Heard:
    """All a stored channel's live transcript heard, from ``started_at`` (unix seconds) to its
    session's end: its finals (``{start, end, text}``, unix seconds)."""

    started_at: float
    finals: list[dict[str, Any]]


async def stop_reader(running: dict[str, "Transcription"], held: dict[str, Records], rtstream_id: str,
                      interrupted: bool) -> bool:
    """Stop the live reader of ``rtstream_id`` if one runs (``interrupted``: before its session
    ended, so its records do not cover the channel), then tell its listeners ``None``. The words or
    picture in progress still count, and still reach the listeners and the websocket: the reader
    stays registered (its emit finds it) until its flush is done. False when none ran."""
    reader = running.get(rtstream_id)
    if reader is None:
        return False
    if interrupted and rtstream_id in held:
        held[rtstream_id].interrupted = True
    try:
        await reader.running.stop()
    finally:
        running.pop(rtstream_id, None)
        for listener in reader.listeners.values():
            await listener(None)
    return True


def whole(records: Records | None) -> Heard | None:
    """What a live reader of a stored channel took in, if it ran from ``started_at`` until its
    session ended without a stop and none of its records fell off (MAX_RECORDS); None otherwise."""
    if (records is None or records.started_at is None or records.interrupted or records.ended_at is None
            or len(records.finals) >= MAX_RECORDS):
        return None
    return Heard(records.started_at, list(records.finals))


def mark_ended(held: dict[str, Records], session_id: str) -> None:
    """The session ended now: its records start counting down ``live_retention``."""
    now = time.time()
    for records in held.values():
        if records.session_id == session_id and records.ended_at is None:
            records.ended_at = now


def forget_ended(held: dict[str, Any], retention: float, now: float | None = None) -> int:
    """Drop from ``held`` what has an ``ended_at`` more than ``retention`` seconds before ``now``
    (live transcripts, live indexes); how many went."""
    now = time.time() if now is None else now
    old = [k for k, v in held.items() if v.ended_at is not None and now - v.ended_at > retention]
    for key in old:
        del held[key]
    return len(old)


class LiveTranscripts:
    """Owns the live transcribers (their decoding runs on one runtime pool) and their records."""

    def __init__(self, settings: Settings, hub: WebSocketHub, capture: CaptureRuntime, runtime: Runtime) -> None:
        self.settings = settings
        self.hub = hub
        self.capture = capture
        self.runtime = runtime
        self._decoders = runtime.pool("live-whisper", 2)
        self._ranker = runtime.pool("live-search", 1)
        capture.on_closing(self.end_session)
        self._running: dict[str, Transcription] = {}
        self._records: dict[str, Records] = {}

    def status(self, rtstream_id: str) -> dict[str, Any]:
        running = self._running.get(rtstream_id)
        return {"status": "running" if running else "stopped", "engine": "whisper",
                "start_time": running.started_at if running else None}

    async def start(self, rtstream: RTStream, ws_connection_id: str | None) -> dict[str, Any]:
        if "audio" not in rtstream.media_types:
            raise BadRequest(f"{rtstream.name} is not an audio stream; only audio can be transcribed")
        ingest = self.capture.ingest_for(rtstream.session_id)
        if ingest is None:
            raise Conflict(f"{rtstream.name} is not streaming; transcripts run while the session is live")
        current = self._running.get(rtstream.id)
        if current is not None:
            current.explicit = True
            held = self._records[rtstream.id]
            held.ws_connection_id = ws_connection_id or held.ws_connection_id
            return self.status(rtstream.id)
        records = self._records.setdefault(rtstream.id, Records(session_id=rtstream.session_id))
        if records.started_at is None:
            records.started_at = time.time()

        async def emit(channel_id: str, item: dict[str, Any]) -> None:
            running = self._running.get(rtstream.id)
            if item.get("is_final") and item.get("text", "").strip():
                final = {"start": item["start"] / 1000, "end": item["end"] / 1000, "text": item["text"].strip()}
                records.finals.append(final)
                for listener in list(running.listeners.values()) if running else []:
                    await listener(final)
            # (records.ws_connection_id outlives the transcription: a worker's flush that arrives
            # after it ended still goes where the transcript was sent)
            if records.ws_connection_id:
                await self.hub.send(records.ws_connection_id, {
                    "channel": "transcript", "rtstream_id": rtstream.id, "rtstream_name": rtstream.name,
                    "data": {"text": item["text"], "is_final": bool(item.get("is_final")),
                             "start": item["start"], "end": item["end"]}})

        def make(emit_to: Emit) -> LiveTranscriber:
            return LiveTranscriber(emit_to, model_spec=self.settings.whisper_model, executor=self._decoders)

        transcript = await ingest.transcribe(rtstream.name, emit, make)
        if rtstream.id in self._running:  # a concurrent start won while we waited for the worker
            await transcript.stop()
            return self.status(rtstream.id)
        self._running[rtstream.id] = Transcription(rtstream, transcript, time.time())
        records.ws_connection_id = ws_connection_id
        log.info("live transcript of %s (%s) started on %s", rtstream.id, rtstream.name, ingest.where)
        return self.status(rtstream.id)

    async def attach(self, rtstream: RTStream, key: str, listener: Listener) -> None:
        """Tell ``listener`` every final of ``rtstream``'s live transcript, starting one (not
        sent to any websocket) if none runs; :class:`Conflict` when the session is not streaming."""
        if rtstream.id not in self._running:
            await self.start(rtstream, None)
            self._running[rtstream.id].explicit = False
        self._running[rtstream.id].listeners[key] = listener

    async def detach(self, rtstream_id: str, key: str) -> None:
        """Stop telling ``key`` (it is told ``None`` last); the transcript stops too if nobody
        else wants it, and then its words in progress still reach ``key`` first."""
        running = self._running.get(rtstream_id)
        if running is None or key not in running.listeners:
            return
        if len(running.listeners) == 1 and not running.explicit:
            await self._stop(rtstream_id, interrupted=True)
            return
        await running.listeners.pop(key)(None)

    async def stop(self, rtstream_id: str) -> dict[str, Any]:
        """``stop_transcript``: the websocket messages stop; the transcriber too, unless live
        indexes still read it."""
        running = self._running.get(rtstream_id)
        if running is not None and running.listeners:
            running.explicit = False
            self._records[rtstream_id].ws_connection_id = None
            return {**self.status(rtstream_id), "end_time": time.time()}
        await self._stop(rtstream_id, interrupted=True)
        return {**self.status(rtstream_id), "end_time": time.time()}

    async def _stop(self, rtstream_id: str, interrupted: bool = False) -> None:
        if await stop_reader(self._running, self._records, rtstream_id, interrupted):
            log.info("live transcript of %s stopped", rtstream_id)

    async def end_session(self, session_id: str) -> None:
        for rtstream_id in [r for r, t in self._running.items() if t.rtstream.session_id == session_id]:
            await self._stop(rtstream_id)
        mark_ended(self._records, session_id)

    def evict(self, now: float | None = None) -> int:
        """Forget transcripts of sessions that ended more than ``live_retention`` seconds ago:
        memory must not grow with every session a server has ever seen."""
        return forget_ended(self._records, self.settings.live_retention, now)

    async def close(self) -> None:
        for rtstream_id in list(self._running):
            await self._stop(rtstream_id)

    # -- reading ---------------------------------------------------------------------------------
    def heard(self, rtstream_id: str) -> Heard | None:
        """What the channel's live transcript heard, if one ran until its session ended without
        a stop and none of its finals fell off (MAX_RECORDS); None otherwise."""
        return whole(self._records.get(rtstream_id))

    def records(self, rtstream_id: str, start: float | None = None, end: float | None = None,
                since: float | None = None) -> list[dict[str, Any]]:
        finals = list(self._records.get(rtstream_id, Records()).finals)
        return [r for r in finals
                if (start is None or r["end"] >= start) and (end is None or r["start"] <= end)
                and (since is None or r["end"] > since)]

    async def search(self, rtstream_id: str, query: str, result_threshold: int, score_threshold: float) -> list[dict[str, Any]]:
        return await self.rank(self.records(rtstream_id), query, result_threshold, score_threshold)

    async def rank(self, finals: list[dict[str, Any]], query: str, result_threshold: int,
                   score_threshold: float) -> list[dict[str, Any]]:
        """``finals`` (records with ``text``) by meaning against ``query``, best first."""
        if not strip(query):
            raise BadRequest("query is required")
        if not finals:
            return []

        def rank() -> list[dict[str, Any]]:
            vectors = embed.embed_texts([r["text"] for r in finals], model_spec=self.settings.embed_model)
            q = embed.embed_query(query, model_spec=self.settings.embed_model)
            scores = vectors @ q
            order = np.argsort(-scores)[:result_threshold]
            return [{**finals[i], "score": float(scores[i])} for i in order if scores[i] >= score_threshold]

        return await self.runtime.run_in(self._ranker, rank)
