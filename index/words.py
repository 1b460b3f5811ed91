"""Whisper's word pieces joined into words as people write them. Pure functions, no I/O.

Why: faster-whisper splits a word where a token starts with punctuation, so "40,000" arrives as the
pieces " 40" and ",000", "12%" as " 12" and "%", "cold-hearted" as " cold" and "-hearted". Whisper
marks the start of a new word with a leading space; a piece without one continues the word before
it. Joining pieces by that rule (rather than putting a space between every piece) is what gives
"40,000", "12%", "cold-hearted", "$3.5M" and "3:30 pm" in transcripts, captions and search.

Stored transcripts hold whole words (each with the start of its first piece and the end of its
last), so every later consumer can put one space between words. Rows stored before this
(``format`` NULL in ``transcripts``) kept the pieces with their spaces stripped; :func:`rejoin_legacy`
repairs them on read with the shapes whisper's pieces take.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, NamedTuple, Optional, Sequence


class Timed(NamedTuple):
    """Text said between two times (seconds on the media's timeline); ``channel`` names the capture
    channel that said it (``mic``: the person at the keyboard, ``system_audio``: the others on the
    call), None for media with one audio track."""

    start: float
    end: float
    text: str
    channel: Optional[str] = None

    def as_dict(self) -> dict[str, Any]:
        """VideoDB's ``{start, end, text}`` plus ``channel`` when there is one (an extra field)."""
        d: dict[str, Any] = {"start": self.start, "end": self.end, "text": self.text}
        if self.channel is not None:
            d["channel"] = self.channel
        return d


class Word(Timed):
    """One spoken word; ``text`` has no surrounding spaces."""

    __slots__ = ()

    def row(self) -> list[Any]:
        """The stored/JSON form: ``[start, end, text]`` plus the channel when there is one."""
        return [self.start, self.end, self.text] if self.channel is None else [self.start, self.end, self.text,
                                                                                self.channel]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "Word":
        return cls(float(row[0]), float(row[1]), str(row[2]), str(row[3]) if len(row) > 3 and row[3] else None)


def join_words(words: Iterable[Word]) -> str:
    """Whole words as one string: one space between words (pieces are joined already)."""
    return " ".join(w.text for w in words if w.text)


class Piece(NamedTuple):
    """A word piece as whisper gives it: ``text`` keeps its leading space (a new word) or has none
    (it continues the previous word)."""

    start: float
    end: float
    text: str


def join_pieces(pieces: Iterable[Piece], channel: Optional[str] = None) -> list[Word]:
    """Pieces to words: a piece without a leading space attaches to the word before it.

    The first piece starts a word whatever its spacing; empty pieces are dropped. Times are the
    first piece's start and the last piece's end.
    """
    out: list[Word] = []
    for p in pieces:
        body = p.text.strip()
        if not body:
            continue
        if out and not p.text[:1].isspace():
            prev = out[-1]
            out[-1] = Word(prev.start, max(prev.end, round(float(p.end), 3)), prev.text + body, prev.channel)
        else:
            out.append(Word(round(float(p.start), 3), round(float(p.end), 3), body, channel))
    return out


#: Pieces of old rows that whisper produces only as the continuation of a word: ",000" ".5M" ":30"
#: (punctuation then a digit), "%", "-hearted" (a hyphen then a letter or digit).
_CONTINUATION = re.compile(r"^(?:[,.:][0-9]|%|-[^\W_])")


def rejoin_legacy(words: Sequence[Word]) -> list[Word]:
    """Words stored before pieces were joined: attach the pieces that can only be continuations."""
    out: list[Word] = []
    for w in words:
        if out and _CONTINUATION.match(w.text) and out[-1].channel == w.channel:
            prev = out[-1]
            out[-1] = Word(prev.start, max(prev.end, w.end), prev.text + w.text, prev.channel)
        else:
            out.append(w)
    return out


_TOKEN = re.compile(r"[^\w%$']+", re.UNICODE)


def normal(text: str) -> str:
    """A word compared by what was said: lower case, punctuation around it dropped ("4th," → "4th")."""
    return _TOKEN.sub("", text.lower()).strip("'")
