"""Jobs that are alive are never presumed hung, and an attempt never runs beside the one it
superseded (issue 17).

The embedded runner over a real SQLite file and the real ``Jobs`` class; the job kinds are the
tests' own: one whose single step outlasts several leases, one that counts how many of its
attempts run at once while the test forces its lease to expire.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from reeldb.server.database import Database, row
from reeldb.server.jobs import Compute, JobContext, JobKind
from reeldb.server.jobs.embedded import EmbeddedExecutor
from reeldb.server.jobs.runner import Jobs
from reeldb.server.runtime import Runtime
from reeldb.server.schema import migrate
from reeldb.server.settings import Settings


class Attempts:
    """How many attempts of the job run at this moment, and the most there ever were."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.started = 0
        self.stopped_early = 0
        self.release = threading.Event()

    def __enter__(self) -> "Attempts":
        with self.lock:
            self.now += 1
            self.started += 1
            self.most = max(self.most, self.now)
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1
            if exc[0] is not None:
                self.stopped_early += 1


async def run_jobs(tmp_path, lease: float, kinds: list[JobKind], body, workers: int = 2,
                   executor: type[EmbeddedExecutor] = EmbeddedExecutor) -> None:
    settings = Settings(data_dir=tmp_path, job_lease=lease, job_max_attempts=3, workers=workers)
    db = Database(settings.db_path)
    db.write_sync(migrate)
    runtime = Runtime()
    jobs = Jobs(db, settings, runtime, executor(settings, runtime))
    for kind in kinds:
        jobs.register(kind)
    runner = asyncio.create_task(jobs.run())
    try:
        await body(jobs, db)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await runtime.close()
        db.close()


async def wait_until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_a_step_longer_than_the_lease_is_not_a_hang(tmp_path, caplog):
    """One step of 4 s without a progress report (a whisper batch on a busy machine) under a 1 s
    lease: the heartbeat keeps the lease, the job ends in one attempt."""
    def slow_step(ctx: JobContext) -> dict:
        time.sleep(4.0)
        ctx.progress(1.0)
        return {"ok": True}

    async def body(jobs: Jobs, db: Database) -> None:
        job = await jobs.submit("slow", {})
        ended = await jobs.wait(job["id"], 60)
        assert ended["status"] == "done", ended
        assert ended["attempts"] == 1

    asyncio.run(run_jobs(tmp_path, 1.0, [JobKind(Compute("slow", "index", slow_step))], body))
    assert "presumed hung" not in caplog.text


def test_a_forced_lease_expiry_leaves_exactly_one_attempt_running(tmp_path, caplog):
    caplog.set_level(logging.INFO, "reeldb.jobs")
    attempts = Attempts()

    def steps(ctx: JobContext) -> dict:
        with attempts:
            for i in range(400):
                time.sleep(0.05)
                if attempts.started == 1 and not attempts.release.is_set():
                    continue  # the first attempt runs until the test has taken its lease away
                ctx.progress(i / 400)
                if attempts.started > 1 and i > 20:
                    break
        return {"attempt": attempts.started}

    async def body(jobs: Jobs, db: Database) -> None:
        job = await jobs.submit("steps", {})
        await wait_until(lambda: attempts.started == 1)
        # What a partition or a frozen process looks like to the reaper: the lease ran out.
        db.write_sync(lambda conn: conn.execute("update jobs set lease_until = 0 where id = ?", [job["id"]]))
        jobs.wake()
        await wait_until(lambda: row_of(db, job["id"])["status"] == "queued" or row_of(db, job["id"])["attempts"] > 1)
        await asyncio.sleep(0.5)  # the runner had every chance to start a second attempt beside the first
        assert attempts.started == 1, "a new attempt started while the superseded one still ran"
        attempts.release.set()  # the first attempt reaches its next step and stops there
        ended = await jobs.wait(job["id"], 60)
        assert ended["status"] == "done" and ended["attempts"] == 2, ended

    asyncio.run(run_jobs(tmp_path, 2.0, [JobKind(Compute("steps", "index", steps))], body))
    assert attempts.started == 2 and attempts.most == 1
    assert attempts.stopped_early == 1  # the superseded attempt stopped at its next step
    assert "a newer attempt owns it" in caplog.text


