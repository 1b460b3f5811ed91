"""Live screen text of a display channel's decoded video, in memory, a second or two behind.

How: a consumer of ``reeldb.capture.live.LiveHub`` (``async on_video(channel_id, frame)``). Of the
frames the decoder gives, :attr:`ScreenSettings.sample_fps` a second are looked at: reformatted by
swscale to a small grey picture and compared with the one before by ``index/scenes.py``'s change
test (ink off the background, after the best vertical shift: a scroll is no change). Once the
picture has settled (a slide's transition is over, a page has loaded), it is compared with the last
picture read: if :attr:`ScreenSettings.reread` of it changed (a new slide, a scrolled page) or
:attr:`ScreenSettings.new_ink` of its ink is new (a typed line), this frame is read by Tesseract (``index/ocr.py``) on this reader's own thread and its text
becomes a record, emitted as::

    {"start": int, "end": int, "text": str, "scene": int}   # start/end: ms since the epoch

``start`` is when the picture began to change (or last changed as much as a shot cut, if it was
moving already: a slide shown after a scroll starts when it appeared), ``end`` the time of the
frame read, ``scene`` the
scene's number: a change of ``threshold`` % of the ink (the post-hoc index's shot cut), or text that
keeps fewer than half the lines of the record before (the next slide of one layout), starts a new
scene; a smaller change that keeps most of the text (typing, a scroll) is the same scene read again. A record is emitted
only when its text has lines the record before did not.

Why not the post-hoc :class:`~reeldb.index.scenes.ShotCutter`: it decides on a 320-pixel picture
with an ink floor tuned to cut scenes of whole recordings; a sparse 1080p slide replaced by another
of the same layout changes 4 % of that picture, below its cut and its re-read. Live, the question is
only "is there text to read again", answered on a 640-pixel picture: still ~1 ms a look.

Under load (a read takes longer than pictures settle), the newest settled picture waits and an
older waiting one is skipped (counted in ``dropped_frames``): memory and lateness stay bounded
and what is on screen now is read next. Nothing touches disk.

Times come from a wall-clock anchor taken at the channel's first frame plus the frame's time
since (re-anchored when the channel paused), as the live transcriber's do.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import av
import numpy as np

from . import ocr, scenes
from .live import Emit

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class ScreenSettings:
    """How a live screen-text reader looks: ``threshold`` (VideoDB's shot threshold: the % of the
    ink that must change for a new scene), how many pictures a second it compares, and the share of
    the last read picture that must change for a read (a blinking cursor is ~0.3 %)."""

    threshold: float = 20.0
    sample_fps: float = 4.0
    reread: float = 0.015
    #: ... or the share of its ink that is new (a typed line; a blinking cursor is ~4 % of two lines).
    new_ink: float = 0.1
    #: The change test's picture width (14 px text at 1080p is ~5 px here).
    width: int = 640


@dataclass
class _Read:
    frame: av.VideoFrame
    cut: bool  # the picture changed as a new scene does
    start: float  # when the picture began to change, seconds on the channel's clock
    at: float  # the frame's time


@dataclass
class _Stream:
    channel_id: str
    anchor: Optional[float] = None  # epoch seconds of frame time 0
    next_sample: float = float("-inf")
    scene: int = -1
    prev: Optional[np.ndarray] = None  # the latest picture looked at
    last: Optional[tuple[float, av.VideoFrame]] = None  # and its frame
    moving: bool = True
    changing_since: float = 0.0  # when the picture last began to change
    ref: Optional[np.ndarray] = None  # the last picture read
    read_at: float = 0.0  # and its time
    said: str = ""  # the last record's text
    waiting: Optional[_Read] = None
    reading: Optional[asyncio.Task] = None


class LiveScreenReader:
    """A ``VideoConsumer`` that emits a display's screen text as it changes, per channel."""

    def __init__(self, emit: Emit, *, langs: Sequence[str] = ("eng",), data: Iterable[str] = (),
                 settings: ScreenSettings = ScreenSettings(), clock: Callable[[], float] = time.time,
                 executor: Optional[concurrent.futures.Executor] = None) -> None:
        self.emit = emit
        self.langs = list(langs)
        self.data = list(data)
        ocr.find_data(self.langs, self.data)  # MissingLanguage now, not at the first slide
        self.settings = settings
        self.clock = clock
        self._cut = scenes.cut_ratio(settings.threshold)
        #: Settled pictures never read because a newer one was waiting (load shedding).
        self.dropped_frames = 0
        #: Frames read.
        self.reads = 0
        self._streams: dict[str, _Stream] = {}
        self._reader: Optional[ocr.Reader] = None  # made on the read thread, at the first read
        self._owns_executor = executor is None
        # One thread: an engine reads one picture at a time, and one display's reads are ordered.
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="live-ocr")
        self._closed = False

    # -- the consumer seam ---------------------------------------------------------------------
    async def on_video(self, channel_id: str, frame: av.VideoFrame) -> None:
        if self._closed:
            return
        st = self._streams.get(channel_id)
        if st is None:
            st = self._streams[channel_id] = _Stream(channel_id)
        t = float(frame.time) if frame.time is not None else 0.0
        now = self.clock()
        if st.anchor is None or now - (st.anchor + t) > 1.0:
            # First frame, or the channel paused or fell behind: place frames on the wall clock again.
            st.anchor = now - t
        if t < st.next_sample:
            return  # decoded (H.264 needs every frame) but not looked at
        every = 1.0 / self.settings.sample_fps
        st.next_sample = max(st.next_sample, t - every / 2) + every
        small = scenes.low_picture(frame, self.settings.width)
        prev, st.prev, st.last = st.prev, small, (t, frame)
        if prev is None:
            st.changing_since = t
            return
        step = scenes.change(prev, small)[0]
        if step >= scenes.SETTLED:
            if not st.moving or step >= self._cut:  # (a cut while moving, a slide after a scroll: starts here)
                st.moving, st.changing_since = True, t
            return  # still moving (a transition, a page loading): read once it settles
        st.moving = False
        self._consider(st)

    def _consider(self, st: _Stream) -> None:
        """The latest picture is settled: read it if it shows what the last read did not."""
        assert st.prev is not None and st.last is not None
        moved, shift = (1.0, 0) if st.ref is None else scenes.change(st.ref, st.prev)
        if moved < self.settings.reread and scenes.novelty(st.ref, st.prev, shift) < self.settings.new_ink:
            return  # what was read is still what is shown (give or take a cursor)
        start = max(st.changing_since, st.read_at) if st.ref is not None else st.changing_since
        st.ref, st.read_at = st.prev, st.last[0]
        self._submit(st, _Read(st.last[1], moved >= self._cut, start, st.last[0]))

    async def flush(self, channel_id: Optional[str] = None) -> None:
        """The display ended or the reader stops: read the last picture if its scene was never
        read, and wait for the reads in flight."""
        for st in self._pick(channel_id):
            if st.prev is not None and st.last is not None and not self._closed:
                self._consider(st)
        await self.drained(channel_id)

    async def drained(self, channel_id: Optional[str] = None) -> None:
        """Wait until no picture is being read or waits to be (what a caller that must not get
        ahead of the reads awaits: a recording fed faster than real time)."""
        for st in self._pick(channel_id):
            while st.reading is not None:
                await asyncio.shield(st.reading)

    async def aclose(self) -> None:
        """Stop reading (a read in flight is abandoned; call flush first to keep it)."""
        self._closed = True
        for st in self._streams.values():
            if st.reading is not None:
                st.reading.cancel()
                try:
                    await st.reading
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
        reader, self._reader = self._reader, None
        if reader is not None:
            self._executor.submit(reader.close)
        if self._owns_executor:
            self._executor.shutdown(wait=False)

    # -- reading -------------------------------------------------------------------------------
    def _pick(self, channel_id: Optional[str]) -> list[_Stream]:
        if channel_id is None:
            return list(self._streams.values())
        return [self._streams[channel_id]] if channel_id in self._streams else []

    def _submit(self, st: _Stream, read: _Read) -> None:
        if st.reading is None:
            st.reading = asyncio.get_running_loop().create_task(self._reads(st, read),
                                                                name=f"live-ocr-{st.channel_id}")
            return
        if st.waiting is not None:
            self.dropped_frames += 1  # a newer picture replaces one that never got read
        st.waiting = read

    async def _reads(self, st: _Stream, read: Optional[_Read]) -> None:
        loop = asyncio.get_running_loop()
        try:
            while read is not None:
                text = await loop.run_in_executor(self._executor, self._read, read.frame)
                self.reads += 1
                await self._record(st, read, text)
                read, st.waiting = st.waiting, None
        finally:
            st.reading = None

    def _read(self, frame: av.VideoFrame) -> str:
        if self._reader is None:
            self._reader = ocr.Reader(self.langs, self.data)
        return ocr.describe(self._reader.read(scenes.bounded_image(frame)))

    async def _record(self, st: _Stream, read: _Read, text: str) -> None:
        lines, said = set(text.splitlines()), set(st.said.splitlines())
        if not lines - said:
            return  # nothing the last record did not say
        if read.cut or st.scene < 0 or len(lines & said) < len(said) / 2:
            st.scene += 1  # a new picture, or most of the text replaced (the next slide of one layout)
        st.said = text
        assert st.anchor is not None
        item = {"start": round((st.anchor + read.start) * 1000), "end": round((st.anchor + read.at) * 1000),
                "text": text, "scene": st.scene}
        result = self.emit(st.channel_id, item)
        if inspect.isawaitable(result):
            await result
