"""export.thumbnails on videos made with PyAV whose frames carry their own index.

Each frame shows its index as 10 black/white stripes (bit 9 .. bit 0, left to right), so a
thumbnail, a storyboard tile or a poster says which frame it is, through JPEG and scaling.
Videos with a 2 s and a 30 s GOP, in Matroska (as capture stores) and MP4 (as export writes).
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from reeldb.export.thumbnails import (
    AUTO_MIN_EVERY,
    AUTO_TILES,
    ThumbnailError,
    poster,
    storyboard,
    thumbnail_at,
)

FPS = 10
SECONDS = 40
BITS = 10
W, H = 320, 240


def _picture(i: int) -> np.ndarray:
    img = np.zeros((H, W, 3), dtype=np.uint8)
    stripe = W // BITS
    for b in range(BITS):
        if i >> (BITS - 1 - b) & 1:
            img[:, b * stripe:(b + 1) * stripe] = 255
    img[H // 2 - 10:H // 2 + 10, :, 0] = 128  # some colour, never read
    return img


def read_index(rgb: np.ndarray) -> int:
    """The frame index shown by a (scaled) picture: sample each stripe's centre, upper half."""
    h, w = rgb.shape[:2]
    stripe = w / BITS
    value = 0
    for b in range(BITS):
        x = int((b + 0.5) * stripe)
        bright = rgb[h // 4 - 2:h // 4 + 2, x - 1:x + 2].mean() > 128
        value = value << 1 | int(bright)
    return value


def make_video(path: Path, gop_seconds: float, seconds: float = SECONDS, lead_black: float = 0.0) -> Path:
    """H.264 at FPS with an IDR exactly every ``gop_seconds`` (no scene cuts, no B-frames)."""
    fmt = "matroska" if path.suffix == ".mkv" else "mp4"
    gop = int(gop_seconds * FPS)
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.gop_size = gop
        s.codec_context.options = {"preset": "ultrafast", "crf": "12", "bf": "0",
                                   "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        for i in range(int(seconds * FPS)):
            img = _picture(i) if i >= lead_black * FPS else np.zeros((H, W, 3), np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def jpeg_rgb(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "mjpeg"
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def keyframe_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return sorted(float(p.pts * p.time_base) for p in c.demux(s) if p.is_keyframe and p.pts is not None)


def decoded_index_at(path: Path, t: float) -> int:
    """Reference: decode every frame and return the index shown at ``t``."""
    shown = None
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        start = float(s.start_time * s.time_base) if s.start_time is not None else 0.0
        for f in c.decode(s):
            if float(f.pts * f.time_base) - start <= t + 1e-6:
                shown = read_index(f.to_ndarray(format="rgb24"))
    return shown


@pytest.fixture(scope="module", params=[("gop2", 2.0, ".mkv"), ("gop30", 30.0, ".mp4")], ids=lambda p: p[0])
def video(request, tmp_path_factory):
    name, gop, ext = request.param
    path = make_video(tmp_path_factory.mktemp(name) / f"v{ext}", gop)
    return path, gop


def test_pattern_reads_back():
    for i in (0, 1, 399, 512, 1023):
        assert read_index(_picture(i)) == i


@pytest.mark.parametrize("t", [0.0, 0.05, 1.0, 3.37, 17.9, 29.95, 30.0, 31.25, 39.9])
def test_thumbnail_is_the_frame_shown_at_t(video, t, tmp_path):
    path, gop = video
    out = tmp_path / "t.jpg"
    thumb = thumbnail_at(path, t, out, width=160)
    rgb = jpeg_rgb(out)
    assert rgb.shape == (120, 160, 3) and (thumb.width, thumb.height) == (160, 120)
    expected = int(t * FPS + 1e-6)
    assert read_index(rgb) == expected == decoded_index_at(path, t)
    assert thumb.time == pytest.approx(expected / FPS, abs=1e-3)
    # it decoded from the keyframe before t, never more than one GOP
    assert thumb.decoded_frames <= gop * FPS + 2


def test_thumbnail_edges(video, tmp_path):
    path, _ = video
    last = thumbnail_at(path, 1e6, tmp_path / "end.jpg", width=None)
    assert read_index(jpeg_rgb(tmp_path / "end.jpg")) == SECONDS * FPS - 1
    assert (last.width, last.height) == (W, H)
    thumbnail_at(path, -5, tmp_path / "start.jpg")
    assert read_index(jpeg_rgb(tmp_path / "start.jpg")) == 0
    with pytest.raises(ThumbnailError):
        thumbnail_at(path, float("nan"), tmp_path / "x.jpg")
    with pytest.raises(ThumbnailError, match="cannot be read"):
        thumbnail_at(tmp_path / "missing.mp4", 1, tmp_path / "x.jpg")


def _parse_vtt(text: str) -> list[tuple[float, float, str, tuple[int, int, int, int]]]:
    def sec(ts: str) -> float:
        h, m, s = ts.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    assert text.startswith("WEBVTT\n")
    cues = re.findall(r"(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)", text)
    return [(sec(a), sec(b), name, tuple(int(v) for v in xywh)) for a, b, name, *xywh in cues]


@pytest.mark.parametrize("every", [None, 2.0, 5.0])
def test_storyboard_from_keyframes_covers_the_video(video, every, tmp_path):
    path, gop = video
    keys = keyframe_times(path)
    board = storyboard(path, tmp_path / "sb", every=every, width=80, columns=4)
    cues = _parse_vtt(board.vtt.read_text())
    assert len(cues) == len(board.tiles) >= 1
    # cues cover [0, duration] without holes or overlaps
    assert cues[0][0] == 0.0
    assert cues[-1][1] == pytest.approx(SECONDS, abs=0.11)
    for a, b in zip(cues, cues[1:]):
        assert a[1] == b[0] and a[0] < a[1]
    # decoding work: one decoded keyframe per tile, nothing else
    assert board.decoded_frames == len(board.tiles) <= len(keys)
    assert board.keyframes == len(keys)
    # each tile is the keyframe its cue starts at (the picture a seek there shows first)
    sheet = jpeg_rgb(board.sheets[0])
    assert board.sheets == [tmp_path / "sb" / "sprite.jpg"]
    assert sheet.shape[1] == 80 * min(4, len(cues))
    for (start, end, name, (x, y, w, h)), tile in zip(cues, board.tiles):
        assert name == "sprite.jpg" and (w, h) == (80, 60)
        assert tile.source_time in [pytest.approx(k, abs=1e-3) for k in keys]
        assert read_index(sheet[y:y + h, x:x + w]) == round(tile.source_time * FPS)
        assert start == 0.0 or start == pytest.approx(tile.source_time, abs=1e-3)
    # spacing: the first keyframe at or after each multiple of ``every``
    step = every or max(AUTO_MIN_EVERY, SECONDS / AUTO_TILES)
    expected, due = [], 0.0
    for k in keys:
        if k + 1e-6 >= due:
            expected.append(round(k, 3))
            due = (np.floor(k / step + 1e-9) + 1) * step
    assert [round(t.source_time, 3) for t in board.tiles] == expected
    if gop >= step:
        assert expected == [round(k, 3) for k in keys]


def test_storyboard_splits_sheets_and_uses_relative_names(tmp_path):
    path = make_video(tmp_path / "v.mkv", 1.0, seconds=12)
    board = storyboard(path, tmp_path / "sb", every=1, width=64, columns=3, max_tiles_per_sheet=5)
    assert [p.name for p in board.sheets] == ["sprite.jpg", "sprite_1.jpg", "sprite_2.jpg"]
    cues = _parse_vtt(board.vtt.read_text())
    assert [c[2] for c in cues] == ["sprite.jpg"] * 5 + ["sprite_1.jpg"] * 5 + ["sprite_2.jpg"] * 2
    assert board.decoded_frames == 12
    assert not [p for p in (tmp_path / "sb").iterdir() if p.name.endswith(".part")]


def test_poster_skips_a_black_opening(tmp_path):
    path = make_video(tmp_path / "v.mp4", 2.0, seconds=20, lead_black=6)
    thumb = poster(path, tmp_path / "poster.jpg", at=0.0)
    idx = read_index(jpeg_rgb(tmp_path / "poster.jpg"))
    assert idx == round(thumb.time * FPS) and thumb.time >= 6 and thumb.time % 2 == 0
    assert thumb.decoded_frames <= 5  # keyframes 0, 2, 4 are black; 6 is the first with a picture
    # the default looks from 10 % on: the first keyframe from 2 s that is not black
    thumb = poster(path, tmp_path / "p2.jpg", width=100)
    assert thumb.time == 6.0 and (thumb.width, thumb.height) == (100, 74)


def test_storyboard_rejects_bad_arguments(tmp_path):
    path = make_video(tmp_path / "v.mkv", 1.0, seconds=2)
    with pytest.raises(ThumbnailError):
        storyboard(path, tmp_path / "sb", every=0)
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    with pytest.raises(ThumbnailError):
        storyboard(tmp_path / "a.wav", tmp_path / "sb")


def test_storyboard_made_while_segmenting_hls(video, tmp_path):
    """make_hls(watch=StoryboardMaker()) gives the storyboard storyboard() gives, from the one
    read HLS makes anyway, and the very same HLS as without it."""
    from reeldb.export.hls import make_hls
    from reeldb.export.thumbnails import StoryboardMaker

    path, gop = video
    alone = storyboard(path, tmp_path / "alone", every=2.0, width=80)
    maker = StoryboardMaker(every=2.0, width=80)
    make_hls(path, tmp_path / "hls", watch=maker)
    board = maker.finish(tmp_path / "hls")
    assert board.vtt == tmp_path / "hls" / "storyboard.vtt"
    assert board.vtt.read_text() == alone.vtt.read_text()
    assert [t.source_time for t in board.tiles] == [t.source_time for t in alone.tiles]
    assert board.decoded_frames == len(board.tiles) and board.keyframes == alone.keyframes
    sheet = jpeg_rgb(board.sheets[0])
    for tile in board.tiles:
        assert read_index(sheet[tile.y:tile.y + tile.h, tile.x:tile.x + tile.w]) == round(tile.source_time * FPS)
    make_hls(path, tmp_path / "plain")
    for seg in sorted((tmp_path / "plain").iterdir()):
        assert (tmp_path / "hls" / seg.name).read_bytes() == seg.read_bytes()


def test_storyboard_maker_without_video(tmp_path):
    from reeldb.export.thumbnails import StoryboardMaker

    maker = StoryboardMaker()
    with pytest.raises(ThumbnailError):
        maker.finish(tmp_path / "sb")  # never shown a video stream (an audio-only rendition)
