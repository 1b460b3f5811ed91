"""Which way a timeline is made (pure: no I/O).

- **copy**: the picture is one video's frames unchanged (every visual clip is a ``VideoAsset``
  of the same source at the timeline's resolution, laid end to end from 0 with no gap or
  overlap, no crop, fit/position irrelevant at full size, scale 1, opacity 1, no offset, filter
  or transition, no image/text/caption clip). Its spans are cut with the exact-clip machinery
  (whole GOPs copied, only partial edge GOPs re-encoded) and remuxed; the audio is the
  source's own packets when the timeline leaves it alone (no audio clip, every video volume 1),
  else the mix.
- **render**: anything else: every frame composited and encoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping, Optional, Sequence

from .model import AssetNotFound, AudioAsset, Caption, CaptionsUnavailable, Clip, ImageAsset, Timeline, TimelineError, VideoAsset

EPS = 1e-6
#: What a transcript's words may not bring into a caption: control characters and line or
#: paragraph separators (Pillow's layout fails on some), each drawn as a space.
SPOKEN_JUNK = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


@dataclass(frozen=True)
class SourceInfo:
    """What the planner and renderer need of one library asset."""

    id: str
    kind: str                  # video | audio | image
    path: str
    duration: float
    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None
    has_audio: bool = False
    has_video: bool = False
    hls_dir: Optional[str] = None


@dataclass(frozen=True)
class CopyPlan:
    video_id: str
    #: (timeline start, source start, source end) of each span, in order.
    spans: tuple[tuple[float, float, float], ...]
    #: "source": the source's own audio packets; "mix": the timeline's mix; "none": silent.
    audio: str
    duration: float


def check_sources(timeline: Timeline, sources: Mapping[str, SourceInfo]) -> None:
    """Every asset id names a library asset of the right kind (a 400 naming the clip otherwise)."""
    for ti, track in enumerate(timeline.tracks):
        for ci, clip in enumerate(track.clips):
            a = clip.asset
            if not isinstance(a, (VideoAsset, AudioAsset, ImageAsset)):
                continue
            path = f"timeline.tracks[{ti}].clips[{ci}].clip.asset.id"
            src = sources.get(a.id)
            if src is None:
                raise AssetNotFound(f"{path}: no such asset ({a.id!r})")
            if isinstance(a, VideoAsset) and not src.has_video:
                raise AssetNotFound(f"{path}: no video with a picture has this id ({a.id!r})")
            if isinstance(a, AudioAsset) and not src.has_audio:
                raise AssetNotFound(f"{path}: no audio (or video with sound) has this id ({a.id!r})")
            if isinstance(a, ImageAsset) and src.kind != "image":
                raise AssetNotFound(f"{path}: no image has this id ({a.id!r})")
            if isinstance(a, (VideoAsset, AudioAsset)) and src.duration and a.start >= src.duration:
                raise TimelineError(f"timeline.tracks[{ti}].clips[{ci}].clip.asset.start: starts after "
                                    f"{a.id!r} ends ({src.duration:.2f} s) (got {a.start:g})")


def _unchanged(clip: Clip, src: SourceInfo, timeline: Timeline) -> bool:
    a = clip.asset
    return (isinstance(a, VideoAsset) and a.crop.empty and src.width == timeline.width
            and src.height == timeline.height and clip.scale == 1 and clip.opacity == 1
            and clip.offset_x == 0 and clip.offset_y == 0 and clip.filter is None
            and clip.fade_in == 0 and clip.fade_out == 0 and src.hls_dir is not None)


def plan_copy(timeline: Timeline, sources: Mapping[str, SourceInfo]) -> Optional[CopyPlan]:
    """The copy plan of ``timeline``, or None when it must be rendered."""
    layers = timeline.layers()
    if not layers or any(not isinstance(c.asset, VideoAsset) for c in layers):
        return None
    ids = {c.asset.id for c in layers}
    if len(ids) != 1:
        return None
    video_id = ids.pop()
    src = sources[video_id]
    if not all(_unchanged(c, src, timeline) for c in layers):
        return None
    spans = []
    at = 0.0
    frame = 1.0 / (src.fps or 30)
    for clip in sorted(layers, key=lambda c: c.start):
        if abs(clip.start - at) > EPS:
            return None  # a gap (background) or an overlap
        if clip.asset.start + clip.duration > src.duration + frame / 2:
            return None  # runs past the source's end: the rest is background
        spans.append((clip.start, clip.asset.start, clip.asset.start + clip.duration))
        at = clip.end
    if abs(at - timeline.duration) > EPS:
        return None  # audio goes on after the picture ends
    audio_clips = [c for c in timeline.clips() if isinstance(c.asset, AudioAsset)]
    if not audio_clips and all(c.asset.volume == 1 for c in layers):
        audio = "source" if src.has_audio else "none"
    elif not audio_clips and all(c.asset.volume == 0 for c in layers):
        audio = "none"
    else:
        audio = "mix"
    return CopyPlan(video_id, tuple(spans), audio, timeline.duration)


def output_fps(timeline: Timeline, sources: Mapping[str, SourceInfo]) -> Fraction:
    """The render's frame rate: the fastest of its videos' (30 without a video; 30 for a source
    at 120 fps or more, a screen recorder's nominal rate rather than its frames')."""
    rates = [sources[c.asset.id].fps for c in timeline.layers() if isinstance(c.asset, VideoAsset)]
    rates = [r for r in rates if r]
    fps = max(rates) if rates else 30.0
    return Fraction(fps).limit_denominator(1001) if fps < 120 else Fraction(30)


def needs_captions(timeline: Timeline) -> bool:
    return any(c.asset.kind == "caption" for c in timeline.clips())


def map_captions(timeline: Timeline, transcripts: Mapping[str, Sequence[tuple[float, float, str]]],
                 max_words: int = 10, pause: float = 1.0):
    """Caption lines on the timeline's clock from the transcripts (words: start, end, text on the
    source's clock) of the timeline's video clips, each word moved through the clip that shows
    it (``asset.start`` → ``clip.start``, within ``duration``). Lines break at a sentence's end,
    a pause of ``pause`` seconds or ``max_words`` words. A caption clip needs at least one
    indexed video on the timeline (TimelineError otherwise)."""

    videos = [c for c in timeline.clips() if isinstance(c.asset, VideoAsset)]
    if not any(transcripts.get(c.asset.id) for c in videos):
        where = next(f"timeline.tracks[{ti}].clips[{ci}].clip.asset" for ti, t in enumerate(timeline.tracks)
                     for ci, c in enumerate(t.clips) if c.asset.kind == "caption")
        ids = sorted({c.asset.id for c in videos})
        raise CaptionsUnavailable(f"{where}: a caption (src 'auto') needs the spoken words of a video on the timeline; "
                            f"index one first (video.index_spoken_words()) (got videos {ids or 'none'})")
    words: list[tuple[float, float, str]] = []
    for clip in videos:
        a = clip.asset
        for w0, w1, text in transcripts.get(a.id, ()):
            if w1 <= a.start or w0 >= a.start + clip.duration:
                continue
            t0 = clip.start + max(0.0, w0 - a.start)
            t1 = min(clip.end, clip.start + (w1 - a.start))
            words.append((t0, t1, SPOKEN_JUNK.sub(" ", text)))
    words.sort()
    lines = []
    current: list[tuple[float, float, str]] = []
    for w in words:
        if current and (len(current) >= max_words or w[0] - current[-1][1] > pause):
            lines.append(current)
            current = []
        current.append(w)
        if w[2].rstrip().endswith((".", "?", "!")):
            lines.append(current)
            current = []
    if current:
        lines.append(current)
    out = []
    for i, line in enumerate(lines):
        end = line[-1][1] + 0.3
        if i + 1 < len(lines):
            end = min(end, lines[i + 1][0][0])
        out.append(Caption(line[0][0], max(end, line[-1][1]), " ".join(w[2].strip() for w in line),
                           tuple((w0, w1, t.strip()) for w0, w1, t in line)))
    return out
