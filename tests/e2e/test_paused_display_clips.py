"""A recording's timeline has no holes (issue 17), through the SDK.

CaptureClient + reeldb-recorder record a screen whose frames say their number (15 fps) and a
440 Hz mic; the display is paused with ``Channel.pause()`` for 8 s in the middle (then, in a
second recording, as the recording starts: it joins ~5 s late). After the export, exact clips of
the exported video inside the pause, ending in it, starting in it and crossing it each play their
whole span in video and in audio, and ffmpeg reads them without a word; so do the rtstream clips
of the mic and of the display across the pause.
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
from support.media import make_numbered, play
from support.recording import record, use_reeldb_recorder
from support.server_process import ServerProcess

from reeldb.export.plan import load_manifest, make_plan

pytestmark = pytest.mark.slow

FPS = 15
PAUSE = 8.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module's two recordings."""
    use_reeldb_recorder()
    proc = ServerProcess(tmp_path_factory.mktemp("paused-display") / "data", env={"REELDB_SYNC_WAIT": "10"})
    yield proc.start()
    proc.stop()


def recorded(server, tmp_path, name: str, before: float, pause: float, after: float):
    """Record with the display paused ``pause`` s after ``before`` s; the exported session, its
    video and the display's pause on the export's timeline."""
    import videodb

    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id=name)
    token = conn.generate_client_token(expires_in=600)
    screen = make_numbered(tmp_path / f"{name}.ts", before + pause + after + 6, 1.0, fps=FPS, audio=False)

    async def during(client, channels):
        await asyncio.sleep(before)
        await channels.displays.default.pause()
        await asyncio.sleep(pause)
        await channels.displays.default.resume()
        await asyncio.sleep(after)

    asyncio.run(record(server.url, token, cap.id, {"mic:default": "pattern:tone:440:0.3", "display:1": str(screen)},
                       {"mic:default": True, "display:1": True}, 0, primary="display:1", during=during))
    deadline = time.time() + 120
    while conn.get_capture_session(cap.id).status != "exported" and time.time() < deadline:
        time.sleep(0.5)
    cap = conn.get_capture_session(cap.id)
    assert cap.status == "exported"
    plan = make_plan(load_manifest(server.data_dir / "sessions" / cap.id))
    video = conn.get_collection().get_video(cap.exported_video_id)
    return cap, video, plan


def assert_plays(url: str, seconds: float) -> None:
    first, last, audio = play(url)
    video = last - first
    assert video == pytest.approx(seconds, abs=0.1) and audio == pytest.approx(seconds, abs=0.1), (video, audio)
    errors = subprocess.run(["ffmpeg", "-v", "error", "-i", url, "-f", "null", "-"], capture_output=True,
                            text=True, timeout=120).stderr
    assert errors == ""


def test_clips_across_a_paused_display_play_their_whole_span(server, tmp_path):
    cap, video, plan = recorded(server, tmp_path, "paused-display", 4.0, PAUSE, 4.0)
    [hole] = [h for h in plan.holes if h.channel_id == "display:1" and h.reason == "pause"]
    assert hole.end - hole.start == pytest.approx(PAUSE, abs=1.0)
    a, b = hole.start, hole.end
    spans = {"inside": (a + 2, b - 2), "ends_in": (a - 2, a + 3), "starts_in": (b - 3, b + 2),
             "crosses": (a - 1.5, b + 1.5)}
    for name, (start, end) in spans.items():
        url = video.generate_stream(timeline=[(round(start, 2), round(end, 2))])
        assert_plays(url, round(end, 2) - round(start, 2))

    # rtstream clips (whole unix seconds) of the mic (the export) and the display (its raw asset)
    start = int(plan.origin + a) - 1
    for category in ("mic", "display"):
        rts = cap.get_rtstream(category)[0]
        rts.generate_stream(start, start + 6)
        if category == "mic":
            assert_plays(rts.stream_url, 6.0)
        else:  # the display's raw asset has no audio
            first, last, _ = play(rts.stream_url)
            assert last - first == pytest.approx(6.0, abs=0.15)


def test_a_display_that_joins_late_plays_from_the_start(server, tmp_path):
    cap, video, plan = recorded(server, tmp_path, "late-display", 0.0, 5.0, 4.0)
    assert video.length == pytest.approx(9.0, abs=1.5)
    assert_plays(video.generate_stream(timeline=[(0.5, 4.5)]), 4.0)
    assert_plays(video.generate_stream(timeline=[(3.0, 7.0)]), 4.0)
