"""Per-channel transcription with the bundled model: echoes said once, no loops, no invented words,
words as people write them, raw channels read on their own clock."""

from __future__ import annotations

import numpy as np
import pytest

from support.speech import compose, echoed, require_espeak, say
from support.media import write_opus

pytestmark = pytest.mark.slow

#: Each sentence has a word no other one has: counting it counts the sentence.
SENTENCES = {
    "budget": "The quarterly budget review is scheduled for next Tuesday afternoon.",
    "slides": "Please send the slides to the marketing team before Friday.",
    "berlin": "The new office in Berlin opens in September.",
}


@pytest.fixture(scope="module")
def echo_channels(tmp_path_factory):
    """A mic saying three sentences and system audio carrying the same speech 1 s later."""
    require_espeak()
    d = tmp_path_factory.mktemp("echo")
    audio, placed = compose(list(SENTENCES.values()), gap=1.5, lead=1.0)
    mic = write_opus(d / "mic.webm", audio)
    system = write_opus(d / "system.webm", echoed(audio, 1.0))
    return mic, system, placed


def test_echoed_speech_on_two_channels_is_transcribed_once_per_sentence_and_labelled(echo_channels):
    from reeldb.index.channels import ChannelSource, transcribe_channels
    from reeldb.index.repeats import longest_run
    from reeldb.index.segments import index_segments, sentence_segments

    mic, system, placed = echo_channels
    sources = [ChannelSource("mic", mic, 0.0, "mic:default", "a-mic"),
               ChannelSource("system_audio", system, 0.0, "system_audio:default", "a-sys")]
    merged, own = transcribe_channels(sources)
    text = merged.text.lower()
    print(merged.text, [(w.channel, w.start, w.text) for w in merged.words])
    for key in SENTENCES:
        assert text.count(key) == 1, (key, merged.text)
    assert longest_run(merged.words, 4) <= 2
    assert all(s.channel in ("mic", "system_audio") for s in index_segments(merged.words))
    assert all(s.channel in ("mic", "system_audio") for s in sentence_segments(merged.words))
    assert merged.words == sorted(merged.words, key=lambda w: w.start)
    # the earlier version (the mic's) is the one kept, where it was said
    budget = next(w for w in merged.words if "budget" in w.text.lower())
    assert budget.channel == "mic" and placed[0].start - 0.5 < budget.start < placed[0].end
    assert [s["channel"] for s in merged.channels] == ["mic", "system_audio"]
    # each raw channel keeps its own transcript, echo and all, on its own clock
    assert set(own) == {"a-mic", "a-sys"}
    for key in SENTENCES:
        assert own["a-sys"].text.lower().count(key) == 1


def test_a_channel_placed_later_on_the_video_and_with_a_hole_keeps_its_times(tmp_path):
    """A raw channel starts 2 s into the video and has a 3 s pause (missing frames, not silence):
    its words land where they were said on the video's timeline."""
    from reeldb.index.channels import ChannelSource, transcribe_channels

    require_espeak()
    audio, placed = compose([SENTENCES["budget"], SENTENCES["berlin"]], gap=4.0, lead=0.5)
    pause = (placed[0].end + 0.5, placed[0].end + 3.5)
    path = write_opus(tmp_path / "sys.webm", audio, holes=[pause])
    merged, _ = transcribe_channels([ChannelSource("system_audio", path, 2.0)])
    berlin = next(w for w in merged.words if "berlin" in w.text.lower())
    office = next(w for w in merged.words if "office" in w.text.lower())
    print([(w.start, w.text) for w in merged.words])
    assert abs(office.start - (2.0 + placed[1].start)) < 1.0 and berlin.start > office.start
    assert {w.channel for w in merged.words} == {"system_audio"}


@pytest.mark.parametrize("batch_size", [8, 1])
def test_a_minute_of_silence_or_of_a_steady_tone_says_nothing(batch_size):
    from reeldb.index.transcribe import transcribe

    rate = 16000
    t = np.arange(60 * rate) / rate
    silence = np.zeros(60 * rate, np.float32)
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for audio in (silence, tone):
        assert transcribe(audio, batch_size=batch_size).words == []


def test_numbers_and_compounds_are_written_as_people_write_them():
    """tiny.en says "40,000" and "12%" in pieces (" 40" ",000", " 12" "%"); they come back whole."""
    from reeldb.index.transcribe import transcribe

    require_espeak()
    speech = say("We raised forty thousand dollars, twelve percent more than last year.")[::3]
    silence = np.zeros(16000, np.float32)
    tr = transcribe(np.concatenate([silence, speech, silence]))
    print([w.text for w in tr.words])
    assert "40,000" in tr.text and "12%" in tr.text
    assert " ,000" not in tr.text and " %" not in tr.text
