"""Thumbnails, posters and seek-preview storyboards of a video file, with PyAV and numpy only.

Pure functions over files (no server, no database), blocking and CPU-bound: call them from a
worker thread. Times are seconds from the video stream's start (its first frame is 0).

- :func:`thumbnail_at` — the frame shown at ``t``: seek to the keyframe at or before ``t``,
  decode forward to ``t`` (at most one GOP is decoded; short GOPs at ingest keep that cheap).
- :func:`storyboard` — a sprite sheet (JPEG grid) of small thumbnails plus a WebVTT file whose
  cues map time ranges to ``sprite.jpg#xywh=x,y,w,h``: the seek-preview format players read
  (hls.js players, Video.js / Vidstack / Media Chrome thumbnail tracks). Tiles are made from
  KEYFRAMES only: non-key packets never reach the decoder, and the decoder is told to skip
  them anyway (``skip_frame = "NONKEY"``), so its cost is one decode per tile plus reading
  the file, not a decode of every frame. A tile stands for ``[its keyframe, the next tile)``,
  which is also the picture a player shows first after seeking into that range.
- :func:`poster` — a representative frame: the first keyframe from 10 % of the video on that
  is neither black nor flat (falls back to the most detailed keyframe seen, then to the
  frame at 10 %).

Why no Pillow: JPEGs are encoded with FFmpeg's ``mjpeg`` encoder through PyAV and the sprite is
composed in a numpy array, so thumbnails add no dependency. Output files are written to a
temporary name in the target folder and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import numpy as np

from .errors import ExportError, describe_error

VTT_NAME = "storyboard.vtt"
SPRITE_NAME = "sprite.jpg"
#: JPEG quantiser for FFmpeg's mjpeg encoder (2 best .. 31 worst); 3 is visually clean.
JPEG_QUALITY = 3
#: Tiles per storyboard when ``every`` is not given (one sprite sheet, a preview per ~1 % of a
#: long video; short videos get a tile per keyframe up to one per second).
AUTO_TILES = 100


class ThumbnailError(ExportError):
    """The video cannot be read or has no decodable picture where one was asked for."""

    code = "THUMBNAIL_FAILED"


@dataclass
class Thumbnail:
    """What :func:`thumbnail_at` / :func:`poster` wrote: ``time`` is the frame's own time."""

    path: Path
    time: float
    width: int
    height: int
    decoded_frames: int


@dataclass
class Tile:
    """One storyboard cue: ``[start, end)`` shows ``sheet`` at ``x, y, w, h``; the picture is
    the keyframe at ``source_time``."""

    start: float
    end: float
    sheet: str
    x: int
    y: int
    w: int
    h: int
    source_time: float

    @property
    def fragment(self) -> str:
        return f"{self.sheet}#xywh={self.x},{self.y},{self.w},{self.h}"


@dataclass
class Storyboard:
    """What :func:`storyboard` wrote into its folder."""

    vtt: Path
    sheets: list[Path]
    tiles: list[Tile]
    tile_width: int
    tile_height: int
    columns: int
    duration: float
    decoded_frames: int
    keyframes: int = 0  # keyframes in the file (tiles are a subset)
    extra: dict = field(default_factory=dict, repr=False)


# ------------------------------------------------------------------ public functions


