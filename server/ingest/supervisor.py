"""``reeldb serve`` with ``REELDB_INGEST_WORKERS=N|auto``: start N ingest workers and keep them up.

Why the control node supervises them itself: a single box should use all its cores with no extra
setup (no systemd units, no compose file). Each worker is ``python -m reeldb.server.cli worker
ingest`` as a child process with the control node's settings (its environment), the control URL
and the worker secret; one that exits is started again after a short backoff (its sessions have
already been stopped by the heartbeat timeout), and all are terminated (SIGTERM: they finalize
their files) and then killed, if need be, when the control node stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from ..runtime import Runtime
from ..settings import Settings

log = logging.getLogger("reeldb.ingest")

RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0)
STOP_WAIT = 30.0


def worker_count(value: str) -> int | None:
    """``REELDB_INGEST_WORKERS`` as a number of workers to start: 0 (in-process), N, ``auto`` (one
    per core), or None for ``external`` (workers started elsewhere register themselves)."""
    text = (value or "0").strip().lower()
    if text == "external":
        return None
    if text == "auto":  # the cores this process may run on (a container's cpuset, taskset), not the host's
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, cores or 1)
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"REELDB_INGEST_WORKERS={value!r}: a number, auto or external") from None
    if n < 0:
        raise ValueError(f"REELDB_INGEST_WORKERS={value!r}: must be 0 or more")
    return n


def end_with_parent(parent: int) -> bool:
    """Ask Linux to SIGTERM this process when its parent dies (prctl PR_SET_PDEATHSIG); False if
    the parent is already gone. Elsewhere a no-op that returns True."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    return os.getppid() == parent


def control_url(settings: Settings) -> str:
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}"


class IngestSupervisor:
    def __init__(self, settings: Settings, runtime: Runtime, count: int, token: str) -> None:
        self.settings = settings
        self.runtime = runtime
        self.count = count
        self.token = token
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._closing = False

    def start(self) -> None:
        for index in range(self.count):
            self.runtime.spawn(self._keep(index), name=f"ingest-worker-{index}")

    async def _keep(self, index: int) -> None:
        failures = 0
        while not self._closing:
            env = {**os.environ, "REELDB_WORKER_TOKEN": self.token, "REELDB_CONTROL_URL": control_url(self.settings),
                   "REELDB_DATA_DIR": str(self.settings.data_dir), "REELDB_WORKER_PORT": "0", "REELDB_WORKER_URL": ""}
            if self.settings.media_root is not None:
                env["REELDB_MEDIA_ROOT"] = str(self.settings.media_root)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "reeldb.server.cli", "worker", "ingest", "--id", f"ingest-{index}-{{pid}}",
                "--supervised-by", str(os.getpid()),
                env=env, stdin=asyncio.subprocess.DEVNULL)
            self._procs[index] = proc
            log.debug("ingest worker %d started (pid %d)", index, proc.pid)
            try:
                code = await proc.wait()
            except asyncio.CancelledError:
                await self._end(proc)
                raise
            self._procs.pop(index, None)
            if self._closing:
                return
            failures += 1
            delay = RESTART_BACKOFF[min(failures - 1, len(RESTART_BACKOFF) - 1)]
            log.warning("ingest worker %d (pid %d) exited with %s; starting it again in %.0f s", index, proc.pid,
                        code, delay)
            await asyncio.sleep(delay)

    async def _end(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_WAIT)
        except asyncio.TimeoutError:
            log.warning("ingest worker pid %d did not stop in %.0f s; killing it", proc.pid, STOP_WAIT)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def close(self) -> None:
        """SIGTERM every worker (they finalize their sessions' files), then wait; the keeper tasks
        are cancelled by the runtime afterwards."""
        self._closing = True
        await asyncio.gather(*(self._end(proc) for proc in list(self._procs.values())))

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values() if p.returncode is None]
