"""The editor's render path through the SDK: picture-in-picture from two videos, a text title, a
fade, a caption track from the inset's transcript and two audio tracks at different volumes,
checked on the stream's pixels and samples."""

from __future__ import annotations

import time

import av
import numpy as np
import pytest
from support.media import make_audio, make_video, write_video
from support.server_process import metrics
from support.speech import compose, require_espeak

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:CaptionAsset:UserWarning")]

W, H = 1280, 720
GREY = (60, 90, 120)
RED = (200, 30, 30)


def frames_at(url: str, times: list[float]) -> dict[float, np.ndarray]:
    out: dict[float, np.ndarray] = {}
    with av.open(url) as c:
        first = None
        for f in c.decode(video=0):
            t = float(f.time)
            first = t if first is None else first
            for want in times:
                if want not in out and t - first >= want - 1e-3:
                    out[want] = f.to_ndarray(format="rgb24").astype(np.int32)
    return out


def peak(samples: np.ndarray, rate: int, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[(freqs > hz - 10) & (freqs < hz + 10)].max())


def red_mask(frame: np.ndarray) -> np.ndarray:
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    return (r > 150) & (g < 80) & (b < 80)


def white(region: np.ndarray) -> int:
    return int(((region[..., 0] > 200) & (region[..., 1] > 200) & (region[..., 2] > 200)).sum())


