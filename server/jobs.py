"""Durable jobs: rows in SQLite, run in lanes by worker threads, durable by construction.

Long work (imports, exports, transcription, indexing) must survive a restart, must not block the
event loop, and must not be done twice. The rules that make that so:

- A job is enqueued *in the same transaction* as whatever causes it (:meth:`Jobs.enqueue` takes
  the caller's connection), so "the session stopped" and "export it" commit together.
- A claim takes a lease with a fresh token. Liveness is proved *by time*, not by progress steps:
  while the compute part runs, a :class:`Heartbeat` renews the lease every ``job_lease / 4``
  seconds (whisper may decode a long batch without a progress report, and a busy machine makes
  every step slower: neither is a hang). Only a worker whose process stops renewing for
  ``job_lease`` seconds (dead, frozen, or on a partitioned machine) is presumed hung, and the
  reaper, which runs all the time, queues the job again. A stale worker that wakes up finds its
  token gone: its next step raises :class:`JobLost` and its result is discarded (fencing).
  Imports are the exception (``JobKind.heartbeat=False``): their step is a network read, and a
  read that brings nothing for a lease is a stalled connection that a fresh attempt cures (it
  runs beside the stalled one, which is fenced and stops when its read returns).
- Otherwise an attempt never runs beside the one it superseded: a job whose earlier attempt is
  still running here is not claimed until that attempt has stopped (at its next step), and a job
  worker holds a per-job lock while it runs an attempt (``server/celery_jobs.py``).
- Handlers are idempotent, keyed by job id: ids of what they create are fixed before they run
  (in ``params``), so a rerun replaces what a killed attempt left, never adds a second copy.
- Each kind belongs to a lane with its own workers (imports, exports, index, renders, renders_long,
  maintenance),
  so a slow import cannot starve exports or indexing, nor a long render an export, nor
  housekeeping (retention) anything.
- A handler is split where the database is: an optional ``prepare`` (reads, on the control node,
  merged into the params it hands on), the handler itself (the *compute* part: reads and writes
  only files under the media root and returns a JSON-able result, so it can run on a job worker
  with no database) and an optional ``commit`` (writes rows, on the control node, and returns the
  job's result). Kinds marked ``local`` (their work *is* choosing rows: retention) always run on
  the control node.

:class:`JobQueue` is the interface routes and services use; :class:`Jobs` is the embedded
backend, which runs the three parts one after the other on one thread. ``server/celery_jobs.py``
stands behind the same interface with the same parts: compute on ``reeldb worker jobs``
processes through Celery, prepare and commit here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Protocol, TypeVar, runtime_checkable

from .database import Conn, Database, dumps, loads, row, rows
from .errors import safe_error
from .ids import new_id
from .runtime import Runtime
from .settings import Settings

log = logging.getLogger("reeldb.jobs")

T = TypeVar("T")
#: ``uploads``: files already received (the SDK's upload), ``imports``: downloads from URLs, which
#: may trickle for as long as their deadline allows; neither waits behind the other. ``renders_long``:
#: renders over ``REELDB_RENDER_LONG_PIXEL_FRAMES``, one at a time beside one short render.
#: ``previews``: posters and storyboards, made after the stream they preview (one at a time).
LANES = ("uploads", "imports", "exports", "index", "renders", "renders_long", "previews", "maintenance")


class JobLost(Exception):
    """This worker's lease was taken back (it was presumed hung); stop, the job runs elsewhere."""


@dataclass
class JobContext:
    """What a handler gets: its job, the database seam, and a progress report that is its heartbeat."""

    id: str
    kind: str
    params: dict[str, Any]
    settings: Settings
    #: None on a job worker: its compute part may not touch the database (see the module doc).
    db: Database | None
    _report: Callable[[float, bool], None]
    #: Set by the :class:`Heartbeat` when it learns that a newer attempt owns the job.
    lost: bool = False
    #: Run the compute part in a child process: the server stopped while this job ran before.
    isolated: bool = False

    def progress(self, fraction: float) -> None:
        """Report progress in [0, 1]; also a step where a superseded attempt stops. Raises :class:`JobLost`."""
        if self.lost:
            raise JobLost(self.id)
        self._report(max(0.0, min(1.0, fraction)), False)

    def heartbeat(self) -> None:
        """Prove liveness without new progress (call it from long steps that report nothing)."""
        self._report(-1.0, True)

    def read(self, fn: Callable[[Conn], T]) -> T:
        return self._database().read_sync(fn)

    def write(self, fn: Callable[[Conn], T]) -> T:
        return self._database().write_sync(fn)

    def _database(self) -> Database:
        if self.db is None:
            raise RuntimeError(f"job {self.id} ({self.kind}) touched the database on a job worker: "
                               "that belongs in the kind's prepare or commit part")
        return self.db


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


