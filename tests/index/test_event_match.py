"""Events against records (``index/event_match.py``): phrases, bounded regular expressions, and the
semantic threshold's calibration set (the false-fire rate docs/live.md states)."""

from __future__ import annotations


import numpy as np
import pytest

from reeldb.index import embed
from reeldb.index.event_match import SEMANTIC_THRESHOLD, BadPrompt, compile_prompt

pytestmark = pytest.mark.fast


def embedder(texts):
    return embed.embed_texts(texts)


def test_a_quoted_phrase_matches_whole_words_in_any_case_once():
    m = compile_prompt('"the quarterly budget"')
    assert m.kind == "phrase"
    assert m.match("So THE Quarterly Budget is late.").matched == "THE Quarterly Budget"
    assert m.match("the quarterly budgets") is None
    # across a segmenter's cut: found in the record where the phrase ends, and only there
    assert m.match("budget review is next week", context="we start with the quarterly").confidence == 1.0
    assert m.match("and then lunch", context="we start with the quarterly budget") is None


def test_a_pattern_matches_and_a_backtracking_one_is_refused():
    m = compile_prompt("/migrat(e|ion) fail(ed|s)/")
    assert m.kind == "regex" and m.match("Our database migration failed because").matched == "migration failed"
    for evil in ("/(a+)+$/", "/(x+x+)+y/"):  # refused (each probe is bounded by REGEX_TIMEOUT), not stuck
        with pytest.raises(BadPrompt, match="backtracks"):
            compile_prompt(evil)
    # What the probes let through is still bounded on every record: a timeout is no match.
    slow = compile_prompt("/(.*a){12}/")
    hit = slow.match("a" * 5000 + "!")
    assert hit is None or hit.matched.count("a") >= 12
    with pytest.raises(BadPrompt, match="not a valid"):
        compile_prompt("/(unclosed/")


def test_empty_and_oversized_prompts_are_refused():
    for bad in ("", '""', "//", "x" * 5000):
        with pytest.raises(BadPrompt):
            compile_prompt(bad, embedder)


#: The calibration set: each prompt, the sentences that show it; every other sentence (and the
#: NEUTRAL ones) must not fire it.
SHOWS = {
    "someone talks about money or the budget": [
        "The quarterly budget review is scheduled for next Tuesday afternoon.",
        "We are over budget on the marketing spend this quarter.", "Finance wants the cost estimates by Monday."],
    "a technical failure or outage": [
        "Our database migration failed because a column was missing.", "The server crashed twice last night.",
        "The deploy broke the login page for everyone."],
    "plans for a new office or relocation": [
        "The new office in Berlin opens in September.", "We are moving the team to a bigger building next year."],
    "gardening": ["Remember to water the tomato plants in the greenhouse every morning.",
                  "I planted roses along the fence last weekend."],
    "a pet causing trouble": ["Our cat knocked a glass of water off the kitchen table.",
                              "The dog chewed through the sofa cushion again."],
    "sharing the presentation slides": ["Please send the slides to the marketing team before Friday.",
                                        "Can you share your deck with the group?"],
}
NEUTRAL = [
    "The bakery on the corner sells fresh sourdough bread.", "It rained all day on Saturday.", "Let's grab lunch at noon.",
    "The train to the airport leaves every twenty minutes.", "My sister is learning to play the violin.",
    "Thanks everyone, see you next week.", "Can you hear me now?", "I think we should take a short break.",
    "The weather forecast says it will be sunny tomorrow.", "He read three books during the holiday.",
    "Good morning, let's get started.", "The coffee machine on the third floor is broken."]


def test_the_semantic_threshold_fires_on_meaning_and_not_falsely():
    every = [s for shown in SHOWS.values() for s in shown]
    texts = [*SHOWS, *every, *NEUTRAL]
    known = dict(zip(texts, embed.embed_texts(texts)))  # one batch: a busy machine embeds one by one slowly

    def embedder(batch):
        return np.stack([known[t] for t in batch])

    false_fires = found = pairs = 0
    for prompt, shown in SHOWS.items():
        m = compile_prompt(prompt, embedder)
        assert m.kind == "semantic"
        found += sum(m.match(s, embed=embedder) is not None for s in shown)
        others = [s for s in every if s not in shown] + NEUTRAL
        pairs += len(others)
        false_fires += sum(m.match(s, embed=embedder) is not None for s in others)
    assert (pairs, false_fires) == (142, 0), f"{false_fires} false fires in {pairs} at {SEMANTIC_THRESHOLD}"
    assert found >= 12, f"found {found} of 14 at {SEMANTIC_THRESHOLD}"
