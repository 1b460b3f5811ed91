"""Live screen text of capture displays: one reader per display rtstream, shared by its indexes.

The index stage's :class:`~reeldb.index.live_screen.LiveScreenReader` is attached to the display's
decoded video through the capture stage's live seam, where the session is received (this process,
or its ingest worker: ``IngestHandle.read_screen``, only the records travel). Each record
(``{start, end, text, scene}``, unix seconds here) is kept in memory and told to the listeners,
the live screen-text indexes (server/live_indexes.py), which push it and read it for alerts.

Nothing of it is written to disk: an ephemeral display's text must leave no trace there, and a
stored display's records become its exported video's first screen-text index
(:meth:`LiveScreens.seen`, server/live_seed.py). Records are forgotten ``live_retention`` seconds
after their session ended, as live transcripts are.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from reeldb.index.live import Emit
from reeldb.index.live_screen import LiveScreenReader

from .capture_runtime import CaptureRuntime
from .errors import Conflict
from .live import Heard, Listener, Records, Transcription, forget_ended, mark_ended, stop_reader, whole
from .rows import RTStream
from .runtime import Runtime
from .scenes import ocr_langs
from .settings import Settings

log = logging.getLogger("reeldb.live")


class LiveScreens:
    """Owns the live screen readers (their OCR runs on one runtime pool) and their records."""

    def __init__(self, settings: Settings, capture: CaptureRuntime, runtime: Runtime) -> None:
        self.settings = settings
        self.capture = capture
        self._pool = runtime.pool("live-ocr", 1)
        capture.on_closing(self.end_session)
        self._running: dict[str, Transcription] = {}
        #: Each display's records (``finals``: what was read), as live transcripts keep theirs.
        self._seen: dict[str, Records] = {}

    async def attach(self, rtstream: RTStream, key: str, listener: Listener) -> None:
        """Tell ``listener`` every record of the display's screen text, starting its reader if none
        runs; :class:`Conflict` when the session is not streaming."""
        if rtstream.id not in self._running:
            await self._start(rtstream)
        self._running[rtstream.id].listeners[key] = listener

    async def _start(self, rtstream: RTStream) -> None:
        ingest = self.capture.ingest_for(rtstream.session_id)
        if ingest is None:
            raise Conflict(f"{rtstream.name} is not streaming; live indexes run while the session is live")
        langs = ocr_langs(self.settings)  # 400 when a language's data is missing
        seen = self._seen.setdefault(rtstream.id, Records(session_id=rtstream.session_id))
        if seen.started_at is None:
            seen.started_at = time.time()

        async def emit(channel_id: str, item: dict[str, Any]) -> None:
            record = {"start": item["start"] / 1000, "end": item["end"] / 1000, "text": item["text"],
                      "scene": item.get("scene", 0)}
            seen.finals.append(record)
            reading = self._running.get(rtstream.id)
            for listener in list(reading.listeners.values()) if reading else []:
                await listener(record)

        def make(emit_to: Emit) -> LiveScreenReader:
            return LiveScreenReader(emit_to, langs=langs, data=self.settings.ocr_folders, executor=self._pool)

        running = await ingest.read_screen(rtstream.name, emit, make)
        if rtstream.id in self._running:  # a concurrent start won while we waited for the worker
            await running.stop()
            return
        self._running[rtstream.id] = Transcription(rtstream, running, time.time(), explicit=False)
        log.info("live screen text of %s (%s) started on %s", rtstream.id, rtstream.name, ingest.where)

    async def detach(self, rtstream_id: str, key: str) -> None:
        """Stop telling ``key`` (it is told ``None`` last); the reader stops when nobody listens."""
        reading = self._running.get(rtstream_id)
        if reading is None or key not in reading.listeners:
            return
        if len(reading.listeners) == 1:
            await self._stop(rtstream_id, interrupted=True)
            return
        await reading.listeners.pop(key)(None)

    async def _stop(self, rtstream_id: str, interrupted: bool = False) -> None:
        # (the last picture is read and its record still told)
        if await stop_reader(self._running, self._seen, rtstream_id, interrupted):
            log.info("live screen text of %s stopped", rtstream_id)

    async def end_session(self, session_id: str) -> None:
        for rtstream_id in [r for r, t in self._running.items() if t.rtstream.session_id == session_id]:
            await self._stop(rtstream_id)
        mark_ended(self._seen, session_id)

    def seen(self, rtstream_id: str) -> Heard | None:
        """What the display's reader read, if it ran until its session ended without a stop and
        none of its records fell off; None otherwise (as ``LiveTranscripts.heard``)."""
        return whole(self._seen.get(rtstream_id))

    def evict(self, now: float | None = None) -> int:
        return forget_ended(self._seen, self.settings.live_retention, now)

    async def close(self) -> None:
        for rtstream_id in list(self._running):
            await self._stop(rtstream_id)

