"""``rtstream.generate_stream(start, end)``: what one channel recorded between two unix times.

A capture through CaptureClient + reeldb-recorder stores a screen whose frames say their number
(relayed as is, 15 fps) and a 440 Hz mic. After the export, a span of unix seconds on the display's
rtstream must play that display's frames from the moment asked (its number = seconds since the
channel's first frame × 15, as the manifest's capture clock says), for the span's length; the
mic's rtstream plays the session's export (the mic mixed under the display) over the same span.
"""

from __future__ import annotations

import asyncio
import json
import time

import av
import pytest
import requests
from support.media import frame_number, make_numbered
from support.recording import record, use_reeldb_recorder
from videodb.exceptions import InvalidRequestError

pytestmark = pytest.mark.slow

SECONDS = 10.0
FPS = 15


def decode(url: str) -> tuple[list[int], float]:
    numbers, samples, rate = [], 0, 48000
    with av.open(url) as c:
        streams = [*c.streams.video[:1], *c.streams.audio[:1]]
        for frame in c.decode(*streams):
            if isinstance(frame, av.VideoFrame):
                numbers.append(frame_number(frame))
            else:
                samples, rate = samples + frame.samples, frame.sample_rate
    return numbers, samples / rate


def test_rtstream_generate_stream_plays_the_unix_span(server_factory, tmp_path):
    use_reeldb_recorder()
    import videodb

    server = server_factory(sync_wait="10")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="rt-clips")
    token = conn.generate_client_token(expires_in=600)
    screen = make_numbered(tmp_path / "screen.ts", SECONDS + 6, 1.0, fps=FPS, audio=False)
    sources = {"mic:default": "pattern:tone:440:0.3", "display:1": str(screen)}
    early: list[str] = []

    async def during(client, channels):  # while it records, a clip is refused with a reason
        await asyncio.sleep(3)
        live = await asyncio.to_thread(conn.get_capture_session, cap.id)
        try:
            await asyncio.to_thread(live.get_rtstream("display")[0].generate_stream, int(time.time()) - 2,
                                    int(time.time()))
        except InvalidRequestError as exc:
            early.append(str(exc))
        await asyncio.sleep(SECONDS - 3)  # ``during`` sets the recording's length

    asyncio.run(record(server.url, token, cap.id, sources, {"mic:default": True, "display:1": True}, SECONDS,
                       primary="display:1", during=during))
    deadline = time.time() + 120
    while conn.get_capture_session(cap.id).status != "exported" and time.time() < deadline:
        time.sleep(0.5)
    cap = conn.get_capture_session(cap.id)
    assert cap.status == "exported"

    manifest = json.loads((server.data_dir / "sessions" / cap.id / "manifest.json").read_text())
    display_entry = next(c for c in manifest["channels"] if c["channel_id"] == "display:1")
    with av.open(str(server.data_dir / "sessions" / cap.id / display_entry["file"])) as c:
        first = next(iter(c.decode(c.streams.video[0])))
        first_number = frame_number(first)
        first_at = display_entry["start_time"] + float(first.pts * first.time_base)

    display = cap.get_rtstream("display")[0]
    start = int(first_at) + 3  # the SDK sends whole unix seconds
    end = start + 4
    player_url = display.generate_stream(start, end)
    assert player_url and display.stream_url
    numbers, _ = decode(display.stream_url)
    assert abs(len(numbers) / FPS - (end - start)) <= 0.15, len(numbers)
    expected_first = first_number + round((start - first_at) * FPS)
    assert abs(numbers[0] - expected_first) <= 3, (numbers[0], expected_first)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "a frame missing or repeated"
    assert "/embed?v=" + player_url.split("?v=", 1)[1] in display.get_embed_code()  # the SDK's iframe

    mic = cap.get_rtstream("mic")[0]
    mic.generate_stream(start, end)
    frames, audio_seconds = decode(mic.stream_url)
    assert abs(audio_seconds - (end - start)) <= 0.15, audio_seconds
    assert abs(frames[0] - expected_first) <= 3  # the export's picture is the same display

    # outside the recording, backwards, and not yet exported
    for bad_start, bad_end, message in ((start - 3600, start - 3000, "outside"), (end, start, "start < end")):
        with pytest.raises(InvalidRequestError, match=message):
            display.generate_stream(bad_start, bad_end)
    assert "once its session is exported" in early[0], early
    # a sub-millisecond range holds no frame: a 400 saying so, never a link that plays nothing
    tiny = requests.get(f"{server.url}/rtstream/{display.id}/stream", params={"start": start + 1, "end": start + 1.0004},
                        headers={"x-access-token": server.api_key})
    assert tiny.status_code == 400 and "REELDB_CLIP_MIN_SPAN" in tiny.json()["message"], tiny.text
