"""reeldb-recorder on real devices: an Xvfb screen and PulseAudio (null sinks), through the SDK.

The SDK's CaptureClient lists what the recorder found (the X screen, the default source, the
default sink's monitor), records them, and the export shows what was drawn on the display (blue,
then red) and says what was spoken into the microphone.
"""

from __future__ import annotations

import asyncio
import time

import av
import numpy as np
import pytest
from support.desktop import start_desktop
from support.recording import use_reeldb_recorder
from support.speech import compose, require_espeak, wer
from support.media import write_wav

pytestmark = pytest.mark.slow

SENTENCE = "The quarterly budget review is scheduled for next Tuesday afternoon."
SECONDS = 10.0
SWITCH = 4.0  # blue until then, red after


@pytest.fixture(scope="module")
def desktop(tmp_path_factory):
    desk = start_desktop(tmp_path_factory.mktemp("desktop"))
    yield desk
    desk.stop()


@pytest.fixture
def on_desktop(desktop, monkeypatch):
    """This process (and the recorder it spawns) sees the test desktop and probes devices."""
    for key, value in desktop.env.items():
        if key != "HOME":
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("REELDB_CAPTURE_SOURCES", "auto")
    monkeypatch.setenv("REELDB_RECORDER_PROGRESS", "1")
    return desktop


def mean_rgb(path, at: float) -> np.ndarray:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        c.seek(int(at / stream.time_base), stream=stream)
        for frame in c.decode(stream):
            if frame.time >= at:
                return frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
    raise AssertionError(f"no frame at {at}s")


def test_capture_client_records_x11_screen_and_pulseaudio_mic(server_factory, on_desktop, tmp_path):
    require_espeak()
    use_reeldb_recorder()
    import videodb
    import videodb.capture as sdk_capture

    audio, _ = compose([SENTENCE], lead=0.5)
    speech = write_wav(tmp_path / "speech.wav", audio)
    server = server_factory(sync_wait="10")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="desk-1")
    token = conn.generate_client_token(expires_in=600)
    on_desktop.fill("#2040e0")
    events: list[dict] = []

    async def run() -> dict:
        client = sdk_capture.CaptureClient(client_token=token, base_url=server.url)
        try:
            channels = await client.list_channels()
            names = {c.id: c.name for c in channels.all()}
            assert channels.displays.default.id == "display:1"
            assert channels.mics.default.id == "mic:default"
            assert channels.system_audio.default.id == "system_audio:default"
            for ch in (channels.displays.default, channels.mics.default, channels.system_audio.default):
                ch.store = True
            channels.displays.default.is_primary = True
            await client.start_session(capture_session_id=cap.id, channels=[
                channels.mics.default, channels.displays.default, channels.system_audio.default])
            start = time.time()

            async def collect():
                async for event in client.events():
                    events.append(event)
                    if event.get("event") in ("recording-complete", "error"):
                        return

            collector = asyncio.ensure_future(collect())
            deadline = start + 60  # a wait, generous for a busy machine, not a measure of speed
            while not any(e.get("event") == "recording-started" for e in events):
                assert time.time() < deadline, f"no recording-started: {events}"
                await asyncio.sleep(0.05)
            t0 = time.time()
            on_desktop.play(speech)
            await asyncio.sleep(SWITCH - (time.time() - t0))
            on_desktop.fill("#e02020")
            await asyncio.sleep(SECONDS - (time.time() - t0))
            await client.stop_session()
            await asyncio.wait_for(collector, 30)
            return names
        finally:
            await client.shutdown()

    names = asyncio.run(run())
    assert "1280x720" in names["display:1"] and "Microphone" in names["mic:default"], names
    assert "Speakers" in names["system_audio:default"], names
    kinds = [e["event"] for e in events]
    assert kinds[0] == "recording-started" and kinds[-1] == "recording-complete", kinds
    progress = [e["payload"] for e in events if e["event"] == "recording-progress"]
    assert len(progress) >= 5, kinds
    last = progress[-1]
    assert last["channels"]["display:1"]["bytes_sent"] > 0 and last["channels"]["mic:default"]["bytes_sent"] > 0
    assert last["bitrate"] > 0 and 0 < last["cpu"]["average_percent"] < 400, last
    assert last["cpu"]["screen_thread_percent"] > 0 and "libx264 ultrafast" in last["cpu"]["encoder"]

    cap = conn.get_capture_session(cap.id)
    deadline = time.time() + 90
    while cap.status != "exported" and time.time() < deadline:
        time.sleep(0.5)
        cap = conn.get_capture_session(cap.id)
    assert cap.status == "exported", (cap.status, cap.export_status)
    video = conn.get_collection().get_video(cap.exported_video_id)
    assert abs(video.length - SECONDS) < 2.0, video.length

    # What was drawn: blue before the switch, red after, at the Xvfb screen's size.
    source = next((server.data_dir / "media" / video.collection_id / video.id).glob("source.*"))
    with av.open(str(source)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (1280, 720)
        keyframes = [p.pts * p.time_base for p in c.demux(v) if p.is_keyframe]
    blue, red = mean_rgb(source, 1.5), mean_rgb(source, SECONDS - 2.0)
    assert blue[2] > 180 and blue[0] < 80, blue
    assert red[0] > 180 and red[2] < 80, red
    gaps = np.diff([float(k) for k in keyframes])
    assert SECONDS / 2.0 - 1 <= len(keyframes) <= SECONDS / 2.0 + 3 and gaps.max() < 3.0, keyframes  # every ~2 s

    # What was said: in the transcript of the export.
    video.index_spoken_words()
    text = video.get_transcript_text()
    assert wer(SENTENCE, text) < 0.35, text


def test_screen_keyframes_follow_the_servers_requests(server_factory, on_desktop, monkeypatch):
    """With the recorder's own cadence off (60 s), keyframes still come every ~1 s: the server's
    PLIs (REELDB_KEYFRAME_INTERVAL=1) reach the x264 encoder through capture/keyframes.py."""
    use_reeldb_recorder()
    import videodb
    from support.recording import record

    monkeypatch.setenv("REELDB_RECORDER_KEYINT", "60")
    server = server_factory(keyframe_interval="1", auto_export="false")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="desk-2")
    token = conn.generate_client_token(expires_in=600)
    sources = {"display:1": f"x11:{on_desktop.display}"}
    asyncio.run(record(server.url, token, cap.id, sources, {"display:1": True}, 6.0, primary="display:1"))
    files = list((server.data_dir / "sessions" / cap.id).glob("*.mkv"))
    assert len(files) == 1
    with av.open(str(files[0])) as c:
        v = c.streams.video[0]
        keyframes = [float(p.pts * p.time_base) for p in c.demux(v) if p.is_keyframe]
    assert 4 <= len(keyframes) <= 12 and np.diff(keyframes).max() < 2.5, keyframes  # ~1 s apart, not every frame


