"""The SDK page's table (docs/sdk.md) of the SDK's features is true (issue 12): every public method of every class of
the official SDK that talks to a server is listed, and each is called once against a real ReelDB
with real media and a real capture.

- ``implemented`` / ``differently``: the call returns without raising.
- ``not available``: the call raises the SDK's error carrying ReelDB's 501 message (``… is not
  available in ReelDB: <why>``; a 405 with that message for the two calls whose path takes other
  methods, see ``server/routes/unavailable.py``), or, where the note says "the SDK refuses it", the SDK's own
  ``NotImplementedError`` before any request.
- A public method of the SDK that the table does not list (a new SDK release) fails the test, and so
  does a row naming a method the SDK no longer has.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import pkgutil
import sqlite3
import time
import typing
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from support.recording import record, use_reeldb_recorder
from support.media import make_audio, make_image, screen_ts, write_video, write_wav
from support.server_process import ServerProcess
from support.speech import MEETING_A, compose, require_espeak

pytestmark = pytest.mark.slow

SDK_PAGE = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
STATES = {"implemented", "differently", "not available"}
#: Classes that reach a server without naming the connection in their source.
ALSO = {"CaptureClient", "WebSocketConnection", "UnderstandingAnalyzer", "Channel"}


def sdk_methods() -> dict[str, tuple[type, str]]:
    """``Class.method`` (``editor.Timeline.method`` for the editor's Timeline) → (class, name)."""
    import videodb

    found: dict[str, tuple[type, str]] = {}
    for info in pkgutil.walk_packages(videodb.__path__, "videodb."):
        short = info.name.rsplit(".", 1)[-1]
        if short.startswith("_") or short == "exceptions":
            continue
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != info.name:
                continue
            if name not in ALSO and "connection" not in inspect.getsource(cls):
                continue
            for method, fn in vars(cls).items():
                if method.startswith("_") or not callable(fn) or isinstance(fn, type):
                    continue
                label = f"editor.{name}" if short == "editor" else name
                found[f"{label}.{method}"] = (cls, method)
    return found


def sdk_page_table() -> dict[str, tuple[str, str, str]]:
    """The SDK page's rows: ``Class.method`` → (area, state, note)."""
    rows = {}
    for line in SDK_PAGE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith("`"):
            area, method, state, note = cells
            assert state in STATES, line
            rows[method.strip("`")] = (area, state, note)
    return rows


# -- the server and the media every call needs ----------------------------------------------------------
class Ctx:
    pass


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    require_espeak()
    use_reeldb_recorder()
    import videodb
    import videodb._utils._video as player

    os.environ["BROWSER"] = "true"  # play() opens a "browser": the true(1) command
    tmp = tmp_path_factory.mktemp("sdk")
    server = ServerProcess(tmp / "data", env={"REELDB_SYNC_WAIT": "10"}).start()
    c = Ctx()
    c.server = server
    player.PLAYER_URL = server.url + "/player"  # the docs' line: play() opens ReelDB's player
    c.conn = conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    c.coll = coll = conn.get_collection()
    audio, _ = compose(MEETING_A[:2], gap=1.0, lead=0.5)
    c.video = coll.upload(file_path=str(write_video(tmp / "talk.mp4", audio, gop=5)))
    c.video2 = coll.upload(file_path=str(write_video(tmp / "other.mp4", audio[: 48000 * 3])))
    c.audio = coll.upload(file_path=str(make_audio(tmp / "tone.wav", 3.0)), media_type="audio")
    c.image = coll.upload(file_path=str(make_image(tmp / "pic.png")))
    c.video.index_spoken_words()
    c.wav = write_wav(tmp / "mic.wav", audio)

    # One capture through CaptureClient: its methods are called by ``record`` and ``during``.
    c.calls = set()
    cap = conn.create_capture_session(end_user_id="sdk-table")
    token = conn.generate_client_token(expires_in=600)
    screen = screen_ts(tmp / "screen.ts", 14, (0, 0, 160))

    async def during(client, channels):
        await client.request_permission("microphone")
        c.calls.add("CaptureClient.request_permission")
        mic = next(ch for ch in channels.all() if ch.id == "mic:default")
        await mic.pause()
        await mic.resume()
        c.calls.update({"Channel.pause", "Channel.resume"})
        await asyncio.sleep(0.5)
        live = conn.get_capture_session(cap.id)
        rts = next(s for s in live.get_rtstream("mic") if s.name == "mic:default")
        started = rts.start_transcript()
        live_index_calls(c, rts, live.get_rtstream("display")[0])
        await asyncio.sleep(8.5)
        c.live_transcript = (started, rts.stop_transcript())

    events = asyncio.run(record(server.url, token, cap.id, {"mic:default": str(c.wav), "display:1": str(screen)},
                                {"mic:default": True, "display:1": True}, 10, primary="display:1", during=during))
    assert events[-1]["event"] == "recording-complete"
    c.calls.update({"CaptureClient.list_channels", "CaptureClient.start_session", "CaptureClient.stop_session",
                    "CaptureClient.events", "CaptureClient.shutdown"})
    deadline = time.time() + 90
    while (cap := conn.get_capture_session(cap.id)).status != "exported":
        assert time.time() < deadline, cap.status
        time.sleep(0.5)
    c.cap = cap
    c.rts = next(s for s in cap.get_rtstream("mic") if s.name == "mic:default")
    c.display = next(s for s in cap.get_rtstream("display"))
    yield c
    server.stop()


def live_index_calls(c: Ctx, rts, display) -> None:
    """A live spoken-word index, an event and an alert on it, and live screen-text indexes of the
    display, made while the session streams (they need a live rtstream): each call the SDK has is
    made once and noted in ``c.calls``."""
    scenes = display.index_scenes(name="screen")
    visuals = display.index_visuals(batch_config={"type": "time", "value": 2, "frame_count": 1})
    assert {i.rtstream_index_id for i in display.list_scene_indexes()} == {scenes.rtstream_index_id,
                                                                            visuals.rtstream_index_id}
    index = rts.index_spoken_words(segmenter="word", length=5)
    event_id = c.conn.create_event('"budget"', "budget")
    assert any(e["event_id"] == event_id for e in c.conn.list_events())
    assert rts.get_scene_index(index.rtstream_index_id).status == "connected"
    assert [i.rtstream_index_id for i in rts.list_scene_indexes()] == [index.rtstream_index_id]
    assert index.get_scenes(page_size=10)["next_page"] is False
    alert_id = index.create_alert(event_id, "")
    index.disable_alert(alert_id)
    index.enable_alert(alert_id)
    assert index.list_alerts()[0]["status"] == "enabled"
    index.stop()
    index.start()
    c.calls.update(LIVE_INDEX_CALLS)


LIVE_INDEX_CALLS = {"RTStream.index_spoken_words", "RTStream.index_scenes", "RTStream.index_visuals",
                    "RTStream.get_scene_index", "RTStream.list_scene_indexes",
                    "Connection.create_event", "Connection.list_events",
                    *(f"RTStreamSceneIndex.{m}" for m in ("get_scenes", "create_alert", "list_alerts", "enable_alert",
                                                          "disable_alert", "stop", "start"))}


# -- how each method is called ----------------------------------------------------------------------------
def value_for(name: str, annotation: Any, c: Ctx) -> Any:
    """A plausible argument for a required parameter, by its name and annotation."""
    known = {"video_id": c.video.id, "collection_id": c.coll.id, "rtstream_id": c.rts.id, "audio_id": c.audio.id,
             "image_id": c.image.id, "session_id": c.cap.id, "capture_session_id": c.cap.id,
             "end_user_id": "user-1", "query": "budget review", "prompt": "a calm sea at dawn",
             "meeting_url": "https://meet.example.com/abc-defg-hij", "source": "https://example.com/talk.mp4",
             "url": "https://example.com/talk.mp4", "video": c.video2, "timestamp": 1.0, "language": "fr",
             "target_language": "fr", "text": "Hello there", "name": "x", "category": "mic",
             "message": {"type": "ping"}, "kind": "microphone", "path": "health", "start": 1, "end": 3,
             "timeline": [(0, 2)], "voice_clone_id": "vc-1", "alert_id": "al-1", "event_id": "ev-1",
             "index_id": "idx-1", "scene_index_id": "si-1", "understanding_id": "und-1", "scene_id": "sc-1",
             "job_id": "job-1", "sandbox_id": "sb-1", "name_or_id": "sw", "analyzer": "sw",
             "search_type": "semantic", "type": "semantic", "index_type": "spoken_word", "analyzers": [{"type": "spoken_word"}],
             "stream_url": "https://example.com/x.m3u8"}
    if name in known:
        return known[name]
    if name.endswith("_id") or name == "id":
        return "x-1"
    if name.endswith(("url", "_path")):
        return "https://example.com/x"
    origin = typing.get_origin(annotation) or annotation
    if annotation in (int, float) or origin in (int, float):
        return 1
    if origin in (list, list):
        return []
    if origin in (dict, dict):
        return {}
    if annotation is bool:
        return False
    return "x"


def call_with_defaults(fn: Callable, c: Ctx, **given: Any) -> Any:
    signature = inspect.signature(fn)
    kwargs = dict(given)
    for name, p in signature.parameters.items():
        if name == "self" or name in kwargs or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            kwargs[name] = value_for(name, p.annotation, c)
    result = fn(**kwargs)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    elif inspect.isasyncgen(result):
        async def first():
            async for item in result:
                return item
        result = asyncio.run(first())
    return result


def instance(cls: type, c: Ctx) -> Any:
    """An object of ``cls`` as the SDK would hand it out: real ones where ReelDB makes them."""
    from videodb import editor, timeline
    from videodb.search import SearchFactory

    name = cls.__name__
    if name == "Connection":
        return c.conn
    if name == "Collection":
        return c.coll
    if name == "Video":
        return c.coll.get_video(c.video.id)
    if name == "Audio":
        return c.coll.get_audio(c.audio.id)
    if name == "Image":
        return c.coll.get_image(c.image.id)
    if name == "CaptureSession":
        return c.conn.get_capture_session(c.cap.id)
    if name == "RTStream":
        return c.coll.get_rtstream(c.rts.id)
    if name in ("SearchResult", "SearchResponse"):
        if name == "SearchResult" and not hasattr(c.video, "legacy_search"):  # SDK 0.4.x: search() is legacy
            return c.video.search("budget review")
        return (c.video.search("budget review") if name == "SearchResponse"
                else c.video.legacy_search("budget review"))
    if name == "Shot":
        return c.video.search("budget review").shots[0]
    if name == "RTStreamShot":
        return c.rts.search("database migration").shots[0]
    if cls is timeline.Timeline:
        t = timeline.Timeline(c.conn)
        from videodb.asset import VideoAsset
        t.add_inline(VideoAsset(asset_id=c.video.id, start=0, end=2))
        return t
    if cls is editor.Timeline:
        t = editor.Timeline(c.conn)
        t.add_track(track_with(editor, c.video.id))
        return t
    if name in ("SemanticSearch", "KeywordSearch", "SceneSearch"):
        kind = {"SemanticSearch": "semantic", "KeywordSearch": "keyword", "SceneSearch": "scene"}[name]
        return SearchFactory(c.conn).get_search(kind)
    if name == "WebSocketConnection":
        return c.conn.connect_websocket()
    if name == "UnderstandingAnalyzer":
        from videodb.understanding import Understanding
        u = Understanding(c.conn, video_id=c.video.id, id="und-1")
        return cls(u, id="sw", name="sw")
    params = inspect.signature(cls.__init__).parameters
    kwargs = {}
    for pname, p in params.items():
        if pname == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if "connection" in pname:
            kwargs[pname] = c.conn
        elif pname == "rtstream_id":
            kwargs[pname] = c.rts.id
        elif p.default is inspect.Parameter.empty:
            kwargs[pname] = value_for(pname, p.annotation, c)
    return cls(**kwargs)


def track_with(editor, video_id: str):
    track = editor.Track()
    track.add_clip(0, editor.Clip(asset=editor.VideoAsset(id=video_id, start=0), duration=2))
    return track


def websocket_roundtrip(c: Ctx, method: str) -> Any:
    async def go():
        ws = c.conn.connect_websocket()
        await ws.connect()
        try:
            if method == "send":
                return await ws.send({"type": "ping"})
            if method == "receive":  # a session created with this connection's id sends it its events
                c.conn.create_capture_session(end_user_id="ws", ws_connection_id=ws.connection_id)
                async for message in ws.receive():
                    return message
            return None
        finally:
            await ws.close()

    return asyncio.run(asyncio.wait_for(go(), 20))


#: Calls that need more than defaults: ``Class.method`` → f(ctx, object).
RECIPES: dict[str, Callable[[Ctx, Any], Any]] = {
    "Connection.get": lambda c, o: o.get(path="collection"),
    "Connection.post": lambda c, o: o.post(path="capture/session/token", data={"expires_in": 60}),
    "Connection.patch": lambda c, o: o.patch(path=f"collection/{c.coll.id}", data={"description": "d"}),
    "Connection.put": lambda c, o: o.put(path="collection", data={}),
    "Connection.delete": lambda c, o: o.delete(path=f"collection/{o.create_collection(name='tmp', description='d').id}"),
    "Connection.upload": lambda c, o: o.upload(file_path=str(c.wav), media_type="audio"),
    "Connection.create_collection": lambda c, o: o.create_collection(name="made", description="d"),
    "Connection.update_collection": lambda c, o: o.update_collection(id=c.coll.id, name=c.coll.name,
                                                                     description="d"),
    "Connection.get_async_response": lambda c, o: o.get_async_response(async_response_id(c)),
    "Connection.get_capture_session": lambda c, o: o.get_capture_session(c.cap.id),
    "Connection.list_capture_sessions": lambda c, o: o.list_capture_sessions(),
    "Connection.connect_websocket": lambda c, o: o.connect_websocket(),
    "Collection.upload": lambda c, o: o.upload(file_path=str(make_image(c.server.data_dir.parent / "p2.png"))),
    "Collection.delete": lambda c, o: c.conn.create_collection(name="gone", description="d").delete(),
    "Collection.delete_video": lambda c, o: o.delete_video(fresh_video(c).id),
    "Collection.delete_audio": lambda c, o: o.delete_audio(o.upload(file_path=str(c.wav), media_type="audio").id),
    "Collection.delete_image": lambda c, o: o.delete_image(o.upload(file_path=str(
        make_image(c.server.data_dir.parent / "p3.png"))).id),
    "Collection.get_rtstream": lambda c, o: o.get_rtstream(c.rts.id),
    "Collection.get_capture_session": lambda c, o: o.get_capture_session(c.cap.id),
    "Collection.create_capture_session": lambda c, o: o.create_capture_session(end_user_id="u"),
    "Collection.legacy_search": lambda c, o: o.legacy_search("budget review"),
    "Collection.search": lambda c, o: o.search("budget review"),
    "Video.delete": lambda c, o: fresh_video(c).delete(),
    "Video.insert_video": lambda c, o: o.insert_video(c.video2, 2.0),
    "Video.generate_stream": lambda c, o: o.generate_stream([(0, 2)]),
    "Video.update": lambda c, o: o.update(name="renamed"),
    "Video.index_spoken_words": lambda c, o: o.index_spoken_words(force=True),
    "Video.get_index": lambda c, o: o.get_index(index_id="idx-1"),
    "Video.index": lambda c, o: o.index(source={"understanding_id": "und-1"}),
    "Timeline.add_inline": lambda c, o: o.add_inline(asset_of(c, "VideoAsset")),
    "Timeline.add_overlay": lambda c, o: o.add_overlay(0, asset_of(c, "AudioAsset")),
    "editor.Timeline.download_stream": lambda c, o: o.download_stream(o.generate_stream()),
    "Audio.delete": lambda c, o: c.coll.upload(file_path=str(c.wav), media_type="audio").delete(),
    "Image.delete": lambda c, o: c.coll.upload(file_path=str(make_image(c.server.data_dir.parent / "p4.png"))).delete(),
    "RTStream.generate_stream": lambda c, o: rtstream_span(c, o),
    "RTStream.get_embed_code": lambda c, o: (rtstream_span(c, o), o.get_embed_code())[1],
    "RTStream.start_transcript": lambda c, o: c.live_transcript[0],
    "RTStream.stop_transcript": lambda c, o: c.live_transcript[1],
    "CaptureSession.get_rtstream": lambda c, o: o.get_rtstream("display"),
    "WebSocketConnection.connect": lambda c, o: websocket_roundtrip(c, "connect"),
    "WebSocketConnection.close": lambda c, o: websocket_roundtrip(c, "close"),
    "WebSocketConnection.send": lambda c, o: websocket_roundtrip(c, "send"),
    "WebSocketConnection.receive": lambda c, o: websocket_roundtrip(c, "receive"),
    "Understanding.get_analyzer": lambda c, o: o.get_analyzer("sw", refresh=True),
    # screen-text scenes (issue 20): real collections and indexes of the talk video
    "Video.get_scene_collection": lambda c, o: o.get_scene_collection(o.extract_scenes().id),
    "Video.delete_scene_collection": lambda c, o: o.delete_scene_collection(o.extract_scenes().id),
    "SceneCollection.delete": lambda c, o: c.coll.get_video(c.video.id).extract_scenes().delete(),
    "Scene.describe": lambda c, o: first_scene(c).describe(),
    "Frame.describe": lambda c, o: first_scene(c).frames[0].describe(),
    "Video.get_scene_index": lambda c, o: o.get_scene_index(scene_index(c)),
    "Video.delete_scene_index": lambda c, o: o.delete_scene_index(o.index_scenes(name="gone")),
    "SceneSearch.search_inside_video": lambda c, o: (scene_index(c), o.search_inside_video(
        video_id=c.video.id, query="budget review", search_type="semantic", index_type="scene"))[1],
}


def first_scene(c: Ctx):
    return c.coll.get_video(c.video.id).extract_scenes().scenes[0]


def scene_index(c: Ctx) -> str:
    """A scene index of the talk video with scenes given as text (its frames show none)."""
    if not getattr(c, "scene_index_id", None):
        from videodb.scene import Scene
        video = c.coll.get_video(c.video.id)
        c.scene_index_id = video.index_scenes(scenes=[Scene(video.id, 0, 2, "budget review slide")])
    return c.scene_index_id


def asset_of(c: Ctx, kind: str):
    from videodb import asset

    if kind == "VideoAsset":
        return asset.VideoAsset(asset_id=c.video2.id, start=0, end=2)
    return asset.AudioAsset(asset_id=c.audio.id, start=0, end=1)


def fresh_video(c: Ctx):
    audio, _ = compose(MEETING_A[:1], gap=0.5, lead=0.2)
    path = c.server.data_dir.parent / f"fresh-{time.monotonic_ns()}.mp4"
    return c.coll.upload(file_path=str(write_video(path, audio)))


def async_response_id(c: Ctx) -> str:
    """A finished job's id (the fixture's index job): its ``output_url`` is what the SDK would poll."""
    with sqlite3.connect(f"file:{c.server.data_dir / 'reeldb.db'}?mode=ro", uri=True) as db:
        (job_id,) = db.execute("select id from jobs where kind = 'index' and status = 'done' limit 1").fetchone()
    return job_id


def rtstream_span(c: Ctx, o) -> str:
    """Seconds 1-4 of the recording, in unix seconds as the SDK takes them."""
    data = requests.get(f"{c.server.url}/rtstream/{o.id}", headers={"x-access-token": c.server.api_key}).json()["data"]
    started = data.get("started_at") or data["created_at"]
    begin = int(datetime.fromisoformat(started).timestamp()) if isinstance(started, str) \
        else int(started)
    return o.generate_stream(begin + 1, begin + 4)


#: Called by the capture in the fixture (``record`` and ``during``).
DURING_CAPTURE = {"CaptureClient.list_channels", "CaptureClient.start_session", "CaptureClient.stop_session",
                  "CaptureClient.events", "CaptureClient.shutdown", "CaptureClient.request_permission",
                  "Channel.pause", "Channel.resume", *LIVE_INDEX_CALLS}


def call(key: str, cls: type, method: str, c: Ctx) -> Any:
    if key in DURING_CAPTURE:
        assert key in c.calls, f"{key} was not called during the capture"
        return True
    obj = instance(cls, c)
    if key in RECIPES:
        return RECIPES[key](c, obj)
    return call_with_defaults(getattr(obj, method), c)


#: The SDK page's mark on a row whose method the SDK gained in 0.5 (0.4.x has no such method).
SINCE_05 = "*(SDK 0.5)*"


def sdk_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(p) for p in version("videodb").split(".")[:3] if p.isdigit())


