"""Keep the server's resident memory flat over hours of capture: glibc's allocator, told two things.

Why: a long capture soak (10 sessions, live transcripts) grew the server's RSS by a third after
its first minute and swung by ~100 MiB, without a leak. The allocations come from many threads
(whisper decodes, PyAV, aiortc's codecs, sqlite readers); glibc gives each thread its own arena,
up to eight per core, and memory freed in one arena is neither reused by the others nor returned
to the system while a single live chunk sits at its top. Two remedies, both process-wide:

- :func:`limit_arenas`: few arenas, so freed memory is reused instead of spread thin. Applied
  once by the CLI entry point before the threads start (an arena made earlier stays). Off by
  default: threads that allocate a lot (whisper, torch) contend for few arenas, and indexing ran
  2.4x slower with two (``tests/bench/jobs.py``); an operator short of memory can turn it on.
- :func:`trim`: ``malloc_trim(0)`` hands free pages of every arena back to the kernel; serve and
  the ingest workers call it every minute (:func:`keep_trimmed`: a few ms, off the event loop).

On a C library other than glibc (musl, macOS) both do nothing and say so.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from functools import lru_cache
from typing import Awaitable, Callable

log = logging.getLogger("reeldb.heap")

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.gnu_get_libc_version  # only glibc has it: musl's mallopt ignores arenas
        libc.malloc_trim
        libc.mallopt
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(count: int) -> bool:
    """At most ``count`` malloc arenas from now on (0 leaves glibc's default). True if applied."""
    libc = _glibc()
    if count <= 0 or libc is None:
        return False
    applied = bool(libc.mallopt(M_ARENA_MAX, count))
    if not applied:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused; memory may grow with many threads", count)
    return applied


def trim() -> bool:
    """Give free heap pages back to the kernel. True if some memory was released."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


async def keep_trimmed(every: float, off_loop: Callable[[Callable[[], bool]], Awaitable[bool]]) -> None:
    """:func:`trim` every ``every`` seconds, run through ``off_loop`` (a runtime's I/O pool), until
    cancelled."""
    while True:
        await asyncio.sleep(every)
        await off_loop(trim)