def row_of(db: Database, job_id: str) -> dict:
    return db.read_sync(lambda conn: row(conn, "select * from jobs where id = ?", [job_id]))


def test_imports_still_prove_liveness_by_progress(tmp_path):
    """A kind without the heartbeat (imports: a read that brings nothing is a stalled connection)
    is presumed hung after a lease without progress, and finished by a new attempt."""
    calls = []

    def stalls_once(ctx: JobContext) -> dict:
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(4.0)  # no progress: the reaper takes the job back
        ctx.progress(1.0)
        return {"attempt": len(calls)}

    async def body(jobs: Jobs, db: Database) -> None:
        job = await jobs.submit("import", {})
        ended = await jobs.wait(job["id"], 60)
        assert ended["status"] == "done" and ended["attempts"] == 2, ended

    asyncio.run(run_jobs(tmp_path, 1.0, [JobKind(Compute("import", "imports", stalls_once, heartbeat=False))], body))
    assert len(calls) == 2
    assert calls[1] - calls[0] < 3.9  # the new attempt ran beside the stalled read, which is fenced


def test_a_cancel_stops_a_running_job_at_its_next_step_and_ends_it(tmp_path):
    attempts = Attempts()
    ended: list[dict] = []

    def steps(ctx: JobContext) -> dict:
        with attempts:
            for i in range(2000):
                time.sleep(0.02)
                ctx.progress(i / 2000)
        return {"finished": True}

    async def body(jobs: Jobs, db: Database) -> None:
        async def listener(job: dict) -> None:
            ended.append(job)

        jobs.on_finish("steps", listener)
        running = await jobs.submit("steps", {})
        queued = await jobs.submit("steps", {})  # capacity 1: waits behind the first
        await wait_until(lambda: attempts.started == 1)
        cancelled = await jobs.cancel(queued["id"])
        assert (cancelled["status"], cancelled["error_code"]) == ("failed", "CANCELLED")
        # as `reeldb jobs cancel` does it: another connection marks the row, the runner ends it
        from reeldb.server.jobs import request_cancel

        assert db.write_sync(lambda conn: request_cancel(conn, running["id"]))["status"] == "cancelling"
        jobs.wake()
        stopped = await jobs.wait(running["id"], 30)
        assert (stopped["status"], stopped["error_code"]) == ("failed", "CANCELLED"), stopped
        await wait_until(lambda: attempts.now == 0)  # the compute part stopped at its next step
        assert await jobs.cancel(running["id"]) == stopped  # cancelling again changes nothing
        await wait_until(lambda: len(ended) == 2)

    asyncio.run(run_jobs(tmp_path, 30.0, [JobKind(Compute("steps", "index", steps))], body, workers=1))
    assert attempts.started == 1 and attempts.stopped_early == 1
    assert {j["status"] for j in ended} == {"failed"}


class EndsFirst(EmbeddedExecutor):
    """The embedded executor on a machine whose scheduler runs a job's thread to its end before
    the runner's loop runs again: ``start`` returns once the attempt has recorded its end and let
    its thread go (as a retention pass of a few milliseconds can on starved cores)."""

    def start(self, job, kind):
        execution = super().start(job, kind)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.runner.db.read_sync(
                lambda conn: row(conn, "select status from jobs where id = ?", [job["id"]]))["status"] == "running":
            time.sleep(0.01)
        time.sleep(0.1)  # its thread forgets the attempt just after recording the end
        return execution


def test_a_job_that_ends_before_its_start_returns_frees_its_lane(tmp_path):
    """The lane of a job that ended before the runner noted it as running is free again (capacity
    1 here): once it stayed taken by a job long done, and no retention pass ran again until the
    server restarted."""
    def instant(ctx: JobContext) -> dict:
        return {}

    async def body(jobs: Jobs, db: Database) -> None:
        for _ in range(5):
            job = await jobs.submit("instant", {})
            ended = await jobs.wait(job["id"], 20)
            assert ended is not None and ended["status"] == "done", ended
        await wait_until(lambda: not jobs.running, 10)

    asyncio.run(run_jobs(tmp_path, 1.0, [JobKind(Compute("instant", "maintenance", instant))], body,
                         executor=EndsFirst))
