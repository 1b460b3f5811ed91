"""Exact clips for the routes: cut on the server's own pools, within a budget, cached within bounds.

A timeline URL (``/stream/<token>/t/<spans>.m3u8``) and a compilation's playlist both come here.
In order: the spans' cache entries are looked up (a file stat each); a caller without an API key
pays for the new ones from its link's and its address's budget (:class:`clip_budget.TokenBucket`,
a 429 with ``Retry-After`` when spent); the new spans are cut on the ``clips`` pool, their two
edges at once on the ``clip-edges`` pool (both owned by :class:`Runtime`, shut down with it),
stopping between two spans once the client has gone (``server/disconnect.py``); last, the cache
learns what was used and trims itself to ``REELDB_CLIP_CACHE_MB`` (``server/clip_cache.py``).
"""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from reeldb.export.clips import EDGE_WORKERS, PIECES_NAME, ClipCancelled, Piece, clip_entries, clip_segments

from .clip_budget import Span, SpanLimits, TokenBucket, TooManyRequests, check_spans
from .clip_cache import ClipCache
from .errors import NotFound
from .library import MediaLibrary
from .runtime import Runtime
from .settings import Settings

#: One video's spans: ``(media row, [(start, end), ...])``.
Part = tuple[dict[str, Any], Sequence[Span]]


def _new_spans(entries: list[Path]) -> int:
    return sum(1 for entry in entries if not (entry / PIECES_NAME).is_file())


class Clips:
    def __init__(self, settings: Settings, runtime: Runtime, library: MediaLibrary) -> None:
        self.runtime = runtime
        self.library = library
        self.limits = SpanLimits.of(settings)
        #: Exact clips re-encode at most a GOP per edge: CPU work, kept off the file-I/O pool.
        self._cutter = runtime.pool("clips", 2)
        self._edges = runtime.pool("clip-edges", EDGE_WORKERS)
        self._budget = TokenBucket(settings.clip_new_spans_per_minute)
        self.cache = ClipCache(settings.media_dir, int(settings.clip_cache_mb * 2**20), runtime)

    def check(self, spans: Sequence[Span], length: float | None = None, what: str = "span") -> None:
        """400 naming the limit: too many spans, or one too short to play."""
        check_spans(spans, self.limits, length, what)

    def _dir(self, video: dict[str, Any]) -> Path:
        hls_dir = self.library.hls_dir(video)
        if hls_dir is None:
            raise NotFound(f"Video {video['id']} has no stream")
        return hls_dir

    async def cut(self, parts: Sequence[Part], payer: tuple[str, str] | None = None,
                  gone: threading.Event | None = None) -> list[list[list[Piece]]]:
        """The pieces of every span of every part, in order. ``payer``: (link, client address) of a
        caller without an API key, charged one token per new span. ``gone``: set when the client
        disconnected; cutting stops with :class:`ClipCancelled` at the next new span."""
        located = [(video, list(spans), self._dir(video)) for video, spans in parts]
        entries = [await self.runtime.io(clip_entries, self.library.file(v), d, spans, d / "clips")
                   for v, spans, d in located]
        if payer is not None:
            new = await self.runtime.io(_new_spans, [e for part in entries for e in part])
            wait = self._budget.take([("link", payer[0]), ("client", payer[1])], new, time.monotonic())
            if wait:
                raise TooManyRequests(
                    f"This link's or this address's budget of new clips is spent "
                    f"({self._budget.rate:g} new spans a minute, REELDB_CLIP_NEW_SPANS_PER_MINUTE); spans already "
                    f"cut play at once, new ones in {wait:.0f} s or with an API key", wait)
        cancelled = gone.is_set if gone is not None else None
        out = []
        try:
            for video, spans, hls_dir in located:
                if cancelled is not None and cancelled():
                    raise ClipCancelled("the clip was cancelled: nobody waits for it any more")
                cut = functools.partial(clip_segments, self.library.file(video), hls_dir, spans, hls_dir / "clips",
                                        executor=self._edges, cancelled=cancelled)
                out.append(await self.runtime.run_in(self._cutter, cut))
        finally:
            await self.cache.record(e for part in entries for e in part)
        return out

    def touch(self, entry: Path) -> None:
        """A piece of the cache entry ``entry`` was served."""
        self.cache.touch(entry)
