"""The live screen-text reader (``index/live_screen.py``) fed a screen recording's decoded frames as
the live hub would: a record per slide, in order; a typed line read again in its scene; a blinking
cursor never read; under load the newest picture read and the skipped ones counted; and the
records placed on an exported video's timeline (``server/live_seed.timeline_scenes``); an alert on
them fires once per occurrence (``server/live_indexes.still_shown``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import av
import numpy as np
import pytest
from support import screens

from reeldb.index.event_match import Hit, compile_prompt
from reeldb.index.live_screen import LiveScreenReader
from reeldb.server.live_indexes import Alert, still_shown
from reeldb.server.live_seed import timeline_scenes
from reeldb.server.rt_events import RtEvent

pytestmark = pytest.mark.fast

SIZE = (1280, 720)
T0 = 1_800_000_000.0  # the wall clock at the channel's first frame


@pytest.fixture(scope="module")
def deck(tmp_path_factory):
    path = tmp_path_factory.mktemp("deck") / "deck.ts"
    shows = [(3.0, screens.slide(SIZE, "Quarterly review", ["Revenue pipeline grew", "Kernel rollback plan"])),
             (3.0, screens.slide(SIZE, "Zanzibar roadmap", ["Telemetry gateway latency", "Firewall onboarding"])),
             (4.0, screens.terminal(SIZE, ["$ deploy cluster --region north", "migration tenant payload ok"],
                                    px=20, per_line=1.0))]
    cuts = screens.record(path, shows, SIZE, fps=10, gop_seconds=1.0, relayable=True)
    return path, cuts


def play(path, reader: LiveScreenReader, pace=None) -> None:
    """Decode the file and hand every frame to the reader, the clock following the frames."""
    async def run():
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                now[0] = T0 + float(frame.time)
                await reader.on_video("display:1", frame)
                await asyncio.sleep(0)
                if pace is not None:
                    await pace()
        await reader.flush()
        await reader.aclose()

    now = [T0]
    reader.clock = lambda: now[0]
    asyncio.run(run())


def test_each_slide_and_typed_line_is_read_once_as_it_settles(deck):
    path, cuts = deck
    records: list[dict] = []
    reader = LiveScreenReader(lambda channel, item: records.append(item))
    play(path, reader, pace=reader.drained)  # a reader that keeps up (decoding outruns real time)
    texts = [r["text"] for r in records]
    assert "Quarterly review" in texts[0] and "Zanzibar roadmap" in texts[1], texts
    assert "deploy cluster" in texts[2] and "migration" not in texts[2], texts
    assert "migration tenant payload ok" in texts[3], texts  # the typed line: the same scene read again
    assert [r["scene"] for r in records] == [0, 1, 2, 2]
    assert len(records) == 4 and reader.reads == 4  # the blinking cursor was never read
    # Each record starts where its picture began to change (a quarter second's sampling) and ends
    # at the frame read, after it settled; unix milliseconds.
    for record, cut in zip(records[1:3], cuts):
        assert record["start"] / 1000 - T0 == pytest.approx(cut, abs=0.3)
        assert record["end"] > record["start"]
    assert reader.dropped_frames == 0


def test_under_load_the_newest_picture_is_read_and_the_skipped_counted(deck):
    path, _ = deck
    records: list[dict] = []
    gate = threading.Event()
    slow = concurrent.futures.ThreadPoolExecutor(1)
    slow.submit(gate.wait)  # the read thread is busy until the whole deck has gone by
    reader = LiveScreenReader(lambda channel, item: records.append(item), executor=slow)

    async def release_at_the_end():
        if reader.clock() - T0 > 9.5:
            gate.set()

    play(path, reader, pace=release_at_the_end)
    slow.shutdown()
    # The first slide was in the read queue; the second waited and was replaced by the terminal's
    # pictures; only the newest was read after the first.
    assert reader.dropped_frames >= 1
    assert "Quarterly review" in records[0]["text"] and "payload" in records[-1]["text"]
    assert not any("Zanzibar" in r["text"] for r in records)


def test_records_become_an_exported_videos_scenes():
    t = T0 + 100
    records = [{"start": t, "end": t + 1, "text": "Agenda\nUpdates", "scene": 0},
               {"start": t + 4, "end": t + 5, "text": "$ deploy", "scene": 1},
               {"start": t + 5, "end": t + 6, "text": "$ deploy\nok", "scene": 1},
               {"start": t + 9, "end": t + 10, "text": "Thanks", "scene": 2}]
    scenes = timeline_scenes(records, origin=T0 + 98, length=20)
    assert [(s.start, s.end, s.text) for s in scenes] == [
        (2, 6, "Agenda\nUpdates"), (6, 11, "$ deploy\nok"), (11, 20, "Thanks")]
    # Before the video's start or past its end: clamped, and a scene of no length is dropped.
    late = timeline_scenes([{"start": T0, "end": T0 + 1, "text": "x", "scene": 0},
                            {"start": T0 + 500, "end": T0 + 501, "text": "y", "scene": 1}], origin=T0 + 10, length=5)
    assert [(s.start, s.end, s.text) for s in late] == [(0, 5, "x")]


def test_a_screen_alert_fires_once_per_occurrence():
    def alert(prompt: str) -> Alert:
        matcher = compile_prompt(prompt, lambda texts: np.ones((len(texts), 2)) / 2 ** 0.5)
        return Alert("alert-1", RtEvent("event-1", prompt, "x", 0.0), matcher, "", None, "key-1")

    phrase = alert('"zanzibar"')
    hit = Hit(1.0, "Zanzibar")
    # The slide read again (a scroll, a typed line): the record before showed it too.
    assert still_shown(phrase, hit, 3, "Zanzibar expansion\nHiring")
    # The slide after another one: a new occurrence.
    assert not still_shown(phrase, hit, 5, "Closing remarks")
    prose = alert("a place in east africa")
    prose.fired_scene = 3
    assert still_shown(prose, Hit(0.4, "..."), 3, "") and not still_shown(prose, Hit(0.4, "..."), 4, "")
