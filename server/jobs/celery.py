"""Jobs on Celery with Redis (``REELDB_JOBS=celery``): compute parts on ``reeldb worker jobs``
processes, on this machine or others sharing the media root; the control node keeps the rows.

Why this shape: the control node stays the one writer of SQLite, so a worker never opens the
database. The runner's rules carry over (``server/jobs/runner.py``): the ``jobs`` row is still the
truth, claimed with a fresh token; a claimed job becomes one Celery message on its lane's queue
(imports, exports, index, renders, renders_long, previews, maintenance) carrying the job id, that token and the params
(plus what the kind's ``prepare`` read). The worker reports back on one Redis stream
(``reeldb:jobs:events``): ``started``, ``progress`` (the heartbeat that renews the lease),
``done`` with the compute part's JSON result, or ``failed``. Both directions are typed messages of
``server/jobs/wire.py``, validated on arrival and versioned: a worker of another version refuses the
job (one log line on each end) and the job fails with that reason instead of running. The control node reads that stream
(a consumer group, so nothing is lost across its restarts), runs the kind's ``commit`` and ends
the row, fenced by the token: a second result for a job already ended, or one from a superseded
attempt, is ignored. So a worker SIGKILLed mid-job means: its heartbeats stop, the reaper queues
the job again after ``REELDB_JOB_LEASE`` with a new token, another worker runs it, and its
result is committed once (ids fixed in params make the rerun replace, never add).

Celery's own guarantees sit under that: late acknowledgement with prefetch 1 (a message is
acknowledged when its job ends, so a dead worker's message goes back to the queue after the
visibility timeout; the worker that picks it up sees its token is stale and drops it), retries
with backoff for a lost Redis connection, one queue per lane. Before a worker starts a job it
takes a per-job lock in Redis (``SET NX`` with the lease as expiry, renewed by its heartbeat,
which beats by time: ``kinds.Heartbeat``), so a redelivered message never runs the same attempt
twice at once, and a new attempt never runs beside the one it superseded: it waits (the task is
retried a little later) until the old attempt has stopped at its next step, or its process died
and the lock expired.

Kinds marked ``local`` (retention: its work is choosing rows) still run on the control node's
own threads, through the embedded executor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from concurrent.futures import Executor as Pool
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis
from celery import Celery, Task
from kombu import Exchange, Queue

from ..database import Conn, loads
from ..errors import safe_error
from ..runtime import Runtime
from ..settings import Settings
from . import wire
from .embedded import EmbeddedExecutor
from .compute import Throttle, run_compute
from .kinds import LANES, JobContext, JobKind, JobLost
from .leases import Job
from .parts import compute_parts
from .runner import Execution, Jobs

log = logging.getLogger("reeldb.jobs.celery")

TASK = "reeldb.job"
EVENTS = "reeldb:jobs:events"
GROUP = "control"
WORKER_KEYS = "reeldb:workers:jobs:"
#: Jobs of a lane in flight at once (messages on its queue plus jobs running on workers): the
#: workers' own concurrency is what limits the work; this only bounds what one claim loop sends.
IN_FLIGHT = 256
WORKER_HEARTBEAT = 5.0


def token_key(job_id: str) -> str:
    """The attempt that may run ``job_id`` now (its fencing token); gone once the job ended."""
    return f"reeldb:job:{job_id}:token"


def lock_key(job_id: str) -> str:
    """Held by the attempt of ``job_id`` that runs now, whichever it is (see the module doc); its
    value is ``"<worker name> <token>"``."""
    return f"reeldb:job:{job_id}:lock"


class Busy(Exception):
    """An earlier attempt of this job still runs on some worker: try this one again shortly."""


def celery_app(settings: Settings) -> Celery:
    """The Celery app both sides build from the same settings (no result backend: results travel
    on the events stream, where the control node commits them)."""
    if not settings.redis_url:
        raise ValueError("REELDB_JOBS=celery needs REELDB_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
    app = Celery("reeldb", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        # Each lane its own exchange and key: a message reaches its lane's queue only.
        task_queues=[Queue(lane, Exchange(lane, type="direct"), routing_key=lane) for lane in LANES],
        task_default_queue="index", task_ignore_result=True,
        broker_transport_options={"visibility_timeout": settings.celery_visibility_timeout},
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        task_serializer="json", accept_content=["json"], worker_send_task_events=False,
    )
    return app


def _client(settings: Settings) -> "redis.Redis[str]":
    return redis.Redis.from_url(settings.redis_url or "", decode_responses=True, socket_timeout=10,
                                socket_connect_timeout=5, health_check_interval=30)


def job_workers(settings: Settings) -> list[dict[str, Any]]:
    """The job workers alive now, from the heartbeat each writes every few seconds (for
    ``/metrics`` and ``reeldb doctor``). Raises ``redis.RedisError`` when Redis cannot be reached."""
    client = _client(settings)
    try:
        found = []
        for key in sorted(client.scan_iter(match=WORKER_KEYS + "*", count=100)):
            raw = client.get(key)
            if raw:
                found.append(json.loads(raw))
        return found
    finally:
        client.close()


# -- the control node ----------------------------------------------------------------------------
class CeleryExecutor:
    """Compute parts sent to Celery job workers; ``local`` kinds on this process's threads."""

    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.app = celery_app(settings)
        self.redis = _client(settings)
        self.capacity = {lane: IN_FLIGHT for lane in LANES}
        self.local = EmbeddedExecutor(settings, runtime)
        self._dispatcher: Pool = runtime.pool("celery-dispatch", 1)
        self._stopping = threading.Event()
        self._runner: Jobs | None = None

    def attach(self, runner: Jobs) -> None:
        self._runner = runner
        self.local.attach(runner)

    @property
    def runner(self) -> Jobs:
        assert self._runner is not None, "attach() first"
        return self._runner

    def job_workers(self) -> list[dict[str, Any]]:
        return job_workers(self.settings)

    def admit(self, kind: JobKind) -> None:
        """A job worker runs what ``parts.compute_parts()`` lists: it must be what the service declared."""
        if not kind.compute.local and compute_parts().get(kind.name) is not kind.compute:
            raise ValueError(f"job kind {kind.name!r}: its compute part is not the one server/jobs/parts.py lists")

    def computes_here(self, kind: JobKind) -> bool:
        return False  # local kinds only choose rows; every compute part runs on a job worker

    def claimed(self, conn: Conn, job: Job, kind: JobKind) -> None:
        if not kind.compute.local:
            # Waiting in the queue is not hanging: the lease starts when a worker starts the job.
            self.runner.store.extend(conn, job, time.time() + self.settings.celery_visibility_timeout
                                     + self.settings.job_lease)

    def start(self, job: Job, kind: JobKind) -> Execution:
        if kind.compute.local:
            return self.local.start(job, kind)
        self._dispatcher.submit(self._dispatch, job, kind)
        return Execution(job["id"], job["lane"], job["owner"], here=False)

    def reaped(self, job: Job) -> None:
        """A job whose lease ran out: a worker still on it learns it lost the job at its next report."""
        kind = self.runner.kinds.get(job["kind"])
        if kind is not None and not kind.compute.local:
            self.runner.running.pop(job["id"], None)
            self._dispatcher.submit(self._revoke, job["id"])

    async def run(self) -> None:
        self.runtime.thread(self._consume, name="celery-results")
        try:
            await asyncio.Event().wait()  # until the runner cancels us
        finally:
            self._stopping.set()

    # -- sending -----------------------------------------------------------------------------------
    def _dispatch(self, job: Job, kind: JobKind) -> None:
        runner = self.runner
        try:
            params = loads(job["params"], {})
            if kind.prepare is not None:
                params = {**params, **runner.db.read_sync(lambda conn: kind.prepare(conn, params))}  # type: ignore[misc]
            self.redis.set(token_key(job["id"]), job["owner"],
                           ex=int(self.settings.celery_visibility_timeout + self.settings.job_lease * 4))
            message = wire.job_message(job["id"], job["owner"], job["kind"], params, time.time())
            self.app.send_task(TASK, args=[message], queue=job["lane"], exchange=job["lane"], routing_key=job["lane"])
            log.debug("job %s (%s) sent to the %s queue", job["id"], job["kind"], job["lane"])
        except Exception:
            log.exception("job %s (%s): could not send it to Celery; it is queued again", job["id"], job["kind"])
            runner.db.write_sync(lambda conn: runner.store.release(conn, job["id"], job["owner"]))
            runner.forget(job["id"])

    def _revoke(self, job_id: str) -> None:
        try:
            self.redis.delete(token_key(job_id))
        except redis.RedisError:
            log.warning("job %s: could not revoke its token in Redis", job_id)

    # -- receiving ---------------------------------------------------------------------------------
    def _consume(self) -> None:
        """Read the workers' reports until the runner stops: a consumer group, so what arrived
        while the control node was down is read first, and each entry is acknowledged once handled."""
        cursor = "0"  # this consumer's pending entries first, then new ones
        while not self._stopping.is_set():
            try:
                try:
                    self.redis.xgroup_create(EVENTS, GROUP, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                while not self._stopping.is_set():
                    answer = self.redis.xreadgroup(GROUP, "serve", {EVENTS: cursor}, count=64, block=1000)
                    entries = answer[0][1] if answer else []
                    if cursor == "0" and not entries:
                        cursor = ">"
                        continue
                    for entry_id, fields in entries:
                        try:
                            self._handle(wire.read_report(fields), time.time())
                        except (msgspec.ValidationError, msgspec.DecodeError, KeyError) as exc:
                            log.error("a job report that is not one of this version's (%s): %.200s", exc, fields)
                        except Exception:
                            log.exception("could not handle the job report %s", fields)
                        self.redis.xack(EVENTS, GROUP, entry_id)
                        self.redis.xdel(EVENTS, entry_id)
            except redis.RedisError as exc:
                log.warning("job reports: Redis unreachable (%s); retrying", exc)
                self._stopping.wait(2.0)
                cursor = "0"

    def _handle(self, report: wire.WorkerReport, handled: float) -> None:
        runner = self.runner
        if report.version != wire.VERSION:
            log.error("job worker %s speaks job wire version %s, this control node %s: it ran nothing; "
                      "run the same ReelDB version on every node", report.worker, report.version, wire.VERSION)
        if isinstance(report, (wire.Started, wire.Heartbeat)):
            kept = runner.store.renew(report.job_id, report.token,
                                      report.fraction if isinstance(report, wire.Heartbeat) else None)
            if isinstance(report, wire.Started):
                log.debug("job %s started on %s%s", report.job_id, report.worker, "" if kept else " (superseded)")
            return
        job = runner.db.read_sync(lambda conn: runner.store.get(conn, report.job_id))
        if job is None or job["status"] != "running" or job["owner"] != report.token:
            log.warning("job %s: a result from %s for an attempt that no longer owns it; ignored", report.job_id,
                        report.worker)
            return
        kind = runner.kinds.get(job["kind"])
        if isinstance(report, wire.Finished) and kind is not None:
            ctx = JobContext(report.job_id, job["kind"], loads(job["params"], {}), self.settings, runner.db,
                             lambda fraction, force: None)
            status, result, error, code = runner.conclude(kind, ctx, lambda: report.result)
        elif isinstance(report, wire.Failure):
            status, result, error, code = "failed", None, report.error or "Job failed", report.code
        else:
            status, result, error, code = "failed", None, f"No job kind {job['kind']!r} here", "INTERNAL_ERROR"
        if runner.end(report.job_id, report.token, status, result, error, code):
            log.info("job %s (%s) %s on %s%s", report.job_id, job["kind"], status, report.worker,
                     _timing(report, handled))
        self._revoke(report.job_id)
        runner.forget(report.job_id)


def _timing(report: wire.WorkerReport, handled: float) -> str:
    """What Celery added to a job, from a ``done`` report: the pickup (sent to received, not counting
    a wait for a free slot), the start (token check, lock, ``started``) and the report (posted to
    read here; the commit's SQL, which the embedded runner does too, is not counted), in ms, beside
    the compute part's own seconds. ``tests/bench/jobs.py`` reads these lines."""
    if not isinstance(report, wire.Finished):
        return ""
    overhead = (report.pickup + report.start + max(0.0, handled - report.posted)) * 1000
    return (f" (compute {report.compute:.3f} s; celery overhead {overhead:.1f} ms: pickup {report.pickup * 1000:.1f}, "
            f"start {report.start * 1000:.1f}, report {max(0.0, handled - report.posted) * 1000:.1f})")


# -- the worker ----------------------------------------------------------------------------------
@dataclass
class WorkerState:
    """What this worker process tells the control node about itself (its heartbeat key)."""

    name: str
    concurrency: int
    started_at: float = field(default_factory=time.time)
    #: When a job slot last became free (for the pickup latency each report carries).
    free_since: float = field(default_factory=time.time)
    running: dict[str, str] = field(default_factory=dict)
    done: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"name": self.name, "host": socket.gethostname(), "pid": os.getpid(), "lanes": list(LANES),
                    "concurrency": self.concurrency, "started_at": self.started_at, "running": dict(self.running),
                    "done": self.done, "failed": self.failed, "at": time.time()}


