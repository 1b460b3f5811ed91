"""Does a live index record show an event? An event's prompt, compiled once, read against each record.

Pure apart from the embedder it is handed (``reeldb.index.embed``'s, in a worker thread). Three
kinds of prompt, told apart by how they are written (VideoDB's prompts are prose for a language
model; ReelDB bundles none, so prose is matched by meaning and quoted or slashed prompts exactly):

- ``"the quarterly budget"`` (in double quotes): that phrase, case-insensitive, on word boundaries;
  confidence 1.
- ``/budget|forecast/`` (between slashes): a regular expression, case-insensitive, run by the
  ``regex`` package with a time limit. A pattern is tried at creation on adversarial inputs and
  refused if it runs out of time there (catastrophic backtracking), so a worker is never stuck;
  at match time the limit holds too, and a timeout is no match. Confidence 1.
- anything else: semantic similarity (cosine of the bundled MiniLM's vectors) of the prompt and
  the record's text, firing at :data:`SEMANTIC_THRESHOLD` or more; confidence is the similarity.

Phrases and patterns are read over the end of the previous record too (``context``): a segmenter
of ten words cuts where it counts, not where phrases end; a match must end inside the new record,
so one occurrence fires once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import regex

#: Similarity at or over which a prose prompt fires. Calibrated on ``tests/index/test_event_match.py``'s
#: set (6 prompts, 14 matching sentences, 142 non-matching pairs): 0 false fires in 142 (the
#: highest non-match scored 0.27), 12 of 14 matches found. docs/live.md states it.
SEMANTIC_THRESHOLD = 0.30
#: Longest prompt accepted (characters): a prompt is a phrase, a pattern or a sentence.
MAX_PROMPT = 2000
#: Seconds a pattern may run on one record (and on each adversarial probe at creation).
REGEX_TIMEOUT = 0.05
#: How much of the previous record a phrase or pattern may start in (characters).
CONTEXT = 200

Embed = Callable[[list[str]], np.ndarray]


class BadPrompt(ValueError):
    """A prompt that cannot be an event (empty, too long, a pattern that does not compile or that
    backtracks without end)."""


@dataclass(frozen=True)
class Hit:
    confidence: float
    matched: str


@dataclass(frozen=True)
class Matcher:
    kind: str  # phrase | regex | semantic
    prompt: str
    pattern: regex.Pattern | None = None
    vector: np.ndarray | None = None

    def match(self, text: str, context: str = "", embed: Embed | None = None) -> Hit | None:
        """Whether ``text`` (a new record; ``context`` the end of the one before) shows the event."""
        if self.kind == "semantic":
            assert embed is not None and self.vector is not None
            score = float(embed([text])[0] @ self.vector)
            return Hit(round(score, 4), text) if score >= SEMANTIC_THRESHOLD else None
        assert self.pattern is not None
        head = context[-CONTEXT:] + " " if context else ""
        try:
            for found in self.pattern.finditer(head + text, timeout=REGEX_TIMEOUT):
                if found.end() > len(head):
                    return Hit(1.0, found.group(0))
        except TimeoutError:
            return None
        return None


def kind_of(prompt: str) -> str:
    p = prompt.strip()
    if len(p) >= 2 and p[0] == p[-1] == '"':
        return "phrase"
    if len(p) >= 2 and p[0] == p[-1] == "/":
        return "regex"
    return "semantic"


def _adversarial(pattern: str) -> list[str]:
    """Inputs that make a backtracking pattern explode: long runs of each character the pattern
    names (and of common classes' members) ending in a character that breaks the match."""
    chars = {c for c in pattern if c.isalnum() or c in " -_.,"} | {"a", "1", " "}
    return [c * 3000 + tail for c in sorted(chars) for tail in ("!", "\x00")] + ["ab" * 1500 + "!"]


def compile_prompt(prompt: str, embed: Embed | None = None) -> Matcher:
    """A prompt as its matcher, or :class:`BadPrompt` saying why not. A semantic prompt needs
    ``embed`` (its vector is taken once, here)."""
    if len(prompt) > MAX_PROMPT:
        raise BadPrompt(f"event_prompt is {len(prompt)} characters; at most {MAX_PROMPT}")
    p = prompt.strip()
    kind = kind_of(p)
    if kind == "semantic":
        if not p:
            raise BadPrompt("event_prompt is empty")
        if embed is None:
            raise BadPrompt("a semantic prompt needs the embedder")
        return Matcher("semantic", p, vector=embed([p])[0])
    inner = p[1:-1]
    if not inner.strip():
        raise BadPrompt("event_prompt is an empty phrase or pattern")
    source = rf"(?<!\w){regex.escape(inner.strip())}(?!\w)" if kind == "phrase" else inner
    try:
        pattern = regex.compile(source, regex.IGNORECASE)
    except regex.error as exc:
        raise BadPrompt(f"event_prompt is not a valid regular expression: {exc}") from None
    if kind == "regex":
        for probe in _adversarial(inner):
            try:
                pattern.search(probe, timeout=REGEX_TIMEOUT)
            except TimeoutError:
                raise BadPrompt("event_prompt's regular expression backtracks without end on long input; "
                                "simplify it (no nested repeats)") from None
    return Matcher(kind, p, pattern=pattern)
