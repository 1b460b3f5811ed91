"""A render runs in a child process of its own, with a memory limit of its own.

Why: a render composites frames in numpy and encodes them with x264 for as long as its timeline
lasts; done on a thread of ``reeldb serve`` (or of a job worker), one render that takes more memory
than the machine has takes the whole server down with it, and the restart resumes it and dies
again. In a child it can only fail itself: the child sets ``RLIMIT_AS`` to
``REELDB_RENDER_MEMORY_MB`` before it imports anything heavy, so an allocation beyond that fails
inside the render (``MemoryError``, ``ENOMEM``), which the child reports as running out of its
budget; a child that dies without a word (a signal) is reported as a crash. Either way the job
fails: a render that crashed once is not retried by itself.

The parent side (:func:`render_in_child`) runs as the render job's compute part on either job
backend: it starts ``python -m reeldb.server.render_process``, writes one
:class:`RenderRequest` line to its stdin and reads :data:`Report` lines from its stdout
(msgspec JSON, one object a line; the child's own fd 1 is pointed at stderr, so nothing a library
prints can garble them). Progress goes to the job's ``ctx.progress``, which is also where the
job learns that it was superseded or cancelled: the parent then kills the child and stops at
once. The child watches its stdin and exits when the parent goes away.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Union

import msgspec

from reeldb.export import ExportError

log = logging.getLogger("reeldb.render")

MB = 1024 * 1024
#: How often the parent steps through ``ctx.progress`` while the child says nothing (seconds).
POLL = 1.0


class RenderRequest(msgspec.Struct, frozen=True):
    """Parent → child, once: what to render (or which other job's compute part to run, ``kind``)
    and within what."""

    job_id: str
    params: dict[str, Any]
    media_root: str
    memory_mb: int
    #: ``render``, or another kind of ``compute_parts``: a job the server runs apart from itself
    #: after it stopped once while that job ran (``jobs.run_compute``).
    kind: str = "render"
    data_dir: str | None = None


class Progress(msgspec.Struct, frozen=True, tag="progress"):
    fraction: float


class Done(msgspec.Struct, frozen=True, tag="done"):
    result: dict[str, Any]


class Failed(msgspec.Struct, frozen=True, tag="failed"):
    message: str
    code: str
    out_of_memory: bool = False


#: Child → parent, one a line.
Report = Union[Progress, Done, Failed]

_encode = msgspec.json.Encoder().encode
_decode_report = msgspec.json.Decoder(Report).decode


class RenderFailed(ExportError):
    """The render's process failed; the message says why in words a user can act on."""

    def __init__(self, message: str, code: str = "RENDER_FAILED") -> None:
        super().__init__(message)
        self.code = code


def _out_of_memory(memory_mb: int) -> str:
    return f"The render ran out of its memory budget (REELDB_RENDER_MEMORY_MB = {memory_mb})"


# -- the parent ------------------------------------------------------------------------------------

def render_in_child(job_id: str, params: dict[str, Any], media_root: str, memory_mb: int,
                    progress: Callable[[float], None], kind: str = "render",
                    data_dir: str | None = None) -> dict[str, Any]:
    """Run one render (or the compute part of another ``kind``) in a child process and return its
    result. ``progress`` gets the child's progress and is called at least every :data:`POLL`
    seconds; whatever it raises (the job was superseded or cancelled) kills the child and propagates."""
    request = RenderRequest(job_id, params, media_root, memory_mb, kind, data_dir)
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # few arenas: less address space reserved per thread
    child = subprocess.Popen([sys.executable, "-m", "reeldb.server.render_process"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env)
    reports: "queue.Queue[Report | None]" = queue.Queue()
    reader = threading.Thread(target=_read_reports, args=(child.stdout, reports), name=f"render-{job_id}",
                              daemon=True)
    outcome: Done | Failed | None = None
    try:
        assert child.stdin is not None
        child.stdin.write(_encode(request) + b"\n")
        child.stdin.flush()  # stdin stays open: its EOF tells the child that we are gone
        reader.start()
        last = 0.0
        while True:
            try:
                report = reports.get(timeout=POLL)
            except queue.Empty:
                progress(last)
                continue
            if report is None:
                break
            if isinstance(report, Progress):
                last = report.fraction
                progress(last)
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
            raise RenderFailed(_out_of_memory(memory_mb), "RENDER_OUT_OF_MEMORY")
        if outcome.code == "INTERNAL_ERROR":
            raise RuntimeError(f"the render process of job {job_id} crashed: {outcome.message}")
        raise RenderFailed(outcome.message, outcome.code)
    raise RenderFailed(_died(status, memory_mb))


def _read_reports(stream: Any, reports: "queue.Queue[Report | None]") -> None:
    try:
        for line in stream:
            try:
                reports.put(_decode_report(line))
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


# -- the child -------------------------------------------------------------------------------------

def _limit_memory(memory_mb: int) -> None:
    """Our address space at most ``memory_mb`` (never above a limit we inherited: we may only lower it)."""
    if memory_mb > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_mb * MB if hard == resource.RLIM_INFINITY else min(memory_mb * MB, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


#: A failure the child cannot name, with its address space this close to its limit, is taken for
#: running out of memory: C libraries do not all say so (x264 failing to allocate its frames makes
#: ``avcodec_open2`` answer "Generic error in an external library").
NEAR_LIMIT = 0.75


def _peak_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _is_out_of_memory(exc: BaseException) -> bool:
    """An allocation failed under the limit, however the library in the way phrased it."""
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit != resource.RLIM_INFINITY and _peak_bytes() >= NEAR_LIMIT * limit and not isinstance(exc, ExportError):
        return True
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MemoryError):
            return True
        if isinstance(seen, OSError) and seen.errno == errno.ENOMEM:
            return True
        if isinstance(seen, RuntimeError) and "can't start new thread" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _safe_error(exc: BaseException) -> tuple[str, str]:
    try:
        from reeldb.server.errors import safe_error

        return safe_error(exc) if isinstance(exc, Exception) else ("Interrupted", "INTERNAL_ERROR")
    except Exception:
        return "", "INTERNAL_ERROR"


def _compute(request: RenderRequest, progress: Callable[[float], None]) -> dict[str, Any]:
    """Another kind's compute part, as a job worker runs it: no database, its settings from the
    environment with the parent's data dir and media root."""
    from pathlib import Path

    from reeldb.server.compute_parts import compute_parts
    from reeldb.server.jobs import JobContext
    from reeldb.server.settings import Settings

    settings = Settings.from_env(data_dir=Path(request.data_dir) if request.data_dir else None,
                                 media_root=Path(request.media_root))
    part = compute_parts()[request.kind]
    last = {"fraction": 0.0}

    def report(fraction: float, force: bool) -> None:
        if fraction >= 0:
            last["fraction"] = fraction
        progress(last["fraction"])

    return part.handler(JobContext(request.job_id, request.kind, request.params, settings, None, report)) or {}


def _watch_parent(stdin: Any) -> None:
    """Exit when the parent closes our stdin (it stopped, or it died): nobody waits for the result."""
    while stdin.read(65536):
        pass
    os._exit(3)


def main() -> int:
    stdin = sys.stdin.buffer
    request = msgspec.json.decode(stdin.readline(), type=RenderRequest)
    _limit_memory(request.memory_mb)
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # whatever a library prints goes to the log, not into the reports
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s %(name)s [render {request.job_id}] %(message)s")
    threading.Thread(target=_watch_parent, args=(stdin,), name="parent-watch", daemon=True).start()
    write_lock = threading.Lock()

    def send(report: Report) -> None:
        with write_lock:
            out.write(_encode(report) + b"\n")

    last = {"at": 0.0, "fraction": -1.0}

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if fraction - last["fraction"] >= 0.005 or now - last["at"] >= 1.0 or fraction >= 1.0:
            last.update(at=now, fraction=fraction)
            send(Progress(fraction))

    try:
        if request.kind in ("render", "render_long"):
            from reeldb.server.editor import render_files

            result = render_files(request.job_id, request.params, request.media_root, progress)
        else:
            result = _compute(request, progress)
        send(Done(result))
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one report
        if _is_out_of_memory(exc):
            del exc  # (frees what the failed step held, so the report can be written)
            send(Failed(_out_of_memory(request.memory_mb), "RENDER_OUT_OF_MEMORY", out_of_memory=True))
            return 1
        message, code = _safe_error(exc)
        if code == "INTERNAL_ERROR":
            log.exception("render crashed")
            message = f"{type(exc).__name__}: {str(exc)[:500]}"
        send(Failed(message, code))
        return 1


if __name__ == "__main__":
    status = main()
    sys.stderr.flush()
    os._exit(status)  # no interpreter shutdown: the parent watcher still blocks on stdin
