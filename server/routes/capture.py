"""Capture sessions: the backend's endpoints (API key) and the recorder's (client token)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import msgspec
from litestar import Request, get, post

from .. import lifecycle, views
from ..auth import Auth, Principal
from ..capture_runtime import CaptureRuntime
from ..channels import ChannelError, normalize
from ..errors import BadRequest, Conflict
from ..exports import Exports
from ..links import Links
from ..sessions import Session, Sessions
from ..text import HTTP_URL_PATTERN, NON_BLANK_PATTERN
from ..settings import Settings


NonBlank = Annotated[str, msgspec.Meta(pattern=NON_BLANK_PATTERN, max_length=1024)]
Status = Literal["created", "starting", "active", "stopping", "stopped", "exported", "failed"]


HttpUrl = Annotated[str, msgspec.Meta(pattern=HTTP_URL_PATTERN, max_length=2048)]


class SessionCreate(msgspec.Struct):
    end_user_id: NonBlank
    callback_url: HttpUrl | None = None
    ws_connection_id: str | None = None
    metadata: dict[str, Any] | None = None
    client_id: str | None = None


class TokenCreate(msgspec.Struct):
    #: The schema says the default ceiling; a lower REELDB_TOKEN_MAX_TTL is checked in the handler.
    expires_in: Annotated[int, msgspec.Meta(ge=1, le=30 * 86400)] = 86400
    user_id: str | None = None


class SessionStart(msgspec.Struct):
    session_id: NonBlank
    channels: Any = None
    ws_connection_id: str | None = None
    callback_url: HttpUrl | None = None
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


def check_callback(url: str | None) -> None:
    """A webhook target: an http(s) URL (sessions' ``callback_url``, alerts' too)."""
    if url is None:
        return
    try:
        parsed = urlparse(url)
        valid = parsed.scheme in ("http", "https") and bool(parsed.netloc)
    except ValueError:  # "http://[x" (not an IPv6 address), a host that normalises to a "/"
        valid = False
    if not valid:
        raise BadRequest(f"callback_url must be an http(s) URL, got {url!r}")


@post("/collection/{collection_id:str}/capture/session", status_code=200)
async def create_session(collection_id: str, data: SessionCreate, sessions: Sessions, key: Principal) -> dict[str, Any]:
    check_callback(data.callback_url)
    record = await sessions.create(collection_id, key.api_key_id, data.end_user_id, data.client_id,
                                   data.callback_url, data.ws_connection_id, data.metadata)
    return {"success": True, "data": views.capture_session(record, [], for_create=True)}


async def _session_view(found: Session, exports: Exports,
                        base: str) -> dict[str, Any]:
    row, rtstreams = found
    return views.capture_session(row, rtstreams, urls=await exports.session_urls(row, base))


@get("/collection/{collection_id:str}/capture/session")
async def list_sessions(collection_id: str, request: Request, sessions: Sessions, exports: Exports, links: Links,
                        key: Principal, status: Status | None = None) -> dict[str, Any]:
    found = await sessions.list(collection_id, status)
    base = links.base_url(request)
    return {"success": True, "data": {"sessions": [await _session_view(f, exports, base) for f in found],
                                      "next_page": None}}


@get("/collection/{collection_id:str}/capture/session/{session_id:str}")
async def get_session(collection_id: str, session_id: str, request: Request, sessions: Sessions, exports: Exports,
                      links: Links, key: Principal) -> dict[str, Any]:
    found = await sessions.get_in_collection(collection_id, session_id)
    return {"success": True, "data": await _session_view(found, exports, links.base_url(request))}


@post("/collection/{collection_id:str}/capture/session/{session_id:str}/export", status_code=200)
async def export_session(collection_id: str, session_id: str, data: ExportRequest, request: Request,
                         exports: Exports, links: Links, key: Principal) -> dict[str, Any]:
    """VideoDB's trigger-or-check: the first call starts the export, later calls report on it."""
    export = await exports.request(collection_id, session_id, data.video_channel_id,
                                   data.connection_id or data.ws_connection_id)
    return {"success": True, "data": await exports.present(export, links.base_url(request))}


