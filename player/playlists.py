"""Timeline playlists: a VOD playlist that plays spans of an existing rendition, without re-encoding.

A span selects the whole segments it overlaps (segments start at keyframes, so nothing can be cut
finer without re-encoding) and ``EXT-X-START`` puts the playhead at the span's own start; spans are
joined with discontinuities, as a compilation of shots is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

SPAN = re.compile(r"^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Segment:
    uri: str
    start: float
    duration: float


def parse(playlist: str) -> list[Segment]:
    segments, t, duration = [], 0.0, None
    for line in playlist.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            segments.append(Segment(line, t, duration))
            t += duration
            duration = None
    return segments


def parse_spans(text: str) -> list[tuple[float, float]]:
    """``"1.5-4,10-12.25"`` → [(1.5, 4.0), (10.0, 12.25)]; ValueError for anything else."""
    spans = []
    for part in text.split(","):
        match = SPAN.match(part)
        if not match:
            raise ValueError(f"not a time span: {part!r} (use start-end in seconds)")
        start, end = float(match.group(1)), float(match.group(2))
        if end <= start:
            raise ValueError(f"span {part!r} ends before it starts")
        spans.append((start, end))
    if not spans:
        raise ValueError("no spans")
    return spans


def format_spans(spans: list[tuple[float, float]]) -> str:
    return ",".join(f"{s:.3f}-{e:.3f}".replace(".000", "") for s, e in spans)


def cut(segments: list[Segment], spans: list[tuple[float, float]], prefix: str = "") -> str:
    """A VOD playlist of the segments overlapping ``spans``; ``prefix`` is prepended to segment URIs."""
    return cut_many([(segments, spans, prefix)])


def cut_many(parts: list[tuple[list[Segment], list[tuple[float, float]], str]]) -> str:
    """One playlist of spans of several renditions, in order (a compilation): each part is a
    rendition's segments, its spans and the prefix that reaches its segments."""
    chosen: list[list[Segment]] = []
    first_offset = None
    for segments, spans, prefix in parts:
        for start, end in spans:
            picked = [Segment(prefix + s.uri, s.start, s.duration) for s in segments
                      if s.start < end and s.start + s.duration > start]
            if not picked:
                continue
            if first_offset is None:
                first_offset = max(0.0, start - picked[0].start)
            chosen.append(picked)
    if not chosen:
        raise ValueError("the spans lie outside the video")
    target = max(math.ceil(s.duration) for group in chosen for s in group)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0",
             "#EXT-X-PLAYLIST-TYPE:VOD"]
    if first_offset:
        lines.append(f"#EXT-X-START:TIME-OFFSET={first_offset:.3f},PRECISE=YES")
    for i, group in enumerate(chosen):
        if i:
            lines.append("#EXT-X-DISCONTINUITY")
        for seg in group:
            lines += [f"#EXTINF:{seg.duration:.6f},", seg.uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
