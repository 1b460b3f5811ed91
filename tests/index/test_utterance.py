"""One utterance decoded with a window cut to it (``reeldb.index.utterance``), as live transcription
decodes: short words are heard once, not repeated to fill the window; silence says nothing."""

from __future__ import annotations

import numpy as np
import pytest

from support.speech import compose, normalise_words, require_espeak

from reeldb.index import models, utterance


def spoken(text: str) -> np.ndarray:
    require_espeak()
    audio, _ = compose([text], gap=0.2, lead=0.2, rate=utterance.SAMPLE_RATE)
    return audio.astype(np.float32)


def test_the_window_is_the_utterance_and_the_tail_in_whole_seconds_at_most_thirty():
    rate = utterance.SAMPLE_RATE
    assert utterance.window_frames(int(1.2 * rate)) == 12 * 100  # 1.2 s + 10 s, rounded up
    assert utterance.window_frames(4 * rate) == 14 * 100
    assert utterance.window_frames(0) == 10 * 100
    assert utterance.window_frames(25 * rate) == 30 * 100
    assert utterance.window_frames(int(1.2 * rate), tail=0.0) == 2 * 100


@pytest.mark.parametrize("text, words", [("Yes.", ["yes"]), ("Five five.", ["5", "5"])])
def test_a_short_utterance_is_heard_once(text, words):
    """Encoded with one second of silence after it, whisper repeats a short utterance to fill the
    window ("5 5 5 5 5 5 5 5", "Yes. Yes."); the tail keeps it to what was said."""
    heard = utterance.decode(models.get_whisper(None), spoken(text), language="en", beam_size=5)
    assert normalise_words(heard.text) == words, heard


def test_a_sentence_is_heard_greedily_and_with_beam_search():
    audio = spoken("The quarterly budget review is scheduled for next Tuesday afternoon.")
    for beam in (1, 5):
        heard = utterance.decode(models.get_whisper(None), audio, language="en", beam_size=beam)
        assert {"budget", "tuesday"} <= set(normalise_words(heard.text)), heard
        assert heard.compression_ratio <= utterance.COMPRESSION_RATIO


def test_silence_is_known_for_silence():
    """Whisper makes "you" of silence; its no-speech probability says so (live transcription drops
    a text whose probability is 0.8 or more)."""
    heard = utterance.decode(models.get_whisper(None), np.zeros(2 * utterance.SAMPLE_RATE, np.float32),
                             language="en")
    assert heard.text == "" or heard.no_speech_prob >= 0.8, heard
