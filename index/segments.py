"""Cutting a transcript's words into segments. Pure functions over data, no I/O.

Two consumers:
- the SDK's ``video.get_transcript(start, end, segmenter, length)``, which reads back
  ``{"word_timestamps": [{start, end, text}], "text": "…"}`` and returns the list as is, so each
  segmenter yields dicts with exactly ``start``, ``end`` (float seconds) and ``text``;
- the spoken-word index, which wants units that carry one idea each: sentences, with very short
  ones merged (an embedding of "Yes." or "Okay, so." matches everything) and long ones cut (an
  embedding of a 90 s ramble matches nothing well, and a result should point at a short clip).
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Optional, Sequence

from .words import Timed, Word, join_words

SEGMENTERS = ("word", "sentence", "time")

_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*$")
_CLAUSE_END = re.compile(r"[,;:—–-][\"'”’)\]]*$")
_ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "etc.", "e.g.", "i.e.", "no.", "jr.", "sr."}


class Segment(Timed):
    """Words cut together (a sentence, a time window), from one channel."""

    __slots__ = ()


def _seg(words: Sequence[Word]) -> Segment:
    return Segment(words[0].start, words[-1].end, join_words(words), words[0].channel)


def by_channel(words: Sequence[Word]) -> list[list[Word]]:
    """Words split by channel (first appearance order), each list in time order. Segments never
    mix channels: two people talking over each other are two sentences, not one interleaved."""
    groups: dict[Optional[str], list[Word]] = {}
    for w in words:
        groups.setdefault(w.channel, []).append(w)
    return list(groups.values())


def _in_time_order(segs: Iterable[Segment]) -> list[Segment]:
    return sorted(segs, key=lambda s: (s.start, s.end, s.channel or ""))


def clip_words(words: Sequence[Word], start: Optional[float] = None, end: Optional[float] = None) -> list[Word]:
    """Words whose midpoint lies in [start, end] (either bound may be None: open)."""
    lo = -math.inf if start is None else float(start)
    hi = math.inf if end is None else float(end)
    return [w for w in words if lo <= (w.start + w.end) / 2 <= hi]


def ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text)) and text.lower() not in _ABBREVIATIONS


def sentences(words: Sequence[Word], pause: float = 1.0) -> list[list[Word]]:
    """Words grouped into sentences: a break after sentence-final punctuation, or at a silence of
    ``pause`` seconds or more (whisper sometimes drops the full stop between two utterances)."""
    out: list[list[Word]] = []
    cur: list[Word] = []
    for w in words:
        if cur and w.start - cur[-1].end >= pause:
            out.append(cur)
            cur = []
        cur.append(w)
        if ends_sentence(w.text):
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def word_segments(words: Sequence[Word]) -> list[Segment]:
    return [Segment(w.start, w.end, w.text, w.channel) for w in words]


def sentence_segments(words: Sequence[Word], pause: float = 1.0) -> list[Segment]:
    return _in_time_order(_seg(s) for ws in by_channel(words) for s in sentences(ws, pause))


def time_segments(words: Sequence[Word], length: float, origin: float = 0.0) -> list[Segment]:
    """Fixed windows ``[origin + k*length, origin + (k+1)*length)`` holding the words whose
    midpoint falls in them, one segment per window and channel; windows without words are left
    out. Bounds are the window's."""
    if not length or length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    buckets: dict[tuple[int, int], list[Word]] = {}
    order = {ws[0].channel: i for i, ws in enumerate(by_channel(words))}
    for w in words:
        k = int(math.floor(((w.start + w.end) / 2 - origin) / length))
        buckets.setdefault((k, order[w.channel]), []).append(w)
    return [
        Segment(round(origin + k * length, 3), round(origin + (k + 1) * length, 3), join_words(ws), ws[0].channel)
        for (k, _), ws in sorted(buckets.items())
    ]


