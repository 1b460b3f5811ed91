"""Capture under stress: pauses, a SIGKILLed server, a vanished recorder, bad offers, live speech search."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import time

import av
import pytest
import requests
import videodb
from support.recording import record, use_reeldb_recorder
from support.media import screen_ts, write_wav
from support.server_process import search_when_indexed
from support.speech import MEETING_A, compose, require_espeak
from videodb.exceptions import InvalidRequestError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def screen(tmp_path_factory):
    return screen_ts(tmp_path_factory.mktemp("screen") / "screen.ts", 30, (0, 160, 0))


def decoded_seconds(path) -> float:
    """How far a (possibly crash-truncated) file decodes: the end of its last decodable frame."""
    end = 0.0
    with av.open(str(path)) as c:
        stream = (c.streams.video or c.streams.audio)[0]
        for frame in c.decode(stream):
            if frame.pts is not None:
                end = max(end, float(frame.pts * frame.time_base) + (1 / 15 if stream.type == "video" else frame.samples / frame.sample_rate))
    return end


def session(server):
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="u")
    return conn, cap, conn.generate_client_token(expires_in=600)


def wait_status(conn, cap_id, wanted, timeout=60.0):
    deadline = time.time() + timeout
    while (status := conn.get_capture_session(cap_id).status) not in wanted and time.time() < deadline:
        time.sleep(0.2)
    return status


def test_pause_resume_through_the_sdk_lands_in_the_manifest(server, screen):
    use_reeldb_recorder()
    conn, cap, token = session(server)

    async def during(client, channels):
        await asyncio.sleep(2)
        await channels.mics.default.pause()
        await asyncio.sleep(1.5)
        await channels.mics.default.resume()
        await asyncio.sleep(2)

    asyncio.run(record(server.url, token, cap.id, {"mic:default": "pattern:tone:440", "display:1": str(screen)},
                       {"mic:default": True, "display:1": True}, 0, during=during))
    assert wait_status(conn, cap.id, ("exported",)) == "exported"
    manifest = json.loads((server.data_dir / "sessions" / cap.id / "manifest.json").read_text())
    mic = next(c for c in manifest["channels"] if c["channel_id"] == "mic:default")
    assert len(mic["pauses"]) == 1
    start, end = mic["pauses"][0]
    assert 1.2 < end - start < 1.9


def test_server_killed_mid_recording_keeps_what_it_received(server_factory, screen, tmp_path):
    use_reeldb_recorder()
    server = server_factory(reconnect_grace="2")
    conn, cap, token = session(server)
    killed_at = []

    async def during(client, channels):
        await asyncio.sleep(4)
        killed_at.append(time.time())
        server.kill()
        await asyncio.sleep(1)

    try:
        asyncio.run(record(server.url, token, cap.id, {"mic:default": "pattern:tone:440", "display:1": str(screen)},
                           {"mic:default": True, "display:1": True}, 0, during=during))
    except Exception:
        pass  # the recorder's stop cannot reach a dead server; that is the point
    folder = server.data_dir / "sessions" / cap.id
    manifest = json.loads((folder / "manifest.json").read_text())
    for channel in manifest["channels"]:
        kept = decoded_seconds(folder / channel["file"])
        lost = killed_at[0] - channel["start_time"] - kept
        assert lost < 1.0, f"{channel['channel_id']} lost {lost:.2f} s"
    server.start()
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    assert wait_status(conn, cap.id, ("exported", "failed")) == "exported"
    video = conn.get_collection().get_video(conn.get_capture_session(cap.id).exported_video_id)
    assert video.length > 3.0


def test_recorder_that_vanishes_is_stopped_after_the_grace_period(server_factory, screen):
    use_reeldb_recorder()
    server = server_factory(reconnect_grace="2")
    conn, cap, token = session(server)

    async def during(client, channels):
        await asyncio.sleep(3)
        client._proc.send_signal(signal.SIGKILL)  # the desktop app crashed: no stop call
        await asyncio.sleep(0.5)

    try:
        asyncio.run(record(server.url, token, cap.id, {"mic:default": "pattern:tone:440", "display:1": str(screen)},
                           {"mic:default": True, "display:1": True}, 0, during=during))
    except Exception:
        pass
    assert conn.get_capture_session(cap.id).status == "active"
    assert wait_status(conn, cap.id, ("exported", "failed"), timeout=60) == "exported"
    assert "did not come back" in server.log()


def test_bad_offers_and_second_recorder(server, screen):
    use_reeldb_recorder()
    conn, cap, token = session(server)
    headers = {"x-access-token": token}
    channels = [{"channel_id": "mic:default", "type": "audio", "store": True}]
    offer = f"{server.url}/capture/session/{cap.id}/offer"
    early = requests.post(offer, json={"sdp": "v=0", "tracks": {}}, headers=headers)
    assert early.status_code == 409 and "start it before sending media" in early.json()["message"]
    requests.post(f"{server.url}/capture/session/start", json={"session_id": cap.id, "channels": channels},
                  headers=headers).raise_for_status()
    malformed = requests.post(offer, json={"sdp": "not sdp at all", "tracks": {"0": "mic:default"}}, headers=headers)
    assert malformed.status_code == 400 and malformed.json()["success"] is False
    missing = requests.post(offer, json={"tracks": {}}, headers=headers)
    assert missing.status_code == 400 and "sdp" in missing.json()["message"]
    other_conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    other = other_conn.create_capture_session(end_user_id="v")
    # A token reaches only its key's sessions; the session of another key is refused (403).
    from support.server_process import REELDB
    import subprocess
    out = subprocess.run([REELDB, "keys", "create", "--data-dir", str(server.data_dir)], capture_output=True,
                         text=True, check=True).stdout
    stranger_key = dict(line.split("=", 1) for line in out.split())["api_key"]
    stranger_token = videodb.connect(api_key=stranger_key, base_url=server.url).generate_client_token()
    refused = requests.post(offer, json={"sdp": "v=0", "tracks": {}}, headers={"x-access-token": stranger_token})
    assert refused.status_code == 403
    # A real recorder connects; a second one on the same live session is refused.
    first_error = []

    async def during(client, chans):
        await asyncio.sleep(2.5)
        second = requests.post(f"{server.url}/capture/session/start",
                               json={"session_id": cap.id, "channels": channels}, headers=headers)
        first_error.append(second)

    cap2 = other
    asyncio.run(record(server.url, other_conn.generate_client_token(), cap2.id,
                       {"mic:default": "pattern:tone:440"}, {"mic:default": True}, 0, during=during))
    assert first_error[0].status_code == 409


def server_jobs(server) -> list[dict]:
    with contextlib.closing(sqlite3.connect(server.data_dir / "reeldb.db")) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("select * from jobs order by created_at")]


def test_seed_search_on_a_captured_meeting(server_factory, screen, tmp_path, hook, realtime_slot):
    require_espeak()
    use_reeldb_recorder()
    server = server_factory(sync_wait="10")  # default settings: recordings are indexed unasked
    audio, placed = compose(MEETING_A, gap=1.0, lead=0.5)
    speech = write_wav(tmp_path / "speech.wav", audio)
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="u", callback_url=hook.url)
    token = conn.generate_client_token(expires_in=600)
    asyncio.run(record(server.url, token, cap.id, {"mic:default": str(speech), "display:1": str(screen)},
                       {"mic:default": True, "display:1": True}, len(audio) / 48000 + 1.0))
    payload = next(e for e in hook.wait_for(lambda ev: any(e["status"] == "exported" for e in ev), timeout=60)
                   if e["status"] == "exported")
    realtime_slot.release()  # what follows indexes and searches the recording: no real time
    # The seed page, as written.
    cap = conn.get_capture_session(payload["capture_session_id"])
    coll = conn.get_collection()
    video = coll.get_video(cap.exported_video_id)
    # The export is indexed by itself: search works without index_spoken_words() (a search while
    # the index runs waits for it, up to 20 s, then says so) ...
    results = search_when_indexed(video, "budget discussion")
    assert results.shots
    # ... and the seed's own code still runs: its index_spoken_words() joins that index, and only a
    # second call is refused, in VideoDB's words.
    video.index_spoken_words()
    assert video.search("budget discussion").shots
    with pytest.raises(InvalidRequestError, match="Spoken word index for video already exists"):
        video.index_spoken_words()
    jobs = [j for j in server_jobs(server) if j["kind"] == "index"]
    assert len(jobs) == 1 and jobs[0]["status"] == "done", jobs  # one index, never a second run
    shot = results.shots[0]
    assert "budget" in shot.text.lower()
    assert abs(shot.start - placed[0].start) < 1.5


def test_a_pause_longer_than_the_media_timeout_is_not_a_dropped_recorder(server_factory, screen):
    """Frames stop during a pause because the user asked; the watchdog must not count the time
    before the resume as silence once media flows again."""
    use_reeldb_recorder()
    server = server_factory(media_timeout="2", reconnect_grace="3")
    conn, cap, token = session(server)

    async def during(client, channels):
        await asyncio.sleep(2)
        await channels.mics.default.pause()
        await channels.displays.default.pause()
        await asyncio.sleep(4)
        await channels.mics.default.resume()
        await channels.displays.default.resume()
        await asyncio.sleep(6)

    asyncio.run(record(server.url, token, cap.id, {"mic:default": "pattern:tone:440", "display:1": str(screen)},
                       {"mic:default": True, "display:1": True}, 0, during=during))
    assert wait_status(conn, cap.id, ("exported",)) == "exported"
    # paused channels are not watched, and a resume counts as fresh media: no alarm at all
    assert "no media for" not in server.log() and "recorder did not come back" not in server.log()
