"""Reading a rendition's playlist and writing time spans in URLs (pure).

The spans themselves are cut exactly by ``clips.py``; this module only parses ``index.m3u8`` and
the ``start-end,…`` notation timeline URLs carry. It lives in the export stage, which cuts from
those playlists, so the player and the server above it share it without a stage reaching up.
"""

from __future__ import annotations

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
