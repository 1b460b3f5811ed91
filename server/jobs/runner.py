"""The control node's job runner: the queue the services use, over the lease store and one executor.

It owns what does not depend on where compute parts run: the registry of kinds, enqueueing in the
caller's transaction, the claim loop with one capacity a lane, the reaper, cancels, waiting for a
job's end, and announcing ends to listeners. Where a claimed job's compute part runs is the
:class:`Executor`'s business: the embedded one (``embedded.py``) runs it on this process's threads,
the Celery one (``celery.py``) sends it to job workers. Neither inherits from the other or from this.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from ..database import Conn, Database
from ..errors import safe_error
from ..runtime import Runtime
from ..settings import Settings
from . import payloads
from .compute import Throttle
from .kinds import LANES, JobContext, JobKind, JobLost, Listener
from .leases import Job, LeaseStore, request_cancel

log = logging.getLogger("reeldb.jobs")


@dataclass
class Execution:
    """One claimed attempt, as the runner and its executor track it."""

    job_id: str
    lane: str
    token: str
    abandoned: bool = False
    #: No new attempt of this job starts here while this one runs (kinds with a heartbeat).
    exclusive: bool = True
    #: Its compute part runs in this process (not on a job worker).
    here: bool = True
    #: (Set by the embedded executor: its reports' pace.)
    throttle: Throttle | None = None


class Executor(Protocol):
    """Where claimed jobs' compute parts run."""

    #: Jobs of each lane in flight at once.
    capacity: Mapping[str, int]

    def attach(self, runner: "Jobs") -> None:
        """Called once by the runner it serves."""

    def admit(self, kind: JobKind) -> None:
        """Raise ``ValueError`` for a kind this executor could not run."""

    def computes_here(self, kind: JobKind) -> bool:
        """True when this process runs ``kind``'s compute part (a crash here may be its doing)."""

    def claimed(self, conn: Conn, job: Job, kind: JobKind) -> None:
        """Inside the claim's transaction: adjust what the claim wrote (the first lease)."""

    def start(self, job: Job, kind: JobKind) -> Execution:
        """Start a claimed job's attempt; must not block."""

    def reaped(self, job: Job) -> None:
        """``job``'s lease was taken back (inside that transaction; must not block)."""

    async def run(self) -> None:
        """The executor's own background work, until cancelled."""


