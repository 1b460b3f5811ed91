"""The mic's stretches that only echo the call are found before whisper runs (index/echo_mask.py):
real espeak speech, the call heard through speakers 0.3–1.5 s late, quieter and with room noise."""

from __future__ import annotations

import numpy as np
import pytest
from support.speech import compose, require_espeak

from reeldb.index.echo_mask import aligned, echo_spans, silence

RATE = 16000


def down(audio: np.ndarray) -> np.ndarray:
    return audio[::3].astype(np.float32)  # 48 kHz -> 16 kHz (speech-band content is all below 8 kHz)


def covered(spans, start, end) -> float:
    hit = sum(max(0.0, min(e, end) - max(s, start)) for s, e in spans)
    return hit / (end - start)


@pytest.fixture(scope="module")
def call():
    require_espeak()
    theirs, placed_theirs = compose(["The quarterly budget review is scheduled for next Tuesday afternoon.",
                                     "Our database migration failed because a column was missing."], gap=8.0, lead=1.0)
    mine, placed_mine = compose(["Please send the slides to the marketing team before Friday.",
                                 "Remember to water the tomato plants in the greenhouse."], gap=12.0, lead=5.5, seed=3)
    return down(theirs), placed_theirs, down(mine), placed_mine


@pytest.mark.parametrize("delay", [0.3, 1.0, 1.5])
def test_the_echo_of_the_call_is_found_and_the_users_own_speech_is_not(call, delay):
    theirs, placed_theirs, mine, placed_mine = call
    n = max(len(theirs) + int(delay * RATE), len(mine)) + RATE
    system = aligned(theirs, 0.0, n, RATE)
    rng = np.random.default_rng(1)
    mic = aligned(mine, 0.0, n, RATE) + 0.3 * aligned(theirs, delay, n, RATE) + rng.normal(0, 0.002, n).astype(np.float32)
    spans = echo_spans(mic, system, RATE)
    for p in placed_theirs:  # the echo: mostly found
        assert covered(spans, p.start + delay, p.end + delay) > 0.7, (delay, p, spans)
    for p in placed_mine:  # the user's own speech: kept
        assert covered(spans, p.start, p.end) < 0.15, (delay, p, spans)
    quiet = silence(mic, spans, RATE)
    assert np.abs(quiet[int(placed_mine[0].start * RATE):int(placed_mine[0].end * RATE)]).max() > 0.05


def test_no_echo_finds_nothing(call):
    theirs, _, mine, _ = call
    n = max(len(theirs), len(mine))
    assert echo_spans(aligned(mine, 0.0, n, RATE), aligned(theirs, 0.0, n, RATE), RATE) == []
    assert echo_spans(np.zeros(RATE * 5, np.float32), np.zeros(RATE * 5, np.float32), RATE) == []
    assert echo_spans(np.zeros(100, np.float32), np.zeros(100, np.float32), RATE) == []


def test_the_user_talking_over_the_call_is_kept(call):
    """Double talk: the user speaks while the call's echo plays; the user's words are not silenced."""
    theirs, placed_theirs, mine, placed_mine = call
    n = len(theirs) + 2 * RATE
    system = aligned(theirs, 0.0, n, RATE)
    over = placed_theirs[0].start + 1.0  # the user's first sentence starts a second into the echo
    mic = aligned(mine[int(placed_mine[0].start * RATE):int(placed_mine[0].end * RATE)], over, n, RATE)
    mic = mic + 0.3 * aligned(theirs, 0.5, n, RATE)
    spans = echo_spans(mic, system, RATE)
    said = placed_mine[0].end - placed_mine[0].start
    assert covered(spans, over, over + said) < 0.3, spans
