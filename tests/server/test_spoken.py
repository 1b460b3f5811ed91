"""Transcripts, spoken-word indexing and search through the official SDK, on espeak-ng speech."""

from __future__ import annotations

import av
import pytest
import requests
from support.speech import MEETING_A, MEETING_B, compose, require_espeak
from support.media import write_video, write_wav
from videodb.exceptions import InvalidRequestError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def speech_files(tmp_path_factory):
    require_espeak()
    d = tmp_path_factory.mktemp("speech")
    audio_a, placed_a = compose(MEETING_A, gap=1.5, lead=1.0)
    audio_b, placed_b = compose(MEETING_B, gap=1.5, lead=1.0)
    return {"a": (write_video(d / "meeting_a.mp4", audio_a), placed_a),
            "b": (write_video(d / "meeting_b.mp4", audio_b), placed_b),
            "b_wav": (write_wav(d / "meeting_b.wav", audio_b), placed_b)}


def test_index_then_search_like_the_seed(conn, speech_files):
    path, placed = speech_files["a"]
    coll = conn.get_collection()
    video = coll.upload(file_path=str(path))
    with pytest.raises(InvalidRequestError, match="not indexed yet: call index_spoken_words"):
        video.search("budget discussion")
    video.index_spoken_words()
    with pytest.raises(InvalidRequestError, match="Spoken word index for video already exists"):
        video.index_spoken_words()  # VideoDB's own words: client code matches on them
    video.index_spoken_words(force=True)

    results = video.search("budget discussion")
    assert results.shots, "the seed's query finds its sentence"
    top = results.shots[0]
    assert "budget" in top.text.lower()
    budget = placed[0]
    assert abs(top.start - budget.start) < 1.0 and abs(top.end - budget.end) < 1.0
    assert top.video_id == video.id and top.search_score > 0
    # The shot's stream plays that span of the video, cut from the existing segments.
    with av.open(top.stream_url) as clip:
        assert clip.duration / 1e6 >= top.end - top.start - 0.1
    assert "/watch?v=" in top.player_url and requests.get(top.player_url).status_code == 200

    # A paraphrase with no word in common with the sentence about Berlin.
    paraphrase = video.search("opening a workplace in Germany")
    assert "berlin" in paraphrase.shots[0].text.lower()
    # Keyword search (legacy route) finds exact words only.
    keyword = video.search("migration", search_type="keyword")
    assert [s.text.lower().count("migration") > 0 for s in keyword.shots] == [True]
    with pytest.raises(InvalidRequestError, match="No results found"):  # VideoDB's legacy route says so
        video.search("zebra", search_type="keyword")


def test_transcripts_in_every_segmentation(conn, speech_files):
    path, placed = speech_files["a"]
    video = conn.upload(file_path=str(path))
    words = video.get_transcript()  # transcribes on first use, as VideoDB does
    assert len(words) > 20 and {"start", "end", "text"} <= set(words[0])
    text = video.get_transcript_text()
    assert "budget" in text.lower() and "berlin" in text.lower()
    sentences = video.get_transcript(segmenter="sentence")
    assert 3 <= len(sentences) <= 6
    windows = video.get_transcript(segmenter="time", length=5)
    assert all(w["end"] - w["start"] <= 5.01 for w in windows)
    part = video.get_transcript(start=0, end=int(placed[1].start))
    assert part and all(w["start"] < placed[1].start for w in part)
    assert video.generate_transcript() == {"success": True, "message": "Transcript generated successfully"}
    with pytest.raises(ValueError):
        video.get_transcript(segmenter="paragraph")  # refused by the SDK itself
    with pytest.raises(InvalidRequestError, match="segmenter must be one of"):
        conn.get(f"video/{video.id}/transcription", params={"segmenter": "paragraph"})


def test_audio_assets_have_transcripts(conn, speech_files):
    path, _ = speech_files["b_wav"]
    audio = conn.upload(file_path=str(path))
    assert audio.id.startswith("a-")
    assert "tomato" in audio.get_transcript_text().lower()


