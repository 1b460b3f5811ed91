"""Transcription of synthetic speech: accuracy over two meetings, timing, video input, progress."""

from __future__ import annotations

import pytest

from support.speech import MEETING_A, MEETING_B, compose, wer
from support.media import write_video

pytestmark = pytest.mark.slow

#: Bound on word error rate for espeak-ng speech with bundled tiny.en (beam 5). Measured ~0.02–0.05
#: on these sentences; espeak's robotic voice is harder than a person, so this is pessimistic.
WER_BOUND = 0.15


def test_word_error_rate(transcripts):
    for key, sents in (("a", MEETING_A), ("b", MEETING_B)):
        err = wer(" ".join(sents), transcripts[key].text)
        print(f"WER asset {key}: {err:.3f}  hyp={transcripts[key].text!r}")
        assert err <= WER_BOUND


def test_sentences_land_where_placed(spoken, transcripts):
    from reeldb.index.segments import index_segments

    for key in ("a", "b"):
        segs = index_segments(transcripts[key].words)
        _, placed = spoken[key]
        assert len(segs) == len(placed)
        for seg, p in zip(segs, placed):
            print(f"{p.start:6.2f}-{p.end:6.2f} vs {seg.start:6.2f}-{seg.end:6.2f} {seg.text}")
            assert abs(seg.start - p.start) <= 1.0 and abs(seg.end - p.end) <= 1.0


def test_video_file_and_progress(tmp_path):
    from reeldb.index.transcribe import transcribe

    sents = ["Video files carry their speech in an audio track."]
    audio, placed = compose(sents, lead=0.5, gap=0.5)
    path = write_video(tmp_path / "v.mp4", audio)
    seen: list[float] = []
    tr = transcribe(path, seen.append)
    # it heard words, inside the speech (how well: tests/bench/asr_quality.py scores this sentence)
    assert tr.text.strip() and tr.words
    assert all(placed[0].start - 0.5 <= w.start <= w.end <= placed[0].end + 0.5 for w in tr.words), tr.words
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert abs(tr.duration - len(audio) / 48000) < 0.1


def test_unreadable_media(tmp_path):
    from reeldb.index.transcribe import TranscribeError, transcribe

    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not media")
    with pytest.raises(TranscribeError):
        transcribe(bad)
    with pytest.raises(TranscribeError):
        transcribe(tmp_path / "missing.wav")
