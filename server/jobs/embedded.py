"""The embedded executor (``REELDB_JOBS=embedded``, the default): compute parts on this process's
threads, one lane's capacity at a time, each attempt proving itself alive through the lease store."""

from __future__ import annotations

import logging
from typing import Any

from ..database import Conn, loads
from ..runtime import Runtime
from ..settings import Settings
from .compute import Throttle, run_compute
from .kinds import JobContext, JobKind, JobLost
from .leases import Job
from .runner import Execution, Jobs

log = logging.getLogger("reeldb.jobs")


class EmbeddedExecutor:
    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        #: Renders (the editor) run one short and one long at a time: x264 already uses every core,
        #: and a long render must not hold up the short ones (see server/editor.py, RENDER_LANES).
        self.capacity = {"uploads": settings.import_workers, "imports": settings.import_workers,
                         "exports": settings.workers, "index": settings.workers, "renders": 1, "renders_long": 1,
                         "previews": 1, "maintenance": 1}
        self._runner: Jobs | None = None

    def attach(self, runner: Jobs) -> None:
        self._runner = runner

    @property
    def runner(self) -> Jobs:
        assert self._runner is not None, "attach() first"
        return self._runner

    def admit(self, kind: JobKind) -> None:
        pass  # its compute part runs here, as registered

    def computes_here(self, kind: JobKind) -> bool:
        return not kind.compute.local

    def claimed(self, conn: Conn, job: Job, kind: JobKind) -> None:
        pass

    def reaped(self, job: Job) -> None:
        pass

    async def run(self) -> None:
        pass

    def start(self, job: Job, kind: JobKind) -> Execution:
        execution = Execution(job["id"], job["lane"], job["owner"], exclusive=kind.compute.heartbeat,
                              throttle=Throttle(self.settings.job_lease))
        ctx = JobContext(job["id"], job["kind"], loads(job["params"], {}), self.settings, self.runner.db,
                         lambda fraction, force: self.report(execution, fraction, force),
                         isolated=bool(job.get("crashes")))
        self.runtime.thread(lambda: self._work(kind, ctx, execution), name=f"job-{job['lane']}")
        return execution

    def report(self, execution: Execution, fraction: float, force: bool) -> None:
        """Progress and lease renewal, written at most every so often; raises JobLost when fenced."""
        assert execution.throttle is not None
        if not execution.throttle.due(fraction, force):
            if execution.abandoned:
                raise JobLost(execution.job_id)
            return
        if not self.runner.store.renew(execution.job_id, execution.token, fraction):
            execution.abandoned = True
            raise JobLost(execution.job_id)

    def _work(self, kind: JobKind, ctx: JobContext, execution: Execution) -> None:
        runner = self.runner

        def run() -> dict[str, Any] | None:
            if kind.prepare is not None:
                ctx.params = {**ctx.params, **runner.db.read_sync(lambda conn: kind.prepare(conn, ctx.params))}
            return run_compute(kind.compute, ctx, self.settings.job_lease)

        try:
            status, result, error, code = runner.conclude(kind, ctx, run)
        except JobLost:
            log.info("job %s: a newer attempt owns it; this one stops", ctx.id)
        else:
            runner.end(ctx.id, execution.token, status, result, error, code)
        runner.forget(ctx.id, execution)
