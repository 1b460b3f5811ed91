"""The older surfaces on the editor's renderer: ``videodb.timeline.Timeline`` (``POST /timeline``),
``video.insert_video()`` and ``video.add_subtitle(style)`` burned in."""

from __future__ import annotations

import av
import numpy as np
import pytest
from support.media import make_audio, make_image, make_video, write_video
from support.speech import compose, require_espeak
from videodb.exceptions import InvalidRequestError

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def frames(url: str) -> list[tuple[float, np.ndarray]]:
    out = []
    with av.open(url) as c:
        first = None
        for f in c.decode(video=0):
            first = float(f.time) if first is None else first
            out.append((float(f.time) - first, f.to_ndarray(format="rgb24").astype(np.int32)))
    return out


def at(frames_: list, t: float) -> np.ndarray:
    return next(img for ft, img in frames_ if ft >= t - 1e-3)


def audio(url: str) -> tuple[np.ndarray, int]:
    with av.open(url) as c:
        rate = c.streams.audio[0].sample_rate
        x = np.concatenate([f.to_ndarray().reshape(f.to_ndarray().shape[0], -1).mean(axis=0) for f in c.decode(audio=0)])
    return x, rate


def peak(samples: np.ndarray, rate: int, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[(freqs > hz - 10) & (freqs < hz + 10)].max())


def test_legacy_timeline_inline_videos_and_overlays(conn, tmp_path):
    from videodb.asset import AudioAsset, ImageAsset, TextAsset, VideoAsset
    from videodb._constants import TextStyle
    from videodb.timeline import Timeline

    coll = conn.get_collection()
    red = coll.upload(file_path=str(make_video(tmp_path / "r.mp4", 3.0, (320, 240), 10, tone_hz=440, background=(200, 0, 0))))
    blue = coll.upload(file_path=str(make_video(tmp_path / "b.mp4", 3.0, (320, 240), 10, tone_hz=440, background=(0, 0, 200))))
    tone = coll.upload(file_path=str(make_audio(tmp_path / "t.m4a", 3.0, 1000.0)))
    image = coll.upload(file_path=str(make_image(tmp_path / "i.png", (64, 48))), media_type="image")

    timeline = Timeline(conn)
    timeline.add_inline(VideoAsset(asset_id=red.id, start=0.5, end=2.5))     # 0..2 s
    timeline.add_inline(VideoAsset(asset_id=blue.id, start=0, end=2))        # 2..4 s
    timeline.add_overlay(2.5, AudioAsset(asset_id=tone.id, start=0, end=1))  # silences the videos 2.5..3.5
    timeline.add_overlay(0, ImageAsset(asset_id=image.id, width=40, height=30, x=10, y=20, duration=4))
    timeline.add_overlay(1, TextAsset(text="HELLO", duration=1, style=TextStyle(fontsize=30, fontcolor="white",
                                                                                 boxcolor="black")))
    url = timeline.generate_stream()
    assert url and timeline.player_url
    shown = frames(url)
    assert abs(shown[-1][0] + 0.1 - 4.0) <= 0.1 + 1e-3
    first, second = at(shown, 0.5), at(shown, 3.0)
    assert first[120, 250, 0] > 150 and second[120, 250, 2] > 150  # red, then blue
    # the image (made red-ish 200,0,0 by make_image) at exactly x=10..50, y=20..50
    assert abs(second[35, 30, 0] - 200) < 30 and second[35, 30, 2] < 60
    assert second[35, 55, 2] > 150 and second[55, 30, 2] > 150
    # the text: white on a black box in the middle during 1..2 s only
    mid = (slice(100, 140), slice(100, 220))
    assert (at(shown, 1.5)[mid] > 200).all(axis=2).sum() > 50 and (at(shown, 2.5)[mid] > 200).all(axis=2).sum() == 0
    samples, rate = audio(url)
    during = samples[int(2.6 * rate):int(3.4 * rate)]
    before = samples[int(0.2 * rate):int(2.3 * rate)]
    assert peak(during, rate, 1000) > 30 * peak(during, rate, 440)  # disable_other_tracks
    assert peak(before, rate, 440) > 30 * peak(before, rate, 1000)
    with pytest.raises(InvalidRequestError, match=r"style.x.*drawtext expressions"):
        bad = Timeline(conn)
        bad.add_inline(VideoAsset(asset_id=red.id))
        bad.add_overlay(0, TextAsset(text="x", duration=1, style=TextStyle(x="t*20")))
        bad.generate_stream()


def test_insert_video_at_the_start_middle_and_end(conn, tmp_path):
    coll = conn.get_collection()
    host = coll.upload(file_path=str(make_video(tmp_path / "h.mp4", 3.0, (320, 240), 10, tone_hz=None, background=(200, 0, 0))))
    guest = coll.upload(file_path=str(make_video(tmp_path / "g.mp4", 1.0, (320, 240), 10, tone_hz=None, background=(0, 0, 200))))
    for when in (0, 1.5, 3.0):
        shown = frames(host.insert_video(guest, when))
        assert abs(len(shown) - 40) <= 1, (when, len(shown))
        blue = [i for i, (_, img) in enumerate(shown) if img[120, 250, 2] > 150]
        red = [i for i, (_, img) in enumerate(shown) if img[120, 250, 0] > 150]
        first = round(when * 10)
        assert blue == list(range(first, first + 10)), (when, blue)
        assert len(red) == len(shown) - 10, when


def test_add_subtitle_burns_the_transcript_in_with_its_style(conn, tmp_path):
    require_espeak()
    from videodb._constants import SubtitleAlignment, SubtitleBorderStyle, SubtitleStyle

    speech, _ = compose(["Good morning and welcome."], gap=0.5, lead=0.3)
    grey = np.full((240, 320, 3), 90, np.uint8)
    video = conn.get_collection().upload(file_path=str(write_video(tmp_path / "s.mp4", speech, fps=10,
                                                                   size=(320, 240), picture=lambda i: grey)))
    video.index_spoken_words()
    words = video.get_transcript()
    t = next((w["start"] + w["end"]) / 2 for w in words if w["end"] - w["start"] >= 0.3)
    top = video.add_subtitle(SubtitleStyle(alignment=SubtitleAlignment.top_center, font_size=24,
                                           primary_colour="&H0000FFFF", border_style=SubtitleBorderStyle.opaque_box,
                                           back_colour="&H00FF0000"))
    frame = at(frames(top), t)
    upper, lower = frame[:80], frame[160:]
    yellow = lambda a: ((a[..., 0] > 200) & (a[..., 1] > 200) & (a[..., 2] < 80)).sum()  # noqa: E731
    blue_box = lambda a: ((a[..., 2] > 200) & (a[..., 0] < 60)).sum()  # noqa: E731
    assert yellow(upper) > 30 and blue_box(upper) > 300, (yellow(upper), blue_box(upper))
    assert yellow(lower) == 0 and blue_box(lower) == 0
    bottom = video.add_subtitle()  # the SDK's default style: white, bottom centre
    frame = at(frames(bottom), t)
    white = lambda a: (a > 200).all(axis=2).sum()  # noqa: E731
    assert white(frame[160:]) > 30 and white(frame[:80]) == 0
    with pytest.raises(InvalidRequestError, match=r"subtitle_style.angle"):
        video.add_subtitle(SubtitleStyle(angle=30))
