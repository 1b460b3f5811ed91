"""Cutting a screen recording into scenes, and keeping the few frames worth reading.

Two extractions, VideoDB's: ``shot_based`` cuts where the picture changes, ``time_based`` every
``time`` seconds. Shot cuts are tuned for screens, not camera shots: what changes on a screen is
mostly text, so the change test compares *ink* (pixels off the frame's background colour), after the
vertical shift that best aligns the two frames. A scroll is then no change, a typed line or a
blinking cursor is a sliver of the ink, and a new window, slide or page changes most of it.

One pass over the file: every frame is decoded (H.264 needs it) but only ``sample_fps`` of them are
looked at, reformatted by swscale to a small grey picture (:data:`LOW_WIDTH` wide) for the change
test; a frame is converted at full size only when it is kept, and then bounded
(:data:`MAX_KEEP_PIXELS`, a 4K or 8K screen is kept downscaled). Kept frames are handed to the
caller's ``keep`` as the scene that holds them closes, so a long recording never holds more than one
scene's frames in memory.

Which frames a scene keeps (``frames_per_scene`` at most): its first *settled* frame (a slide's
animation or a page still loading is not read), then a frame each time its content has moved on
since the last one kept (a third of a screen scrolled, or enough typed) once it settles again, so a
scroll's new text is read too. Pure of the server; media in, spans and images out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Literal, Sequence

import av
import numpy as np
from PIL import Image

#: The change test's picture width (height keeps the aspect): 14 px text at 1080p is ~4 px here,
#: still a texture two different lines of text differ by, at 1/36 of the pixels.
LOW_WIDTH = 320
#: A grey level this far from another (0–255) is a change; this far from the background is ink.
LEVEL = 48
#: A step this large between neighbouring pixels is a stroke (text's edges are ink).
EDGE = 40
#: The ink a change is measured against is at least this share of the picture (a nearly empty
#: screen is not "all changed" by its first words).
INK_FLOOR = 0.03
#: A kept frame's largest size in pixels (2560 × 1440): what is read and served.
MAX_KEEP_PIXELS = 2560 * 1440
#: A settled picture is read again when this share of its ink is new since the last frame read.
READ_AGAIN = 0.3
#: Below this change ratio the picture has settled (a kept frame is read only once it has).
SETTLED = 0.04


class NoVideo(ValueError):
    """The file has no video stream to cut into scenes."""


@dataclass(frozen=True)
class ShotBased:
    """VideoDB's ``shot_based`` extraction: ``threshold`` (default 20; higher, fewer scenes) and
    ``frame_count`` (frames kept per scene for a scene collection)."""

    #: VideoDB's sensitivity: a cut where ``threshold`` % of the picture's strokes changed.
    threshold: float = 20.0
    #: Frames kept per scene (a scene collection's; an index reads more, ``screen_text``).
    frame_count: int = 1
    #: Pictures looked at a second (every frame is decoded; these are compared).
    sample_fps: float = 4.0
    #: Two cuts closer than this are one change (a slide's transition, a page loading): one scene.
    min_scene: float = 1.0


def cut_ratio(threshold: float) -> float:
    """The share of the strokes that must change for a cut: 0.2 at the default threshold 20 (measured
    on H.264 screens: a new slide of the same layout changes ~0.33 of them, a scroll ~0.05 and a
    typed line ~0.02)."""
    return max(0.05, min(0.95, threshold / 100.0))


@dataclass(frozen=True)
class TimeBased:
    """VideoDB's ``time_based`` extraction: a scene every ``time`` seconds, ``frame_count`` frames
    each, at the ``select_frames`` positions (``first``, ``middle``, ``last``)."""

    time: float = 10.0
    frame_count: int = 1
    select_frames: tuple[str, ...] = ("first",)


@dataclass
class Span:
    """A scene: [start, end) in seconds of the video, and the times of the frames it kept."""

    start: float
    end: float
    frame_times: list[float] = field(default_factory=list)


#: Called once per kept frame, in time order: (scene number, frame time, the frame, bounded).
Keep = Callable[[int, float, Image.Image], None]
Progress = Callable[[float], None]


def extraction_name(extraction_type: str | None) -> str:
    """``shot_based`` or ``time_based`` (the SDK sends ``shot`` / ``time``; None is shot-based)."""
    return {"shot": "shot_based", "time": "time_based", None: "shot_based", "": "shot_based"}.get(
        extraction_type, extraction_type or "shot_based")


def config_from(extraction_type: str | None, config: dict | None) -> ShotBased | TimeBased:
    """The SDK's ``extraction_type`` / ``extraction_config`` (None values mean defaults)."""
    given = {k: v for k, v in (config or {}).items() if v is not None}
    if (extraction_type or "shot_based") in ("shot_based", "shot"):
        threshold = float(given.get("threshold", 20))
        count = int(given.get("frame_count", 1))
        if threshold <= 0 or count < 1:
            raise ValueError("shot_based extraction needs threshold > 0 and frame_count >= 1")
        return ShotBased(threshold=threshold, frame_count=count)
    if extraction_type in ("time_based", "time"):
        interval = float(given.get("time", 10))
        count = int(given.get("frame_count", 1))
        select = given.get("select_frames") or ["first"]
        if isinstance(select, str):
            select = [select]
        bad = [s for s in select if s not in ("first", "middle", "last")]
        if interval <= 0 or count < 1 or bad or not select:
            raise ValueError("time_based extraction needs time > 0, frame_count >= 1 and select_frames of "
                             "first, middle, last")
        return TimeBased(time=interval, frame_count=count, select_frames=tuple(select))
    raise ValueError(f"extraction_type {extraction_type!r} is not one of shot_based, time_based")