def test_every_public_sdk_method_is_in_the_sdk_page_table():
    """Run with each supported SDK release (tests/run.sh also runs this file with 0.4.5): every
    method of the installed one has a row; a row naming no method of it is stale, unless the row
    says the method came with 0.5 and this is 0.4.x. With 0.5.x, no row may wrongly say so."""
    methods, rows = sdk_methods(), sdk_page_table()
    older = sdk_version() < (0, 5)
    missing = sorted(set(methods) - set(rows))
    stale = sorted(k for k in set(rows) - set(methods) if not (older and SINCE_05 in rows[k][2]))
    if older:
        wrongly_marked = sorted(k for k in methods if SINCE_05 in rows.get(k, ("", "", ""))[2])
        assert not wrongly_marked, f"rows marked {SINCE_05} that 0.4.x has: {wrongly_marked}"
    assert not missing, f"SDK methods missing from the table of docs/sdk.md: {missing}"
    assert not stale, f"rows of docs/sdk.md naming no SDK method: {stale}"


def test_the_sdk_page_table_is_true(ctx):
    rows, methods = sdk_page_table(), sdk_methods()
    wrong = []
    for key, (area, state, note) in sorted(rows.items()):
        if key not in methods:
            continue
        cls, method = methods[key]
        try:
            result = call(key, cls, method, ctx)
        except NotImplementedError as exc:
            if not (state == "not available" and "the SDK refuses it" in note):
                wrong.append((key, state, f"NotImplementedError: {exc}"))
            continue
        except Exception as exc:  # noqa: BLE001 - every failure is collected, then reported together
            message = str(getattr(exc, "message", None) or exc)
            response = getattr(exc, "response", None)
            status = getattr(response, "status_code", None)
            if state != "not available":
                wrong.append((key, state, f"raised {type(exc).__name__} {status}: {message[:200]}"))
            elif "the SDK refuses it" in note:
                wrong.append((key, state, f"expected the SDK's NotImplementedError, got {message[:200]}"))
            elif "answers 409" in note:
                if status != 409:
                    wrong.append((key, state, f"expected a 409, got {status}: {message[:200]}"))
            elif status not in (501, 405) or "not available in ReelDB" not in message:
                wrong.append((key, state, f"expected a 501 naming the feature, got {status}: {message[:200]}"))
            continue
        if state == "not available":
            wrong.append((key, state, f"returned {str(result)[:120]}"))
    assert not wrong, "\n".join(map(str, wrong))


def test_a_recordings_stored_display_gets_a_screen_text_index(ctx):
    """``REELDB_AUTO_INDEX`` (issue 20): the export of the recording's stored display is read for its
    screen text unasked, as its speech is transcribed (the test pattern shows no text: empty scenes)."""
    video = ctx.coll.get_video(ctx.cap.exported_video_id)
    deadline = time.time() + 120
    while not (made := [i for i in video.list_scene_index() if i["status"] == "done"]):
        assert time.time() < deadline, video.list_scene_index()
        time.sleep(1)
    assert made[0]["source"] == "screen_text" and made[0]["scene_count"] >= 1
    assert all(set(r) == {"start", "end", "description"} for r in video.get_scene_index(made[0]["scene_index_id"]))