def transcript_response(
    words: Sequence[Word],
    start: Optional[float] = None,
    end: Optional[float] = None,
    segmenter: str = "word",
    length: float = 1,
) -> dict[str, Any]:
    """The body of ``GET /video/{id}/transcription``: what ``video.get_transcript`` reads back.

    Raises ValueError for an unknown segmenter, a non-positive length, or start > end (the SDK
    checks these too; the server turns this into a 400).
    """
    if segmenter not in SEGMENTERS:
        raise ValueError(f"Invalid segmenter {segmenter!r}. Must be one of: {', '.join(SEGMENTERS)}")
    if start is not None and end is not None and float(start) > float(end):
        raise ValueError(f"start ({start}) must be less than or equal to end ({end})")
    chosen = clip_words(words, start, end)
    if segmenter == "word":
        segs = word_segments(chosen)
    elif segmenter == "sentence":
        segs = sentence_segments(chosen)
    else:
        segs = time_segments(chosen, float(length), origin=float(start or 0.0))
    return {"word_timestamps": [s.as_dict() for s in segs], "text": join_words(chosen)}


def _split_long(words: list[Word], max_words: int, max_duration: float) -> list[list[Word]]:
    """Cut a too-long run of words in two at its best point, recursively.

    Best point: a clause boundary (comma, semicolon…) nearest the middle, else the longest pause,
    in the middle half of the run, so both halves stay meaningful.
    """
    if len(words) <= max_words and words[-1].end - words[0].start <= max_duration or len(words) < 2:
        return [words]
    n = len(words)
    lo, hi = max(1, n // 4), max(2, (3 * n) // 4)
    candidates = range(lo, min(hi, n - 1) + 1)
    mid = n / 2

    def score(i: int) -> tuple[int, float]:
        clause = 1 if _CLAUSE_END.search(words[i - 1].text) else 0
        gap = words[i].start - words[i - 1].end
        return (clause, gap - abs(i - mid) * 0.01)

    cut = max(candidates, key=score)
    return _split_long(words[:cut], max_words, max_duration) + _split_long(words[cut:], max_words, max_duration)


def index_segments(
    words: Sequence[Word],
    *,
    min_words: int = 4,
    min_duration: float = 1.5,
    max_words: int = 40,
    max_duration: float = 15.0,
    pause: float = 1.0,
    merge_gap: float = 3.0,
) -> list[Segment]:
    """Sentences to index: short ones merged into a neighbour, long ones cut.

    A sentence shorter than ``min_words`` or ``min_duration`` joins the next one when the silence
    between is under ``merge_gap`` (else the previous, else stays alone); a sentence over
    ``max_words`` or ``max_duration`` is cut at clause boundaries. Each channel is cut on its own;
    the segments come back in time order.
    """
    return _in_time_order(seg for ws in by_channel(words) for seg in _index_segments(
        ws, min_words=min_words, min_duration=min_duration, max_words=max_words, max_duration=max_duration,
        pause=pause, merge_gap=merge_gap))


def _index_segments(words: Sequence[Word], *, min_words: int, min_duration: float, max_words: int,
                    max_duration: float, pause: float, merge_gap: float) -> list[Segment]:
    groups = sentences(words, pause)
    merged: list[list[Word]] = []
    carry: list[Word] = []

    def short(ws: list[Word]) -> bool:
        return len(ws) < min_words or ws[-1].end - ws[0].start < min_duration

    for g in groups:
        if carry and g[0].start - carry[-1].end >= merge_gap:
            merged.append(carry)  # too far from what follows: keep it alone
            carry = []
        cur = carry + g
        carry = []
        if short(cur):
            carry = cur
        else:
            merged.append(cur)
    if carry:
        if merged and carry[0].start - merged[-1][-1].end < merge_gap and len(merged[-1]) + len(carry) <= max_words:
            merged[-1] = merged[-1] + carry
        else:
            merged.append(carry)
    out: list[Segment] = []
    for ws in merged:
        out.extend(_seg(part) for part in _split_long(ws, max_words, max_duration))
    return out


