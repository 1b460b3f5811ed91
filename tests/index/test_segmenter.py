"""Live transcript finals into index records (``index/segmenter.py``): word, sentence and time."""

from __future__ import annotations

import pytest

from reeldb.index.segmenter import Segmenter, timeline_words

pytestmark = pytest.mark.fast

T0 = 1_760_000_000.0
FINALS = [
    {"start": T0 + 1, "end": T0 + 4, "text": "The quarterly budget review is scheduled for next Tuesday afternoon."},
    {"start": T0 + 5, "end": T0 + 8, "text": "Our database migration failed because"},
    {"start": T0 + 8.5, "end": T0 + 9.5, "text": "a column was missing."},
    {"start": T0 + 30, "end": T0 + 33, "text": "Please send the slides to the marketing team before Friday."},
]


def run(kind: str, value: float) -> list[dict]:
    seg = Segmenter(kind, value)
    out = [r for f in FINALS for r in seg.push(f)]
    return out + seg.flush()


def test_words_make_records_of_n_words_and_nothing_is_lost():
    records = run("word", 5)
    assert all(len(r["text"].split()) == 5 for r in records[:-1])
    assert " ".join(r["text"] for r in records) == " ".join(f["text"] for f in FINALS)
    for r in records:  # spans stay inside the speech, in order
        assert T0 + 1 <= r["start"] < r["end"] <= T0 + 33
    assert all(a["end"] <= b["start"] + 1e-9 for a, b in zip(records, records[1:]))


def test_sentences_join_finals_until_the_sentence_ends():
    records = run("sentence", 1)
    assert [r["text"] for r in records] == [
        FINALS[0]["text"], "Our database migration failed because a column was missing.", FINALS[3]["text"]]
    assert records[1]["start"] == T0 + 5 and records[1]["end"] == T0 + 9.5
    assert [r["text"].count(".") for r in run("sentence", 2)] == [2, 1]


def test_time_windows_close_when_speech_moves_past_them():
    seg = Segmenter("time", 10)
    assert seg.push(FINALS[0]) == [] and seg.push(FINALS[1]) == [] and seg.push(FINALS[2]) == []
    closed = seg.push(FINALS[3])  # starts 29 s later: the first window is done
    assert len(closed) == 1 and closed[0]["end"] == T0 + 9.5 and "missing." in closed[0]["text"]
    assert [r["text"] for r in seg.flush()] == [FINALS[3]["text"]]
    assert seg.flush() == []


@pytest.mark.parametrize("kind,value", [("paragraph", 1), ("word", 0), ("word", 2.5), ("time", 10_000)])
def test_bad_segmenters_are_refused(kind, value):
    with pytest.raises(ValueError):
        Segmenter(kind, value)


def test_timeline_words_move_finals_onto_the_recording_and_cut_to_it():
    """An early index's words (server/live_seed.py): unix seconds onto the video's timeline,
    labelled with their channel, and only what the recording holds."""
    finals = [{"start": 1000.0, "end": 1002.0, "text": "before the start"},
              {"start": 1009.0, "end": 1011.0, "text": "across the start"},
              {"start": 1020.0, "end": 1021.0, "text": "inside"},
              {"start": 1029.5, "end": 1031.5, "text": "across the end"},
              {"start": 1040.0, "end": 1041.0, "text": "after"}]
    words = timeline_words(finals, zero=1010.0, length=20.0, channel="mic")
    assert [w.text for w in words] == ["the", "start", "inside", "across"]
    assert all(w.channel == "mic" and 0.0 <= w.start <= w.end <= 20.0 for w in words)
    assert words[2].start == 10.0 and words[2].end == 11.0
    assert timeline_words([], 0.0, 10.0) == []
