"""Durable jobs: rows in SQLite, run by a bounded pool of worker threads.

Long work (uploads from URLs, exports, indexing) must survive a restart and must not block the
event loop. A job is claimed with a lease that its runner keeps renewing; on start, jobs left
``running`` by a dead process are queued again (up to ``job_max_attempts``) or failed with a message
that says why. Handlers run in threads with their own database connection and report progress.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import sqlite_utils

from . import db as dbm
from .ids import new_id
from .settings import Settings

log = logging.getLogger("reeldb.jobs")


class JobFailed(Exception):
    """Raise from a handler for an expected failure; its message is shown to the user as is."""


@dataclass
class JobContext:
    id: str
    kind: str
    params: dict[str, Any]
    settings: Settings
    db: sqlite_utils.Database
    _progress: Callable[[float], None]

    def progress(self, percent: float) -> None:
        self._progress(max(0.0, min(100.0, percent)))


Handler = Callable[[JobContext], dict[str, Any] | None]


class Jobs:
    def __init__(self, db: sqlite_utils.Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.owner = new_id("job")  # identifies this process's claims
        self._handlers: dict[str, Handler] = {}
        self._wake = asyncio.Event()
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._local = threading.local()
        self._running: set[str] = set()
        self._listeners: dict[str, list[Callable[[dict[str, Any]], Any]]] = {}

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def on_finish(self, kind: str, callback: Callable[[dict[str, Any]], Any]) -> None:
        """Call ``callback(job_row)`` on the event loop when a job of ``kind`` ends (done or failed)."""
        self._listeners.setdefault(kind, []).append(callback)

    # -- API used by routes --------------------------------------------------------------------
    def submit(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        if kind not in self._handlers:
            raise KeyError(f"no handler for job kind {kind!r}")
        now = time.time()
        job = {"id": new_id("job"), "kind": kind, "params": dbm.dumps(params), "status": "queued",
               "progress": 0.0, "result": None, "error": None, "attempts": 0, "lease_until": None,
               "owner": None, "created_at": now, "updated_at": now}
        self.db["jobs"].insert(job)
        self._wake.set()
        return job

    def get(self, job_id: str) -> dict[str, Any] | None:
        return dbm.row(self.db, "select * from jobs where id = ?", [job_id])

    async def wait(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job's row once it has ended, or as it stands after ``timeout`` seconds."""
        job = self.get(job_id)
        if job is None or job["status"] in ("done", "failed") or timeout <= 0:
            return job  # type: ignore[return-value]
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            return self.get(job_id)  # type: ignore[return-value]
        finally:
            waiters = self._waiters.get(job_id, [])
            if future in waiters:
                waiters.remove(future)

    # -- the runner ----------------------------------------------------------------------------
    def recover(self) -> None:
        """Take back jobs that a previous process left running."""
        stale = list(dbm.rows(self.db, "select * from jobs where status = 'running'"))
        for job in stale:
            if job["attempts"] < self.settings.job_max_attempts and job["kind"] in self._handlers:
                self.db["jobs"].update(job["id"], {"status": "queued", "owner": None, "lease_until": None,
                                                   "updated_at": time.time()})
                log.info("job %s (%s) requeued after a restart", job["id"], job["kind"])
            else:
                self._finish_row(job["id"], "failed", None,
                                 "The server stopped while this job was running, too many times")

    async def run(self) -> None:
        self.recover()
        loop = asyncio.get_running_loop()
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            while True:
                self._wake.clear()
                while len(self._running) < self.settings.workers:
                    job = self._claim()
                    if job is None:
                        break
                    self._running.add(job["id"])
                    loop.create_task(self._execute(job))
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=5.0)
                except asyncio.TimeoutError:
                    pass
        finally:
            heartbeat.cancel()

    def _claim(self) -> dict[str, Any] | None:
        now = time.time()
        return dbm.row(
            self.db,
            "update jobs set status = 'running', owner = ?, lease_until = ?, attempts = attempts + 1, "
            "updated_at = ? where id = (select id from jobs where status = 'queued' "
            "order by created_at limit 1) returning *",
            [self.owner, now + self.settings.job_lease, now],
        )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.job_lease / 3)
            if self._running:
                self.db.execute(
                    "update jobs set lease_until = ? where owner = ? and status = 'running'",
                    [time.time() + self.settings.job_lease, self.owner],
                )

    def _thread_db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = dbm.open_db(self.settings.db_path)
        return db

    async def _execute(self, job: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        last = [0.0]

        def progress(percent: float) -> None:
            if percent - last[0] >= 1 or percent >= 100:
                last[0] = percent
                self._thread_db()["jobs"].update(job["id"], {"progress": percent, "updated_at": time.time()})

        def work() -> dict[str, Any] | None:
            ctx = JobContext(job["id"], job["kind"], dbm.loads(job["params"], {}), self.settings,
                             self._thread_db(), progress)
            return self._handlers[job["kind"]](ctx)

        try:
            result = await loop.run_in_executor(None, work)
            self._finish_row(job["id"], "done", result, None)
        except JobFailed as exc:
            self._finish_row(job["id"], "failed", None, str(exc))
        except Exception as exc:
            log.error("job %s (%s) crashed:\n%s", job["id"], job["kind"], traceback.format_exc())
            self._finish_row(job["id"], "failed", None, f"{type(exc).__name__}: {exc}")
        finally:
            self._running.discard(job["id"])
            self._wake.set()
        row = self.get(job["id"])
        for callback in self._listeners.get(job["kind"], []):
            try:
                outcome = callback(row)  # type: ignore[arg-type]
                if asyncio.iscoroutine(outcome):
                    await outcome
            except Exception:
                log.exception("on_finish callback for job %s failed", job["id"])
        for future in self._waiters.pop(job["id"], []):
            if not future.done():
                future.set_result(row)  # type: ignore[arg-type]

    def _finish_row(self, job_id: str, status: str, result: dict[str, Any] | None, error: str | None) -> None:
        changes: dict[str, Any] = {
            "status": status, "result": dbm.dumps(result) if result is not None else None,
            "error": error, "lease_until": None, "updated_at": time.time(),
        }
        if status == "done":
            changes["progress"] = 100.0
        self.db["jobs"].update(job_id, changes)


def async_response(job: dict[str, Any]) -> dict[str, Any]:
    """The body VideoDB's SDK polls at ``output_url``: processing, done or failed."""
    if job["status"] in ("queued", "running"):
        return {"success": True, "status": "processing", "data": {"percentage": job["progress"] or 0}}
    if job["status"] == "done":
        return {"success": True, "status": "done", "data": dbm.loads(job["result"], {})}
    return {"success": False, "status": "failed", "message": job["error"] or "Job failed"}
