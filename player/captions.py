"""Captions and transcript cues for the player, from a transcript's sentences (pure)."""

from __future__ import annotations

from typing import Any, Iterable


def _ts(seconds: float) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def webvtt(cues: Iterable[dict[str, Any]]) -> str:
    """A WebVTT file of ``{start, end, text}`` cues (seconds); empty cues are left out. Cue text is
    escaped as WebVTT requires (``&``, ``<``, ``>``), and ``-->`` cannot appear in it."""
    lines = ["WEBVTT", ""]
    n = 0
    for cue in cues:
        text = str(cue.get("text") or "").strip()
        if not text or cue["end"] <= cue["start"]:
            continue
        n += 1
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        lines += [str(n), f"{_ts(cue['start'])} --> {_ts(cue['end'])}", text, ""]
    return "\n".join(lines)
