"""The repeated-phrase guard and the echo rule of per-channel merging (pure)."""

from __future__ import annotations

from reeldb.index.echoes import drop_echoes, merge_channels
from reeldb.index.repeats import collapse_repeats, longest_run
from reeldb.index.words import Word


def words_of(text: str, start: float = 0.0, step: float = 0.3) -> list[Word]:
    return [Word(round(start + i * step, 3), round(start + i * step + 0.25, 3), t) for i, t in enumerate(text.split())]


def text(ws) -> str:
    return " ".join(w.text for w in ws)


def test_a_looped_phrase_becomes_its_first_copy():
    loop = words_of("We ship by May 4th, " + "May 4th, " * 50 + "then rest.")
    out = collapse_repeats(loop)
    assert text(out) == "We ship by May 4th, then rest."
    assert out[3] == loop[3]  # the kept copy keeps its timing
    assert longest_run(out, 2) == 1 and longest_run(loop, 2) == 51


def test_twice_is_speech_three_times_is_a_loop():
    assert text(collapse_repeats(words_of("no no way, very very good"))) == "no no way, very very good"
    assert text(collapse_repeats(words_of("thank you. thank you. thank you. bye"))) == "thank you. bye"
    assert text(collapse_repeats(words_of("a b c a b c a b c d"))) == "a b c d"
    assert collapse_repeats([]) == []


def test_echo_on_the_other_channel_is_said_once_keeping_the_earlier():
    said = "Please send the slides to the marketing team before Friday."
    mic = words_of(said, start=1.0)
    echo = words_of(said, start=2.0)  # the same words 1 s later on system audio
    reply = words_of("Sure, I will do that today.", start=6.0)
    merged = merge_channels({"mic": mic, "system_audio": echo + reply})
    assert text(merged) == said + " Sure, I will do that today."
    assert [w.channel for w in merged] == ["mic"] * len(mic) + ["system_audio"] * len(reply)
    # the echo may come first on either channel: the earlier version is kept
    merged = merge_channels({"mic": words_of(said, start=2.0), "system_audio": words_of(said, start=1.0)})
    assert {w.channel for w in merged} == {"system_audio"} and text(merged) == said


def test_an_imperfect_echo_still_matches_but_far_or_different_speech_stays():
    mic = words_of("The new office in Berlin opens in September.", start=0.0)
    heard = words_of("The new office in Berlin opened September.", start=0.9)  # whisper heard it slightly differently
    assert drop_echoes({"mic": mic, "system_audio": heard})["system_audio"] == []
    later = words_of("The new office in Berlin opens in September.", start=8.0)  # said again, later: not an echo
    assert len(drop_echoes({"mic": mic, "system_audio": later})["system_audio"]) == len(later)
    other = words_of("Our cat knocked a glass off the table.", start=0.5)
    assert len(drop_echoes({"mic": mic, "system_audio": other})["system_audio"]) == len(other)


def test_simultaneous_versions_keep_the_louder_channel_then_the_mic():
    a, b = words_of("Budget review on Tuesday.", 1.0), words_of("Budget review on Tuesday.", 1.05)
    kept = drop_echoes({"mic": a, "system_audio": b}, {"mic": -30.0, "system_audio": -20.0})
    assert kept["mic"] == [] and kept["system_audio"] == b
    kept = drop_echoes({"mic": a, "system_audio": b})
    assert kept["mic"] == a and kept["system_audio"] == []


def test_one_channel_is_only_labelled():
    ws = words_of("Hello there.")
    assert merge_channels({"mic": ws}) == [w._replace(channel="mic") for w in ws]


def test_an_echo_running_into_the_channels_own_next_sentence_drops_only_the_echo():
    """The mic hears the other side's sentence and its person starts talking as it ends, with no
    pause or full stop between: the echoed words go, the mic's own sentence stays."""
    theirs = words_of("Our database migration failed because a column was missing.", start=20.0)
    mine = words_of("Our database migration failed because a column was missing the quarterly budget review "
                    "is scheduled for next Tuesday afternoon.", start=21.0)
    kept = drop_echoes({"mic": mine, "system_audio": theirs})
    assert text(kept["mic"]) == "the quarterly budget review is scheduled for next Tuesday afternoon."
    assert kept["system_audio"] == theirs