def test_picture_in_picture_title_fade_captions_two_audio_tracks(in_process_factory, tmp_path):
    require_espeak()
    import videodb
    from videodb.editor import (AudioAsset, Background, CaptionAsset, Clip, Font, Offset, Position, TextAsset,
                                Timeline, Track, Transition, VideoAsset)

    # a short sync wait: the SDK gets "processing" and polls, as for any long request
    server = in_process_factory(sync_wait="1")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    coll = conn.get_collection()
    main = coll.upload(file_path=str(make_video(tmp_path / "main.mp4", 6.0, (W, H), 25, tone_hz=None,
                                                background=GREY)))
    speech, _ = compose(["Welcome to the quarterly review.", "Budget numbers look strong."], gap=1.0, lead=0.5)
    red = np.zeros((360, 640, 3), np.uint8)
    red[:] = RED
    inset = coll.upload(file_path=str(write_video(tmp_path / "inset.mp4", speech, fps=10, size=(640, 360),
                                                  picture=lambda i: red)))
    inset.index_spoken_words()
    low = coll.upload(file_path=str(make_audio(tmp_path / "low.m4a", 6.0, 440.0)))
    high = coll.upload(file_path=str(make_audio(tmp_path / "high.m4a", 6.0, 1000.0)))
    duration = 6.0

    timeline = Timeline(conn)
    timeline.resolution = f"{W}x{H}"
    base = Track()
    base.add_clip(0, Clip(asset=VideoAsset(id=main.id), duration=duration))
    timeline.add_track(base)
    pip = Track(z_index=1)
    pip.add_clip(0, Clip(asset=VideoAsset(id=inset.id, volume=0), duration=duration, scale=0.25,
                         position=Position.top_right, offset=Offset(x=-0.05, y=-0.05),
                         transition=Transition(in_="fade", duration=1.0)))
    timeline.add_track(pip)
    title = Track(z_index=2)
    title.add_clip(0, Clip(asset=TextAsset(text="TITLE", font=Font(size=64, color="#FFFFFF"),
                                           background=Background(color="#000000", opacity=1.0)),
                           duration=3.0, position=Position.top))
    timeline.add_track(title)
    captions = Track(z_index=3)
    captions.add_clip(0, Clip(asset=CaptionAsset(), duration=duration))
    timeline.add_track(captions)
    music = Track()
    music.add_clip(0, Clip(asset=AudioAsset(id=low.id, volume=1.0), duration=duration))
    timeline.add_track(music)
    voice = Track()
    voice.add_clip(2, Clip(asset=AudioAsset(id=high.id, volume=0.3), duration=4.0))
    timeline.add_track(voice)

    started = time.time()
    stream_url = timeline.generate_stream()
    print(f"PiP render of {duration:g} s took {time.time() - started:.1f} s (with polling)")
    assert stream_url and timeline.player_url
    answer = conn.post(path="editor", data=timeline.to_json())
    assert answer["stream_url"] == stream_url and answer["way"] == "render"

    words = inset.get_transcript()  # where the captions must be: while a word is spoken, and not
    spoken = next((w["start"] + w["end"]) / 2 for w in words if w["end"] - w["start"] >= 0.3)
    silent = words[-1]["end"] + 0.5  # after the last line has gone
    assert silent < duration - 0.1
    frames = frames_at(stream_url, [silent, 0.3, spoken, 2.0, 4.0])

    # The inset: top right, a quarter of the frame, moved 5 % of the frame left and down.
    mask = red_mask(frames[2.0])
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    expect = (W - 320 - 64, W - 64, 36, 36 + 180)
    assert all(abs(a - b) <= 4 for a, b in zip((x0, x1, y0, y1), expect)), ((x0, x1, y0, y1), expect)
    assert mask.sum() > 0.95 * 320 * 180
    # outside the inset is the main video (grey), not red
    assert not red_mask(frames[2.0][y0:y1, x0 - 40:x0 - 8]).any()
    assert abs(frames[2.0][300:400, 100:200, 2].mean() - GREY[2]) < 12
    # The fade: 0.3 s into a 1 s fade-in the inset is partly transparent over the grey.
    inside = frames[0.3][y0 + 20:y1 - 20, x0 + 20:x1 - 20]
    r = inside[..., 0].mean()
    assert GREY[0] + 15 < r < RED[0] - 40, r

    # The title: white text on black at the top centre for its 3 s, gone after.
    top = (slice(0, 110), slice(W // 2 - 200, W // 2 + 200))
    assert white(frames[2.0][top]) > 300
    assert white(frames[4.0][top]) == 0

    # The caption: white words at the bottom centre while the inset speaks, nothing before.
    bottom = (slice(H - 130, H - 20), slice(200, W - 200))
    assert white(frames[spoken][bottom]) > 200, white(frames[spoken][bottom])
    assert white(frames[silent][bottom]) == 0
    assert white(frames[silent][top]) == 0  # (the title is gone too)

    # Audio: the 440 Hz track alone for 2 s, then the 1000 Hz track joins at 0.3 of its level.
    with av.open(stream_url) as c:
        rate = c.streams.audio[0].sample_rate
        samples = np.concatenate([f.to_ndarray().reshape(f.to_ndarray().shape[0], -1).mean(axis=0)
                                  for f in c.decode(audio=0)])
    assert abs(len(samples) / rate - duration) < 0.1
    first = samples[int(0.2 * rate):int(1.8 * rate)]
    later = samples[int(2.5 * rate):int(5.5 * rate)]
    assert peak(first, rate, 1000) < 0.01 * peak(first, rate, 440)
    ratio = peak(later, rate, 1000) / peak(later, rate, 440)
    assert 0.25 < ratio < 0.36, ratio


def test_a_long_render_answers_processing_and_reports_progress(in_process_factory, tmp_path):
    import requests
    import videodb

    server = in_process_factory(sync_wait="0.3")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    coll = conn.get_collection()
    main = coll.upload(file_path=str(make_video(tmp_path / "m.mp4", 12.0, (W, H), 25, tone_hz=440, background=GREY)))
    body = {"timeline": {"background": "#101010", "resolution": f"{W}x{H}", "tracks": [
        {"z_index": 0, "clips": [{"start": 0, "clip": {"asset": {"type": "video", "id": main.id}, "duration": 12,
                                                       "filter": "greyscale"}}]}]}}
    headers = {"x-access-token": server.api_key}
    first = requests.post(f"{server.url}/editor", json=body, headers=headers, timeout=30).json()
    assert first["success"] and first["status"] == "processing"
    output_url = first["data"]["output_url"]
    seen = []
    deadline = time.time() + 120
    while time.time() < deadline:
        polled = requests.get(output_url, headers=headers, timeout=30).json()
        if polled["status"] != "processing":
            break
        seen.append(polled["data"]["percentage"])
        time.sleep(0.2)
    assert polled["status"] == "done" and polled["data"]["stream_url"].endswith(".m3u8"), polled
    assert any(0 < p < 100 for p in seen), seen  # progress while it ran
    assert seen == sorted(seen)
    # the same timeline again: answered from the first render (its video, done at once), with no
    # render job queued and the rendered stream's files not written again
    def renders(sample: dict, name: str) -> float:  # jobs of either render kind (short or long)
        return sum(v for (n, labels), v in sample.items() if n == name and dict(labels).get("kind", "").startswith(
            "render") or n == name and dict(labels).get("lane", "").startswith("renders"))

    def rendered_files() -> dict:
        # (not a ``.part`` file: the temp file of a previews job still writing the storyboard)
        return {p: p.stat().st_mtime_ns for p in server.data_dir.rglob("*")
                if p.is_file() and polled["data"]["video_id"] in p.parts and ".part" not in p.suffixes}

    assert renders(metrics(server.url), "reeldb_jobs_finished_total") == 1
    written = rendered_files()
    assert any(p.suffix == ".m3u8" for p in written), written
    again = requests.post(f"{server.url}/editor", json=body, headers=headers, timeout=30).json()
    assert again["success"] and "status" not in again, again  # not "processing": nothing to wait for
    assert again["data"]["stream_url"] == polled["data"]["stream_url"]
    assert again["data"]["video_id"] == polled["data"]["video_id"]
    after = metrics(server.url)
    assert renders(after, "reeldb_jobs_finished_total") == 1
    assert renders(after, "reeldb_job_queue_depth") == 0 and renders(after, "reeldb_jobs_running") == 0
    # (the previews job may add its poster and storyboard meanwhile: new files, not rewritten ones)
    assert {p: t for p, t in rendered_files().items() if p in written} == written
