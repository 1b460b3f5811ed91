"""Live screen-text indexes and their alerts while a capture streams, through the SDK's CaptureClient:
a display shows a slide deck (a file played as the channel), a mic says a known sentence; records of
each slide arrive on the websocket and from get_scenes, an alert fires on a word only a slide shows
and one on the spoken phrase, each as a signed webhook with the moment's clip (system audio, ephemeral, is indexed and alerts
too); the exported video
finds the slide's words and the mic's at once. With the display and the system audio ephemeral,
records and alerts arrive and nothing they showed or said reaches the data dir."""

from __future__ import annotations

import asyncio
import time

import av
import pytest
import requests
import videodb
from support import screens
from support.recording import listen_for, record, use_reeldb_recorder, when_active
from support.media import write_wav
from support.server_process import signed_by, webhook_secret
from support.speech import MEETING_A, MEETING_B, compose, require_espeak
from videodb.exceptions import InvalidRequestError


pytestmark = pytest.mark.slow

SIZE = (1280, 720)


def deck(folder) -> tuple[dict[str, str], float]:
    """A welcome slide (6 s), a slide naming Zanzibar and Kilimanjaro (7 s), a closing slide (7 s), as
    relayable H.264 with a keyframe a second; a mic saying MEETING_A's first sentence and system
    audio MEETING_B's, each after 4 s."""
    require_espeak()
    shows = [(6.0, screens.slide(SIZE, "Welcome to the review", ["Agenda for this afternoon", "Team updates"], 36)),
             (7.0, screens.slide(SIZE, "Zanzibar expansion", ["Kilimanjaro office lease signed", "Hiring plan"], 36)),
             (7.0, screens.slide(SIZE, "Closing remarks", ["Questions from the audience", "Thank you"], 36))]
    path = folder / "deck.ts"
    screens.record(path, shows, SIZE, fps=10, bit_rate=600_000, gop_seconds=1.0, relayable=True)
    mic, _ = compose([MEETING_A[0]], lead=4.0)
    system, _ = compose([MEETING_B[0]], lead=4.0)
    return {"mic:default": str(write_wav(folder / "mic.wav", mic)),
            "system_audio:default": str(write_wav(folder / "sys.wav", system)), "display:1": str(path)}, 20.5


def _ws(messages: list[dict], channel: str, word: str) -> list[dict]:
    return [m for m in messages if m.get("channel") == channel and word in (m["data"].get("text") or "").lower()]


def _session(server, conn, hook, tmp_path, display_stored: bool):
    """Record the deck with a live screen-text index (alert: "zanzibar") and live spoken indexes on
    the stored mic (alert: "the quarterly budget") and the ephemeral system audio (alert:
    /tomato/); returns what the test reads afterwards."""
    sources, seconds = deck(tmp_path)
    use_reeldb_recorder()
    zanzibar = conn.create_event('"zanzibar"', "zanzibar")
    budget = conn.create_event('"the quarterly budget"', "budget")
    tomato = conn.create_event("/tomato(es)? plants?/", "tomato")
    cap = conn.create_capture_session(end_user_id="u")
    token = conn.generate_client_token(expires_in=600)
    messages: list[dict] = []
    made: dict = {}

    async def during(client, channels):
        started = time.time()
        live, ws = await when_active(conn, cap.id)
        display = live.get_rtstream("display")[0]
        index = await asyncio.to_thread(display.index_scenes, ws_connection_id=ws.connection_id,
                                        name="slides")
        again = await asyncio.to_thread(display.index_scenes, name="slides")
        assert again.rtstream_index_id == index.rtstream_index_id and index.status == "connected"
        assert index.extraction_type == "time_based"
        alert = await asyncio.to_thread(index.create_alert, zanzibar, hook.url, ws.connection_id)
        mic = live.get_rtstream("mic")[0]
        spoken = await asyncio.to_thread(mic.index_spoken_words, segmenter="word", length=4,
                                         ws_connection_id=ws.connection_id)
        await asyncio.to_thread(spoken.create_alert, budget, hook.url, ws.connection_id)
        system = live.get_rtstream("system_audio")[0]
        heard = await asyncio.to_thread(system.index_spoken_words, segmenter="sentence", length=1,
                                        ws_connection_id=ws.connection_id)
        await asyncio.to_thread(heard.create_alert, tomato, hook.url, ws.connection_id)
        made.update(display=display, index=index, alert=alert)

        await listen_for(ws, messages, started + seconds, lambda got: bool(
            _ws(got, "alert", "zanzibar") and _ws(got, "alert", "budget") and _ws(got, "alert", "tomato")
            and _ws(got, "scene_index", "closing")))

    asyncio.run(record(server.url, token, cap.id, sources,
                       {"mic:default": True, "system_audio:default": False, "display:1": display_stored}, 0,
                       during=during))
    return cap, made, messages, (zanzibar, budget)


