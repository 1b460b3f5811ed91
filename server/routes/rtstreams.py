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


class TranscriptionBody(msgspec.Struct):
    action: str
    ws_connection_id: str | None = None
    engine: str | None = None


class RtSearchBody(msgspec.Struct):
    query: str | None = None
    result_threshold: int | None = None
    score_threshold: float | None = None


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


def _with_media_types(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "media_types": dbm.loads(row["media_types"], [])}


@post("/rtstream/{rtstream_id:str}/transcription", status_code=200)
async def transcription(rtstream_id: str, data: TranscriptionBody, svc: Services, key: Principal) -> dict[str, Any]:
    """``start_transcript`` / ``stop_transcript``: live, from memory, to the websocket."""
    stream = _with_media_types(find(svc, rtstream_id))
    if data.action == "start":
        return {"success": True, "data": await svc.live.start(stream, data.ws_connection_id)}
    if data.action == "stop":
        return {"success": True, "data": await svc.live.stop(rtstream_id)}
    raise BadRequest("action must be 'start' or 'stop'")


@get("/rtstream/{rtstream_id:str}/transcription", sync_to_thread=False)
def get_transcription(rtstream_id: str, svc: Services, key: Principal, page: int = 1, page_size: int = 100,
                      start: float | None = None, end: float | None = None, since: float | None = None,
                      engine: str | None = None) -> dict[str, Any]:
    find(svc, rtstream_id)
    if page < 1 or not 1 <= page_size <= 1000:
        raise BadRequest("page must be at least 1 and page_size 1..1000")
    records = svc.live.records(rtstream_id, start, end, since)
    chunk = records[(page - 1) * page_size: page * page_size]
    return {"success": True, "data": {
        "transcription_records": chunk, "total_count": len(records), "page": page, "page_size": page_size,
        "next_page": page + 1 if page * page_size < len(records) else None, **svc.live.status(rtstream_id)}}


@get("/rtstream/{rtstream_id:str}/transcription/status", sync_to_thread=False)
def transcription_status(rtstream_id: str, svc: Services, key: Principal) -> dict[str, Any]:
    find(svc, rtstream_id)
    return {"success": True, "data": svc.live.status(rtstream_id)}


@post("/rtstream/{rtstream_id:str}/search", status_code=200)
async def search_rtstream(rtstream_id: str, data: RtSearchBody, svc: Services, key: Principal) -> dict[str, Any]:
    """Search what was said on this stream (its live transcript), by meaning; times are unix seconds."""
    find(svc, rtstream_id)
    results = await svc.live.search(rtstream_id, data.query or "", data.result_threshold or 5,
                                    data.score_threshold if data.score_threshold is not None else 0.2)
    return {"success": True, "data": {"results": results}}


handlers = [list_rtstreams, get_rtstream, set_status, export_rtstream, export_status, transcription,
            get_transcription, transcription_status, search_rtstream]
