"""What a render costs, and whether this server allows it (pure: no I/O).

A render is checked before it is queued, so a timeline that would run for a day or take the
machine's memory is refused with a 400 naming the limit it is over, instead of being found out
by the kernel's OOM killer. The costs:

- **pixels** a frame (``width × height``) and **seconds**;
- **pixel-frames**: pixels × frames (the output's frame rate, :func:`.plan.output_fps`), which is
  what compositing and x264 spend their time on;
- **memory**: an estimate of the render process's peak address space (what ``RLIMIT_AS``, the
  render child's own limit, counts): the interpreter and libraries, the canvas and x264's frames,
  every layer alive at once sized as the renderer sizes it (text and images only where they
  show, never beyond the frame: :mod:`.geometry`), decoders, and the audio mix.

The estimate is deliberately simple and errs high; the render child's memory limit is the
backstop for what it misses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from .geometry import crop_box, even, fitted_size, placed_at, visible
from .model import Clip, ImageAsset, TextAsset, Timeline, TimelineError, VideoAsset
from .plan import SourceInfo, output_fps

MB = 1024 * 1024
#: Address space of a render child before it draws anything: Python, numpy, PyAV, Pillow, the
#: server modules it imports, thread stacks and malloc arenas (measured about 300-400 MB).
BASE = 450 * MB
#: Per output pixel: the canvas and its background, the encoder's queue of frames, x264's own
#: frames (lookahead, references, threads) and the blend's float temporaries (measured 86-112
#: bytes a pixel of VmPeak from 720p to 2160p).
PER_FRAME_PIXEL = 130
#: Per shown pixel of a text or image layer while it is alive (its planes and alpha), and while
#: it is made (RGBA drawings, float RGB for the colour conversion).
STATIC_KEPT, STATIC_MAKING = 8, 48
#: Per source pixel of a video layer (the decoder's frame pool), and per pixel on the canvas.
DECODER, VIDEO_SHOWN = 24, 4
#: Per source pixel when a video layer is converted through RGB (crop, filter, oversized).
VIDEO_RGB = 20
#: A text line's glyph mask is drawn whole (a byte a pixel, with its stroke): chars × em × em × this.
TEXT_LINE = 1.5
SAMPLE_RATE = 48000
#: The mix is held whole up to this many samples (``render.Mix.WHOLE_UP_TO``), 8 bytes each, twice
#: while it is joined.
WHOLE_MIX = 10 * 60 * SAMPLE_RATE
AUDIO_READER = 16 * MB


class RenderTooLarge(TimelineError):
    """The render is over one of this server's limits; the message names it and its setting."""

    code = "RENDER_TOO_LARGE"


@dataclass(frozen=True)
class RenderLimits:
    """This server's limits for one render (0 or less: no limit). ``setting`` turns a limit's
    name into what an operator sets (``max_pixels`` → ``REELDB_RENDER_MAX_PIXELS``)."""

    max_pixels: int = 3840 * 2160
    max_seconds: float = 3 * 3600.0
    max_pixel_frames: float = 1e12
    memory_mb: int = 2048
    setting: str = "REELDB_RENDER_{}"

    def name(self, limit: str) -> str:
        return self.setting.format(limit.upper())


@dataclass(frozen=True)
class RenderCost:
    width: int
    height: int
    seconds: float
    fps: float
    frames: int
    #: Estimated peak address space of the render, bytes.
    memory: int
    #: False: the copy path (nothing composited: only ``seconds`` applies).
    composited: bool = True

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def pixel_frames(self) -> float:
        return float(self.pixels) * self.frames


def render_cost(timeline: Timeline, sources: Mapping[str, SourceInfo], composited: bool = True) -> RenderCost:
    """The cost of rendering ``timeline`` (``composited``: every frame drawn; else the copy path)."""
    fps = float(output_fps(timeline, sources))
    frames = max(1, int(round(timeline.duration * fps)))
    memory = _memory(timeline, sources) if composited else BASE + _audio(timeline, sources)
    return RenderCost(timeline.width, timeline.height, timeline.duration, fps, frames, memory, composited)


def check_budget(cost: RenderCost, limits: RenderLimits) -> None:
    """Raise :class:`RenderTooLarge` for the first limit ``cost`` is over."""
    size = f"{cost.width}x{cost.height}"
    if cost.composited and 0 < limits.max_pixels < cost.pixels:
        raise RenderTooLarge(f"The render is {size} ({cost.pixels / 1e6:.1f} megapixels a frame), over this server's "
                             f"limit of {limits.max_pixels / 1e6:.1f} megapixels ({limits.name('max_pixels')})")
    if 0 < limits.max_seconds < cost.seconds:
        raise RenderTooLarge(f"The render is {cost.seconds:g} s long, over this server's limit of "
                             f"{limits.max_seconds:g} s ({limits.name('max_seconds')})")
    if cost.composited and 0 < limits.max_pixel_frames < cost.pixel_frames:
        raise RenderTooLarge(f"The render is {size} for {cost.seconds:g} s at {cost.fps:.4g} fps: "
                             f"{cost.pixel_frames:.2g} pixel-frames, over this server's limit of "
                             f"{limits.max_pixel_frames:.2g} ({limits.name('max_pixel_frames')})")
    if 0 < limits.memory_mb and cost.memory > limits.memory_mb * MB:
        raise RenderTooLarge(f"The render would need about {cost.memory / MB:.0f} MB, over this server's memory "
                             f"budget for one render of {limits.memory_mb} MB ({limits.name('memory_mb')}); "
                             "a smaller resolution, fewer layers alive at once or smaller text fit")