# --------------------------------------------------------------------------------------------
# pure core: the change test


def background(small: np.ndarray) -> int:
    """The picture's commonest grey level (to 8 levels): its background."""
    return int(np.bincount((small >> 3).ravel(), minlength=32).argmax()) * 8 + 4


def edges(small: np.ndarray) -> np.ndarray:
    """Where the picture has strokes: a step of :data:`EDGE` grey levels to the next pixel right or
    down. Text is all strokes; a flat bar, a panel or a background is none."""
    mask = np.zeros(small.shape, bool)
    mask[:, :-1] |= np.abs(np.diff(small, axis=1)) > EDGE
    mask[:-1, :] |= np.abs(np.diff(small, axis=0)) > EDGE
    return mask


def _row_shifts(a: np.ndarray, b: np.ndarray, limit: int, count: int = 3) -> list[int]:
    """The vertical shifts (b's row y shows a's row y + dy) that best align the row profiles."""
    pa, pb = a.mean(axis=1), b.mean(axis=1)
    h = len(pa)
    costs = []
    for dy in range(-limit, limit + 1):
        if dy == 0:
            continue
        x, y = (pa[dy:], pb[: h - dy]) if dy > 0 else (pa[: h + dy], pb[-dy:])
        costs.append((float(np.abs(x - y).mean()), dy))
    costs.sort()
    return [dy for _, dy in costs[:count]]


