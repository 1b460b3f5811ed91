"""The seed's "Editing with Raw Assets" end to end: a capture made with reeldb-recorder through the
SDK's CaptureClient (two displays, mic and system audio stored), then the seed's own Timeline code
on its raw assets (the copy path), and a picture-in-picture of them (the render path)."""

from __future__ import annotations

import asyncio
import time

import av
import numpy as np
import pytest
import requests
from support.recording import record, use_reeldb_recorder
from support.media import screen_ts

pytestmark = pytest.mark.slow

FPS = 15
RECORD = 62.0   # the seed's clips are 60 s long: the capture must hold 60 s of picture


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def frames_at(url_or_path: str, times: list[float]) -> tuple[dict[float, np.ndarray], int, float]:
    """RGB frames at ``times`` (seconds from the first frame), the frame count and the span shown."""
    out: dict[float, np.ndarray] = {}
    count, first, last = 0, None, None
    with av.open(url_or_path) as c:
        for f in c.decode(video=0):
            t = float(f.time)
            first = t if first is None else first
            last = t
            count += 1
            for want in times:
                if want not in out and t - first >= want - 1e-3:
                    out[want] = f.to_ndarray(format="rgb24")
    return out, count, (last - first) if first is not None else 0.0


def tone_power(samples: np.ndarray, rate: int, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = (freqs > hz - 15) & (freqs < hz + 15)
    return float(spectrum[band].max() / (np.median(spectrum) + 1e-9))


def audio_of(url_or_path: str) -> tuple[np.ndarray, int]:
    with av.open(url_or_path) as c:
        rate = c.streams.audio[0].sample_rate
        chunks = [f.to_ndarray().reshape(f.to_ndarray().shape[0], -1).mean(axis=0) for f in c.decode(audio=0)]
    return np.concatenate(chunks).astype(np.float32), rate


def test_seed_editor_display_and_mic(server_factory, tmp_path, realtime_slot):
    use_reeldb_recorder()
    import videodb

    server = server_factory(sync_wait="10")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    coll = conn.get_collection()
    cap = conn.create_capture_session(end_user_id="user-1")
    token = conn.generate_client_token(expires_in=600)
    screen = screen_ts(tmp_path / "screen.ts", RECORD + 4, (60, 90, 120), size=(1280, 720), fps=FPS)
    camera = screen_ts(tmp_path / "camera.ts", RECORD + 4, (200, 40, 40), size=(640, 360), fps=FPS)
    sources = {"mic:default": "pattern:tone:440:0.3", "display:1": str(screen), "display:2": str(camera),
               "system_audio:default": "pattern:tone:1000:0.3"}
    asyncio.run(record(server.url, token, cap.id, sources, {c: True for c in sources}, RECORD, primary="display:1"))
    deadline = time.time() + 120
    while conn.get_capture_session(cap.id).status != "exported" and time.time() < deadline:
        time.sleep(0.5)
    cap = conn.get_capture_session(cap.id)
    assert cap.status == "exported"
    realtime_slot.release()  # what follows edits the recording: it computes, in no real time

    # The seed reads rtstream.exported_asset_id, which videodb 0.5.1's RTStream does not keep
    # (reference notes §13.4); rtstream.export() gives the same asset id.
    raw = conn.get(f"collection/{coll.id}/capture/session/{cap.id}")
    assets = {r["name"]: r["exported_asset_id"] for r in raw["rtstreams"]}
    display_asset_id = cap.get_rtstream("display")[0].export().video_id
    mic_asset_id = cap.get_rtstream("mic")[0].export().video_id
    assert (display_asset_id, mic_asset_id) == (assets["display:1"], assets["mic:default"])
    assert display_asset_id.startswith("m-") and mic_asset_id.startswith("a-")

    # -- the seed, verbatim ---------------------------------------------------------------------
    from videodb.editor import Timeline, Track, Clip, VideoAsset, AudioAsset

    timeline = Timeline(conn)
    timeline.resolution = "1280x720"

    # Video track
    video_track = Track()
    video_track.add_clip(0, Clip(asset=VideoAsset(id=display_asset_id), duration=60))
    timeline.add_track(video_track)

    # Audio track (mic only)
    audio_track = Track()
    audio_track.add_clip(0, Clip(asset=AudioAsset(id=mic_asset_id, volume=1.0), duration=60))
    timeline.add_track(audio_track)

    started = time.time()
    stream_url = timeline.generate_stream()
    took = time.time() - started
    # -------------------------------------------------------------------------------------------

    assert stream_url and stream_url.endswith(".m3u8")
    assert timeline.player_url and "/watch?v=" in timeline.player_url
    assert requests.get(timeline.player_url, timeout=10).status_code == 200

    # The copy path: the display's frames reused, not re-encoded; the same timeline is a lookup.
    again = conn.post(path="editor", data=timeline.to_json())
    assert again["stream_url"] == stream_url and again["way"] == "copy"

    # Plays for 60 s ± 1 frame, and its frames are the display's.
    display_path = next((server.data_dir / "media" / coll.id / display_asset_id).glob("source.*"))
    times = [0.0, 7.3, 31.0, 59.5]
    ours, count, shown = frames_at(stream_url, times)
    theirs, _, _ = frames_at(str(display_path), times)
    assert abs(count - 60 * FPS) <= 1, count
    assert abs(shown + 1 / FPS - 60.0) <= 1 / FPS + 1e-3, shown
    for t in times:
        assert ours[t].shape == (720, 1280, 3)
        assert psnr(ours[t], theirs[t]) >= 35, (t, psnr(ours[t], theirs[t]))

    # The audio is the mic's 440 Hz tone, for the whole minute.
    samples, rate = audio_of(stream_url)
    assert abs(len(samples) / rate - 60.0) < 0.1
    for part in (samples[rate:5 * rate], samples[50 * rate:58 * rate]):
        assert tone_power(part, rate, 440) > 1000 * tone_power(part, rate, 1320)

    # download_stream(): an MP4 of it.
    download = timeline.download_stream(stream_url)
    body = requests.get(download["download_url"], timeout=30)
    assert body.status_code == 200
    mp4 = tmp_path / "download.mp4"
    mp4.write_bytes(body.content)
    with av.open(str(mp4)) as c:
        assert c.format.name.startswith("mov")
        assert abs(float(c.duration) / 1e6 - 60.0) < 0.1
        assert [s.codec_context.name for s in c.streams.video] == ["h264"]
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
    # Rendered streams are not videos of the collection.
    assert all(v.id != again["video_id"] for v in coll.get_videos())
    print(f"seed timeline (60 s, copy path) answered in {took:.2f} s")

    # -- picture-in-picture from the raw assets: display:1 full frame, display:2 in a corner, the
    # mic and the system audio mixed at chosen volumes (the render path) --------------------------
    from videodb.editor import Offset, Position

    pip = Timeline(conn)
    pip.resolution = "1280x720"
    screen_track = Track()
    screen_track.add_clip(0, Clip(asset=VideoAsset(id=assets["display:1"], start=10), duration=8))
    pip.add_track(screen_track)
    camera_track = Track(z_index=1)
    camera_track.add_clip(0, Clip(asset=VideoAsset(id=assets["display:2"], start=10), duration=8, scale=0.25,
                                  position=Position.bottom_right, offset=Offset(x=-0.02, y=0.03)))
    pip.add_track(camera_track)
    voice, room = Track(), Track()
    voice.add_clip(0, Clip(asset=AudioAsset(id=assets["mic:default"], start=10, volume=1.0), duration=8))
    room.add_clip(0, Clip(asset=AudioAsset(id=assets["system_audio:default"], start=10, volume=0.3), duration=8))
    pip.add_track(voice)
    pip.add_track(room)
    answer = conn.post(path="editor", data=pip.to_json())
    assert answer["way"] == "render" and answer["stream_url"] != stream_url
    shots, count, _ = frames_at(answer["stream_url"], [4.0])
    assert abs(count - 8 * FPS) <= 1
    frame = shots[4.0].astype(int)
    # 320x180 at the bottom right, 2 % of the width in from the right, 3 % of the height up
    x0, y0 = 1280 - 320 - 26, 720 - 180 - 22
    x0, y0 = x0 - x0 % 2, y0 - y0 % 2
    inset = frame[y0 + 10:y0 + 170, x0 + 10:x0 + 310]
    assert inset[..., 0].mean() > 150 and inset[..., 2].mean() < 90, "display:2 (red) in the corner"
    outside = frame[300:400, 200:400]
    assert abs(outside[..., 2].mean() - 120) < 25 and outside[..., 0].mean() < 100, "display:1 (grey-blue) around it"
    samples, rate = audio_of(answer["stream_url"])
    middle = samples[rate:7 * rate]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    freqs = np.fft.rfftfreq(len(middle), 1 / rate)
    level = {hz: spectrum[(freqs > hz - 10) & (freqs < hz + 10)].max() for hz in (440, 1000)}
    assert 0.24 < level[1000] / level[440] < 0.36, level  # the system audio at 0.3 of the mic