class JobWorker:
    """Runs compute parts for the control node: one Celery task, ``reeldb.job``."""

    def __init__(self, settings: Settings, name: str, concurrency: int) -> None:
        self.settings = settings
        self.state = WorkerState(name, concurrency)
        self.parts = compute_parts()
        self.redis = _client(settings)
        self.app = celery_app(settings)
        worker = self

        @self.app.task(name=TASK, bind=True, autoretry_for=(redis.ConnectionError, redis.TimeoutError),
                       retry_backoff=True, retry_backoff_max=60, retry_jitter=True, max_retries=8)
        def run_job(task: Task, message: Any) -> None:
            try:
                worker.run(message)
            except Busy:
                raise task.retry(countdown=min(5.0, settings.job_lease / 4), max_retries=None)

    def _post(self, report: wire.WorkerReport) -> None:
        self.redis.xadd(EVENTS, wire.report_fields(report))

    def run(self, raw: Any) -> None:
        """One task message: validated, fenced by its token, then run under the per-job lock."""
        received = time.time()
        try:
            message = wire.read_job_message(raw)
        except wire.WrongVersion as exc:
            job_id, token = (raw.get("job_id"), raw.get("token")) if isinstance(raw, dict) else (None, None)
            log.error("job %s refused: %s; run the same ReelDB version on every node", job_id, exc)
            if isinstance(job_id, str) and isinstance(token, str):
                self._post(wire.Failure(job_id, token, self.state.name, wire.VERSION,
                                        f"Refused by job worker {self.state.name}: {exc}", "WRONG_VERSION",
                                        wrong_version=True))
            return
        except (msgspec.ValidationError, TypeError) as exc:
            log.error("a job message that is not one (%s): %.200s", exc, raw)
            return
        job_id, token, kind = message.job_id, message.token, message.kind
        with self.state.lock:  # the message waited for a free slot until then: that is not overhead
            pickup = max(0.0, received - max(message.sent_at or received, self.state.free_since))
        if self.redis.get(token_key(job_id)) != token:
            log.info("job %s: this attempt was superseded or the job ended; message dropped", job_id)
            return
        lock = lock_key(job_id)
        holder = f"{self.state.name} {token}"  # who runs which attempt (tests and operators read it)
        if not self.redis.set(lock, holder, nx=True, ex=int(self.settings.job_lease) + 1):
            if (self.redis.get(lock) or "").endswith(f" {token}"):
                log.info("job %s: another worker runs this attempt; message dropped", job_id)
                return
            log.info("job %s: an earlier attempt still runs; this one waits for it to stop", job_id)
            raise Busy(job_id)
        part = self.parts.get(kind)
        with self.state.lock:
            self.state.running[job_id] = kind
        throttle = Throttle(self.settings.job_lease)

        def report(fraction: float, force: bool) -> None:
            if not throttle.due(fraction, force):
                return
            self.redis.expire(lock, int(self.settings.job_lease) + 1)  # held until this attempt stops
            if self.redis.get(token_key(job_id)) != token:
                raise JobLost(job_id)
            self._post(wire.Heartbeat(job_id, token, self.state.name, wire.VERSION, fraction))

        try:
            self._post(wire.Started(job_id, token, self.state.name, wire.VERSION))
            if part is None:
                raise RuntimeError(f"this worker has no compute part for job kind {kind!r}")
            begun = time.time()
            result = run_compute(part, JobContext(job_id, kind, message.params, self.settings, None, report),
                                 self.settings.job_lease)
            ended = time.time()
            self._post(wire.Finished(job_id, token, self.state.name, wire.VERSION, result, pickup=pickup,
                                     start=begun - received, compute=ended - begun, posted=time.time()))
            self._count("done")
        except JobLost:
            log.info("job %s: a newer attempt owns it; this one stops", job_id)
        except Exception as exc:
            error, code = safe_error(exc)
            if code == "INTERNAL_ERROR":
                log.exception("job %s (%s) crashed", job_id, kind)
                error = f"Internal error while running the job (worker {self.state.name}'s log has it under {job_id})"
            self._post(wire.Failure(job_id, token, self.state.name, wire.VERSION, error, code))
            self._count("failed")
        finally:
            with self.state.lock:
                self.state.running.pop(job_id, None)
                self.state.free_since = time.time()
            if self.redis.get(lock) == holder:
                self.redis.delete(lock)

    def _count(self, outcome: str) -> None:
        with self.state.lock:
            setattr(self.state, outcome, getattr(self.state, outcome) + 1)

    def _beat(self, stop: threading.Event) -> None:
        """The heartbeat key ``/metrics`` and ``reeldb doctor`` read; it expires when we die."""
        while not stop.is_set():
            try:
                self.redis.set(WORKER_KEYS + self.state.name, json.dumps(self.state.snapshot()),
                               ex=int(WORKER_HEARTBEAT * 3))
            except redis.RedisError as exc:
                log.warning("heartbeat: Redis unreachable (%s)", exc)
            stop.wait(WORKER_HEARTBEAT)

    def warm(self) -> None:
        """Load the whisper and embedding models before taking jobs: a first job would otherwise
        spend its lease loading them without a progress report, and be presumed hung."""
        import numpy as np

        from reeldb.index import embed
        from reeldb.index.transcribe import transcribe

        started = time.monotonic()
        transcribe(np.zeros(16000, np.float32), model_spec=self.settings.whisper_model)  # whisper and its VAD
        embed.embed_texts(["warm"], model_spec=self.settings.embed_model)
        log.info("models loaded in %.1f s", time.monotonic() - started)

    def serve(self, argv_extra: list[str] | None = None) -> int:
        self.warm()
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), name="jobs-heartbeat", daemon=True)
        beat.start()
        try:
            self.app.worker_main(["worker", "--queues", ",".join(LANES), "--pool", "threads",
                                  "--concurrency", str(self.state.concurrency), "--hostname",
                                  f"{self.state.name}@%h", "--loglevel", self.settings.log_level.upper(),
                                  "--without-gossip", "--without-mingle", *(argv_extra or [])])
        finally:
            stop.set()
            try:
                self.redis.delete(WORKER_KEYS + self.state.name)
            except redis.RedisError:
                pass
        return 0

