"""Capture sessions: the backend's endpoints (API key) and the recorder's (client token)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

import msgspec
from litestar import Request, get, post

from .. import db as dbm
from .. import lifecycle, sessions, views
from ..auth import Principal, mint_client_token
from ..channels import ChannelError, normalize
from ..errors import BadRequest, Conflict, NotFound
from ..ids import new_id
from ..services import Services
from .collections import resolve_collection


class SessionCreate(msgspec.Struct):
    end_user_id: str | None = None
    callback_url: str | None = None
    ws_connection_id: str | None = None
    metadata: dict[str, Any] | None = None
    client_id: str | None = None


class TokenCreate(msgspec.Struct):
    expires_in: int = 86400
    user_id: str | None = None


class SessionStart(msgspec.Struct):
    session_id: str | None = None
    channels: Any = None
    ws_connection_id: str | None = None
    callback_url: str | None = None
    primary_video_channel_id: str | None = None


class Offer(msgspec.Struct):
    sdp: str
    tracks: dict[str, str]
    type: str = "offer"


class TrackChange(msgspec.Struct):
    channels: list[str]


class ExportRequest(msgspec.Struct):
    video_channel_id: str | None = None
    connection_id: str | None = None
    ws_connection_id: str | None = None


def _check_callback(url: str | None) -> None:
    if url is None:
        return
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BadRequest(f"callback_url must be an http(s) URL, got {url!r}")


def _view(svc: Services, row: dict[str, Any]) -> dict[str, Any]:
    return views.capture_session(row, sessions.rtstreams(svc, row["id"]))


def _in_collection(svc: Services, collection_id: str, session_id: str) -> dict[str, Any]:
    coll = resolve_collection(svc.db, collection_id)
    row = sessions.load(svc, session_id)
    if row["collection_id"] != coll["id"]:
        raise NotFound(f"Capture session not found in collection {collection_id}: {session_id}")
    return row


@post("/collection/{collection_id:str}/capture/session", status_code=200)
async def create_session(collection_id: str, data: SessionCreate, svc: Services, key: Principal) -> dict[str, Any]:
    coll = resolve_collection(svc.db, collection_id)
    if not data.end_user_id or not data.end_user_id.strip():
        raise BadRequest("end_user_id is required")
    _check_callback(data.callback_url)
    now = time.time()
    record = {
        "id": new_id("capture_session"), "collection_id": coll["id"], "api_key_id": key.api_key_id,
        "end_user_id": data.end_user_id, "client_id": data.client_id, "status": "created",
        "callback_url": data.callback_url, "ws_connection_id": data.ws_connection_id,
        "metadata": dbm.dumps(data.metadata or {}), "channels": "[]", "primary_video_channel_id": None,
        "export_status": None, "export_error": None, "exported_video_id": None, "exported_videos": "{}",
        "error": None, "created_at": now, "updated_at": now, "started_at": None, "stopped_at": None,
    }
    record, event = sessions.create(svc, record)
    await svc.events.published(event, data.ws_connection_id)
    return {"success": True, "data": views.capture_session(record, [], for_create=True)}


@get("/collection/{collection_id:str}/capture/session", sync_to_thread=False)
def list_sessions(collection_id: str, svc: Services, key: Principal, status: str | None = None) -> dict[str, Any]:
    coll = resolve_collection(svc.db, collection_id)
    if status is not None and status not in lifecycle.STATUSES:
        raise BadRequest(f"status must be one of {', '.join(lifecycle.STATUSES)}")
    sql = "select * from capture_sessions where collection_id = ?"
    params: list[Any] = [coll["id"]]
    if status:
        sql += " and status = ?"
        params.append(status)
    rows = dbm.rows(svc.db, sql + " order by created_at desc", params)
    return {"success": True, "data": {"sessions": [_view(svc, r) for r in rows], "next_page": None}}


@get("/collection/{collection_id:str}/capture/session/{session_id:str}", sync_to_thread=False)
def get_session(collection_id: str, session_id: str, svc: Services, key: Principal) -> dict[str, Any]:
    return {"success": True, "data": _view(svc, _in_collection(svc, collection_id, session_id))}


@post("/collection/{collection_id:str}/capture/session/{session_id:str}/export", status_code=200)
async def export_session(collection_id: str, session_id: str, data: ExportRequest, request: Request,
                         svc: Services, key: Principal) -> dict[str, Any]:
    """VideoDB's trigger-or-check: the first call starts the export, later calls report on it."""
    row = _in_collection(svc, collection_id, session_id)
    export = svc.exports.request(row, data.video_channel_id, data.connection_id or data.ws_connection_id)
    return {"success": True, "data": svc.exports.view(export, svc.base_url(request))}


