"""Benchmark: how often a prose event fires falsely, per hour of the test set's speech and slides.

    .venv/bin/python tests/bench/false_alerts.py

Phrases (``"…"``) and patterns (``/…/``) fire only where their text is: a false alert there is a
transcription or OCR error, not the matcher's. Prose prompts fire by meaning (MiniLM cosine >=
``SEMANTIC_THRESHOLD``), so they can fire on a record that does not show the event. This counts
those, with the six prompts of the threshold's calibration set (``tests/index/test_event_match.py``)
read against records made as the live indexes make them:

- **speech**: every sentence of the suite's spoken test sets (the calibration set, its neutral
  sentences, the search-quality meetings, the e2e meetings), said one after another with a second
  between sentences at espeak-ng's 160 words a minute (the suite's voice), cut into records by the
  live index's segmenters (``word`` 10, the SDK's default, and ``sentence`` 1);
- **slides**: the slides of the e2e tests and benches, and 60 slides of the screen tests'
  vocabulary (titles and bullets drawn at random, ``support/screens.py``), each a record (a live
  screen index's record is the slide's text), shown 30 s each.

A fire is false when the record holds no sentence or slide labelled as showing the prompt (the
calibration set's labels; for the other sentences and slides, by hand or by their words below).
Printed: false fires, records, and false alerts per hour of speech and of slides.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "index"))
sys.path.insert(0, str(HERE))

from reeldb.index import embed  # noqa: E402
from reeldb.index.event_match import SEMANTIC_THRESHOLD, Matcher, compile_prompt  # noqa: E402
from reeldb.index.segmenter import Segmenter  # noqa: E402
from search_quality import MEETINGS  # noqa: E402
from support import screens  # noqa: E402
from support.speech import MEETING_A, MEETING_B  # noqa: E402
from test_event_match import NEUTRAL, SHOWS  # noqa: E402

WPM = 160
GAP = 1.0
SLIDE_SECONDS = 30.0

#: Sentences outside the calibration set that show a prompt (a fire on them is not false).
SHOWN_TOO = {
    "someone talks about money or the budget": {
        "Sales in Europe were stronger than we expected this quarter.",
        "Our biggest customer wants a discount before renewing the contract.",
        "The quarterly budget review is scheduled for next Tuesday afternoon."},
    "a technical failure or outage": {
        "Our database migration failed because a column was missing.",
        "Latency on the search endpoint went up by twenty percent after Monday's deploy.",
        "We will roll back the payment service tonight.",
        "The test suite takes forty minutes and needs to be faster."},
    "plans for a new office or relocation": {"The new office in Berlin opens in September."},
    "gardening": {"Remember to water the tomato plants in the greenhouse.",
                  "Remember to water the tomato plants in the greenhouse every morning."},
    "a pet causing trouble": {"Our cat knocked a glass of water off the kitchen table."},
    "sharing the presentation slides": {"Please send the slides to the marketing team before Friday."},
}
#: A slide shows a prompt when it has one of these words (the screen vocabulary's).
SLIDE_WORDS = {
    "someone talks about money or the budget": {"budget", "revenue", "invoice", "ledger", "forecast", "lease"},
    "a technical failure or outage": {"incident", "rollback", "postmortem", "escalation", "firewall", "latency",
                                      "runbook", "kernel", "migration"},
    "plans for a new office or relocation": {"office", "lease", "expansion"},
    "gardening": set(), "a pet causing trouble": set(),
    "sharing the presentation slides": {"slides", "deck", "agenda"},
}


def speech() -> list[str]:
    every = [s for shown in SHOWS.values() for s in shown] + NEUTRAL
    every += [s for meeting in MEETINGS.values() for s in meeting] + MEETING_A + MEETING_B
    return list(dict.fromkeys(every))


def records(sentences: list[str], kind: str, value: float) -> list[tuple[str, set[str]]]:
    """The records a live index cuts the sentences into, each with the sentences it holds part of
    (those whose time span it overlaps)."""
    seg = Segmenter(kind, value)
    t, spans, out = 0.0, [], []
    for sentence in sentences:
        seconds = len(sentence.split()) / WPM * 60
        spans.append((t, t + seconds, sentence))
        out += seg.push({"start": t, "end": t + seconds, "text": sentence})
        t += seconds + GAP
    out += seg.flush()
    return [(r["text"], {s for start, end, s in spans if start < r["end"] and r["start"] < end}) for r in out]


def slides() -> list[str]:
    rng = random.Random(21)
    made = ["Welcome to the review\nAgenda for this afternoon\nTeam updates",
            "Zanzibar expansion\nKilimanjaro office lease signed\nHiring plan",
            "Closing remarks\nQuestions from the audience\nThank you",
            "Quarterly review\nRevenue pipeline grew\nKernel rollback plan",
            "Zanzibar roadmap\nTelemetry gateway latency\nFirewall onboarding"]
    made += [f"{place} office\nLease signed for {place}\nHiring plan and budget"
             for place in ("Zanzibar", "Kilimanjaro", "Patagonia", "Tasmania", "Reykjavik", "Okinawa")]
    for _ in range(60):
        made.append("\n".join([screens.sentence(rng, 3).title()] + [screens.sentence(rng) for _ in range(3)]))
    return made


def count(matcher: Matcher, items: list[tuple[str, bool]], vectors: dict[str, np.ndarray]) -> int:
    """False fires of ``matcher`` over ``items`` (text, shows its prompt), each printed."""
    false = 0
    for text, shown in items:
        hit = None if shown else matcher.match(text, embed=lambda t: vectors[t[0]])
        if hit is not None:
            false += 1
            print(f"    false fire ({hit.confidence:.2f}) of {matcher.prompt!r} on {text!r}")
    return false


def main() -> None:
    sentences = speech()
    cut = {"word 10": records(sentences, "word", 10), "sentence 1": records(sentences, "sentence", 1)}
    deck = slides()
    texts = sorted({t for rs in cut.values() for t, _ in rs} | set(deck) | set(SHOWS))
    vectors = dict(zip(texts, (v.reshape(1, -1) for v in embed.embed_texts(texts))))
    matchers = {p: compile_prompt(p, lambda t: vectors[t[0]]) for p in SHOWS}
    spoken_hours = (sum(len(s.split()) for s in sentences) / WPM * 60 + GAP * len(sentences)) / 3600
    print(f"prose prompts: {len(SHOWS)}; threshold {SEMANTIC_THRESHOLD}; speech: {len(sentences)} sentences, "
          f"{spoken_hours * 60:.1f} minutes at {WPM} words a minute; slides: {len(deck)}, {SLIDE_SECONDS:.0f} s each")
    for name, rs in cut.items():
        false = 0
        for prompt in SHOWS:
            shown = set(SHOWS[prompt]) | SHOWN_TOO[prompt]
            false += count(matchers[prompt], [(t, bool(held & shown)) for t, held in rs], vectors)
        print(f"  speech, segmenter {name:10s}: {false} false fires in {len(rs) * len(SHOWS)} record-prompt pairs: "
              f"{false / spoken_hours:.1f} false alerts per hour ({len(SHOWS)} prose events on one channel)")
    false = 0
    for prompt in SHOWS:
        items = [(t, bool(set(t.lower().split()) & SLIDE_WORDS[prompt])) for t in deck]
        false += count(matchers[prompt], items, vectors)
    hours = len(deck) * SLIDE_SECONDS / 3600
    print(f"  slides: {false} false fires in {len(deck) * len(SHOWS)} slide-prompt pairs: "
          f"{false / hours:.1f} false alerts per hour ({len(SHOWS)} prose events on one display)")


if __name__ == "__main__":
    main()
