"""Live rtstream indexes, events and alerts (VideoDB's ``RTStreamSceneIndex``, ``create_event``).

``POST …/index/scene`` is four SDK methods told apart by the body (``routes/unavailable.py``
``scene_index_feature``): a transcript segmented without a prompt (``index_spoken_words``) and a
shot or time extraction of a display (``index_scenes``, ``index_visuals``: its screen text) are
made here; a prompt over transcript segments (``index_audio``) stays the 501 that names what it needs.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from reeldb.index import scenes
from litestar import get, patch, post
from litestar.params import Parameter

from ..auth import Principal
from ..errors import BadRequest, Unavailable
from ..live_indexes import LiveIndexes, ScreenConfig
from ..rt_events import RtEvents
from ..sessions import Sessions
from ..text import HTTP_URL_OR_EMPTY_PATTERN, WORDS_PATTERN
from .capture import check_callback
from .unavailable import LIVE_SCENES, LIVE_SPOKEN, scene_index_feature, unavailable_message


class SceneIndexBody(msgspec.Struct):
    extraction_type: str | None = None
    extraction_config: dict[str, Any] | None = None
    prompt: str | None = None
    model_name: str | None = None
    model_config: dict[str, Any] | None = None
    name: str | None = None
    ws_connection_id: str | None = None
    sandbox_id: str | None = None
    auto_start_transcript: bool | None = None


class ActionBody(msgspec.Struct):
    action: str | None = None
    status: str | None = None


class EventBody(msgspec.Struct):
    #: over 2,000 characters: 413 (rt_events.py); both are stripped as Python strips (WORDS_PATTERN)
    event_prompt: Annotated[str, msgspec.Meta(min_length=1, pattern=WORDS_PATTERN)]
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=WORDS_PATTERN)]


class AlertBody(msgspec.Struct):
    event_id: str
    #: an http(s) URL, or "" for the websocket only (as the schema says, so it is checked first)
    callback_url: Annotated[str, msgspec.Meta(pattern=HTTP_URL_OR_EMPTY_PATTERN)] = ""
    ws_connection_id: str | None = None


R = "/rtstream/{rtstream_id:str}"


@post(f"{R}/index/scene", status_code=200)  # index_audio / index_scenes / index_visuals: 501, documented
async def create_index(rtstream_id: str, data: SceneIndexBody, sessions: Sessions, indexes: LiveIndexes,
                       key: Principal) -> dict[str, Any]:
    """``index_spoken_words(segmenter, length)``: a live index of the transcript; ``index_scenes`` /
    ``index_visuals`` of a display: a live index of its screen text (both in memory). ``index_audio``
    answers 501 (declared in the document), once the rtstream is known to exist (404 first)."""
    stream = await sessions.rtstream(rtstream_id)
    feature = scene_index_feature(msgspec.to_builtins(data))
    if feature is LIVE_SCENES:
        try:
            scenes.config_from(data.extraction_type, data.extraction_config)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        config = ScreenConfig(scenes.extraction_name(data.extraction_type), data.extraction_config or {}, data.prompt)
        screen = await indexes.create_screen(stream, config, data.name, data.ws_connection_id)
        return {"success": True, "data": screen.view()}
    if feature is not LIVE_SPOKEN:
        raise Unavailable(unavailable_message(feature))
    config = data.extraction_config or {}
    value = config.get("segmentation_value", 10)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise BadRequest("extraction_config.segmentation_value must be a number")
    index = await indexes.create(stream, str(config.get("segmenter", "word")), value, data.name,
                                 data.ws_connection_id)
    return {"success": True, "data": index.view()}


@get(f"{R}/index/scene")
async def list_indexes(rtstream_id: str, sessions: Sessions, indexes: LiveIndexes, key: Principal) -> dict[str, Any]:
    await sessions.rtstream(rtstream_id)
    return {"success": True, "data": {"scene_indexes": [i.view() for i in indexes.of(rtstream_id)]}}


@get(f"{R}/index/{{index_id:str}}")
async def get_index(rtstream_id: str, index_id: str, indexes: LiveIndexes, key: Principal) -> dict[str, Any]:
    return {"success": True, "data": indexes.get(rtstream_id, index_id).view()}


@get(f"{R}/index/scene/{{index_id:str}}")
async def get_records(rtstream_id: str, index_id: str, indexes: LiveIndexes, key: Principal,
                      page: Annotated[int, Parameter(ge=1, le=2**31)] = 1,
                      page_size: Annotated[int, Parameter(ge=1, le=1000)] = 100, start: float | None = None,
                      end: float | None = None) -> dict[str, Any]:
    """``get_scenes(start, end, page, page_size)``: the index's records, unix seconds (``page`` and
    ``page_size`` are checked as declared: a 400 in the envelope)."""
    index = indexes.get(rtstream_id, index_id)
    records = indexes.records(index, start, end)
    return {"success": True, "data": {"scene_index_records": records[(page - 1) * page_size: page * page_size],
                                      "next_page": page * page_size < len(records), "total_count": len(records),
                                      **index.view()}}


@patch(f"{R}/index/scene/{{index_id:str}}/status")
async def set_index_status(rtstream_id: str, index_id: str, data: ActionBody, indexes: LiveIndexes,
                           key: Principal) -> dict[str, Any]:
    index = indexes.get(rtstream_id, index_id)
    if data.action == "start":
        await indexes.start(index)
    elif data.action == "stop":
        await indexes.stop(index)
    else:
        raise BadRequest("action must be 'start' or 'stop'")
    return {"success": True, "data": index.view()}


@post(f"{R}/index/{{index_id:str}}/alert", status_code=200)
async def create_alert(rtstream_id: str, index_id: str, data: AlertBody, indexes: LiveIndexes,
                       key: Principal) -> dict[str, Any]:
    """``create_alert(event_id, callback_url, ws_connection_id)``; ``""`` for websocket only."""
    if data.callback_url:
        check_callback(data.callback_url)
    index = indexes.get(rtstream_id, index_id)
    alert = await indexes.create_alert(index, data.event_id, data.callback_url, data.ws_connection_id,
                                       key.api_key_id)
    return {"success": True, "data": alert.view()}


@get(f"{R}/index/{{index_id:str}}/alert")
async def list_alerts(rtstream_id: str, index_id: str, indexes: LiveIndexes, key: Principal) -> dict[str, Any]:
    index = indexes.get(rtstream_id, index_id)
    return {"success": True, "data": {"alerts": [a.view() for a in index.alerts.values()]}}


@patch(f"{R}/index/{{index_id:str}}/alert/{{alert_id:str}}/status")
async def set_alert_status(rtstream_id: str, index_id: str, alert_id: str, data: ActionBody, indexes: LiveIndexes,
                           key: Principal) -> dict[str, Any]:
    """The SDK sends ``{"action": "enable"|"disable"}``, VideoDB's OpenAPI ``{"status": "enabled"|…}``."""
    alert = indexes.alert(indexes.get(rtstream_id, index_id), alert_id)
    wanted = data.action or {"enabled": "enable", "disabled": "disable"}.get(data.status or "")
    if wanted not in ("enable", "disable"):
        raise BadRequest("action must be 'enable' or 'disable'")
    alert.enabled = wanted == "enable"
    return {"success": True, "data": alert.view()}


@post("/rtstream/event", status_code=200)
async def create_event(data: EventBody, rt_events: RtEvents, key: Principal) -> dict[str, Any]:
    """``conn.create_event(event_prompt, label)``: ``"a phrase"``, ``/a pattern/`` or prose (by meaning)."""
    event = await rt_events.create(key.api_key_id, data.event_prompt, data.label)
    return {"success": True, "data": event.view()}


@get("/rtstream/event")
async def list_events(rt_events: RtEvents, key: Principal) -> dict[str, Any]:
    return {"success": True, "data": {"events": [e.view() for e in await rt_events.list()]}}


handlers = [create_index, list_indexes, get_index, get_records, set_index_status, create_alert, list_alerts,
            set_alert_status, create_event, list_events]