@post("/capture/session/token", status_code=200, sync_to_thread=False)
def create_token(data: TokenCreate, svc: Services, key: Principal) -> dict[str, Any]:
    if data.expires_in <= 0 or data.expires_in > svc.settings.token_max_ttl:
        raise BadRequest(f"expires_in must be between 1 and {svc.settings.token_max_ttl} seconds")
    token, expires_at = mint_client_token(svc.db, key.api_key_id, data.expires_in, data.user_id)
    return {"success": True, "data": {"token": token, "expires_at": int(expires_at), "expires_in": data.expires_in}}


@post("/capture/session/start", status_code=200)
async def start_session(data: SessionStart, request: Request, svc: Services, actor: Principal) -> dict[str, Any]:
    if not data.session_id:
        raise BadRequest("session_id is required")
    row = sessions.load_for(svc, data.session_id, actor)
    if data.channels is None:
        raise BadRequest("channels is required")
    try:
        channels, primary = normalize(data.channels, svc.settings.max_channels, data.primary_video_channel_id)
    except ChannelError as exc:
        raise BadRequest(str(exc)) from None
    _check_callback(data.callback_url)
    if lifecycle.is_live(row["status"]):
        raise Conflict(f"Capture session {row['id']} is already {row['status']}: another recorder is using it")
    if row["status"] != "created":
        raise Conflict(lifecycle.refusal(row["status"], "starting"))
    changes: dict[str, Any] = {"channels": dbm.dumps(channels), "primary_video_channel_id": primary,
                               "started_at": time.time()}
    if data.ws_connection_id:
        changes["ws_connection_id"] = data.ws_connection_id
    if data.callback_url:
        changes["callback_url"] = data.callback_url
    updated = await sessions.transition(svc, row["id"], "starting", **changes)
    base = svc.base_url(request)
    return {"success": True, "data": {
        "session_id": updated["id"], "status": updated["status"],
        "created_at": views.capture_session(updated, [])["created_at"],
        "channels": channels, "primary_video_channel_id": primary,
        "webrtc_url": f"{base}/capture/session/{updated['id']}/offer",
    }}


@get("/capture/session/{session_id:str}", sync_to_thread=False)
def recorder_get_session(session_id: str, svc: Services, actor: Principal) -> dict[str, Any]:
    return {"success": True, "data": _view(svc, sessions.load_for(svc, session_id, actor))}


@post("/capture/session/{session_id:str}/stop", status_code=200)
async def stop_session(session_id: str, svc: Services, actor: Principal) -> dict[str, Any]:
    """Stopping finalizes every channel file before the session reports ``stopped``."""
    row = sessions.load_for(svc, session_id, actor)
    if row["status"] not in ("starting", "active", "stopping"):
        raise Conflict(lifecycle.refusal(row["status"], "stopping"))
    await svc.capture.stop(row["id"])
    return {"success": True, "message": "Operation successful", "data": {"session_id": row["id"], "status": "stopped"}}


@post("/capture/session/{session_id:str}/offer", status_code=200)
async def offer(session_id: str, data: Offer, svc: Services, actor: Principal) -> dict[str, Any]:
    """WebRTC signalling, WHIP-style: one offer with every channel's track, one answer."""
    row = sessions.load_for(svc, session_id, actor)
    if data.type != "offer":
        raise BadRequest("type must be 'offer'")
    answer = await svc.capture.offer(row, data.sdp, data.tracks)
    return {"success": True, "data": {"sdp": answer, "type": "answer"}}


@post("/capture/session/{session_id:str}/pause", status_code=200, sync_to_thread=False)
def pause(session_id: str, data: TrackChange, svc: Services, actor: Principal) -> dict[str, Any]:
    row = sessions.load_for(svc, session_id, actor)
    return {"success": True, "data": {"paused": svc.capture.pause(row["id"], data.channels, True)}}


@post("/capture/session/{session_id:str}/resume", status_code=200, sync_to_thread=False)
def resume(session_id: str, data: TrackChange, svc: Services, actor: Principal) -> dict[str, Any]:
    row = sessions.load_for(svc, session_id, actor)
    return {"success": True, "data": {"resumed": svc.capture.pause(row["id"], data.channels, False)}}


handlers = [create_session, list_sessions, get_session, export_session, create_token, start_session,
            recorder_get_session, stop_session, offer, pause, resume]
