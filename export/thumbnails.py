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
  :class:`StoryboardMaker` makes the same from packets someone else reads: ``make_hls(...,
  watch=maker)`` hands it the keyframes as it segments, so the file is read once and the
  storyboard costs its keyframe decodes only (on frame threads, beside the segmenting).
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
from av.video.reformatter import VideoReformatter

from .errors import ExportError, describe_error

VTT_NAME = "storyboard.vtt"
SPRITE_NAME = "sprite.jpg"
#: JPEG quantiser for FFmpeg's mjpeg encoder (2 best .. 31 worst); 3 is visually clean.
JPEG_QUALITY = 3
#: Tiles per storyboard when ``every`` is not given: one sprite sheet, a preview per ~1 % of a
#: long video, and at least :data:`AUTO_MIN_EVERY` seconds apart. Each tile costs one keyframe
#: decoded (~10-20 ms for a screen-sized 720p/1080p keyframe on a laptop core; the reading,
#: scaling and JPEG are ~1 ms), so that spacing keeps a short recording's storyboard near a
#: tenth of its export (tests/bench/clips.py and thumbnails.py print the share).
AUTO_TILES = 100
AUTO_MIN_EVERY = 10.0


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
    30 s whatever ``every`` says). ``None``: about :data:`AUTO_TILES` tiles, at least
    :data:`AUTO_MIN_EVERY` seconds apart.

    This reads the file for itself; :class:`StoryboardMaker` makes the same storyboard from
    the packets another reader demuxes (``make_hls(..., watch=maker)``), without a second read.
    """
    video_path, out_dir = Path(video_path), Path(out_dir)
    maker = StoryboardMaker(every, width=width, columns=columns, max_tiles_per_sheet=max_tiles_per_sheet)
    with _open(video_path) as container:
        stream = _video_stream(container, video_path)
        maker.start(stream, video_path.name)
        try:
            for packet in container.demux(stream):
                maker.packet(packet)
        except av.error.FFmpegError as exc:
            raise ThumbnailError(f"{video_path.name}: cannot be read ({describe_error(exc)})") from exc
        return maker.finish(out_dir)


class StoryboardMaker:
    """A storyboard (see :func:`storyboard`) made from the packets of a demux run by someone
    else: ``start(video_stream)``, then ``packet(p)`` for each packet of that stream in demux
    order (before the packet is muxed elsewhere: muxing takes its data), then
    ``finish(out_dir)``. ``make_hls(src, dir, watch=maker)`` does the first two while it
    segments, so the storyboard costs only the decoding of the keyframes it shows.

    Only keyframes due for a tile reach the decoder (told to skip anything else and the loop
    filter, which a keyframe nothing is predicted from does not need); the per-packet work
    is a few integer operations. ``packet`` never raises: an error is kept and raised by
    ``finish`` as :class:`ThumbnailError`, so it costs the storyboard only.
    """

    def __init__(self, every: Optional[float] = None, *, width: int = 160, columns: int = 10,
                 max_tiles_per_sheet: int = 200) -> None:
        if every is not None and (not isinstance(every, (int, float)) or not every > 0 or not math.isfinite(every)):
            raise ThumbnailError(f"every must be a positive number of seconds, got {every!r}")
        if columns < 1 or max_tiles_per_sheet < 1 or width < 2:
            raise ThumbnailError("columns, max_tiles_per_sheet and width must be positive")
        self.every, self.width, self.columns, self.max_tiles_per_sheet = every, width, columns, max_tiles_per_sheet
        self.name = "video"
        self._ctx = None
        self._drained = False
        self._error: Optional[str] = None
        self._pictures: list[tuple[float, np.ndarray]] = []
        self._pending: list[float] = []  # times of key packets sent to the decoder, in order
        self._tile = (0, 0)
        # One scaler for every tile: a new one per frame costs ~7x the scaling (its filters).
        self._scaler = VideoReformatter()
        self.keyframes = self.decoded = 0

    def start(self, stream, name: str = "video") -> None:
        """The video stream whose packets follow (its codec context decodes the keyframes)."""
        self.name = name
        self._stream = stream
        tb = stream.time_base
        self._tb = float(tb)
        self._base_ticks = stream.start_time or 0
        self._base = self._base_ticks * self._tb
        self.duration = _duration(stream.container, stream)
        every = self.every
        if every is None:
            every = max(AUTO_MIN_EVERY, self.duration / AUTO_TILES) if self.duration else AUTO_MIN_EVERY
        self._every = every
        self._next_due = 0.0
        self._end_ticks: Optional[int] = None
        stream.thread_type = "AUTO"  # frame threads: keyframes decode while the reader goes on
        ctx = stream.codec_context
        ctx.skip_frame = "NONKEY"  # the decoder drops what is not a keyframe (belt and braces)
        try:
            ctx.options = {**ctx.options, "skip_loop_filter": "all"}
        except (AttributeError, TypeError):  # pragma: no cover - older PyAV
            pass
        self._ctx = ctx

    def packet(self, packet) -> None:
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None:  # the demuxer's flush packet: the stream ended
            self._drain()
            return
        end = ts + (packet.duration or 0)
        if self._end_ticks is None or end > self._end_ticks:
            self._end_ticks = end
        if not packet.is_keyframe:
            return
        self.keyframes += 1
        rel = (ts - self._base_ticks) * self._tb
        if rel + 1e-6 < self._next_due and (self._pending or self._pictures):
            return
        self._next_due = (math.floor(rel / self._every + 1e-9) + 1) * self._every
        if self._error is not None or self._ctx is None:
            return
        self._pending.append(rel)
        try:
            self._take(self._ctx.decode(packet))
        except Exception as exc:  # whatever it is, it must not stop the reader (make_hls)
            self._error = describe_error(exc)

    def _drain(self) -> None:
        if self._error is None and self._ctx is not None and not self._drained:
            self._drained = True
            try:
                self._take(self._ctx.decode(None))
            except Exception as exc:  # called by packet() too, which must not raise
                self._error = describe_error(exc)

    def _take(self, frames) -> None:
        for frame in frames:
            self.decoded += 1
            if frame.pts is None:
                ft = self._pending[0] if self._pending else 0.0
            else:  # (the stream may be closed by now: its time base is kept)
                ft = frame.pts * (float(frame.time_base) if frame.time_base else self._tb) - self._base
            if self._pending:
                self._pending.pop(0)
            if not self._tile[0]:
                self._tile = _size(frame.width, frame.height, self.width)
            self._pictures.append((max(0.0, ft), _rgb(frame, *self._tile, self._scaler)))

    def finish(self, out_dir: str | Path) -> Storyboard:
        """Write the sprite sheet(s) and the WebVTT into ``out_dir``."""
        out_dir = Path(out_dir)
        if self._ctx is None:
            raise ThumbnailError(f"{self.name}: has no video stream")
        self._drain()
        if self._error is not None:
            raise ThumbnailError(f"{self.name}: cannot decode keyframes ({self._error})")
        pictures = self._pictures
        if not pictures:
            raise ThumbnailError(f"{self.name}: no decodable keyframe")
        end = (self._end_ticks - self._base_ticks) * self._tb if self._end_ticks is not None else 0.0
        duration = max(self.duration, end, pictures[-1][0])
        pictures.sort(key=lambda p: p[0])
        tile_w, tile_h = self._tile
        columns, per_sheet = self.columns, self.max_tiles_per_sheet

        tiles: list[Tile] = []
        sheets: list[Path] = []
        out_dir.mkdir(parents=True, exist_ok=True)
        for n, first in enumerate(range(0, len(pictures), per_sheet)):
            chunk = pictures[first:first + per_sheet]
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
                          decoded_frames=self.decoded, keyframes=self.keyframes)


def poster(video_path: str | Path, out_path: str | Path, width: Optional[int] = None, at: float = 0.1) -> Thumbnail:
    """Write a representative frame as a JPEG: the first keyframe from ``at`` (a share of the
    duration, 10 % by default) on that is not black or flat, else the most detailed keyframe,
    else the frame at ``at``. Decodes keyframes only (at most 50 of them), and not the one the
    seek lands on before ``at``; one at a time (frame threads would decode keyframes ahead
    that the first detailed one makes useless)."""
    video_path, out_path = Path(video_path), Path(out_path)
    with _open(video_path) as container:
        stream = _video_stream(container, video_path)
        stream.thread_type = "SLICE"
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
                skip_before = seek_to if rounds == 0 else None  # the keyframe before ``start``: after it first
                for frame in _key_frames(container, stream, base, skip_before):
                    decoded += 1
                    ft = _frame_time(frame, stream)
                    if ft is not None and ft - base + 1e-6 < seek_to and rounds == 0:
                        continue  # (a keyframe without a time that decoded to an earlier frame)
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


def _frame_time(frame, stream) -> Optional[float]:
    if frame.pts is None:
        return None
    return float(frame.pts * (frame.time_base or stream.time_base))


def _frames(container, stream) -> Iterator:
    for packet in container.demux(stream):
        yield from packet.decode()


def _key_frames(container, stream, base: float = 0.0, skip_before: Optional[float] = None) -> Iterator:
    """Decoded keyframes from where the container is; with ``skip_before``, keyframes whose
    time (from ``base``) lies before it are passed over without being decoded."""
    ctx = stream.codec_context
    tb = float(stream.time_base)
    for packet in container.demux(stream):
        if packet.pts is None and packet.dts is None:
            yield from ctx.decode(None)
            return
        if not packet.is_keyframe:
            continue
        if skip_before is not None and packet.pts is not None and packet.pts * tb - base + 1e-6 < skip_before:
            continue
        yield from ctx.decode(packet)


def _size(src_w: int, src_h: int, width: Optional[int]) -> tuple[int, int]:
    """Even target dimensions keeping the aspect ratio (4:2:0 JPEG needs even sizes)."""
    if not width or width >= src_w:
        w, h = src_w, src_h
    else:
        w, h = width, max(2, round(src_h * width / src_w))
    return max(2, w - w % 2), max(2, h - h % 2)


def _rgb(frame, w: int, h: int, scaler: Optional[VideoReformatter] = None) -> np.ndarray:
    if scaler is not None:
        return scaler.reformat(frame, width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
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
