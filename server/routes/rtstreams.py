"""RTStreams: one per capture channel; readable, and exportable as that channel's raw asset."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, patch, post

from .. import db as dbm
from .. import sessions, views
from ..auth import Principal
from ..errors import BadRequest, Conflict, NotFound
from ..services import Services
from .collections import resolve_collection


class ExportBody(msgspec.Struct):
    name: str | None = None


class StatusBody(msgspec.Struct):
    action: str | None = None


def find(svc: Services, rtstream_id: str) -> dict[str, Any]:
    row = dbm.row(svc.db, "select * from rtstreams where id = ?", [rtstream_id])
    if row is None:
        raise NotFound(f"Stream not found: {rtstream_id}")
    return row


@get("/rtstream", sync_to_thread=False)
def list_rtstreams(svc: Services, key: Principal, collection_id: str = "default", limit: int = 100,
                   offset: int = 0, status: str | None = None, name: str | None = None) -> dict[str, Any]:
    coll = resolve_collection(svc.db, collection_id)
    if not 1 <= limit <= 1000 or offset < 0:
        raise BadRequest("limit must be 1..1000 and offset at least 0")
    where, params = ["collection_id = ?"], [coll["id"]]
    if status:
        where.append("status = ?")
        params.append(status)
    if name:
        where.append("name = ?")
        params.append(name)
    sql = f"from rtstreams where {' and '.join(where)}"
    total = dbm.row(svc.db, f"select count(*) as n {sql}", params)["n"]
    rows = dbm.rows(svc.db, f"select * {sql} order by created_at desc, id limit ? offset ?", [*params, limit, offset])
    return {"success": True, "data": {"results": [views.rtstream(r) for r in rows], "count": total,
                                      "next": None, "previous": None}}


@get("/rtstream/{rtstream_id:str}", sync_to_thread=False)
def get_rtstream(rtstream_id: str, svc: Services, key: Principal) -> dict[str, Any]:
    return {"success": True, "data": views.rtstream(find(svc, rtstream_id))}


@patch("/rtstream/{rtstream_id:str}/status", sync_to_thread=False)
def set_status(rtstream_id: str, data: StatusBody, svc: Services, key: Principal) -> dict[str, Any]:
    find(svc, rtstream_id)
    raise Conflict("This rtstream belongs to a capture session: it starts and stops with the session")


def _export_view(svc: Services, stream: dict[str, Any], base: str, name: str | None) -> dict[str, Any] | None:
    fresh = find(svc, stream["id"])
    asset_id = fresh["exported_asset_id"]
    if not asset_id:
        return None
    media = dbm.row(svc.db, "select * from media where id = ?", [asset_id])
    if media is None:
        raise NotFound(f"The exported asset {asset_id} has been deleted")
    if name and media["name"] != name:
        svc.db["media"].update(asset_id, {"name": name})
        media["name"] = name
    urls = svc.exports.urls(svc, asset_id, base) if media["kind"] == "video" else {"stream_url": None, "player_url": None}
    return {"video_id": asset_id, "name": media["name"], "duration": media["length"], "kind": media["kind"], **urls}


@post("/rtstream/{rtstream_id:str}/export", status_code=200)
async def export_rtstream(rtstream_id: str, data: ExportBody, request: Request, svc: Services,
                          key: Principal) -> dict[str, Any]:
    """The channel's raw asset; the first call runs the session's export if it has not run yet."""
    stream = find(svc, rtstream_id)
    if not stream["store"]:
        raise BadRequest(f"No recordings available: {stream['name']} was not stored (store: false)")
    base = svc.base_url(request)
    done = _export_view(svc, stream, base, data.name)
    if done:
        return {"success": True, "data": done}
    row = sessions.load(svc, stream["session_id"])
    export = svc.exports.request(row, None, None)
    if export["status"] == "failed":
        raise BadRequest(export["error"] or "The export failed")
    job = await svc.jobs.wait(export["job_id"], svc.settings.sync_wait)
    if job["status"] == "failed":
        raise BadRequest(job["error"] or "The export failed")
    done = _export_view(svc, stream, base, data.name)
    if done:
        return {"success": True, "data": done}
    return {"success": True, "status": "processing", "request_type": "sync",
            "data": {"output_url": f"{base}/rtstream/{rtstream_id}/export/status"}}


@get("/rtstream/{rtstream_id:str}/export/status", sync_to_thread=False)
def export_status(rtstream_id: str, request: Request, svc: Services, key: Principal) -> dict[str, Any]:
    """What the SDK polls after ``processing``: ``processing`` until the asset exists."""
    stream = find(svc, rtstream_id)
    done = _export_view(svc, stream, svc.base_url(request), None)
    if done:
        return {"success": True, "status": "done", "data": done}
    export = dbm.row(svc.db, "select * from exports where session_id = ? and status = 'failed'", [stream["session_id"]])
    if export:
        return {"success": False, "status": "failed", "message": export["error"]}
    return {"success": True, "status": "processing", "data": {}}


handlers = [list_rtstreams, get_rtstream, set_status, export_rtstream, export_status]
