"""Streams that stand for spans, through the official SDK, on uploads with 2 s and 30 s GOPs.

Issue 10's "done when": ``generate_stream(timeline=…)``, ``compile()`` of three shots from two
videos and ``shot.generate_stream()`` each last the requested total ± 0.1 s, decode without an
error in ffmpeg, and play in order. The uploads say their frame number in every picture and their
video by their background grey (support/media.py), so the decoded stream tells exactly what it holds.
"""

from __future__ import annotations

import math
import subprocess

import av
import pytest
from support.media import background_of, frame_number, make_numbered
from videodb.search import SearchResult

FPS = 25
GREY = {"a": 40, "b": 120}


def decode(url: str) -> tuple[list[tuple[str, int]], float]:
    """(video, frame number) of every frame in playback order, and the audio's length in seconds."""
    frames: list[tuple[str, int]] = []
    samples, rate = 0, 48000
    with av.open(url) as c:
        for frame in c.decode(c.streams.video[0], c.streams.audio[0]):
            if isinstance(frame, av.VideoFrame):
                grey = background_of(frame)
                frames.append((min(GREY, key=lambda k: abs(GREY[k] - grey)), frame_number(frame)))
            else:
                samples, rate = samples + frame.samples, frame.sample_rate
    return frames, samples / rate


def expected(video: str, start: float, end: float) -> list[tuple[str, int]]:
    """The frames whose middle lies in [start, end)."""
    first = math.ceil(start * FPS - 0.5 - 1e-9)
    last = math.ceil(end * FPS - 0.5 - 1e-9) - 1
    return [(video, n) for n in range(first, last + 1)]


def assert_plays(url: str, spans: list[tuple[str, float, float]]) -> None:
    frames, audio_seconds = decode(url)
    want = [f for video, start, end in spans for f in expected(video, start, end)]
    total = sum(end - start for _, start, end in spans)
    assert abs(len(frames) / FPS - total) <= 0.1, (len(frames) / FPS, total)
    assert abs(audio_seconds - total) <= 0.1, (audio_seconds, total)
    # in order, span by span, each edge within one frame of what was asked
    at = 0
    for video, start, end in spans:
        piece = expected(video, start, end)
        got = frames[at:at + len(piece)]
        assert {v for v, _ in got} == {video}, f"span {video} {start}-{end} plays {sorted(set(got))[:3]}"
        assert abs(got[0][1] - piece[0][1]) <= 1 and abs(got[-1][1] - piece[-1][1]) <= 1, (got[:2], got[-2:])
        assert [n for _, n in got] == list(range(got[0][1], got[0][1] + len(got))), "a frame missing or repeated"
        at += len(piece)
    assert abs(len(frames) - len(want)) <= len(spans), "frames beyond the spans"
    check = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-f", "null", "-"],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and check.stderr.strip() == "", check.stderr


@pytest.mark.slow
@pytest.mark.parametrize("gop,seconds,timeline,shots", [
    (2, 16.0, [(1.3, 4.7), (9.02, 13.5)], [("a", 0.6, 3.3), ("b", 5.1, 9.9), ("a", 11.0, 12.4)]),
    (30, 66.0, [(12.3, 33.9), (58.7, 61.3)], [("a", 29.5, 31.2), ("b", 3.0, 40.0), ("a", 61.0, 65.5)]),
], ids=["gop2", "gop30"])
def test_span_streams_play_exactly_their_spans(conn, tmp_path, gop, seconds, timeline, shots):
    coll = conn.get_collection()
    videos = {name: coll.upload(file_path=str(make_numbered(tmp_path / f"{name}.mp4", seconds, gop,
                                                                background=grey)))
              for name, grey in GREY.items()}
    a = videos["a"]

    # video.generate_stream(timeline=...): two spans of one video, back to back
    assert_plays(a.generate_stream(timeline=timeline), [("a", s, e) for s, e in timeline])

    # SearchResult.compile(): three shots of two videos, in the result's order (a, b, a)
    result = SearchResult(conn, _emit_warnings=False, results=[
        {"collection_id": coll.id, "video_id": videos[v].id, "length": seconds, "title": v,
         "docs": [{"start": s, "end": e, "text": ""}]}
        for v, s, e in shots])
    assert [(shot.video_id, shot.start) for shot in result.shots] == [(videos[v].id, s) for v, s, _ in shots]
    assert_plays(result.compile(), shots)

    # shot.generate_stream(): the middle (longest) shot on its own
    shot = result.shots[1]
    assert_plays(shot.generate_stream(), [shots[1]])
