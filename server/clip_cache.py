"""The clip cache's size bound: every rendition's ``clips/`` folder, least recently used first out.

Each exact clip's span is an entry folder (``<asset>/hls/clips/<key>/``: ``pieces.json`` and its
re-encoded ``.ts``). The index here is in memory, ``entry -> (bytes, last used)``: filled by one scan
of the media folder (last use: ``pieces.json``'s mtime, which each use moves, so the order survives
a restart), then kept by the server's own requests (a playlist records its entries, a piece
request touches its entry: a dict update). When the total passes ``REELDB_CLIP_CACHE_MB``, the
least recently used entries are deleted off the event loop (:func:`clip_budget.evictions`),
never those of the request that is trimming; a clip being played touches its entry with every
piece, so it is among the last to go, and a playlist asked for again is simply cut again.
Entries made elsewhere (the editor's jobs) are counted from the next start's scan.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Iterable

from reeldb.export.clips import PIECES_NAME

from .clip_budget import evictions
from .runtime import Runtime

log = logging.getLogger("reeldb.clips")

#: Where entries lie under the media folder: <collection>/<asset>/hls/clips/<key>.
ENTRY_GLOB = "*/*/hls/clips/*"


def _key(entry: Path) -> Path:
    """One spelling per entry (the media root may be configured relative): no syscall."""
    return Path(os.path.abspath(entry))


def entry_size(entry: Path) -> int:
    """Bytes of one entry's files (a handful: no recursion)."""
    total = 0
    with os.scandir(entry) as files:
        for f in files:
            if f.is_file(follow_symlinks=False):
                total += f.stat(follow_symlinks=False).st_size
    return total


def scan(media_dir: Path) -> dict[Path, tuple[int, float]]:
    """Every finished entry under ``media_dir`` with its size and last use (mtime of its index)."""
    found = {}
    for entry in media_dir.glob(ENTRY_GLOB):
        try:
            used = (entry / PIECES_NAME).stat().st_mtime
            found[_key(entry)] = (entry_size(entry), used)
        except OSError:
            continue  # a half-written or half-deleted entry: not a cache hit anyway
    return found


def _measure(entries: list[Path], now: float) -> dict[Path, int]:
    """Sizes of the finished ones among ``entries``, their index's mtime moved to ``now``."""
    sizes = {}
    for entry in entries:
        try:
            os.utime(entry / PIECES_NAME, (now, now))
            sizes[entry] = entry_size(entry)
        except OSError:
            continue
    return sizes


def _delete(entries: list[Path]) -> None:
    for entry in entries:
        shutil.rmtree(entry, ignore_errors=True)


class ClipCache:
    def __init__(self, media_dir: Path, budget_bytes: int, runtime: Runtime) -> None:
        self.media_dir = media_dir
        self.budget = budget_bytes
        self.runtime = runtime
        self._index: dict[Path, tuple[int, float]] | None = None
        self._lock = asyncio.Lock()

    @property
    def bounded(self) -> bool:
        return self.budget > 0

    def touch(self, entry: Path) -> None:
        """A piece of ``entry`` was just served: it is in use."""
        entry = _key(entry)
        if self._index is not None and entry in self._index:
            self._index[entry] = (self._index[entry][0], time.time())

    async def record(self, entries: Iterable[Path]) -> None:
        """A request played ``entries`` (cached or just cut): note them, then trim the cache to its
        budget without them."""
        if not self.bounded:
            return
        used = list(dict.fromkeys(_key(e) for e in entries))
        async with self._lock:
            if self._index is None:
                self._index = await self.runtime.io(scan, self.media_dir)
            now = time.time()
            for entry, size in (await self.runtime.io(_measure, used, now)).items():
                self._index[entry] = (size, now)
            victims = evictions(self._index, self.budget, keep=used)
            if victims:
                for entry in victims:
                    del self._index[entry]
                await self.runtime.io(_delete, victims)
                log.info("clip cache over %d MB: removed %d least recently used clips",
                         self.budget // 2**20, len(victims))

    def total(self) -> int:
        """Bytes the index counts (for tests and metrics)."""
        return sum(size for size, _ in (self._index or {}).values())
