"""RTStreams: one per capture channel; readable, exportable as that channel's raw asset, and
transcribed live while the session streams."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, patch, post
from litestar.params import Parameter

from .. import views
from ..auth import Principal
from ..errors import BadRequest, Conflict
from ..exports import Exports
from ..links import Links
from ..live import LiveTranscripts
from ..live_indexes import LiveIndexes
from ..sessions import Sessions


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
    scene_index_id: str | None = None
    result_threshold: int | None = None
    score_threshold: float | None = None


@get("/rtstream")
async def list_rtstreams(sessions: Sessions, key: Principal, collection_id: str = "default",
                         limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
                         offset: Annotated[int, Parameter(ge=0, le=2**53)] = 0,
                         status: str | None = None, name: str | None = None) -> dict[str, Any]:
    found, total = await sessions.list_rtstreams(collection_id, limit, offset, status, name)
    return {"success": True, "data": {"results": [views.rtstream(r) for r in found], "count": total,
                                      "next": None, "previous": None}}


@get("/rtstream/{rtstream_id:str}")
async def get_rtstream(rtstream_id: str, sessions: Sessions, key: Principal) -> dict[str, Any]:
    return {"success": True, "data": views.rtstream(await sessions.rtstream(rtstream_id))}


@patch("/rtstream/{rtstream_id:str}/status")
async def set_status(rtstream_id: str, data: StatusBody, sessions: Sessions, key: Principal) -> dict[str, Any]:
    await sessions.rtstream(rtstream_id)
    raise Conflict("This rtstream belongs to a capture session: it starts and stops with the session")


@post("/rtstream/{rtstream_id:str}/export", status_code=200)
async def export_rtstream(rtstream_id: str, data: ExportBody, request: Request, sessions: Sessions,
                          exports: Exports, links: Links, key: Principal) -> dict[str, Any]:
    """The channel's raw asset; the first call runs the session's export if it has not run yet."""
    stream = await sessions.rtstream(rtstream_id)
    base = links.base_url(request)
    asset = await exports.export_rtstream(stream, data.name)
    if asset is not None:
        return {"success": True, "data": views.exported_asset(asset, links, base)}
    return {"success": True, "status": "processing", "request_type": "sync",
            "data": {"output_url": f"{base}/rtstream/{rtstream_id}/export/status"}}


@get("/rtstream/{rtstream_id:str}/export/status")
async def export_status(rtstream_id: str, request: Request, sessions: Sessions, exports: Exports,
                        links: Links, key: Principal) -> dict[str, Any]:
    """What the SDK polls after ``processing``: ``processing`` until the asset exists."""
    stream = await sessions.rtstream(rtstream_id)
    asset = await exports.exported_asset(stream.id, None)
    if asset is not None:
        return {"success": True, "status": "done", "data": views.exported_asset(asset, links, links.base_url(request))}
    failed = await exports.failed_for(stream.session_id)
    if failed:
        return {"success": False, "status": "failed", "message": failed["error"]}
    return {"success": True, "status": "processing", "data": {}}


@post("/rtstream/{rtstream_id:str}/transcription", status_code=200)
async def transcription(rtstream_id: str, data: TranscriptionBody, sessions: Sessions, live: LiveTranscripts,
                        key: Principal) -> dict[str, Any]:
    """``start_transcript`` / ``stop_transcript``: live, from memory, to the websocket."""
    stream = await sessions.rtstream(rtstream_id)
    if data.action == "start":
        return {"success": True, "data": await live.start(stream, data.ws_connection_id)}
    if data.action == "stop":
        return {"success": True, "data": await live.stop(rtstream_id)}
    raise BadRequest("action must be 'start' or 'stop'")


@get("/rtstream/{rtstream_id:str}/transcription")
async def get_transcription(rtstream_id: str, sessions: Sessions, live: LiveTranscripts, key: Principal,
                            page: int = 1, page_size: int = 100, start: float | None = None,
                            end: float | None = None, since: float | None = None,
                            engine: str | None = None) -> dict[str, Any]:
    await sessions.rtstream(rtstream_id)
    if page < 1 or not 1 <= page_size <= 1000:
        raise BadRequest("page must be at least 1 and page_size 1..1000")
    records = live.records(rtstream_id, start, end, since)
    chunk = records[(page - 1) * page_size: page * page_size]
    return {"success": True, "data": {
        "transcription_records": chunk, "total_count": len(records), "page": page, "page_size": page_size,
        "next_page": page + 1 if page * page_size < len(records) else None, **live.status(rtstream_id)}}


@get("/rtstream/{rtstream_id:str}/transcription/status")
async def transcription_status(rtstream_id: str, sessions: Sessions, live: LiveTranscripts,
                               key: Principal) -> dict[str, Any]:
    await sessions.rtstream(rtstream_id)
    return {"success": True, "data": live.status(rtstream_id)}


@post("/rtstream/{rtstream_id:str}/search", status_code=200)
async def search_rtstream(rtstream_id: str, data: RtSearchBody, sessions: Sessions, live: LiveTranscripts,
                          indexes: LiveIndexes, key: Principal) -> dict[str, Any]:
    """Search what was said on this stream by meaning: its live transcript (a display's: its live
    screen-text records), or with ``index_id`` the records of that live index; times are unix seconds."""
    stream = await sessions.rtstream(rtstream_id)
    threshold = data.score_threshold if data.score_threshold is not None else 0.2
    if data.scene_index_id:
        index = indexes.get(rtstream_id, data.scene_index_id)
        found = await live.rank(indexes.records(index, None, None), data.query or "", data.result_threshold or 5,
                                threshold)
        results = [{"start": r["start"], "end": r["end"], "text": r["text"], "score": r["score"],
                    "scene_index_id": index.id, "scene_index_name": index.name, "metadata": {}} for r in found]
    elif "audio" not in stream.media_types:  # a display: what its screen-text indexes read
        screens = [i for i in indexes.of(rtstream_id) if i.screen]
        results = await live.rank(indexes.records(screens[0], None, None) if screens else [], data.query or "",
                                  data.result_threshold or 5, threshold)
    else:
        results = await live.search(rtstream_id, data.query or "", data.result_threshold or 5, threshold)
    return {"success": True, "data": {"results": results}}


@get("/rtstream/{rtstream_id:str}/stream")
async def rtstream_stream(rtstream_id: str, request: Request, sessions: Sessions, exports: Exports, links: Links,
                          key: Principal, start: float, end: float, player_title: str | None = None,
                          player_description: str | None = None,
                          player_slug_prefix: str | None = None) -> dict[str, Any]:
    """``rtstream.generate_stream(start, end)`` and its search shots' ``generate_stream()``: what
    the channel recorded between two unix times, as an exact clip (the player's title and slug
    are VideoDB's hosted-player options; ReelDB's player titles a clip by its video)."""
    found = await sessions.rtstream(rtstream_id)
    urls = await exports.rtstream_clip(found, start, end, links.base_url(request))
    return {"success": True, "data": {"rtstream_id": rtstream_id, "start": start, "end": end, **urls}}


handlers = [rtstream_stream, list_rtstreams, get_rtstream, set_status, export_rtstream, export_status, transcription,
            get_transcription, transcription_status, search_rtstream]
