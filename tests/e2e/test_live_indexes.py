"""Live spoken-word indexes and alerts while a capture streams, through the SDK: a stored mic and
an ephemeral system audio speak known sentences; records arrive on the websocket and from
get_scenes, phrase alerts fire on the websocket and as signed webhooks, and nothing of the
ephemeral channel reaches the data dir."""

from __future__ import annotations

import asyncio
import time

import av
import pytest
import requests
import videodb
from support.recording import listen_for, record, two_speakers, use_reeldb_recorder, when_active
from support.server_process import signed_by, webhook_secret
from videodb.exceptions import InvalidRequestError

pytestmark = pytest.mark.slow


def _ws(messages: list[dict], channel: str, category: str, word: str) -> list[dict]:
    return [m for m in messages if m.get("channel") == channel and m.get("rtstream_name", "").startswith(category + ":")
            and word in (m["data"].get("text") or "").lower()]


def test_live_spoken_indexes_fire_phrase_alerts_and_keep_ephemeral_words_off_disk(server_factory, hook, tmp_path):
    sources, seconds = two_speakers(tmp_path)
    use_reeldb_recorder()
    # A retention long enough for the reads after the session on a busy machine (not a time bound).
    server = server_factory(sync_wait="10", live_retention="60")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    budget = conn.create_event('"the quarterly budget"', "budget")
    tomato = conn.create_event("/tomato(es)? plants?/", "tomato")
    assert {e["event_id"] for e in conn.list_events()} >= {budget, tomato}
    cap = conn.create_capture_session(end_user_id="u")
    token = conn.generate_client_token(expires_in=600)
    messages: list[dict] = []
    made = {}

    async def during(client, channels):
        started = time.time()
        live, ws = await when_active(conn, cap.id)
        for category, event_id in (("mic", budget), ("system_audio", tomato)):
            rts = live.get_rtstream(category)[0]
            index = await asyncio.to_thread(rts.index_spoken_words, segmenter="word", length=4,
                                            ws_connection_id=ws.connection_id)
            again = await asyncio.to_thread(rts.index_spoken_words, segmenter="word", length=4)
            assert again.rtstream_index_id == index.rtstream_index_id and index.status == "connected"
            alert_id = await asyncio.to_thread(index.create_alert, event_id, hook.url, ws.connection_id)
            made[category] = (rts, index, alert_id)

        await listen_for(ws, messages, started + seconds, lambda got: bool(
            _ws(got, "alert", "mic", "budget") and _ws(got, "alert", "system_audio", "tomato")))
        # The stored mic's alert links to its moment before the recording can play: not yet.
        for alert in _ws(messages, "alert", "mic", "budget")[:1]:
            early = await asyncio.to_thread(requests.get, alert["data"]["stream_url"], allow_redirects=False)
            page = await asyncio.to_thread(requests.get, alert["data"]["player_url"], allow_redirects=False)
            made["early"] = (early.status_code, early.headers.get("retry-after"), early.json()["message"],
                             page.status_code, page.headers.get("refresh"), page.text)

    asyncio.run(record(server.url, token, cap.id, sources,
                       {"mic:default": True, "system_audio:default": False, "display:1": True}, 0, during=during))

    # On the websocket: records (ms, with their index's id) and one alert per phrase.
    mic_rts, mic_index, mic_alert = made["mic"]
    sys_rts, sys_index, sys_alert = made["system_audio"]
    records = [m for m in messages if m.get("channel") == "audio_index"]
    assert {m["rtstream_index_id"] for m in records} == {mic_index.rtstream_index_id, sys_index.rtstream_index_id}
    assert all(m["data"]["start"] > 1e12 and m["data"]["end"] >= m["data"]["start"] for m in records)
    for category, word, label in (("mic", "budget", "budget"), ("system_audio", "tomato", "tomato")):
        (alert,) = _ws(messages, "alert", category, word)
        data = alert["data"]
        assert data["label"] == label and data["confidence"] == 1.0 and category in data["explanation"]
        assert data["start"] > 1e12 and data["start_time"] == pytest.approx(data["start"] / 1000, abs=0.01)
        if category == "system_audio":  # an ephemeral channel's moment is never recorded
            assert data["stream_url"] is None and data["player_url"] is None
        else:
            assert "/moment/" in data["stream_url"] and "/moment/" in data["player_url"]
            moment = data
    status, retry, message, page_status, refresh, page_text = made["early"]
    assert (status, retry, page_status, refresh) == (409, "10", 200, "10") and "exported" in message
    assert "exported" in page_text and "reloads by itself" in page_text
    # As signed webhooks: the stored channel's through the outbox, the ephemeral one's from memory.
    hooks = hook.wait_for(lambda ev: {e.get("label") for e in ev} >= {"budget", "tomato"}, timeout=60)
    assert sorted(e["label"] for e in hooks) == ["budget", "tomato"]
    assert {e["event_id"] for e in hooks} == {budget, tomato}
    secret = webhook_secret(server).encode()
    assert all(signed_by(secret, body, headers) for body, headers in hook.raw)

    # Readable and searchable after the fact (from memory): get_scenes in unix seconds, search by index.
    scenes = mic_index.get_scenes()["scenes"]
    text = " ".join(s["text"] for s in scenes).lower()
    assert "budget" in text and "tuesday" in text and all(s["start"] > 1e9 for s in scenes)
    assert {i.rtstream_index_id for i in mic_rts.list_scene_indexes()} == {mic_index.rtstream_index_id}
    assert mic_rts.get_scene_index(mic_index.rtstream_index_id).status == "stopped"  # its session ended
    hits = sys_rts.search("watering vegetables in a glasshouse", index_id=sys_index.rtstream_index_id).shots
    assert hits and {h.scene_index_id for h in hits} == {sys_index.rtstream_index_id}
    assert any("tomato" in h.text.lower() for h in hits)
    listed = sys_index.list_alerts()
    assert [(a["alert_id"], a["label"], a["status"]) for a in listed] == [(sys_alert, "tomato", "enabled")]
    sys_index.disable_alert(sys_alert)
    assert sys_index.list_alerts()[0]["status"] == "disabled"

    # Bad input: a stopped session, a stopped index, an oversized prompt, a runaway pattern, a bad URL.
    with pytest.raises(InvalidRequestError, match="not streaming"):
        mic_rts.index_spoken_words(segmenter="sentence", length=1)
    with pytest.raises(InvalidRequestError, match="stopped"):
        mic_index.create_alert(budget, hook.url)
    with pytest.raises(InvalidRequestError) as big:
        conn.create_event("x" * 100_000, "big")
    assert big.value.response.status_code == 413
    with pytest.raises(InvalidRequestError, match="backtracks"):
        conn.create_event("/(a+)+$/", "runaway")
    with pytest.raises(InvalidRequestError, match="http"):
        mic_index.create_alert(budget, "ftp://example.com/hook")

    # The ephemeral channel's words are nowhere under the data dir, alerts included (its event's
    # prompt is the application's, kept like any event: the check is for the words around it).
    deadline = time.time() + 60
    while conn.get_capture_session(cap.id).status != "exported" and time.time() < deadline:
        time.sleep(0.2)
    # Searchable the moment it is exported: the stored mic's live words are the video's first
    # index (written with the export; the index job that replaces it comes after).
    exported_id = conn.get(f"collection/default/capture/session/{cap.id}")["exported_video_id"]
    shots = conn.get_collection().get_video(exported_id).search("the quarterly budget").shots
    assert shots and "budget" in shots[0].text.lower() and shots[0].video_id == exported_id
    log = server.log()
    assert f"{exported_id} indexed from its live transcripts" in log, log[-3000:]
    later = log.find(f"{exported_id} indexed:")  # the index job's, if it is done by now
    assert later == -1 or later > log.find(f"{exported_id} indexed from its live transcripts")
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            assert b"greenhouse" not in path.read_bytes().lower(), path
    # Exported: the alert's links open the moment's exact clip (the mic, mixed in the export).
    clip = requests.get(moment["stream_url"], allow_redirects=False)
    assert clip.status_code == 302 and "/stream/" in clip.headers["location"], clip.text
    with av.open(moment["stream_url"]) as played:
        seconds_played = played.duration / 1e6
    assert seconds_played == pytest.approx(moment["end_time"] - moment["start_time"], abs=0.6)
    watch = requests.get(moment["player_url"], allow_redirects=False)
    assert watch.status_code == 302 and "/watch?v=" in watch.headers["location"]
    assert requests.get(watch.headers["location"]).status_code == 200
    forged = moment["stream_url"].replace("/moment/", "/moment/x")
    assert requests.get(forged).status_code == 404 and requests.get(forged.rsplit("/", 1)[0]).status_code == 404
    # Memory is not kept for ever: REELDB_LIVE_RETENTION after the session ended, indexes are forgotten.
    deadline = time.time() + 180  # the retention, then a housekeeping round
    while sys_rts.list_scene_indexes() and time.time() < deadline:
        time.sleep(1)
    assert sys_rts.list_scene_indexes() == [] and mic_rts.list_scene_indexes() == []