def change(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """How much of what ``a`` showed is gone in ``b`` (small grey pictures of one size), at the
    vertical shift that explains most of it: (ratio, shift in rows). 0: the same picture, or the same
    scrolled; about 1: different text everywhere.

    The ratio is the larger of two shares: of ``a``'s ink, what changed (a new slide rewrites the
    text where the old one was; typing leaves it, a cursor is a speck of it), and of the picture, the
    ink that appeared where there was none, five-fold (a window opening on an empty desktop; a typed
    line is ~1 % of the picture). A new background colour is a new scene whatever the text.
    """
    bg_a, bg_b = background(a), background(b)
    if abs(bg_a - bg_b) > LEVEL:
        return 1.0, 0
    a16, b16 = a.astype(np.int16), b.astype(np.int16)
    ink_a, ink_b = edges(a16), edges(b16)
    h = a.shape[0]
    best = (float("inf"), 0)
    for dy in [0, *_row_shifts(a16, b16, h // 2)]:
        if dy >= 0:
            sa, sb, ia, ib = a16[dy:], b16[: h - dy], ink_a[dy:], ink_b[: h - dy]
        else:
            sa, sb, ia, ib = a16[: h + dy], b16[-dy:], ink_a[: h + dy], ink_b[-dy:]
        changed = np.abs(sa - sb) > LEVEL
        lost = int((changed & ia).sum()) / max(int(ia.sum()), int(INK_FLOOR * sa.size), 1)
        appeared = int((changed & ib & ~ia).sum()) / sa.size * 5
        ratio = max(lost, appeared)
        if ratio < best[0]:
            best = (ratio, dy)
        if ratio < SETTLED:
            break
    return best


def novelty(a: np.ndarray, b: np.ndarray, dy: int | None = None) -> float:
    """The share of ``b``'s ink that ``a`` did not show (at the shift that best aligns them, ``dy``
    when the caller has :func:`change`'s already): how much a re-read of ``b`` would add (lines
    typed, a page scrolled on)."""
    if dy is None:
        _, dy = change(a, b)
    a16, b16 = a.astype(np.int16), b.astype(np.int16)
    h = a.shape[0]
    sa, sb = (a16[dy:], b16[: h - dy]) if dy >= 0 else (a16[: h + dy], b16[-dy:])
    ink_b = edges(b16)
    new_rows = int(ink_b.sum()) - int(ink_b[: h - dy].sum() if dy >= 0 else ink_b[-dy:].sum())
    changed = int(((np.abs(sa - sb) > LEVEL) & (ink_b[: h - dy] if dy >= 0 else ink_b[-dy:])).sum())
    # (no ink floor here: a few typed lines on an empty terminal are all of its text, and new)
    return (changed + new_rows) / max(int(ink_b.sum()), int(0.002 * b.size), 1)


class ShotCutter:
    """The shot-based decision over samples, fed one at a time (pure: pictures in, decisions out).

    ``feed(t, small)`` answers what to do with the sample: ``"cut"`` (a new scene starts at ``t``),
    ``"keep"`` (read this frame: it is settled and new), ``"redo"`` (a change right after a cut: the
    scene started at the cut keeps its start, its kept frames are dropped and it is read again once
    settled), or ``None``.
    """

    def __init__(self, config: ShotBased, frames_per_scene: int) -> None:
        self.config = config
        self.cut = cut_ratio(config.threshold)
        self.cap = max(1, frames_per_scene)
        self.prev: np.ndarray | None = None
        self.ref: np.ndarray | None = None  # the last frame kept in this scene
        self.scene_start = 0.0
        self.kept = 0
        self.pending = True

    def feed(self, t: float, small: np.ndarray) -> list[str]:
        actions: list[str] = []
        if self.prev is None:
            self.prev, self.scene_start = small, t
            return actions
        step, _ = change(self.prev, small)
        if step >= self.cut:
            if t - self.scene_start < self.config.min_scene:
                actions.append("redo")
            else:
                if self.closing():
                    actions.append("close")  # keep the previous sample, the scene's last state
                actions.append("cut")
                self.scene_start = t
            self.prev = small
            self.kept, self.pending, self.ref = 0, True, None
            return actions
        self.prev = small
        if step >= SETTLED:
            return actions
        if self.pending:
            self.pending = False
        elif self.kept >= self.cap or self.ref is None or novelty(self.ref, small) < READ_AGAIN:
            return actions
        self.kept += 1
        self.ref = small
        actions.append("keep")
        return actions

    def closing(self) -> bool:
        """As the scene closes (a cut, the end): keep its last settled sample too? Yes if it kept
        nothing yet, or if the picture moved on since its last kept frame (the end of the typing)."""
        if self.prev is None:
            return False
        if self.kept == 0 or self.ref is None:
            return True
        if self.kept >= self.cap:
            return False
        return novelty(self.ref, self.prev) >= READ_AGAIN / 3


def time_spans(duration: float, config: TimeBased) -> list[Span]:
    """The ``time_based`` scenes of a video ``duration`` seconds long and their frame times."""
    spans = []
    start = 0.0
    while start < duration - 1e-6:
        end = min(duration, start + config.time)
        picks: list[float] = []
        if config.frame_count > 1 and config.select_frames == ("first",):
            picks = [start + (end - start) * i / config.frame_count for i in range(config.frame_count)]
        else:
            at = {"first": start, "middle": (start + end) / 2, "last": max(start, end - 0.05)}
            picks = [at[s] for s in config.select_frames]
        spans.append(Span(round(start, 3), round(end, 3), sorted(set(round(p, 3) for p in picks))))
        start = end
    return spans


# --------------------------------------------------------------------------------------------
# I/O edge: decoding


def bounded_image(frame: av.VideoFrame, max_pixels: int = MAX_KEEP_PIXELS) -> Image.Image:
    """The frame at full size, or downscaled by swscale to at most ``max_pixels``."""
    pixels = frame.width * frame.height
    if pixels <= max_pixels:
        return frame.to_image()
    scale = (max_pixels / pixels) ** 0.5
    return frame.reformat(width=int(frame.width * scale) // 2 * 2, height=int(frame.height * scale) // 2 * 2,
                          format="rgb24").to_image()


def low_picture(frame: av.VideoFrame, width: int = LOW_WIDTH) -> np.ndarray:
    """The small grey picture the change test compares (``width`` wide, by swscale)."""
    width = min(width, frame.width) // 2 * 2 or 2
    height = max(2, round(width * frame.height / max(1, frame.width)) // 2 * 2)
    return frame.reformat(width=width, height=height, format="gray").to_ndarray()


def _open(path: str) -> tuple[av.container.InputContainer, av.video.stream.VideoStream, float]:
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as exc:
        raise NoVideo(f"the file cannot be read as media ({exc})") from None
    if not container.streams.video:
        container.close()
        raise NoVideo("the media has no video stream: there are no scenes to extract")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    return container, stream, duration


def _time(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> float:
    if frame.pts is None:
        return float(frame.time or 0.0)
    base = frame.time_base or stream.time_base or Fraction(1, 1000)
    return float(frame.pts * base)


def extract(path: str, config: ShotBased | TimeBased, keep: Keep, *, frames_per_scene: int | None = None,
            progress: Progress | None = None) -> list[Span]:
    """The video's scenes; ``keep`` gets each kept frame (scene number, time, bounded image) as its
    scene closes. ``frames_per_scene`` caps shot-based scenes' frames (default: ``frame_count``).
    Raises :class:`NoVideo`."""
    container, stream, duration = _open(path)
    try:
        if isinstance(config, TimeBased):
            return _extract_time(container, stream, duration, config, keep, progress)
        return _extract_shots(container, stream, duration, config, keep, frames_per_scene or config.frame_count,
                              progress)
    finally:
        container.close()


def _extract_shots(container, stream, duration: float, config: ShotBased, keep: Keep, cap: int,
                   progress: Progress | None) -> list[Span]:
    cutter = ShotCutter(config, cap)
    spans: list[Span] = [Span(0.0, 0.0)]
    held: list[tuple[float, Image.Image]] = []
    every = 1.0 / config.sample_fps
    next_t = -1.0
    last_t, last_frame = 0.0, None
    reported = 0.0

    def flush(index: int) -> None:
        for t, image in held:
            keep(index, t, image)
        held.clear()

    sampled: tuple[float, av.VideoFrame] | None = None  # the last sample looked at
    for frame in container.decode(stream):
        t = _time(frame, stream)
        last_t, last_frame = t, frame
        if t < next_t:
            continue
        next_t = max(next_t + every, t + every * 0.5) if next_t >= 0 else t + every
        actions = cutter.feed(t, low_picture(frame))
        for action in actions:
            if action == "close" and sampled is not None:
                held.append((sampled[0], bounded_image(sampled[1])))
                spans[-1].frame_times.append(round(sampled[0], 3))
            elif action == "cut":
                spans[-1].end = t
                flush(len(spans) - 1)
                spans.append(Span(t, t))
            elif action == "redo":
                held.clear()
                spans[-1].frame_times.clear()
            elif action == "keep":
                held.append((t, bounded_image(frame)))
                spans[-1].frame_times.append(round(t, 3))
        sampled = (t, frame)
        if progress and duration and t - reported >= 5.0:
            reported = t
            progress(min(1.0, t / duration))
    end = max(duration, last_t + every / 2 if last_frame is not None else 0.0)
    if last_frame is not None and cutter.closing():
        held.append((last_t, bounded_image(last_frame)))
        spans[-1].frame_times.append(round(last_t, 3))
    spans[-1].end = end
    flush(len(spans) - 1)
    for span in spans:
        span.start, span.end = round(span.start, 3), round(span.end, 3)
    return [s for s in spans if s.end > s.start or len(spans) == 1]


def _extract_time(container, stream, duration: float, config: TimeBased, keep: Keep,
                  progress: Progress | None) -> list[Span]:
    if duration <= 0:  # no duration in the header: count the frames once
        duration = max((_time(f, stream) for f in container.decode(stream)), default=0.0) + 0.04
        container.seek(0)
    spans = time_spans(duration, config)
    wanted = [(i, t) for i, span in enumerate(spans) for t in span.frame_times]
    found: dict[tuple[int, float], float] = {}
    pos = 0
    prev = None
    for frame in container.decode(stream):
        t = _time(frame, stream)
        while pos < len(wanted) and t >= wanted[pos][1] - 0.02:
            keep(wanted[pos][0], t, bounded_image(frame))
            found[wanted[pos]] = t
            pos += 1
        prev = (t, frame)
        if pos >= len(wanted):
            break
        if progress and duration:
            progress(min(1.0, t / duration))
    while pos < len(wanted) and prev is not None:  # past the last frame: the last one
        keep(wanted[pos][0], prev[0], bounded_image(prev[1]))
        found[wanted[pos]] = prev[0]
        pos += 1
    for i, span in enumerate(spans):
        span.frame_times = [round(found.get((i, t), t), 3) for t in span.frame_times if (i, t) in found]
    return spans


def frame_at(path: str, t: float) -> Image.Image:
    """One frame (bounded) at ``t`` seconds: the first at or after it, else the last."""
    container, stream, _ = _open(path)
    try:
        container.seek(int(max(0.0, t - 0.001) / stream.time_base), stream=stream, backward=True)
        last = None
        for frame in container.decode(stream):
            last = frame
            if _time(frame, stream) >= t - 0.02:
                break
        if last is None:
            raise NoVideo("no frame could be decoded")
        return bounded_image(last)
    finally:
        container.close()


def sample_times(spans: Sequence[Span]) -> list[float]:
    """Every kept frame's time, in order (for the bench's frames-per-minute figure)."""
    return [t for span in spans for t in span.frame_times]


ExtractionType = Literal["shot_based", "time_based"]
