"""A job's compute part in a child process of its own, with a memory limit of its own: the parent side.

Why: a render composites frames in numpy and encodes them with x264 for as long as its timeline
lasts; done on a thread of ``reeldb serve`` (or of a job worker), one render that takes more memory
than the machine has takes the whole server down with it, and the restart resumes it and dies
again. In a child it can only fail itself: the child sets ``RLIMIT_AS`` to
``REELDB_RENDER_MEMORY_MB`` before it imports anything heavy, so an allocation beyond that fails
inside the render (``MemoryError``, ``ENOMEM``), which the child reports as running out of its
budget; a child that dies without a word (a signal) is reported as a crash. Either way the job
fails: a render that crashed once is not retried by itself. Any other kind runs here (with no
memory limit) once the server stopped while its job ran (``kinds.run_compute``).

:func:`run_in_child` runs on either executor: it starts ``python -m reeldb.server.jobs.child_main``,
writes one :class:`~.wire.ChildRequest` line to its stdin and reads :data:`~.wire.ChildReport` lines
from its stdout (msgspec JSON, one object a line; the child's own fd 1 is pointed at stderr, so
nothing a library prints can garble them). Progress goes to the job's ``ctx.progress``, which is
also where the job learns that it was superseded or cancelled: the parent then kills the child and
stops at once. The child watches its stdin and exits when the parent goes away.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from typing import Any

import msgspec

from reeldb.export import ExportError

from .kinds import JobContext
from .wire import ChildReport, ChildRequest, Done, Failed, Progress, decode_child_report, encode

log = logging.getLogger("reeldb.render")

#: How often the parent steps through ``ctx.progress`` while the child says nothing (seconds).
POLL = 1.0


class RenderFailed(ExportError):
    """The render's process failed; the message says why in words a user can act on."""

    def __init__(self, message: str, code: str = "RENDER_FAILED") -> None:
        super().__init__(message)
        self.code = code


def out_of_memory(memory_mb: int) -> str:
    return f"The render ran out of its memory budget (REELDB_RENDER_MEMORY_MB = {memory_mb})"


def run_in_child(ctx: JobContext, memory_mb: int) -> dict[str, Any]:
    """Run ``ctx``'s compute part in a child process and return its result. ``ctx.progress`` gets
    the child's progress and is called at least every :data:`POLL` seconds; whatever it raises (the
    job was superseded or cancelled) kills the child and propagates."""
    request = ChildRequest(ctx.id, ctx.kind, ctx.params, str(ctx.settings.media_root_dir), memory_mb,
                           str(ctx.settings.data_dir))
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # few arenas: less address space reserved per thread
    child = subprocess.Popen([sys.executable, "-m", "reeldb.server.jobs.child_main"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env)
    reports: "queue.Queue[ChildReport | None]" = queue.Queue()
    reader = threading.Thread(target=_read_reports, args=(child.stdout, reports), name=f"render-{ctx.id}",
                              daemon=True)
    outcome: Done | Failed | None = None
    try:
        assert child.stdin is not None
        child.stdin.write(encode(request) + b"\n")
        child.stdin.flush()  # stdin stays open: its EOF tells the child that we are gone
        reader.start()
        last = 0.0
        while True:
            try:
                report = reports.get(timeout=POLL)
            except queue.Empty:
                ctx.progress(last)
                continue
            if report is None:
                break
            if isinstance(report, Progress):
                last = report.fraction
                ctx.progress(last)
            else:
                outcome = report
        status = child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pipe in (child.stdin, child.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        if reader.is_alive():
            reader.join(timeout=5)
    if isinstance(outcome, Done):
        return outcome.result
    if isinstance(outcome, Failed):
        if outcome.out_of_memory:
            raise RenderFailed(out_of_memory(memory_mb), "RENDER_OUT_OF_MEMORY")
        if outcome.code == "INTERNAL_ERROR":
            raise RuntimeError(f"the child process of job {ctx.id} crashed: {outcome.message}")
        raise RenderFailed(outcome.message, outcome.code)
    raise RenderFailed(_died(status, memory_mb))


def _read_reports(stream: Any, reports: "queue.Queue[ChildReport | None]") -> None:
    try:
        for line in stream:
            try:
                reports.put(decode_child_report(line))
            except msgspec.DecodeError:
                log.warning("render process: unreadable report %r", line[:200])
    except (OSError, ValueError):
        pass
    finally:
        reports.put(None)


def _died(status: int, memory_mb: int) -> str:
    if status < 0:
        name = signal.Signals(-status).name if -status in signal.valid_signals() else str(-status)
        if -status == signal.SIGKILL:
            return (f"The render process was killed ({name}), most likely by the kernel for memory; its own "
                    f"budget is REELDB_RENDER_MEMORY_MB = {memory_mb}")
        return f"The render process crashed ({name}) (its memory budget: REELDB_RENDER_MEMORY_MB = {memory_mb})"
    return f"The render process stopped without a result (exit status {status})"