def thumbnail_at(video_path: str | Path, t: float, out_path: str | Path, width: Optional[int] = 320) -> Thumbnail:
    """Write the frame shown at ``t`` seconds as a JPEG ``width`` pixels wide (height keeps the
    aspect ratio; ``None``: full size). ``t`` past the end gives the last frame, ``t < 0`` the
    first. Decodes from the keyframe at or before ``t``: at most one GOP."""
    video_path, out_path = Path(video_path), Path(out_path)
    if not isinstance(t, (int, float)) or not math.isfinite(t):
        raise ThumbnailError(f"time must be a finite number of seconds, got {t!r}")
    t = max(0.0, float(t))
    with _open(video_path) as container:
        stream = _video_stream(container, video_path)
        base = _start(stream)
        target = base + t
        decoded = 0
        chosen = None
        try:
            if t > 0:
                container.seek(max(0, int(math.floor(target / stream.time_base))), stream=stream,
                               backward=True, any_frame=False)
            for frame in _frames(container, stream):
                decoded += 1
                ft = _frame_time(frame, stream)
                if ft is None:
                    continue
                if chosen is not None and ft > target + 1e-6:
                    break
                if chosen is None or ft <= target + 1e-6:
                    chosen = frame
                if ft > target + 1e-6:
                    break  # the first frame after a seek already lies past t: it is the one shown
        except av.error.FFmpegError as exc:
            raise ThumbnailError(f"{video_path.name}: cannot decode ({describe_error(exc)})") from exc
        if chosen is None:
            raise ThumbnailError(f"{video_path.name}: no decodable frame at {t:g} s")
        w, h = _size(chosen.width, chosen.height, width)
        _write_jpeg(_rgb(chosen, w, h), out_path)
        return Thumbnail(out_path, round(_frame_time(chosen, stream) - base, 6), w, h, decoded)


def storyboard(
    video_path: str | Path,
    out_dir: str | Path,
    every: Optional[float] = None,
    *,
    width: int = 160,
    columns: int = 10,
    max_tiles_per_sheet: int = 200,
) -> Storyboard:
    """Write a seek-preview storyboard of ``video_path`` into ``out_dir``.

    Output: ``sprite.jpg`` (then ``sprite_1.jpg``, ``sprite_2.jpg``… when there are more than
    ``max_tiles_per_sheet`` tiles), a grid of ``columns`` tiles ``width`` pixels wide, and
    ``storyboard.vtt``, whose cues cover ``[0, duration]`` without holes, each pointing at one
    tile as ``sprite.jpg#xywh=x,y,w,h`` (relative URL: serve the folder anywhere).

    ``every``: the wanted spacing of tiles in seconds. Tiles are keyframes, so the spacing is
    the first keyframe at or after each multiple of ``every`` (a 30 s GOP gives a tile per
    30 s whatever ``every`` says). ``None``: about :data:`AUTO_TILES` tiles, at least 1 s apart.
    """
    video_path, out_dir = Path(video_path), Path(out_dir)
    if every is not None and (not isinstance(every, (int, float)) or not every > 0 or not math.isfinite(every)):
        raise ThumbnailError(f"every must be a positive number of seconds, got {every!r}")
    if columns < 1 or max_tiles_per_sheet < 1 or width < 2:
        raise ThumbnailError("columns, max_tiles_per_sheet and width must be positive")
    with _open(video_path) as container:
        stream = _video_stream(container, video_path)
        base = _start(stream)
        duration = _duration(container, stream)
        if every is None:
            every = max(1.0, duration / AUTO_TILES) if duration else 1.0
        ctx = stream.codec_context
        ctx.skip_frame = "NONKEY"  # the decoder drops what is not a keyframe (belt and braces)
        pictures: list[tuple[float, np.ndarray]] = []
        tile_w = tile_h = 0
        keyframes = decoded = 0
        next_due = 0.0
        end = 0.0
        pending: list[float] = []  # times of key packets sent to the decoder, in order

        def pending_or_taken() -> bool:  # a threaded decoder hands frames out late
            return bool(pending or pictures)

        def take(frames) -> None:
            nonlocal tile_w, tile_h, decoded
            for frame in frames:
                decoded += 1
                ft = _frame_time(frame, stream)
                ft = (ft - base) if ft is not None else (pending[0] if pending else 0.0)
                if pending:
                    pending.pop(0)
                if not tile_w:
                    tile_w, tile_h = _size(frame.width, frame.height, width)
                pictures.append((max(0.0, ft), _rgb(frame, tile_w, tile_h)))

        try:
            for packet in container.demux(stream):
                if packet.pts is None and packet.dts is None:
                    continue  # the demuxer's flush packet
                pt = _packet_time(packet)
                if pt is not None:
                    end = max(end, pt - base + _packet_duration(packet))
                if not packet.is_keyframe:
                    continue
                keyframes += 1
                rel = (pt - base) if pt is not None else next_due
                if rel + 1e-6 < next_due and pending_or_taken():
                    continue
                next_due = (math.floor(rel / every + 1e-9) + 1) * every
                pending.append(rel)
                take(ctx.decode(packet))
            take(ctx.decode(None))
        except av.error.FFmpegError as exc:
            raise ThumbnailError(f"{video_path.name}: cannot decode keyframes ({describe_error(exc)})") from exc
    if not pictures:
        raise ThumbnailError(f"{video_path.name}: no decodable keyframe")
    duration = max(duration, end, pictures[-1][0])
    pictures.sort(key=lambda p: p[0])

    tiles: list[Tile] = []
    sheets: list[Path] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for n, first in enumerate(range(0, len(pictures), max_tiles_per_sheet)):
        chunk = pictures[first:first + max_tiles_per_sheet]
        name = SPRITE_NAME if n == 0 else f"sprite_{n}.jpg"
        cols = min(columns, len(chunk))
        rows = math.ceil(len(chunk) / cols)
        sheet = np.zeros((rows * tile_h, cols * tile_w, 3), dtype=np.uint8)
        for i, (_, rgb) in enumerate(chunk):
            r, c = divmod(i, cols)
            sheet[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w] = rgb
            tiles.append(Tile(0.0, 0.0, name, c * tile_w, r * tile_h, tile_w, tile_h, chunk[i][0]))
        _write_jpeg(sheet, out_dir / name)
        sheets.append(out_dir / name)
    for i, tile in enumerate(tiles):
        tile.start = 0.0 if i == 0 else tile.source_time
        tile.end = tiles[i + 1].source_time if i + 1 < len(tiles) else duration
    tiles = [t for t in tiles if t.end > t.start] or tiles[-1:]
    tiles[-1].end = max(tiles[-1].end, duration)
    vtt = out_dir / VTT_NAME
    _write_atomic(vtt, _vtt(tiles).encode())
    return Storyboard(vtt=vtt, sheets=sheets, tiles=tiles, tile_width=tile_w, tile_height=tile_h,
                      columns=min(columns, len(pictures)), duration=round(duration, 6),
                      decoded_frames=decoded, keyframes=keyframes)


