"""A job's child process (``python -m reeldb.server.jobs.child_main``): the other end of
``server/jobs/child.py``. It lowers its own memory limit before importing anything heavy, reads one
:class:`~.wire.ChildRequest`, runs that kind's compute part from ``server/jobs/parts.py`` as a job
worker would (no database, settings from the environment with the parent's data dir and media root)
and writes :data:`~.wire.ChildReport` lines. Nothing imports this module: it is a process's main.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from reeldb.export import ExportError

from .child import out_of_memory
from .wire import ChildReport, ChildRequest, Done, Failed, Progress, decode_child_request, encode

log = logging.getLogger("reeldb.render")

MB = 1024 * 1024


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
        from ..errors import safe_error

        return safe_error(exc) if isinstance(exc, Exception) else ("Interrupted", "INTERNAL_ERROR")
    except Exception:
        return "", "INTERNAL_ERROR"


def _compute(request: ChildRequest, progress: Callable[[float], None]) -> dict[str, Any]:
    """The kind's compute part, as a job worker runs it: no database, its settings from the
    environment with the parent's data dir and media root."""
    from ..settings import Settings
    from .kinds import JobContext
    from .parts import compute_parts

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
    request = decode_child_request(stdin.readline())
    _limit_memory(request.memory_mb)
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # whatever a library prints goes to the log, not into the reports
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s %(name)s [render {request.job_id}] %(message)s")
    threading.Thread(target=_watch_parent, args=(stdin,), name="parent-watch", daemon=True).start()
    write_lock = threading.Lock()

    def send(report: ChildReport) -> None:
        with write_lock:
            out.write(encode(report) + b"\n")

    last = {"at": 0.0, "fraction": -1.0}

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if fraction - last["fraction"] >= 0.005 or now - last["at"] >= 1.0 or fraction >= 1.0:
            last.update(at=now, fraction=fraction)
            send(Progress(fraction))

    try:
        result = _compute(request, progress)
        send(Done(result))
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one report
        if _is_out_of_memory(exc):
            del exc  # (frees what the failed step held, so the report can be written)
            send(Failed(out_of_memory(request.memory_mb), "RENDER_OUT_OF_MEMORY", out_of_memory=True))
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