def run_compute(kind: "JobKind", ctx: JobContext, lease: float) -> dict[str, Any] | None:
    """Run a kind's compute part, with a :class:`Heartbeat` unless the kind proves liveness by
    progress alone (imports). Both executors call this."""
    if not kind.heartbeat:
        return kind.handler(ctx)
    with Heartbeat(ctx, lease / 4):
        result = _in_child(ctx) if ctx.isolated and not (kind.local or kind.own_process) else kind.handler(ctx)
    if ctx.lost:
        raise JobLost(ctx.id)
    return result


def _in_child(ctx: JobContext) -> dict[str, Any]:
    """The compute part in a child process (``render_process``): if this job is what brought the
    server down, it can only bring down the child now."""
    from .render_process import render_in_child

    log.info("job %s (%s) runs in a child process: the server stopped while it ran before", ctx.id, ctx.kind)
    return render_in_child(ctx.id, ctx.params, str(ctx.settings.media_root_dir), 0, ctx.progress, kind=ctx.kind,
                           data_dir=str(ctx.settings.data_dir))


Handler = Callable[[JobContext], dict[str, Any] | None]
#: Control node, before the compute part: what it needs from the database, added to its params.
Prepare = Callable[[Conn, dict[str, Any]], dict[str, Any]]
#: Control node, after it: writes the compute part's result as rows; returns the job's result.
Commit = Callable[[JobContext, dict[str, Any]], dict[str, Any] | None]
#: Index a new asset's spoken words unasked, inside the transaction that records it:
#: (that transaction's connection, asset id, media path). ``Spoken.auto_index`` is the one.
AutoIndex = Callable[[Conn, str, str], None]
#: Called on the event loop when a job of a kind ends (done or failed), with its row.
Listener = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    name: str
    lane: str
    #: The compute part (the whole job when there is no ``commit``).
    handler: Handler
    commit: Commit | None = None
    prepare: Prepare | None = None
    #: Runs on the control node whatever the backend (needs the database throughout).
    local: bool = False
    #: Liveness by time (:class:`Heartbeat`); False: by progress reports alone (see the module doc).
    heartbeat: bool = True
    #: Its compute part runs in a child process of its own already (renders): never wrapped in another.
    own_process: bool = False


@runtime_checkable
class JobQueue(Protocol):
    """What the rest of the server needs of a job backend."""

    def register(self, kind: JobKind) -> None: ...

    def on_finish(self, kind: str, listener: Listener) -> None: ...

    def enqueue(self, conn: Conn, kind: str, params: Mapping[str, Any], lane: str | None = None) -> dict[str, Any]: ...

    def wake(self) -> None: ...

    async def submit(self, kind: str, params: Mapping[str, Any]) -> dict[str, Any]: ...

    async def get(self, job_id: str) -> dict[str, Any] | None: ...

    async def wait(self, job_id: str, timeout: float) -> dict[str, Any] | None: ...

    async def cancel(self, job_id: str, timeout: float = 10.0) -> dict[str, Any] | None: ...


@dataclass
class _Execution:
    job_id: str
    lane: str
    token: str
    abandoned: bool = False
    #: No new attempt of this job starts here while this one runs (kinds with a heartbeat).
    exclusive: bool = True
    #: Its compute part runs in this process (not on a job worker).
    here: bool = True
    last_write: float = field(default_factory=time.monotonic)
    last_progress: float = 0.0