def poster(video_path: str | Path, out_path: str | Path, width: Optional[int] = None, at: float = 0.1) -> Thumbnail:
    """Write a representative frame as a JPEG: the first keyframe from ``at`` (a share of the
    duration, 10 % by default) on that is not black or flat, else the most detailed keyframe,
    else the frame at ``at``. Decodes keyframes only (at most 50 of them)."""
    video_path, out_path = Path(video_path), Path(out_path)
    with _open(video_path) as container:
        stream = _video_stream(container, video_path)
        base = _start(stream)
        duration = _duration(container, stream)
        start = max(0.0, min(1.0, at)) * duration
        ctx = stream.codec_context
        ctx.skip_frame = "NONKEY"
        best = None  # (detail, frame)
        decoded = 0
        try:
            for rounds, seek_to in enumerate((start, 0.0)):
                if rounds and (start <= 0 or best is not None):
                    break
                container.seek(max(0, int(math.floor((base + seek_to) / stream.time_base))), stream=stream,
                               backward=True, any_frame=False)
                ctx.flush_buffers()
                for frame in _key_frames(container, stream):
                    decoded += 1
                    ft = _frame_time(frame, stream)
                    if ft is not None and ft - base + 1e-6 < seek_to and rounds == 0:
                        continue  # the keyframe before ``start``: look after it first
                    detail = _detail(frame)
                    if best is None or detail > best[0]:
                        best = (detail, frame)
                    if detail >= 1.0 or decoded >= 50:
                        break
                if best is not None and best[0] >= 1.0:
                    break
        except av.error.FFmpegError as exc:
            raise ThumbnailError(f"{video_path.name}: cannot decode ({describe_error(exc)})") from exc
        if best is None:
            return thumbnail_at(video_path, start, out_path, width)
        frame = best[1]
        w, h = _size(frame.width, frame.height, width)
        _write_jpeg(_rgb(frame, w, h), out_path)
        ft = _frame_time(frame, stream)
        return Thumbnail(out_path, round((ft if ft is not None else base) - base, 6), w, h, decoded)