def test_collection_search_ranks_across_videos(conn, speech_files):
    coll = conn.create_collection(name="two meetings", description="")
    a = coll.upload(file_path=str(speech_files["a"][0]))
    b = coll.upload(file_path=str(speech_files["b"][0]))
    with pytest.raises(InvalidRequestError, match="No video in this collection"):
        coll.search("bread")
    a.index_spoken_words()
    b.index_spoken_words()
    garden = coll.search("caring for vegetables at dawn")
    assert garden.shots[0].video_id == b.id and "tomato" in garden.shots[0].text.lower()
    finance = coll.search("money planning meeting for the quarter")
    assert finance.shots[0].video_id == a.id
    assert {s.video_id for s in coll.search("water", result_threshold=10).shots} >= {b.id}
    # Keyword search across the collection (the SDK's KeywordSearch refuses it client-side; the
    # legacy route answers it as v2 does): exact words only, from whichever video has them.
    keyword = conn.post(f"collection/{coll.id}/search", data={"query": "tomato", "search_type": "keyword"})
    assert keyword["results"] and {r["video_id"] for r in keyword["results"]} == {b.id}
    assert all("tomato" in d["text"].lower() for r in keyword["results"] for d in r["docs"])
    few = a.search("the", result_threshold=1, score_threshold=0.0)
    assert len(few.shots) == 1


def test_the_player_reads_captions_transcript_and_search_beside_the_stream(conn, speech_files):
    """What /watch loads with the stream's own signed link: no API key in a public page."""
    path, placed = speech_files["a"]
    video = conn.get_collection().upload(file_path=str(path))
    base = video.stream_url.rsplit("/", 1)[0]
    assert requests.get(f"{base}/captions.vtt").status_code == 404  # not indexed yet
    assert requests.get(f"{base}/info.json").json()["captions"] is False
    video.index_spoken_words()

    info = requests.get(f"{base}/info.json").json()
    assert info["captions"] is True and info["poster"] == "poster.jpg" and abs(info["length"] - video.length) < 0.1
    vtt = requests.get(f"{base}/captions.vtt")
    assert vtt.headers["content-type"].startswith("text/vtt") and vtt.text.startswith("WEBVTT")
    assert "budget" in vtt.text.lower() and " --> " in vtt.text
    segments = requests.get(f"{base}/transcript.json").json()["segments"]
    budget = next(s for s in segments if "budget" in s["text"].lower())
    assert abs(budget["start"] - placed[0].start) < 1.0
    hits = requests.get(f"{base}/search", params={"q": "opening a workplace in Germany"}).json()["results"]
    assert hits and "berlin" in hits[0]["text"].lower()
    assert requests.get(f"{base}/search").status_code == 400
    forged = base.rsplit("/", 1)[0] + "/m-z-forged.1.x"
    assert requests.get(f"{forged}/transcript.json").status_code == 404


def test_an_indexed_video_has_a_webvtt_subtitle_rendition(conn, speech_files):
    """Soft captions beside the stream (``subtitled.m3u8``); ``add_subtitle()`` burns them in
    (tests/server/test_editor_legacy.py)."""
    path, placed = speech_files["a"]
    video = conn.get_collection().upload(file_path=str(path))
    with pytest.raises(InvalidRequestError, match="not indexed yet"):
        video.add_subtitle()
    video.index_spoken_words()
    url = video.stream_url.rsplit("/", 1)[0] + "/subtitled.m3u8"
    master = requests.get(url).text
    assert "#EXT-X-MEDIA:TYPE=SUBTITLES" in master and 'SUBTITLES="subs"' in master
    base = url.rsplit("/", 1)[0]
    subtitles = requests.get(f"{base}/subtitles.m3u8").text
    vtt = requests.get(f"{base}/{subtitles.split()[-2]}").text
    assert vtt.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:") and "budget" in vtt.lower()
    with av.open(url) as container:  # the video still plays through the master playlist, not re-encoded
        assert container.streams.video and next(container.decode(video=0)) is not None