# -- memory -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _LayerCost:
    start: float
    end: float
    kept: float      # bytes held while the clip is on the timeline
    making: float    # bytes held for a moment while it is made (one layer is made at a time)


def _memory(timeline: Timeline, sources: Mapping[str, SourceInfo]) -> int:
    viewport = (timeline.width, timeline.height)
    layers = [c for c in (_layer(clip, sources, viewport) for clip in timeline.layers()) if c is not None]
    return int(BASE + PER_FRAME_PIXEL * timeline.width * timeline.height + _most_alive(layers)
               + max((c.making for c in layers), default=0) + _audio(timeline, sources))


def _most_alive(layers: list[_LayerCost]) -> float:
    """The largest sum of ``kept`` over layers alive at one moment (a sweep over clip edges;
    a clip ends before another one starting at that instant begins)."""
    edges = sorted([(c.start, 1, c.kept) for c in layers] + [(c.end, 0, -c.kept) for c in layers])
    alive = most = 0.0
    for _, _, change in edges:
        alive += change
        most = max(most, alive)
    return most


def _layer(clip: Clip, sources: Mapping[str, SourceInfo], viewport: tuple[int, int]) -> Optional[_LayerCost]:
    a = clip.asset
    frame = viewport[0] * viewport[1]
    if isinstance(a, TextAsset):
        # shown: at most the frame; the widest line's glyph mask at the size it is drawn
        em = max(1.0, a.size * max(clip.scale, 1e-3))
        longest = max((len(line.expandtabs(a.tabsize)) for line in a.text.split("\n")), default=0)
        return _LayerCost(clip.start, clip.end, STATIC_KEPT * frame,
                          STATIC_MAKING * frame + TEXT_LINE * longest * em * em * (1 + (a.shadow_color is not None)))
    if isinstance(a, ImageAsset):
        src = sources.get(a.id)
        natural = (src.width or 1, src.height or 1) if src else viewport
        if not a.crop.empty:
            box = crop_box(a.crop, natural)
            kept_size = (box[2] - box[0], box[3] - box[1])
        else:
            kept_size = natural
        size = clip.size or fitted_size(clip.fit, clip.scale, kept_size, viewport)
        shown = _shown(clip, size, kept_size, viewport)
        return _LayerCost(clip.start, clip.end, STATIC_KEPT * shown,
                          STATIC_MAKING * shown + 8 * natural[0] * natural[1])  # decoded, then RGBA
    if isinstance(a, VideoAsset):
        src = sources.get(a.id)
        natural = ((src.width or 2), (src.height or 2)) if src else viewport
        size = clip.size or fitted_size(clip.fit, clip.scale, natural, viewport)
        size = (even(size[0]), even(size[1]))
        oversized = size[0] * size[1] > 2 * frame  # render.OVERSIZED
        on_canvas = _shown(clip, size, natural, viewport) if oversized else size[0] * size[1]
        through_rgb = oversized or clip.filter is not None or not a.crop.empty
        kept = (DECODER * natural[0] * natural[1] + VIDEO_SHOWN * on_canvas
                + (VIDEO_RGB * natural[0] * natural[1] + STATIC_MAKING * on_canvas if through_rgb else 0))
        return _LayerCost(clip.start, clip.end, kept, 0.0)
    # captions: a line of text at a time, at most the frame
    return _LayerCost(clip.start, clip.end, STATIC_KEPT * frame, STATIC_MAKING * frame)


def _shown(clip: Clip, size: tuple[int, int], natural: tuple[int, int], viewport: tuple[int, int]) -> int:
    x, y = placed_at(clip.position, (clip.offset_x, clip.offset_y), size, viewport)
    part = visible((x - x % 2, y - y % 2), size, natural, viewport)
    return 0 if part is None else part.size[0] * part.size[1]


def _audio(timeline: Timeline, sources: Mapping[str, SourceInfo]) -> int:
    readers = [c for c in timeline.clips() if getattr(c.asset, "volume", 0) > 0
               and (src := sources.get(c.asset.id)) is not None and src.has_audio]  # type: ignore[union-attr]
    if not readers:
        return 0
    samples = int(timeline.duration * SAMPLE_RATE)
    whole = 16 * samples if samples <= WHOLE_MIX else 0
    return whole + AUDIO_READER * len(readers)