@post("/capture/session/token", status_code=200)
async def create_token(data: TokenCreate, auth: Auth, settings: Settings, key: Principal) -> dict[str, Any]:
    if data.expires_in <= 0 or data.expires_in > settings.token_max_ttl:
        raise BadRequest(f"expires_in must be between 1 and {settings.token_max_ttl} seconds")
    token, expires_at = await auth.mint_client_token(key.api_key_id, data.expires_in, data.user_id)
    return {"success": True, "data": {"token": token, "expires_at": int(expires_at), "expires_in": data.expires_in}}


@post("/capture/session/start", status_code=200)
async def start_session(data: SessionStart, request: Request, sessions: Sessions, settings: Settings, links: Links,
                        actor: Principal) -> dict[str, Any]:
    await sessions.load_for(data.session_id, actor)  # 404/403 before judging the body
    if data.channels is None:
        raise BadRequest("channels is required")
    try:
        channels, primary = normalize(data.channels, settings.max_channels, data.primary_video_channel_id)
    except ChannelError as exc:
        raise BadRequest(str(exc)) from None
    check_callback(data.callback_url)
    updated = await sessions.start(data.session_id, actor, channels, primary, data.ws_connection_id, data.callback_url)
    return {"success": True, "data": {
        "session_id": updated.id, "status": updated.status,
        "created_at": views.capture_session(updated, [])["created_at"],
        "channels": channels, "primary_video_channel_id": primary,
        "webrtc_url": f"{links.base_url(request)}/capture/session/{updated.id}/offer",
    }}


@get("/capture/session/{session_id:str}")
async def recorder_get_session(session_id: str, request: Request, sessions: Sessions, exports: Exports, links: Links,
                               actor: Principal) -> dict[str, Any]:
    """The recorder's (and the capture page's) view of its own session; once exported it carries
    the recording's ``player_url``, which the page links to."""
    found = await sessions.get_for(session_id, actor)
    return {"success": True, "data": await _session_view(found, exports, links.base_url(request))}


@post("/capture/session/{session_id:str}/stop", status_code=200)
async def stop_session(session_id: str, sessions: Sessions, capture: CaptureRuntime, actor: Principal) -> dict[str, Any]:
    """Stopping finalizes every channel file before the session reports ``stopped``."""
    row = await sessions.load_for(session_id, actor)
    if row.status not in ("starting", "active", "stopping"):
        raise Conflict(lifecycle.refusal(row.status, "stopping"))
    await capture.stop(row.id)
    return {"success": True, "message": "Operation successful", "data": {"session_id": row.id, "status": "stopped"}}


@post("/capture/session/{session_id:str}/offer", status_code=200)
async def offer(session_id: str, data: Offer, sessions: Sessions, capture: CaptureRuntime,
                actor: Principal) -> dict[str, Any]:
    """WebRTC signalling, WHIP-style: one offer with every channel's track, one answer."""
    row = await sessions.load_for(session_id, actor)
    if data.type != "offer":
        raise BadRequest("type must be 'offer'")
    answer = await capture.offer(row, data.sdp, data.tracks)
    return {"success": True, "data": {"sdp": answer, "type": "answer"}}


@post("/capture/session/{session_id:str}/pause", status_code=200)
async def pause(session_id: str, data: TrackChange, sessions: Sessions, capture: CaptureRuntime,
                actor: Principal) -> dict[str, Any]:
    row = await sessions.load_for(session_id, actor)
    return {"success": True, "data": {"paused": await capture.pause(row.id, data.channels, True)}}


@post("/capture/session/{session_id:str}/resume", status_code=200)
async def resume(session_id: str, data: TrackChange, sessions: Sessions, capture: CaptureRuntime,
                 actor: Principal) -> dict[str, Any]:
    row = await sessions.load_for(session_id, actor)
    return {"success": True, "data": {"resumed": await capture.pause(row.id, data.channels, False)}}


handlers = [create_session, list_sessions, get_session, export_session, create_token, start_session,
            recorder_get_session, stop_session, offer, pause, resume]