def storyboard_vtt(tiles: list[Tile]) -> str:
    """The WebVTT text of a storyboard's tiles (also written by :func:`storyboard`)."""
    return _vtt(tiles)


# ------------------------------------------------------------------ helpers


class _open:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> av.container.InputContainer:
        try:
            self.container = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            raise ThumbnailError(f"{self.path.name}: cannot be read ({describe_error(exc)})") from exc
        return self.container

    def __exit__(self, *exc) -> None:
        self.container.close()


def _video_stream(container, path: Path):
    stream = next(iter(container.streams.video), None)
    if stream is None:
        raise ThumbnailError(f"{path.name}: has no video stream")
    stream.thread_type = "AUTO"
    return stream


def _start(stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _duration(container, stream) -> float:
    if stream.duration is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _packet_time(packet) -> Optional[float]:
    ts = packet.pts if packet.pts is not None else packet.dts
    return None if ts is None else float(ts * packet.time_base)


def _packet_duration(packet) -> float:
    return float(packet.duration * packet.time_base) if packet.duration else 0.0


def _frame_time(frame, stream) -> Optional[float]:
    if frame.pts is None:
        return None
    return float(frame.pts * (frame.time_base or stream.time_base))


def _frames(container, stream) -> Iterator:
    for packet in container.demux(stream):
        yield from packet.decode()


def _key_frames(container, stream) -> Iterator:
    ctx = stream.codec_context
    for packet in container.demux(stream):
        if packet.pts is None and packet.dts is None:
            yield from ctx.decode(None)
            return
        if packet.is_keyframe:
            yield from ctx.decode(packet)


def _size(src_w: int, src_h: int, width: Optional[int]) -> tuple[int, int]:
    """Even target dimensions keeping the aspect ratio (4:2:0 JPEG needs even sizes)."""
    if not width or width >= src_w:
        w, h = src_w, src_h
    else:
        w, h = width, max(2, round(src_h * width / src_w))
    return max(2, w - w % 2), max(2, h - h % 2)


def _rgb(frame, w: int, h: int) -> np.ndarray:
    return frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()


def _detail(frame) -> float:
    """> 1 for a frame worth a poster: not black (mean luma) and not flat (luma spread)."""
    y = frame.reformat(width=64, height=36, format="gray").to_ndarray().astype(np.float32)
    return min(float(y.mean()) / 32.0, float(y.std()) / 8.0)


def _write_jpeg(rgb: np.ndarray, path: Path) -> None:
    h, w = rgb.shape[:2]
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height = w, h
    ctx.pix_fmt = "yuvj420p"
    ctx.time_base = Fraction(1, 25)
    ctx.qmin = ctx.qmax = JPEG_QUALITY
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuvj420p")
    data = b"".join(bytes(p) for p in ctx.encode(frame)) + b"".join(bytes(p) for p in ctx.encode(None))
    _write_atomic(path, data)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _ts(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _vtt(tiles: list[Tile]) -> str:
    lines = ["WEBVTT", ""]
    for tile in tiles:
        lines += [f"{_ts(tile.start)} --> {_ts(tile.end)}", tile.fragment, ""]
    return "\n".join(lines)