class Jobs:
    """The runner (a :class:`JobQueue`): lanes over the ``jobs`` table, compute parts on an executor."""

    def __init__(self, db: Database, settings: Settings, runtime: Runtime, executor: Executor) -> None:
        self.db = db
        self.settings = settings
        self.runtime = runtime
        self.store = LeaseStore(db, settings)
        self.executor = executor
        self.kinds: dict[str, JobKind] = {}
        self.running: dict[str, Execution] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._waiters: dict[str, list[asyncio.Future[Job]]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        executor.attach(self)

    def register(self, kind: JobKind) -> None:
        """Each service registers the kinds it owns (the executor may refuse one it cannot run)."""
        if kind.lane not in LANES:
            raise ValueError(f"unknown lane {kind.lane!r}")
        if kind.name in self.kinds:
            raise ValueError(f"job kind {kind.name!r} registered twice")
        self.executor.admit(kind)
        self.kinds[kind.name] = kind

    def on_finish(self, kind: str, listener: Listener) -> None:
        self._listeners.setdefault(kind, []).append(listener)

    # -- enqueueing ------------------------------------------------------------------------------
    def enqueue(self, conn: Conn, kind: str, params: Mapping[str, Any], lane: str | None = None) -> Job:
        """Insert a job inside the caller's write transaction; call :meth:`wake` after commit.
        ``lane``: another lane than the kind's own (an upload of a file already here)."""
        if kind not in self.kinds:
            raise KeyError(f"no handler for job kind {kind!r}")
        if lane is not None and lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}")
        payloads.check(kind, params)
        return self.store.insert(conn, kind, lane or self.kinds[kind].lane, params)

    def wake(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def submit(self, kind: str, params: Mapping[str, Any]) -> Job:
        job = await self.db.execute_write_fn(lambda conn: self.enqueue(conn, kind, params))
        self.wake()
        return job

    async def get(self, job_id: str) -> Job | None:
        return await self.db.execute_fn(lambda conn: self.store.get(conn, job_id))

    async def wait(self, job_id: str, timeout: float) -> Job | None:
        """The job's row once it has ended, or as it stands after ``timeout`` seconds."""
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(future)  # before reading: no end slips between
        try:
            job = await self.get(job_id)
            if job is None or job["status"] in ("done", "failed") or timeout <= 0:
                return job
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except asyncio.TimeoutError:
                return await self.get(job_id)
        finally:
            waiters = self._waiters.get(job_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiters.pop(job_id, None)

    async def cancel(self, job_id: str, timeout: float = 10.0) -> Job | None:
        """Ask for a job's end; the row as it stands once the runner has ended it (None: no such job)."""
        job = await self.db.execute_write_fn(lambda conn: request_cancel(conn, job_id))
        if job is None:
            return await self.get(job_id)
        self.wake()
        return await self.wait(job_id, timeout)

    # -- the loop --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Recover what a crash left, then reap expired leases and start claimed jobs, until cancelled."""
        self._loop = asyncio.get_running_loop()
        here = lambda name: name in self.kinds and self.executor.computes_here(self.kinds[name])  # noqa: E731
        for job_id in await self.db.execute_write_fn(
                lambda conn: self.store.recover(conn, here, self.kinds.__contains__, self._reaped)):
            self._ended(job_id)
        executor = asyncio.create_task(self.executor.run(), name="jobs-executor")
        try:
            await self._loop_forever()
        finally:
            executor.cancel()
            await asyncio.gather(executor, return_exceptions=True)
            await self._interrupted()

    async def _loop_forever(self) -> None:
        while True:
            self._wake.clear()
            ended = await self.db.execute_write_fn(
                lambda conn: self.store.reap(conn, self.kinds.__contains__, self._reaped))
            ended += await self.db.execute_write_fn(lambda conn: self.store.cancel_requested(conn, self._reaped))
            for job_id in ended:  # announced once their transaction has committed
                self._ended(job_id)
            for lane in LANES:
                while self._busy(lane) < self.executor.capacity[lane]:
                    job = await self.db.execute_write_fn(lambda conn, lane=lane: self._claim(conn, lane))
                    if job is None:
                        break
                    self.running[job["id"]] = self.executor.start(job, self.kinds[job["kind"]])
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(5.0, self.settings.job_lease / 4))
            except asyncio.TimeoutError:
                pass

    def _busy(self, lane: str) -> int:
        return sum(1 for e in self.running.values() if e.lane == lane and not e.abandoned)

    def _claim(self, conn: Conn, lane: str) -> Job | None:
        # A job whose superseded attempt still runs here waits until that attempt has stopped.
        job = self.store.claim(conn, lane, [e.job_id for e in list(self.running.values()) if e.exclusive])
        if job is not None:
            self.executor.claimed(conn, job, self.kinds[job["kind"]])
        return job

    def _reaped(self, job: Job) -> None:
        execution = self.running.get(job["id"])
        if execution is not None:
            execution.abandoned = True  # its thread may wake later; its token no longer counts
        self.executor.reaped(job)

    async def _interrupted(self) -> None:
        """A clean stop: the jobs this process runs go back to the queue as they were."""
        mine = [e.job_id for e in self.running.values() if not e.abandoned and e.here]
        if not mine:
            return
        try:
            await self.store.put_back(mine)
            log.info("stopping: %d running jobs go back to the queue", len(mine))
        except Exception:
            log.exception("could not put the running jobs back in the queue")

    # -- ends (either executor) ------------------------------------------------------------------
    def conclude(self, kind: JobKind, ctx: JobContext, run: Callable[[], dict[str, Any] | None]) -> tuple[
            str, dict[str, Any] | None, str | None, str | None]:
        """Run what is left of a job here (``run``: its compute part's result, or the whole job),
        then its kind's commit: the end to record, as ``(status, result, error, error_code)``.
        Raises :class:`~.kinds.JobLost` for an attempt that was superseded meanwhile."""
        try:
            result = run()
            if kind.commit is not None:
                result = kind.commit(ctx, result or {})
            return "done", result, None, None
        except JobLost:
            raise
        except Exception as exc:
            error, code = safe_error(exc)
            if code == "INTERNAL_ERROR":
                log.exception("job %s (%s) crashed", ctx.id, ctx.kind)
                error = f"Internal error while running the job (the server log has it under {ctx.id})"
            else:
                log.warning("job %s (%s) failed: %s", ctx.id, ctx.kind, error)
            return "failed", None, error, code

    def end(self, job_id: str, token: str, status: str, result: dict[str, Any] | None, error: str | None,
            code: str | None) -> bool:
        """Record a job's end if ``token`` still owns it (fencing) and announce it; False if not."""
        try:
            kept = self.store.finish(job_id, token, status, result, error, code)
        except Exception:
            log.exception("job %s: could not record its end", job_id)
            kept = False
        if kept and self._loop is not None:
            self._loop.call_soon_threadsafe(self._ended, job_id)
        elif not kept:
            log.warning("job %s: result of a superseded attempt discarded", job_id)
        return kept

    def forget(self, job_id: str, execution: Execution | None = None) -> None:
        """The attempt stopped (``execution``: only if it is still the job's current one). From any
        thread; done on the event loop, after the loop has noted the attempt as running: a job of
        a few milliseconds (a retention pass) can end on its thread before ``executor.start``
        has returned, and forgotten then it would be noted afterwards and hold its lane for good."""
        if self._loop is None:
            self._forget(job_id, execution)
            return
        try:
            self._loop.call_soon_threadsafe(self._forget, job_id, execution)
        except RuntimeError:  # the loop has closed: nothing claims anything any more
            self._forget(job_id, execution)

    def _forget(self, job_id: str, execution: Execution | None) -> None:
        if execution is None or self.running.get(job_id) is execution:
            self.running.pop(job_id, None)
        self._wake.set()

    def _ended(self, job_id: str) -> None:
        self.runtime.spawn(self._announce(job_id), name=f"job-end-{job_id}")

    async def _announce(self, job_id: str) -> None:
        job = await self.get(job_id)
        if job is None:
            return
        for listener in self._listeners.get(job["kind"], []):
            try:
                await listener(job)
            except Exception:
                log.exception("on_finish listener for job %s failed", job_id)
        for future in self._waiters.pop(job_id, []):
            if not future.done():
                future.set_result(job)
