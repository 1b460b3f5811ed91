"""Whisper's word pieces joined as whisper means them (pure), and old rows repaired on read."""

from __future__ import annotations

import json

from reeldb.index import store
from reeldb.index.segments import sentence_segments, transcript_response
from reeldb.index.transcribe import Transcript
from reeldb.index.words import Piece, Word, join_pieces, rejoin_legacy


def pieces(*texts: str, step: float = 0.3) -> list[Piece]:
    return [Piece(round(i * step, 3), round(i * step + 0.25, 3), t) for i, t in enumerate(texts)]


def test_pieces_without_a_leading_space_attach_to_the_word_before():
    # the shapes faster-whisper gives (split_tokens_on_spaces + merge_punctuations)
    got = join_pieces(pieces(" We", " raised", " 40", ",000", " dollars,", " 12", "%", " more", " than", " the",
                             " cold", "-hearted", " and", " ill", "-disposed", " said,", " $3", ".5M", " by", " 3",
                             ":30", " pm."))
    assert " ".join(w.text for w in got) == ("We raised 40,000 dollars, 12% more than the cold-hearted and "
                                             "ill-disposed said, $3.5M by 3:30 pm.")
    forty = got[2]
    assert forty.text == "40,000" and forty.start == 0.6 and forty.end == 0.9 + 0.25  # first start, last end


def test_first_piece_starts_a_word_and_blank_pieces_vanish():
    got = join_pieces(pieces("Hello", " ", " world", "."), channel="mic")
    assert [w.text for w in got] == ["Hello", "world."]
    assert {w.channel for w in got} == {"mic"}


def test_legacy_rows_rejoin_continuation_pieces_only():
    old = [Word(0, 1, t) for t in ["40", ",000", "and", "12", "%", "cold", "-hearted", "-", "dash", "Yes.", "Okay."]]
    assert [w.text for w in rejoin_legacy(old)] == ["40,000", "and", "12%", "cold-hearted", "-", "dash", "Yes.",
                                                    "Okay."]


def test_old_transcript_rows_are_read_as_whole_words(db):
    """A row written before format 2 (pieces stored with their spaces stripped) reads joined; a new
    row is stored whole, with each word's channel."""
    db.execute("INSERT INTO transcripts (asset_id, language, duration, model, text, words, created_at) "
               "VALUES ('m-old', 'en', 2, 'x', '40 ,000 people', ?, 0)",
               [json.dumps([[0, 0.3, "40"], [0.3, 0.5, ",000"], [0.6, 1, "people"]])])
    old = store.get_transcript(db, "m-old")
    assert old.text == "40,000 people" and old.words[0] == Word(0, 0.5, "40,000")
    new = Transcript([Word(0, 0.5, "12%", "mic"), Word(1, 1.5, "Sure.", "system_audio")], duration=2,
                     channels=[{"channel": "mic", "offset": 0.0}])
    store.save_transcript(db, "m-new", new)
    back = store.get_transcript(db, "m-new")
    assert back.words == new.words and back.channels == new.channels and back.text == "12% Sure."


def test_transcript_shape_keeps_videodb_fields_and_adds_the_channel():
    ws = [Word(0.0, 0.4, "Hello", "mic"), Word(0.4, 0.8, "there.", "mic"), Word(0.5, 0.9, "Hi.", "system_audio")]
    body = transcript_response(ws, segmenter="sentence")
    assert body["word_timestamps"] == [{"start": 0.0, "end": 0.8, "text": "Hello there.", "channel": "mic"},
                                       {"start": 0.5, "end": 0.9, "text": "Hi.", "channel": "system_audio"}]
    words = transcript_response(ws, segmenter="word")["word_timestamps"]
    assert [w["channel"] for w in words] == ["mic", "mic", "system_audio"]
    timed = transcript_response(ws, segmenter="time", length=5)["word_timestamps"]
    assert [(t["text"], t["channel"]) for t in timed] == [("Hello there.", "mic"), ("Hi.", "system_audio")]
    # sentences never interleave two channels talking over each other
    over = [Word(0, 0.3, "One", "mic"), Word(0.2, 0.4, "Other", "system_audio"), Word(0.4, 0.7, "two.", "mic")]
    assert [s.text for s in sentence_segments(over)] == ["One two.", "Other"]


def test_captions_name_who_spoke_and_uploads_stay_as_they_were():
    from reeldb.player.captions import webvtt

    vtt = webvtt([{"start": 0.0, "end": 1.0, "text": "We raised 40,000.", "channel": "mic"},
                  {"start": 1.0, "end": 2.0, "text": "A <b> & c", "channel": "system_audio"},
                  {"start": 2.0, "end": 3.0, "text": "No label."}])
    cues = vtt.split("\n\n")
    assert cues[1].endswith("<v Mic>Mic: We raised 40,000.</v>")
    assert cues[2].endswith("<v System audio>System audio: A &lt;b&gt; &amp; c</v>")
    assert cues[3].strip().endswith("\nNo label.")
