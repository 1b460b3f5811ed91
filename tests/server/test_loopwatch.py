"""The loop watch (issue 24): a blocking step is reported, an idle loop is never woken to be watched."""

from __future__ import annotations

import asyncio
import threading
import time

from reeldb.server.loopwatch import LoopWatch


def test_an_idle_loop_gets_no_marks_and_a_blocking_step_is_reported():
    reports: list[float] = []

    async def main() -> int:
        watch = LoopWatch(asyncio.get_running_loop(), 0.05, 0.01, lambda busy, limit: reports.append(busy))
        marks = 0
        original = watch.mark

        def counted() -> None:
            nonlocal marks
            marks += 1
            original()

        watch.mark = counted  # type: ignore[method-assign]
        thread = threading.Thread(target=watch.run, daemon=True)
        thread.start()
        await asyncio.sleep(0.3)  # idle: nothing to watch, nothing woken
        idle_marks = marks
        end = time.thread_time() + 0.12
        while time.thread_time() < end:  # a handler doing blocking work on the loop
            pass
        await asyncio.sleep(0.1)
        watch.stop()
        thread.join(5)
        return idle_marks

    idle_marks = asyncio.run(main())
    assert idle_marks == 0
    assert reports and max(reports) >= 0.1
