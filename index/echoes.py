"""Merging separately transcribed capture channels into one transcript, echoes said once. Pure.

Why per channel: a capture's microphone often hears the call played through the speakers, so the
same words reach the mic and the system audio ~1 s apart; whisper given the mix of both loops. Each
channel alone transcribes cleanly, but then the echoed speech is in both transcripts. The rule
that removes it:

- An *utterance* is a sentence of one channel (:func:`segments.sentences`).
- A run of its words is an echo of another channel when that channel said them too, in order
  (a longest common subsequence: ``min_overlap`` of the run's words, at least ``min_run`` of them
  or all of a shorter utterance), each within ``window`` seconds.
- Of the two versions the *earlier* is kept (an echo lags what causes it: the other side's voice
  reaches system audio before the mic hears it from the speakers). Versions less than ``tie``
  seconds apart keep the *louder channel's* (the channel's speech level, dBFS, measured by the
  caller); equal levels keep the channel first in ``PRIORITY`` (mic, then system audio).

What it costs: a short reply said by both sides within ``window`` seconds ("Yes." and "Yes.") is
kept once. The merged words are in time order, each labelled with its channel.
"""

from __future__ import annotations

from statistics import median
from typing import Mapping, NamedTuple, Optional, Sequence

from .segments import sentences
from .words import Word, normal

PRIORITY = ("mic", "system_audio")
WINDOW = 2.0
MIN_OVERLAP = 0.6
MIN_RUN = 3
TIE = 0.15


def _aligned(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of two token lists."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] and a[i] else max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if a[i] == b[j] and a[i]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _rank(channel: str) -> int:
    return PRIORITY.index(channel) if channel in PRIORITY else len(PRIORITY)


def _loses(mine: str, other: str, lag: float, levels: Mapping[str, float], tie: float) -> bool:
    """Whether ``mine``'s version, ``lag`` seconds after ``other``'s, is the one to drop."""
    if lag > tie:
        return True
    if lag < -tie:
        return False
    la, lb = levels.get(mine), levels.get(other)
    if la is not None and lb is not None and la != lb:
        return la < lb
    return (_rank(mine), mine) > (_rank(other), other)


class Echo(NamedTuple):
    """Words ``first``..``last`` (inclusive) of an utterance were also said on another channel,
    ``lag`` seconds after that version (negative: before it)."""

    first: int
    last: int
    lag: float


def echoes_in(utterance: Sequence[Word], other: Sequence[Word], window: float = WINDOW,
              min_overlap: float = MIN_OVERLAP, min_run: int = MIN_RUN) -> list[Echo]:
    """The runs of ``utterance`` that ``other`` (another channel's words) also said within
    ``window`` seconds. A run is a stretch of words aligned in order with the other channel's
    (a longest common subsequence; two words missed or misheard on either side do not break it),
    ``min_overlap`` of its words aligned, at least ``min_run`` of them (or all of a shorter
    utterance's). Runs, not whole utterances: an echo often runs straight into the channel's own
    next sentence, with no pause or full stop between them."""
    lo, hi = utterance[0].start - window, utterance[-1].end + window
    near = [w for w in other if lo <= w.start <= hi]
    mine = [normal(w.text) for w in utterance]
    spoken = sum(1 for t in mine if t)
    if not near or not spoken:
        return []
    pairs = [(i, j) for i, j in _aligned(mine, [normal(w.text) for w in near])
             if abs(utterance[i].start - near[j].start) <= window]
    runs: list[list[tuple[int, int]]] = []
    for i, j in pairs:
        if runs and i - runs[-1][-1][0] <= 3 and j - runs[-1][-1][1] <= 3:
            runs[-1].append((i, j))
        else:
            runs.append([(i, j)])
    found = []
    for run in runs:
        first, last = run[0][0], run[-1][0]
        if len(run) < min(min_run, spoken) or len(run) < min_overlap * (last - first + 1):
            continue
        found.append(Echo(first, last, median(utterance[i].start - near[j].start for i, j in run)))
    return found


def drop_echoes(channels: Mapping[str, Sequence[Word]], levels: Optional[Mapping[str, float]] = None, *,
                window: float = WINDOW, min_overlap: float = MIN_OVERLAP, tie: float = TIE,
                min_run: int = MIN_RUN) -> dict[str, list[Word]]:
    """Each channel's words (on one timeline) without the runs that echo another channel."""
    levels = levels or {}
    kept: dict[str, list[Word]] = {}
    for name, words in channels.items():
        keep: list[Word] = []
        for utterance in sentences(list(words)):
            dropped: set[int] = set()
            for other, theirs in channels.items():
                if other == name:
                    continue
                for echo in echoes_in(utterance, theirs, window, min_overlap, min_run):
                    if _loses(name, other, echo.lag, levels, tie):
                        dropped.update(range(echo.first, echo.last + 1))
            keep.extend(w for i, w in enumerate(utterance) if i not in dropped)
        kept[name] = keep
    return kept


def merge_channels(channels: Mapping[str, Sequence[Word]], levels: Optional[Mapping[str, float]] = None,
                   **rules: float) -> list[Word]:
    """One transcript from per-channel words already placed on the shared timeline: each word
    labelled with its channel, echoes dropped (:func:`drop_echoes`), in time order."""
    labelled = {name: [w._replace(channel=name) for w in words] for name, words in channels.items()}
    if len(labelled) > 1:
        labelled = drop_echoes(labelled, levels, **rules)
    merged = [w for words in labelled.values() for w in words]
    merged.sort(key=lambda w: (w.start, _rank(w.channel or ""), w.end))
    return merged
