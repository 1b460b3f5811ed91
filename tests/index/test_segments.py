"""Segmenters (pure): the shapes the SDK reads back, and sentence units for indexing."""

from __future__ import annotations

import pytest

from reeldb.index.segments import index_segments, sentence_segments, time_segments, transcript_response
from reeldb.index.transcribe import Word


def words_of(text: str, start: float = 0.0, step: float = 0.3, gaps: dict[int, float] | None = None) -> list[Word]:
    out, t = [], start
    for i, w in enumerate(text.split()):
        t += (gaps or {}).get(i, 0.0)
        out.append(Word(round(t, 3), round(t + step * 0.8, 3), w))
        t += step
    return out


def test_word_segmenter_shape_and_clip():
    ws = words_of("Hello there. How are you?")
    body = transcript_response(ws, start=0.3, end=0.9, segmenter="word")
    assert set(body) == {"word_timestamps", "text"}
    assert [d["text"] for d in body["word_timestamps"]] == ["there.", "How"]
    assert all(set(d) == {"start", "end", "text"} for d in body["word_timestamps"])
    assert body["text"] == "there. How"


def test_sentence_segmenter_splits_on_punctuation_and_pauses():
    ws = words_of("Hello there. How are you? fine thanks", gaps={5: 1.5})
    segs = sentence_segments(ws)
    assert [s.text for s in segs] == ["Hello there.", "How are you?", "fine thanks"]
    assert segs[1].start == ws[2].start and segs[1].end == ws[4].end


def test_abbreviation_does_not_end_sentence():
    assert len(sentence_segments(words_of("I met Dr. Smith today."))) == 1


def test_time_segmenter_windows():
    ws = words_of("a b c d e f g h", step=0.5)  # 4 s of words
    segs = time_segments(ws, 2)
    assert [(s.start, s.end) for s in segs] == [(0.0, 2.0), (2.0, 4.0)]
    assert segs[0].text == "a b c d"
    body = transcript_response(ws, segmenter="time", length=2)
    assert len(body["word_timestamps"]) == 2


@pytest.mark.parametrize("kwargs", [dict(segmenter="para"), dict(segmenter="time", length=0), dict(start=5, end=1)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        transcript_response(words_of("a b"), **kwargs)


def test_sdk_reads_our_transcript_shape():
    """video.get_transcript returns exactly our word_timestamps list."""
    from videodb.video import Video

    ws = words_of("Hello there. How are you?")

    class Conn:
        def get(self, path, params=None, show_progress=False):
            assert path.endswith("/transcription")
            return transcript_response(ws, params["start"], params["end"], params["segmenter"], params["length"])

    v = Video(Conn(), id="m-1", collection_id="c-1")
    got = v.get_transcript(segmenter="sentence")
    assert got == [{"start": 0.0, "end": 0.54, "text": "Hello there."}, {"start": 0.6, "end": 1.44, "text": "How are you?"}]
    assert v.transcript_text == "Hello there. How are you?"


def test_index_segments_merge_short_and_cap_long():
    ws = words_of("Yes. Okay. We should ship the release on Monday morning.")
    segs = index_segments(ws)
    assert [s.text for s in segs] == ["Yes. Okay. We should ship the release on Monday morning."]
    long = words_of(" ".join(f"w{i}," if i == 29 else f"w{i}" for i in range(60)) + ".")
    parts = index_segments(long, max_words=40)
    assert len(parts) == 2 and parts[0].text.endswith("w29,")
    assert all(p.end - p.start <= 15.0 for p in parts)


def test_index_segments_short_sentence_far_from_others_stays():
    ws = words_of("Hello. Now the real agenda starts here today.", gaps={1: 5.0})
    segs = index_segments(ws)
    assert [s.text for s in segs] == ["Hello.", "Now the real agenda starts here today."]