def test_live_screen_text_records_alerts_and_early_search(server_factory, hook, tmp_path):
    server = server_factory(sync_wait="10")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap, made, messages, (zanzibar, budget) = _session(server, conn, hook, tmp_path, display_stored=True)
    index = made["index"]

    # On the websocket: a record for each slide, in order, its text as read; then the slide alert.
    records = [m for m in messages if m.get("channel") == "scene_index"]
    assert {m["rtstream_index_id"] for m in records} == {index.rtstream_index_id}
    said = [m["data"]["text"].lower() for m in records]
    order = [next(i for i, t in enumerate(said) if word in t) for word in ("welcome", "zanzibar", "closing")]
    assert order == sorted(order), said
    assert all(m["data"]["start"] > 1e12 and m["data"]["end"] >= m["data"]["start"] for m in records)
    (alert,) = _ws(messages, "alert", "zanzibar")
    data = alert["data"]
    assert data["label"] == "zanzibar" and data["confidence"] == 1.0
    assert "display" in data["explanation"] and "on screen" in data["explanation"]
    assert "/moment/" in data["stream_url"] and "/moment/" in data["player_url"]
    assert len(_ws(messages, "alert", "budget")) == 1 and len(_ws(messages, "alert", "tomato")) == 1  # spoken, once

    # get_scenes: the same records (unix seconds); the index and its alert as listed.
    scenes = index.get_scenes()["scenes"]
    text = " ".join(s["description"] for s in scenes).lower()
    assert "kilimanjaro" in text and "closing remarks" in text and all(s["start"] > 1e9 for s in scenes)
    display = made["display"]
    assert display.get_scene_index(index.rtstream_index_id).status == "stopped"  # its session ended
    assert [a["label"] for a in index.list_alerts()] == ["zanzibar"]
    hits = display.search("office lease", index_id=index.rtstream_index_id).shots
    assert hits and "kilimanjaro" in hits[0].text.lower()

    # As signed webhooks, each once.
    hooks = hook.wait_for(lambda ev: {e.get("label") for e in ev} >= {"zanzibar", "budget", "tomato"}, timeout=60)
    assert sorted(e["label"] for e in hooks) == ["budget", "tomato", "zanzibar"]
    secret = webhook_secret(server).encode()
    assert all(signed_by(secret, body, headers) for body, headers in hook.raw)

    # Bad input: an index on a stopped session; a spoken index on a display; a screen one on a mic.
    with pytest.raises(InvalidRequestError, match="not streaming"):
        display.index_visuals(batch_config={"type": "time", "value": 2, "frame_count": 1})
    with pytest.raises(InvalidRequestError, match="not an audio stream"):
        display.index_spoken_words()
    mic = conn.get_capture_session(cap.id).get_rtstream("mic")[0]
    with pytest.raises(InvalidRequestError, match="not a display"):
        mic.index_scenes()

    # Searchable the moment it is exported: the slides read live are the video's first scene index.
    deadline = time.time() + 90
    while conn.get_capture_session(cap.id).status != "exported" and time.time() < deadline:
        time.sleep(0.2)
    exported_id = conn.get(f"collection/default/capture/session/{cap.id}")["exported_video_id"]
    video = conn.get_collection().get_video(exported_id)
    shots = video.search("Kilimanjaro office lease").shots
    assert shots and "kilimanjaro" in shots[0].text.lower(), [s.text for s in shots]
    # And the mic's live words (among the hits: how a slide that shares a word ranks against the
    # spoken sentence is the search's business, not this test's).
    spoken_shots = video.search("the quarterly budget review").shots
    assert any("budget" in s.text.lower() for s in spoken_shots), [s.text for s in spoken_shots]
    log = server.log()
    assert f"{exported_id}: screen text indexed from its live reader" in log, log[-3000:]
    # The alert's links open the moment's exact clip, now that it is exported.
    clip = requests.get(data["stream_url"], allow_redirects=False)
    assert clip.status_code == 302 and "/stream/" in clip.headers["location"], clip.text
    with av.open(data["stream_url"]) as played:
        assert played.streams.video and played.duration / 1e6 == pytest.approx(
            data["end_time"] - data["start_time"], abs=0.6)


def test_ephemeral_display_text_is_read_live_and_never_written(server_factory, hook, tmp_path):
    # Sessions received in the server's own process (the other test's go to ingest workers): the
    # screen reader attached in-process reads the same.
    server = server_factory(sync_wait="10", live_retention="20", ingest_workers="0")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap, made, messages, _ = _session(server, conn, hook, tmp_path, display_stored=False)

    for label in ("zanzibar", "tomato"):  # the ephemeral display's and system audio's: never recorded
        (alert,) = _ws(messages, "alert", label)
        assert alert["data"]["stream_url"] is None and alert["data"]["player_url"] is None
    assert _ws(messages, "scene_index", "kilimanjaro") and _ws(messages, "audio_index", "greenhouse")
    hooks = hook.wait_for(lambda ev: {e.get("label") for e in ev} >= {"zanzibar", "budget", "tomato"}, timeout=60)
    assert sorted(e["label"] for e in hooks) == ["budget", "tomato", "zanzibar"]
    deadline = time.time() + 90
    while conn.get_capture_session(cap.id).status != "exported" and time.time() < deadline:
        time.sleep(0.2)
    # What the ephemeral display showed and the system audio said (the words around the events'
    # prompts, which are the application's, kept like any event) is nowhere under the data dir.
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes().lower()
            assert b"kilimanjaro" not in data and b"greenhouse" not in data, path
    # Memory is not kept for ever either.
    deadline = time.time() + 90
    while made["display"].list_scene_indexes() and time.time() < deadline:
        time.sleep(1)
    assert made["display"].list_scene_indexes() == []
