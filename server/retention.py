"""Retention: a stopped session's media deleted after ``REELDB_RETENTION_DAYS``, or only its raw
channel assets (and channel files) after ``REELDB_RAW_RETENTION_DAYS``.

A ``retention`` job on the maintenance lane does the work (off the event loop, durable, one at a
time); :meth:`Retention.run` queues one every ``REELDB_RETENTION_INTERVAL`` seconds while either
setting is on and none is waiting. Each deletion is logged; the job's result (counts, bytes) is
what ``/metrics`` sums (``reeldb_retention_*``). The session's record, its events and its
rtstreams stay: the API answers 404 for the deleted assets, and the session still lists.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from typing import Any

from .database import Conn, Database, row, rows
from .jobs import Compute, JobContext, JobKind, JobQueue
from .library import MediaLibrary
from .settings import Settings

log = logging.getLogger("reeldb.retention")

DAY = 86400.0
#: Sessions in these states are over: their media may age out.
ENDED = ("stopped", "exported", "failed")


class Retention:
    def __init__(self, db: Database, settings: Settings, jobs: JobQueue, library: MediaLibrary) -> None:
        self.db = db
        self.settings = settings
        self.jobs = jobs
        self.library = library
        jobs.register(JobKind(Compute("retention", "maintenance", self._job, local=True)))

    @property
    def enabled(self) -> bool:
        return self.settings.retention_days is not None or self.settings.raw_retention_days is not None

    async def run(self) -> None:
        """Queue a retention job every ``retention_interval`` seconds (none while one waits)."""
        while self.enabled:
            def queue(conn: Conn) -> bool:
                if row(conn, "select id from jobs where kind = 'retention' and status in ('queued', 'running')"):
                    return False
                self.jobs.enqueue(conn, "retention", {"at": time.time()})
                return True

            if await self.db.execute_write_fn(queue):
                self.jobs.wake()
            await asyncio.sleep(max(0.5, self.settings.retention_interval))

    def _job(self, ctx: JobContext) -> dict[str, Any]:
        now = time.time()
        result = {"media_deleted": 0, "raw_deleted": 0, "bytes_freed": 0, "sessions": []}
        for days, scope in ((self.settings.retention_days, "media"), (self.settings.raw_retention_days, "raw")):
            if days is None:
                continue
            cutoff = now - days * DAY
            origins = ("capture", "capture-channel") if scope == "media" else ("capture-channel",)
            marks = ", ".join("?" for _ in ENDED)
            omarks = ", ".join("?" for _ in origins)
            sessions = ctx.read(lambda conn: list(rows(
                conn, f"select id from capture_sessions where status in ({marks}) "
                      f"and coalesce(stopped_at, updated_at, created_at) < ? and not exists (select 1 from exports "
                      f"where exports.session_id = capture_sessions.id and exports.status = 'exporting')",
                [*ENDED, cutoff])))
            for session in sessions:
                sid = session["id"]
                assets = ctx.read(lambda conn: [r["id"] for r in rows(
                    conn, f"select id from media where session_id = ? and origin in ({omarks})", [sid, *origins])])
                freed = 0
                for asset_id in assets:
                    freed += self.library.remove_sync(asset_id)
                folder = self.settings.sessions_dir / sid
                if folder.exists():
                    freed += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
                    shutil.rmtree(folder, True)
                elif not assets:
                    continue
                result[f"{scope}_deleted"] += len(assets)
                result["bytes_freed"] += freed
                result["sessions"].append(sid)
                log.info("retention (%s, %.4g days): session %s: deleted %d assets%s, %d bytes freed", scope, days,
                         sid, len(assets), f" ({', '.join(assets)})" if assets else "", freed)
            ctx.progress(0.5 if scope == "media" else 1.0)
        return result
