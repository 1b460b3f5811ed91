"""Running a compute part, on either executor: where (this thread or a child process), with a
:class:`Heartbeat` that proves it alive by time, and a :class:`Throttle` on its reports."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .child import run_in_child
from .kinds import Compute, JobContext, JobLost

log = logging.getLogger("reeldb.jobs")


class Heartbeat:
    """Renews a running attempt's lease by time while its compute part runs (a context manager
    that owns one thread, started on enter and joined on exit).

    Why a thread: the compute part's own steps (a whisper batch, an x264 pass) can take longer than a
    lease on a busy machine, and a step that takes long is not a hang. Once the heartbeat learns
    that a newer attempt owns the job it sets ``ctx.lost`` (the compute part stops at its next
    :meth:`JobContext.progress`) and keeps calling the report, which on a job worker keeps that
    worker's per-job lock until this attempt has really stopped.
    """

    def __init__(self, ctx: JobContext, every: float) -> None:
        self.ctx = ctx
        self.every = max(0.05, every)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{ctx.id}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.ctx.heartbeat()
            except JobLost:
                if not self.ctx.lost:
                    log.info("job %s: a newer attempt owns it; this one stops at its next step", self.ctx.id)
                self.ctx.lost = True
            except Exception:  # a database or Redis hiccup: the next beat tries again
                log.warning("job %s: heartbeat failed", self.ctx.id, exc_info=True)


class Throttle:
    """When a progress report or heartbeat is worth writing: on 1 % of progress, at the end, every
    quarter lease, or when forced (a heartbeat), but a forced one not more than once a second, nor
    more than eight times a lease: a floor of a whole second under a lease of a few seconds would
    renew it only as it runs out. Both executors' reports (a row renewal, a Redis stream entry) go
    through one."""

    def __init__(self, lease: float) -> None:
        self.lease = lease
        self.floor = min(1.0, lease / 8)
        self.last_write = time.monotonic()
        self.last_progress = 0.0

    def due(self, fraction: float, force: bool) -> bool:
        now = time.monotonic()
        moved = fraction >= 0 and (fraction - self.last_progress >= 0.01 or fraction >= 1.0)
        due = now - self.last_write >= self.lease / 4
        if not (moved or due or force) or (force and now - self.last_write < self.floor):
            return False
        self.last_write = now
        if fraction >= 0:
            self.last_progress = fraction
        return True


def run_compute(part: Compute, ctx: JobContext, lease: float) -> dict[str, Any] | None:
    """Run a compute part where it belongs, with a :class:`Heartbeat` unless it proves liveness by
    progress alone (imports). Both executors call this. In a child process of its own: a kind that
    always runs there (renders, with their memory limit), and any kind whose job was running when
    the server stopped (``ctx.isolated``: if it is what brought the server down, it can only bring
    down the child now)."""
    if not part.heartbeat:
        return part.handler(ctx)
    with Heartbeat(ctx, lease / 4):
        if part.own_process or (ctx.isolated and not part.local):
            if ctx.isolated and not part.own_process:
                log.info("job %s (%s) runs in a child process: the server stopped while it ran before",
                         ctx.id, ctx.kind)
            result = run_in_child(ctx, memory_mb=ctx.settings.render_memory_mb if part.own_process else 0)
        else:
            result = part.handler(ctx)
    if ctx.lost:
        raise JobLost(ctx.id)
    return result
