"""Live transcript finals into index records: VideoDB's ``segmenter`` (word, sentence, time).

Pure: a :class:`Segmenter` is fed the live transcriber's finals (``{start, end, text}``, unix
seconds) one by one and returns the records each one completes (``{start, end, text}``); ``flush``
returns what is left when the index stops. No clock, no I/O, so the rules are tested alone
(``tests/index/test_segmenter.py``).

- ``word``, N: N words a record. A final has no word times, so a word's time is interpolated
  within its final by its characters: enough for a span that plays the words, never outside it.
- ``sentence``, N: N sentences a record, a sentence ending as the post-hoc index's do
  (``segments.ends_sentence``: ``.``, ``!``, ``?`` and closing quotes, not after "Mr."; whisper
  punctuates); a final without one keeps the sentence open.
- ``time``, N: the finals whose start falls in each N-second window, one record a window, closed
  by the first final that starts after it (speech is what moves a live index; silence holds
  nothing open that a record would need).

Why records wait for their count rather than a timer: a record is what an alert reads, and half
a sentence matches less; ``flush`` at stop gives the remainder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from .segments import SEGMENTERS, ends_sentence
from .words import Word, join_words


def words_of(final: dict) -> list[Word]:
    """A final's words, each given the share of its final's span its characters take."""
    parts = final["text"].split()
    if not parts:
        return []
    total = sum(len(p) + 1 for p in parts)
    span = max(0.0, final["end"] - final["start"])
    out, at = [], 0
    for part in parts:
        lo = final["start"] + span * at / total
        at += len(part) + 1
        out.append(Word(lo, final["start"] + span * at / total, part))
    return out


def timeline_words(finals: Iterable[dict], zero: float, length: float, channel: str | None = None) -> list[Word]:
    """The words of a live transcript's finals (unix seconds) on a recording's timeline, whose t=0
    is the unix time ``zero`` and which lasts ``length`` seconds: shifted, labelled with
    ``channel``, and cut to the recording (words it does not hold are dropped)."""
    out = []
    for final in finals:
        for w in words_of(final):
            if w.end - zero > 0.0 and w.start - zero < length:
                start, end = max(0.0, w.start - zero), min(length, w.end - zero)
                out.append(Word(round(start, 3), round(end, 3), w.text, channel))
    return sorted(out, key=lambda w: (w.start, w.end))


def _record(words: list[Word]) -> dict:
    return {"start": words[0].start, "end": words[-1].end, "text": join_words(words)}


@dataclass
class Segmenter:
    kind: str
    value: float
    _words: list[Word] = field(default_factory=list)
    _sentences: int = 0
    _window: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in SEGMENTERS:
            raise ValueError(f"segmenter must be one of {', '.join(SEGMENTERS)}, got {self.kind!r}")
        if not 0 < self.value <= 3600 or (self.kind != "time" and self.value != int(self.value)):
            raise ValueError(f"segmentation_value must be a positive {'number' if self.kind == 'time' else 'integer'}"
                             f" up to 3600, got {self.value!r}")

    def push(self, final: dict) -> list[dict]:
        """The records ``final`` completes (often none)."""
        words = words_of(final)
        if not words:
            return []
        if self.kind == "word":
            self._words.extend(words)
            n = int(self.value)
            out = []
            while len(self._words) >= n:
                out.append(_record(self._words[:n]))
                del self._words[:n]
            return out
        if self.kind == "time":
            out = []
            if self._window is None:
                self._window = final["start"]
            elif final["start"] >= self._window + self.value and self._words:
                out.append(_record(self._words))
                self._words = []
                self._window += self.value * ((final["start"] - self._window) // self.value)
            self._words.extend(words)
            return out
        out = []
        for word in words:
            self._words.append(word)
            if ends_sentence(word.text):  # the post-hoc index's rule (quotes, abbreviations)
                self._sentences += 1
                if self._sentences >= int(self.value):
                    out.append(_record(self._words))
                    self._words, self._sentences = [], 0
        return out

    def flush(self) -> list[dict]:
        """What is left, as one record (the index stopped, or its session did)."""
        out = [_record(self._words)] if self._words else []
        self._words, self._sentences, self._window = [], 0, None
        return out
