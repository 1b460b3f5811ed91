"""Exports of capture sessions: the muxed recording, raw channel assets and their HLS renditions.

The export stage turns a session folder into files; this module runs it on the job runner, turns
its outputs into library assets (``m-…`` videos, ``a-…`` audios), and moves the session to
``exported`` with its event. One export per (session, video channel): asking again is a cheap
status check, and asking after a failure retries it.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

from reeldb.export import ExportError, export_session

from . import db as dbm
from . import sessions
from .errors import BadRequest, Conflict
from .ids import new_id
from .jobs import JobContext, JobFailed
from .library import add_asset
from .services import Services

log = logging.getLogger("reeldb.export")

NOTHING_STORED = "Nothing to export: no channel of this session has store: true"
NOTHING_RECEIVED = "Nothing to export: no media was received before the session stopped"


def export_job(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    folder = ctx.settings.sessions_dir / p["session_id"]
    staging = ctx.settings.data_dir / "exports" / ctx.id
    shutil.rmtree(staging, ignore_errors=True)  # a previous attempt of this job, killed midway
    try:
        try:
            result = export_session(folder, staging, p["video_channel_id"],
                                    progress=lambda f: ctx.progress(f * 90), include_raw=p["include_raw"])
        except ExportError as exc:
            raise JobFailed(str(exc)) from None
        label = p["video_channel_id"] or result.video_channel_id or "audio"
        muxed = add_asset(ctx.db, ctx.settings, result.muxed_path, result.muxed_info, "video",
                          p["collection_id"], f"Capture {p['session_id']} ({label})", "capture",
                          p["session_id"], result.video_channel_id)
        ctx.progress(95)
        assets: dict[str, str] = {}
        for channel_id, asset in result.channels.items():
            kind = "video" if asset.kind == "video" else "audio"
            row = add_asset(ctx.db, ctx.settings, asset.path, asset.info, kind, p["collection_id"],
                            f"Capture {p['session_id']} {channel_id}", "capture-channel", p["session_id"], channel_id)
            assets[channel_id] = row["id"]
            ctx.db.execute("update rtstreams set exported_asset_id = ? where session_id = ? and name = ?",
                           [row["id"], p["session_id"], channel_id])
        for warning in result.warnings:
            log.warning("export of %s: %s", p["session_id"], warning)
        return {"video_id": muxed["id"], "video_channel_id": result.video_channel_id, "assets": assets,
                "warnings": result.warnings, "duration": result.duration}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def default_key(row: dict[str, Any]) -> str:
    """The export that makes the session ``exported``: its primary display if stored, else audio only ("")."""
    primary = row["primary_video_channel_id"]
    channels = dbm.loads(row["channels"], [])
    return next((c["channel_id"] for c in channels if c["channel_id"] == primary and c["store"]), "")


class Exports:
    def __init__(self, svc: Services, urls: Any) -> None:
        self.svc = svc
        self.urls = urls  # (svc, media_id, base) -> {"stream_url", "player_url"}
        svc.jobs.register("export", export_job)
        svc.jobs.on_finish("export", self._finished)

    def view(self, export: dict[str, Any], base: str) -> dict[str, Any]:
        body = {"session_id": export["session_id"], "video_channel_id": export["video_channel_id"],
                "export_status": export["status"], "video_id": export["video_id"],
                "stream_url": None, "player_url": None}
        if export["video_id"]:
            body.update(self.urls(self.svc, export["video_id"], base))
        if export["error"]:
            body["error"] = export["error"]
        return body

    def request(self, row: dict[str, Any], video_channel_id: str | None, connection_id: str | None) -> dict[str, Any]:
        """Start the export of ``video_channel_id`` (default: the primary display) or report on it."""
        channels = dbm.loads(row["channels"], [])
        if not any(c["store"] for c in channels):
            raise BadRequest(NOTHING_STORED)
        if video_channel_id is not None:
            match = next((c for c in channels if c["channel_id"] == video_channel_id), None)
            if match is None or match["type"] != "video":
                raise BadRequest(f"{video_channel_id} is not a video channel of this session")
            if not match["store"]:
                raise BadRequest(f"{video_channel_id} was not stored (store: false), so it cannot be exported")
        if row["status"] not in ("stopped", "exported", "failed"):
            raise Conflict(f"The session is {row['status']}; export runs once it has stopped")
        if not sessions.rtstreams(self.svc, row["id"]):
            raise BadRequest(NOTHING_RECEIVED)
        key = video_channel_id or default_key(row)
        existing = dbm.row(self.svc.db, "select * from exports where session_id = ? and video_channel_id = ?",
                           [row["id"], key])
        if existing and existing["status"] != "failed":
            if connection_id and existing["status"] == "exporting":
                self.svc.db["exports"].update(existing["id"], {"connection_id": connection_id})
            return existing
        first = dbm.row(self.svc.db, "select count(*) as n from exports where session_id = ? and status != 'failed'",
                        [row["id"]])["n"] == 0
        job = self.svc.jobs.submit("export", {
            "session_id": row["id"], "collection_id": row["collection_id"],
            "video_channel_id": key or None, "include_raw": first,
        })
        now = time.time()
        export = {"id": existing["id"] if existing else new_id("job"), "session_id": row["id"],
                  "video_channel_id": key, "status": "exporting", "job_id": job["id"], "video_id": None,
                  "error": None, "connection_id": connection_id, "include_raw": int(first),
                  "created_at": now, "updated_at": now}
        self.svc.db["exports"].upsert(export, pk="id")
        if key == default_key(row):
            self.svc.db["capture_sessions"].update(row["id"], {"export_status": "exporting", "export_error": None})
        return export

    async def after_stop(self, session_id: str) -> None:
        """Auto-export when a session stops: only if something was stored (VideoDB's rule)."""
        row = sessions.load(self.svc, session_id)
        reason = None
        if not any(c["store"] for c in dbm.loads(row["channels"], [])):
            reason = NOTHING_STORED
        elif not sessions.rtstreams(self.svc, session_id):  # never became active
            reason = NOTHING_RECEIVED
        if reason:
            self.svc.db["capture_sessions"].update(session_id, {"export_status": "failed", "export_error": reason})
            return
        if self.svc.settings.auto_export:
            self.request(row, None, None)

    async def _finished(self, job: dict[str, Any]) -> None:
        export = dbm.row(self.svc.db, "select * from exports where job_id = ?", [job["id"]])
        if export is None:
            return
        row = sessions.load(self.svc, export["session_id"])
        is_primary = export["video_channel_id"] == default_key(row)
        if job["status"] == "done":
            updated = await self._exported(export, row, dbm.loads(job["result"], {}), is_primary)
        else:
            updated = await self._failed(export, row, job["error"] or "Export failed", is_primary)
        if export["connection_id"]:
            fresh = dbm.row(self.svc.db, "select * from exports where id = ?", [export["id"]])
            await self.svc.hub.send(export["connection_id"], {
                "channel": "capture_session", "event": "capture_session.export",
                "capture_session_id": row["id"], "status": updated["status"],
                "data": self.view(fresh, self.svc.default_base())})

    async def _exported(self, export: dict[str, Any], row: dict[str, Any], result: dict[str, Any],
                        is_primary: bool) -> dict[str, Any]:
        """Record the asset and announce ``capture_session.exported``; one transaction, as every move."""
        video_id = result["video_id"]
        exported = {**dbm.loads(row["exported_videos"], {}), export["video_channel_id"] or "audio": video_id}
        changes: dict[str, Any] = {"exported_videos": dbm.dumps(exported)}
        data = {"exported_video_id": video_id if is_primary else (row["exported_video_id"] or video_id),
                "video_channel_id": result["video_channel_id"],
                **self.urls(self.svc, video_id, self.svc.default_base())}
        if is_primary:
            changes.update(export_status="exported", exported_video_id=video_id, export_error=None)
        else:
            data["video_id"] = video_id  # another display: the session's own export stays as it was
        with self.svc.db.atomic():
            self.svc.db["exports"].update(export["id"], {"status": "exported", "video_id": video_id,
                                                         "updated_at": time.time()})
            updated, event = sessions.move(self.svc, row["id"], "exported", data, **changes)
        await self.svc.events.published(event, updated.get("ws_connection_id"))
        if is_primary and self.svc.settings.auto_index:
            media = dbm.row(self.svc.db, "select path from media where id = ?", [video_id])
            self.svc.jobs.submit("index", {"asset_id": video_id, "path": media["path"]})
        return updated

    async def _failed(self, export: dict[str, Any], row: dict[str, Any], error: str,
                      is_primary: bool) -> dict[str, Any]:
        log.error("export of %s (%s) failed: %s", row["id"], export["video_channel_id"] or "audio", error)
        with self.svc.db.atomic():
            self.svc.db["exports"].update(export["id"], {"status": "failed", "error": error, "updated_at": time.time()})
            if not is_primary:
                return row
            if row["status"] == "failed":  # a retry failed again: nothing new to announce
                self.svc.db["capture_sessions"].update(row["id"], {"export_status": "failed", "export_error": error})
                return row
            updated, event = sessions.move(self.svc, row["id"], "failed",
                                           {"error": {"code": "EXPORT_FAILED", "message": error}},
                                           export_status="failed", export_error=error, error=error)
        await self.svc.events.published(event, updated.get("ws_connection_id"))
        return updated
