"""Watching the event loop for steps that block it, from a thread of its own.

Why a thread: a watch that ticks on the loop itself (a coroutine sleeping 10 ms and reading the
thread's CPU clock) wakes the loop a hundred times a second, idle or not, and under requests its
timer and task step were a measurable share of each request's work (py-spy on
``tests/bench/api_roundtrip.py``). Here a thread reads the loop thread's CPU clock
(``pthread_getcpuclockid``) every ``tick`` and asks the loop for a *mark* (one plain callback)
only once the loop has spent ``tick`` of CPU since its last mark: an idle loop is never woken, and
a busy one runs a callback per ``tick`` of its own work (a look that finds the loop's clock
unmoved since the last one finds it idle, between steps: that counts as a mark, for free).

What is measured is what the tick measured: the loop thread's CPU between two marks, which run
between the loop's steps; more than ``limit`` means some step (with at most ``tick`` of other
work) held the loop that long. CPU time, not wall time, so a machine whose cores are busy
elsewhere (which only delays the loop) does not count as blocking.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable


class LoopWatch:
    """One loop's watch: :meth:`run` on a thread (until :meth:`stop`), :meth:`mark` on the loop.
    ``report(busy, limit)`` is called on the loop with the CPU seconds of a step over ``limit``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: float, tick: float,
                 report: Callable[[float, float], None]) -> None:
        self.loop, self.limit, self.tick, self.report = loop, limit, tick, report
        self._clock = time.pthread_getcpuclockid(threading.get_ident())  # the loop's thread (called on it)
        self._marked = time.thread_time()  # the loop's CPU clock at its last mark
        self._asked = False  # a mark is on its way to the loop
        self._stopped = threading.Event()

    def run(self) -> None:
        """The watching thread: ask for a mark once the loop has worked ``tick`` since the last;
        a loop that did nothing since the last look is between steps, which counts as a mark."""
        seen = time.clock_gettime(self._clock)
        while not self._stopped.wait(self.tick):
            now = time.clock_gettime(self._clock)
            idle, seen = now == seen, now
            if self._asked:
                continue
            if idle:
                self._marked = now  # (no mark is on its way, so the loop does not write it meanwhile)
            elif now - self._marked >= self.tick:
                self._asked = True
                try:
                    self.loop.call_soon_threadsafe(self.mark)
                except RuntimeError:  # the loop is closed
                    return

    def mark(self) -> None:
        """On the loop, between two steps: the CPU since the last mark, reported over ``limit``."""
        now = time.thread_time()
        busy, self._marked, self._asked = now - self._marked, now, False
        if busy > self.limit:
            self.report(busy, self.limit)

    def stop(self) -> None:
        self._stopped.set()
