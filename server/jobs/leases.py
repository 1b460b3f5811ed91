"""The ``jobs`` table and its leases: the one module that writes it.

Both executors use this store rather than inherit from one another: a claim takes a lease with a
fresh token; a renewal, a progress report and the end are all fenced by that token (an attempt
that was presumed hung finds its token gone, and its writes change nothing); the reaper takes back
leases that ran out; a restart recovers what a crash left running; a cancel is a request any
process may write and the runner carries out.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Callable, Collection, Mapping

from ..database import Conn, Database, dumps, row, rows
from ..ids import new_id
from ..settings import Settings
from .kinds import CANCELLED

log = logging.getLogger("reeldb.jobs")

Job = dict[str, Any]


def request_cancel(conn: Conn, job_id: str) -> Job | None:
    """Mark a queued or running job ``cancelling`` (the runner ends it at its next pass); None when
    it has ended already or does not exist. Any process with the database may call it (the CLI)."""
    return row(conn, "update jobs set status = 'cancelling', updated_at = ? where id = ? "
                     "and status in ('queued', 'running') returning *", [time.time(), job_id])


class LeaseStore:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    # -- rows ------------------------------------------------------------------------------------
    @staticmethod
    def insert(conn: Conn, kind: str, lane: str, params: Mapping[str, Any]) -> Job:
        """A queued job, inside the caller's transaction (it commits with what caused it)."""
        now = time.time()
        job = {"id": new_id("job"), "kind": kind, "lane": lane, "params": dumps(dict(params)),
               "status": "queued", "progress": 0.0, "result": None, "error": None, "attempts": 0,
               "lease_until": None, "owner": None, "created_at": now, "updated_at": now}
        conn["jobs"].insert(job)
        return job

    @staticmethod
    def get(conn: Conn, job_id: str) -> Job | None:
        return row(conn, "select * from jobs where id = ?", [job_id])

    # -- leases ----------------------------------------------------------------------------------
    def claim(self, conn: Conn, lane: str, busy: Collection[str], lease: float | None = None) -> Job | None:
        """The oldest queued job of ``lane`` that is not in ``busy`` (jobs whose superseded attempt
        still runs here), now running under a fresh token for ``lease`` seconds."""
        now = time.time()
        until = now + (self.settings.job_lease if lease is None else lease)
        return row(conn,
                   "update jobs set status = 'running', owner = ?, lease_until = ?, attempts = attempts + 1, "
                   "updated_at = ?, started_at = ? where id = (select id from jobs where status = 'queued' and lane = ? "
                   f"and id not in ({', '.join('?' for _ in busy)}) order by created_at limit 1) returning *",
                   [uuid.uuid4().hex, until, now, now, lane, *busy])

    def renew(self, job_id: str, token: str, fraction: float | None) -> bool:
        """The heartbeat: extend the lease (and note progress, when given) if ``token`` still owns
        the job; False if it does not (the attempt was superseded, cancelled or ended)."""
        now = time.time()
        changes: dict[str, Any] = {"lease_until": now + self.settings.job_lease, "updated_at": now}
        if fraction is not None and fraction >= 0:
            changes["progress"] = fraction
        sets = ", ".join(f"{k} = ?" for k in changes)
        return self.db.write_sync(lambda conn: conn.execute(
            f"update jobs set {sets} where id = ? and owner = ? and status = 'running'",
            [*changes.values(), job_id, token]).rowcount) > 0

    @staticmethod
    def extend(conn: Conn, job: Job, until: float) -> None:
        """A longer first lease (a job waiting in a worker queue is not hanging)."""
        job["lease_until"] = until
        conn.execute("update jobs set lease_until = ? where id = ?", [until, job["id"]])

    @staticmethod
    def release(conn: Conn, job_id: str, token: str) -> None:
        """Let the reaper take the job back at its next pass (it could not be handed on)."""
        conn.execute("update jobs set lease_until = 0 where id = ? and owner = ?", [job_id, token])

    def finish(self, job_id: str, token: str, status: str, result: dict[str, Any] | None, error: str | None,
               code: str | None) -> bool:
        """Write a job's end if ``token`` still owns it (fencing); False if it does not."""
        def write(conn: Conn) -> int:
            now = time.time()
            changes = {"status": status, "result": dumps(result) if result is not None else None,
                       "error": error, "error_code": code, "lease_until": None, "updated_at": now,
                       "finished_at": now}
            if status == "done":
                changes["progress"] = 1.0
            sets = ", ".join(f"{k} = ?" for k in changes)
            return conn.execute(f"update jobs set {sets} where id = ? and owner = ? and status = 'running'",
                                [*changes.values(), job_id, token]).rowcount

        return self.db.write_sync(write) > 0

    # -- taking leases back ----------------------------------------------------------------------
    def reap(self, conn: Conn, known: Callable[[str], bool], reaped: Callable[[Job], None],
             requeued: str = "presumed hung (no heartbeat within its lease); requeued",
             given_up: str = "The job's worker hung while running it, too many times") -> list[str]:
        """Requeue (or fail, after too many attempts) the running jobs whose lease ran out; the ids
        of those it ended, to announce after this transaction commits. ``reaped`` hears of each
        (inside the transaction; it must not block)."""
        now = time.time()
        ended: list[str] = []
        for job in list(rows(conn, "select * from jobs where status = 'running' and lease_until < ?", [now])):
            reaped(job)
            if job["attempts"] < self.settings.job_max_attempts and known(job["kind"]):
                conn["jobs"].update(job["id"], {"status": "queued", "owner": None, "lease_until": None,
                                                "updated_at": now})
                log.warning("job %s (%s) %s", job["id"], job["kind"], requeued)
            else:
                conn["jobs"].update(job["id"], {
                    "status": "failed", "owner": None, "lease_until": None, "updated_at": now, "error": given_up})
                ended.append(job["id"])
        return ended

    def recover(self, conn: Conn, computed_here: Callable[[str], bool], known: Callable[[str], bool],
                reaped: Callable[[Job], None]) -> list[str]:
        """On start: every running job belonged to a process that ended without stopping it (a crash,
        SIGKILL, the kernel's OOM killer). It may be what ended it: it runs again in a child process
        (``JobContext.isolated``, from its ``crashes``), never in this one, and after
        ``REELDB_JOB_MAX_CRASHES`` such ends it fails with that reason. A job whose compute part ran
        elsewhere (a job worker) is not this crash's doing: it is only taken back."""
        now = time.time()
        ended: list[str] = []
        for job in list(rows(conn, "select * from jobs where status = 'running'")):
            if not computed_here(job["kind"]):
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
        return ended + self.reap(conn, known, reaped, "requeued after a restart (it runs in a child process now)",
                                 "The server stopped while this job was running, too many times")

    async def put_back(self, ids: list[str]) -> None:
        """A clean stop: these running jobs go back to the queue as they were (not a crash, not an
        attempt); their threads are fenced off by the cleared owner."""
        marks = ", ".join("?" for _ in ids)
        await self.db.execute_write_fn(lambda conn: conn.execute(
            f"update jobs set status = 'queued', owner = null, lease_until = null, "
            f"attempts = max(0, attempts - 1) where status = 'running' and id in ({marks})", ids))

    @staticmethod
    def cancel_requested(conn: Conn, reaped: Callable[[Job], None]) -> list[str]:
        """End every job someone asked to cancel (:func:`request_cancel`, also from another
        process). A running attempt loses its lease here, so it stops at its next step (its renewal
        finds the job no longer running) and its result is discarded."""
        now = time.time()
        ended: list[str] = []
        for job in list(rows(conn, "select * from jobs where status = 'cancelling'")):
            reaped(job)
            conn["jobs"].update(job["id"], {"status": "failed", "owner": None, "lease_until": None, "updated_at": now,
                                            "finished_at": now, "error": CANCELLED, "error_code": "CANCELLED"})
            log.info("job %s (%s) cancelled", job["id"], job["kind"])
            ended.append(job["id"])
        return ended