def test_each_xrandr_monitor_is_a_display_channel(on_desktop):
    """Two XRandR monitors side by side: display:N each, grabbed at their own geometry (the right
    one shows the red window placed on it, the left one the blue root)."""
    import os
    import subprocess

    from reeldb.capture.device_tracks import EncoderSettings, ScreenTrack
    from reeldb.capture.devices import parse_x11_spec, probe

    on_desktop.fill("#2040e0")
    on_desktop.run("xrandr", "--setmonitor", "left", "640/100x720/100+0+0", "none")
    on_desktop.run("xrandr", "--setmonitor", "right", "640/100x720/100+640+0", "none")
    window = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "color=c=0xe02020:s=640x720:r=10",
         "-pix_fmt", "yuv420p", "-window_borderless", "1", "-window_x", "640", "-window_y", "0", "-f", "sdl2", "red"],
        env={**os.environ, "SDL_VIDEODRIVER": "x11"}, stdin=subprocess.DEVNULL)
    try:
        found = probe({"DISPLAY": on_desktop.display, "XDG_RUNTIME_DIR": str(on_desktop.root / "no-sound")})  # screens only
        names = found.names()
        assert "left 640x720" in names["display:1"] and "right 640x720" in names["display:2"], names
        assert parse_x11_spec(found.sources()["display:2"]) == (on_desktop.display, (640, 0, 640, 720))
        time.sleep(1.5)

        async def grab(spec: str) -> np.ndarray:
            display, geometry = parse_x11_spec(spec)
            track = ScreenTrack(display, geometry, EncoderSettings(fps=10))
            decoder = av.CodecContext.create("h264", "r")
            try:
                for _ in range(8):
                    packet = await asyncio.wait_for(track.recv(), 10)
                    frames = decoder.decode(packet)
                    if frames:
                        last = frames[-1]
                assert (last.width, last.height) == (640, 720)
                return last.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
            finally:
                track.stop()

        left = asyncio.run(grab(found.sources()["display:1"]))
        right = asyncio.run(grab(found.sources()["display:2"]))
        assert left[2] > 180 and left[0] < 80, left
        assert right[0] > 180 and right[2] < 80, right
    finally:
        window.terminate()
        window.wait(10)
        on_desktop.run("xrandr", "--delmonitor", "left")
        on_desktop.run("xrandr", "--delmonitor", "right")