class Jobs:
    """The embedded backend: lanes of daemon worker threads over the ``jobs`` table."""

    def __init__(self, db: Database, settings: Settings, runtime: Runtime) -> None:
        self.db = db
        self.settings = settings
        self.runtime = runtime
        self._kinds: dict[str, JobKind] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._running: dict[str, _Execution] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Renders (the editor) run one short and one long at a time: x264 already uses every core,
        #: and a long render must not hold up the short ones (see server/editor.py, RENDER_LANES).
        self.capacity = {"uploads": settings.import_workers, "imports": settings.import_workers,
                         "exports": settings.workers, "index": settings.workers, "renders": 1, "renders_long": 1,
                         "previews": 1, "maintenance": 1}

    def register(self, kind: JobKind) -> None:
        if kind.lane not in LANES:
            raise ValueError(f"unknown lane {kind.lane!r}")
        self._kinds[kind.name] = kind

    def on_finish(self, kind: str, listener: Listener) -> None:
        self._listeners.setdefault(kind, []).append(listener)

    # -- enqueueing ------------------------------------------------------------------------------
    def enqueue(self, conn: Conn, kind: str, params: Mapping[str, Any], lane: str | None = None) -> dict[str, Any]:
        """Insert a job inside the caller's write transaction; call :meth:`wake` after commit.
        ``lane``: another lane than the kind's own (an upload of a file already here)."""
        if kind not in self._kinds:
            raise KeyError(f"no handler for job kind {kind!r}")
        if lane is not None and lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}")
        now = time.time()
        job = {"id": new_id("job"), "kind": kind, "lane": lane or self._kinds[kind].lane, "params": dumps(dict(params)),
               "status": "queued", "progress": 0.0, "result": None, "error": None, "attempts": 0,
               "lease_until": None, "owner": None, "created_at": now, "updated_at": now}
        conn["jobs"].insert(job)
        return job

    def wake(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def submit(self, kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
        job = await self.db.execute_write_fn(lambda conn: self.enqueue(conn, kind, params))
        self.wake()
        return job

    async def get(self, job_id: str) -> dict[str, Any] | None:
        return await self.db.execute_fn(lambda conn: row(conn, "select * from jobs where id = ?", [job_id]))

    async def wait(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """The job's row once it has ended, or as it stands after ``timeout`` seconds."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
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

    # -- the runner ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Reap expired leases and start claimed jobs, until cancelled."""
        self._loop = asyncio.get_running_loop()
        for job_id in await self.db.execute_write_fn(self._recover):
            self._ended(job_id)
        try:
            await self._loop_forever()
        finally:
            await self._interrupted()

    async def _loop_forever(self) -> None:
        while True:
            self._wake.clear()
            ended = await self.db.execute_write_fn(self._reap)
            ended += await self.db.execute_write_fn(self._cancel_requested)
            for job_id in ended:  # announced once their transaction has committed
                self._ended(job_id)
            for lane in LANES:
                while self._busy(lane) < self.capacity[lane]:
                    job = await self.db.execute_write_fn(lambda conn, lane=lane: self._claim(conn, lane))
                    if job is None:
                        break
                    self._start(job)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(5.0, self.settings.job_lease / 4))
            except asyncio.TimeoutError:
                pass

    def _busy(self, lane: str) -> int:
        return sum(1 for e in self._running.values() if e.lane == lane and not e.abandoned)

    def _recover(self, conn: Conn) -> list[str]:
        """On start: every running job belonged to a process that ended without stopping it (a crash,
        SIGKILL, the kernel's OOM killer). It may be what ended it: it runs again in a child process
        (``JobContext.isolated``), never in this one, and after ``REELDB_JOB_MAX_CRASHES`` such ends
        it fails with that reason. (A clean stop puts its jobs back itself: :meth:`_interrupted`.)"""
        now = time.time()
        ended: list[str] = []
        for job in list(rows(conn, "select * from jobs where status = 'running'")):
            if not self._computes_here(job["kind"]):  # it ran elsewhere (a job worker): not this crash's doing
                conn["jobs"].update(job["id"], {"lease_until": 0})
                continue
            crashes = (job.get("crashes") or 0) + 1
            if crashes >= self.settings.job_max_crashes:
                conn["jobs"].update(job["id"], {
                    "status": "failed", "owner": None, "lease_until": None, "updated_at": now, "finished_at": now,
                    "crashes": crashes, "error_code": "JOB_CRASHED",
                    "error": f"The server stopped {crashes} times while this job ran, so it is not run again by "
                             "itself (REELDB_JOB_MAX_CRASHES)"})
                log.error("job %s (%s) failed: the server stopped %d times while it ran", job["id"], job["kind"], crashes)
                ended.append(job["id"])
            else:
                conn["jobs"].update(job["id"], {"lease_until": 0, "crashes": crashes})
        return ended + self._reap(conn, "requeued after a restart (it runs in a child process now)",
                                  "The server stopped while this job was running, too many times")

    def _computes_here(self, kind: str) -> bool:
        """True when this process runs ``kind``'s compute part (always, for the embedded runner)."""
        return kind in self._kinds and not self._kinds[kind].local

    async def _interrupted(self) -> None:
        """A clean stop: the jobs this process runs go back to the queue as they were (not a crash,
        not an attempt); their threads are fenced off by the cleared owner."""
        mine = [e.job_id for e in self._running.values() if not e.abandoned and e.here]
        if not mine:
            return
        marks = ", ".join("?" for _ in mine)
        try:
            await self.db.execute_write_fn(lambda conn: conn.execute(
                f"update jobs set status = 'queued', owner = null, lease_until = null, "
                f"attempts = max(0, attempts - 1) where status = 'running' and id in ({marks})", mine))
            log.info("stopping: %d running jobs go back to the queue", len(mine))
        except Exception:
            log.exception("could not put the running jobs back in the queue")

    def _reap(self, conn: Conn, requeued: str = "presumed hung (no heartbeat within its lease); requeued",
              given_up: str = "The job's worker hung while running it, too many times") -> list[str]:
        """Requeue (or fail, after too many attempts) the running jobs whose lease ran out; the ids of
        those it ended, to announce after this transaction commits."""
        now = time.time()
        ended: list[str] = []
        for job in list(rows(conn, "select * from jobs where status = 'running' and lease_until < ?", [now])):
            execution = self._running.get(job["id"])
            if execution is not None:
                execution.abandoned = True  # its thread may wake later; its token no longer counts
            self._reaped(job)
            if job["attempts"] < self.settings.job_max_attempts and job["kind"] in self._kinds:
                conn["jobs"].update(job["id"], {"status": "queued", "owner": None, "lease_until": None,
                                                "updated_at": now})
                log.warning("job %s (%s) %s", job["id"], job["kind"], requeued)
            else:
                conn["jobs"].update(job["id"], {
                    "status": "failed", "owner": None, "lease_until": None, "updated_at": now, "error": given_up})
                ended.append(job["id"])
        return ended

    def _cancel_requested(self, conn: Conn) -> list[str]:
        """End every job someone asked to cancel (``cancelling``: the API's cancel or ``reeldb jobs
        cancel``, also from another process). A running attempt loses its lease here, so it stops at
        its next step (its renewal finds the job no longer running) and its result is discarded."""
        now = time.time()
        ended: list[str] = []
        for job in list(rows(conn, "select * from jobs where status = 'cancelling'")):
            execution = self._running.get(job["id"])
            if execution is not None:
                execution.abandoned = True
            self._reaped(job)
            conn["jobs"].update(job["id"], {"status": "failed", "owner": None, "lease_until": None, "updated_at": now,
                                            "finished_at": now, "error": CANCELLED, "error_code": "CANCELLED"})
            log.info("job %s (%s) cancelled", job["id"], job["kind"])
            ended.append(job["id"])
        return ended

    async def cancel(self, job_id: str, timeout: float = 10.0) -> dict[str, Any] | None:
        """Ask for a job's end; the row as it stands once the runner has ended it (None: no such job)."""
        job = await self.db.execute_write_fn(lambda conn: request_cancel(conn, job_id))
        if job is None:
            return await self.get(job_id)
        self.wake()
        return await self.wait(job_id, timeout)

    def _reaped(self, job: dict[str, Any]) -> None:
        """Hook: ``job``'s lease ran out (inside the reaping transaction; must not block)."""

    def _claim(self, conn: Conn, lane: str) -> dict[str, Any] | None:
        now = time.time()
        token = uuid.uuid4().hex
        # A job whose superseded attempt still runs here waits until that attempt has stopped.
        busy = [e.job_id for e in list(self._running.values()) if e.exclusive]
        return row(conn,
                   "update jobs set status = 'running', owner = ?, lease_until = ?, attempts = attempts + 1, "
                   "updated_at = ?, started_at = ? where id = (select id from jobs where status = 'queued' and lane = ? "
                   f"and id not in ({', '.join('?' for _ in busy)}) order by created_at limit 1) returning *",
                   [token, now + self.settings.job_lease, now, now, lane, *busy])

    def _start(self, job: dict[str, Any]) -> None:
        kind = self._kinds[job["kind"]]
        execution = _Execution(job["id"], job["lane"], job["owner"], exclusive=kind.heartbeat)
        self._running[job["id"]] = execution
        ctx = JobContext(job["id"], job["kind"], loads(job["params"], {}), self.settings, self.db,
                         lambda fraction, force: self._report(execution, fraction, force),
                         isolated=bool(job.get("crashes")))
        self.runtime.thread(lambda: self._work(kind, ctx, execution), name=f"job-{job['lane']}")

    def _report(self, execution: _Execution, fraction: float, force: bool) -> None:
        """Progress and lease renewal, written at most every so often; raises JobLost when fenced."""
        now = time.monotonic()
        moved = fraction >= 0 and (fraction - execution.last_progress >= 0.01 or fraction >= 1.0)
        due = now - execution.last_write >= self.settings.job_lease / 4
        if not (moved or due or force) or (force and now - execution.last_write < 1.0):
            if execution.abandoned:
                raise JobLost(execution.job_id)
            return
        execution.last_write = now
        changes: dict[str, Any] = {"lease_until": time.time() + self.settings.job_lease, "updated_at": time.time()}
        if fraction >= 0:
            execution.last_progress = fraction
            changes["progress"] = fraction

        def renew(conn: Conn) -> int:
            sets = ", ".join(f"{k} = ?" for k in changes)
            cur = conn.execute(f"update jobs set {sets} where id = ? and owner = ? and status = 'running'",
                               [*changes.values(), execution.job_id, execution.token])
            return cur.rowcount

        if self.db.write_sync(renew) == 0:
            execution.abandoned = True
            raise JobLost(execution.job_id)

    def _work(self, kind: JobKind, ctx: JobContext, execution: _Execution) -> None:
        try:
            if kind.prepare is not None:
                ctx.params = {**ctx.params, **self.db.read_sync(lambda conn: kind.prepare(conn, ctx.params))}
            result = run_compute(kind, ctx, self.settings.job_lease)
            if kind.commit is not None:
                result = kind.commit(ctx, result or {})
            status, error = "done", None
        except JobLost:
            log.info("job %s: a newer attempt owns it; this one stops", ctx.id)
            self._forget(execution)
            return
        except Exception as exc:
            status, result = "failed", None
            error, code = safe_error(exc)
            if code == "INTERNAL_ERROR":
                log.exception("job %s (%s) crashed", ctx.id, ctx.kind)
                error = f"Internal error while running the job (the server log has it under {ctx.id})"
            else:
                log.warning("job %s (%s) failed: %s", ctx.id, ctx.kind, error)
        else:
            code = None
        self._record_end(ctx.id, execution.token, status, result, error, code)
        self._forget(execution)

    def _record_end(self, job_id: str, token: str, status: str, result: dict[str, Any] | None, error: str | None,
                    code: str | None) -> bool:
        """Write a job's end if ``token`` still owns it (fencing) and announce it; False if not."""
        def finish(conn: Conn) -> int:
            changes = {"status": status, "result": dumps(result) if result is not None else None,
                       "error": error, "error_code": code, "lease_until": None, "updated_at": time.time(),
                       "finished_at": time.time()}
            if status == "done":
                changes["progress"] = 1.0
            sets = ", ".join(f"{k} = ?" for k in changes)
            return conn.execute(f"update jobs set {sets} where id = ? and owner = ? and status = 'running'",
                                [*changes.values(), job_id, token]).rowcount

        try:
            kept = self.db.write_sync(finish)
        except Exception:
            log.exception("job %s: could not record its end", job_id)
            kept = 0
        if kept and self._loop is not None:
            self._loop.call_soon_threadsafe(self._ended, job_id)
        elif not kept:
            log.warning("job %s: result of a superseded attempt discarded", job_id)
        return bool(kept)

    def _forget(self, execution: _Execution) -> None:
        if self._running.get(execution.job_id) is execution:
            self._running.pop(execution.job_id, None)
        self.wake()

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


#: The error of a cancelled job (``error_code`` ``CANCELLED``).
CANCELLED = "The job was cancelled"


def request_cancel(conn: Conn, job_id: str) -> dict[str, Any] | None:
    """Mark a queued or running job ``cancelling`` (the runner ends it at its next pass); None when
    it has ended already or does not exist. Any process with the database may call it (the CLI)."""
    return row(conn, "update jobs set status = 'cancelling', updated_at = ? where id = ? "
                     "and status in ('queued', 'running') returning *", [time.time(), job_id])


def async_response(job: dict[str, Any]) -> dict[str, Any]:
    """The body VideoDB's SDK polls at ``output_url``: processing, done or failed."""
    if job["status"] in ("queued", "running", "cancelling"):
        return {"success": True, "status": "processing", "data": {"percentage": round((job["progress"] or 0) * 100, 1)}}
    if job["status"] == "done":
        return {"success": True, "status": "done", "data": loads(job["result"], {})}
    return {"success": False, "status": "failed", "message": job["error"] or "Job failed"}


def make_jobs(db: Database, settings: Settings, runtime: Runtime) -> Jobs:
    """The backend ``REELDB_JOBS`` names: ``embedded`` (default: this module's runner) or ``celery``
    (server/celery_jobs.py, imported only then: the default install never loads Celery)."""
    if settings.jobs == "celery":
        from .celery_jobs import CeleryJobs

        return CeleryJobs(db, settings, runtime)
    if settings.jobs != "embedded":
        raise ValueError(f"REELDB_JOBS={settings.jobs!r}: embedded or celery")
    return Jobs(db, settings, runtime)
