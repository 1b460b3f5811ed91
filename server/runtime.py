"""The one owner of the server's background tasks and threads.

Why one place: a task nobody keeps a reference to can be garbage-collected mid-flight, and a
thread nobody joins outlives shutdown. Everything the server runs in the background is started
here, kept here, and cancelled or joined by :meth:`Runtime.close`, in the manner of aiortc's
examples (every task owned and cancelled). Blocking file I/O from the event loop goes through
:meth:`Runtime.io`, so a slow disk never stalls a request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Callable, Coroutine, TypeVar

from .loopwatch import LoopWatch

log = logging.getLogger("reeldb.runtime")

T = TypeVar("T")


class Runtime:
    def __init__(self, io_threads: int = 4) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._threads: set[threading.Thread] = set()
        self._once: set[str] = set()
        self._once_lock = threading.Lock()
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._io = self.pool("io", io_threads)
        #: The longest step :meth:`watch_loop` saw over its limit, seconds of CPU.
        self.longest_block = 0.0

    # -- tasks -----------------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Start ``coro`` as a task that is kept until it ends and cancelled on close."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    # -- threads ---------------------------------------------------------------------------------
    def pool(self, name: str, workers: int) -> Executor:
        """A named thread pool (database-free work: search, live decoding, file I/O)."""
        if name not in self._pools:
            self._pools[name] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        return self._pools[name]

    def thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """A daemon thread for one long piece of work (a job): joined on close, but never waited
        for without bound, since a job whose worker hangs must not hang shutdown too."""
        def run() -> None:
            try:
                target()
            finally:
                self._threads.discard(thread)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self._threads.add(thread)
        thread.start()
        return thread

    def once(self, name: str, target: Callable[[], None]) -> None:
        """Run ``target`` in a thread of its own the first time ``name`` is asked for, never again
        (a warm-up wanted from several places); a failure is logged, as a failed task's is."""
        with self._once_lock:
            if name in self._once:
                return
            self._once.add(name)

        def run() -> None:
            try:
                target()
            except Exception:  # noqa: BLE001 - what needed it reports the error in its own words
                log.warning("background %s failed", name, exc_info=True)

        self.thread(run, name)

    async def io(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking file I/O off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def run_in(self, executor: Executor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    # -- watching the loop ------------------------------------------------------------------------
    async def watch_loop(self, limit: float, tick: float = 0.01) -> None:
        """Log when the event loop's thread spent more than ``limit`` seconds of CPU in one step
        (some callback blocked it), watched from a thread of its own (:mod:`.loopwatch`: the loop
        is not woken to be watched) until this task is cancelled."""
        if not hasattr(time, "pthread_getcpuclockid"):  # (Linux has it; ReelDB runs on Linux)
            log.debug("this platform cannot read the loop thread's CPU clock: the loop is not watched")
            return
        watch = LoopWatch(asyncio.get_running_loop(), limit, tick, self._blocked)
        self.thread(watch.run, "loop-watch")
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled (close)
        finally:
            watch.stop()

    def _blocked(self, busy: float, limit: float) -> None:
        self.longest_block = max(self.longest_block, busy)
        log.warning("event loop blocked: %.0f ms of CPU in one step (limit %.0f ms)", busy * 1000, limit * 1000)

    # -- shutdown --------------------------------------------------------------------------------
    async def close(self, join_timeout: float = 5.0) -> None:
        """Cancel every task and wait for it; join threads (bounded); shut the pools down."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        for thread in list(self._threads):
            await loop.run_in_executor(self._io, thread.join, join_timeout)
            if thread.is_alive():
                log.warning("thread %s still running at shutdown; abandoning it", thread.name)
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
