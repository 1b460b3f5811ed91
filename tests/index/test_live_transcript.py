"""Live transcription fed frame by frame, as the capture LiveHub would."""

from __future__ import annotations

import asyncio
import time

import pytest

from support.speech import compose, frames, wer

pytestmark = pytest.mark.slow


def run_live(audio, *, realtime: bool, **kw):
    from reeldb.index.live import LiveTranscriber

    events = []

    async def main():
        t0 = time.time()
        sim = {"t": t0}
        # The transcriber's clock is the simulated capture clock: the time at which each frame's
        # audio would have been captured, advanced frame by frame (or the wall clock in real time).
        clock = time.time if realtime else (lambda: sim["t"] + (time.time() - sim["w"]))
        emitted_at = []

        async def emit(ch, ev):
            events.append((ch, ev))
            emitted_at.append(clock())

        lt = LiveTranscriber(emit, clock=clock, **kw)
        sim["w"] = time.time()
        for i, f in enumerate(frames(audio)):
            if realtime:
                await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.time()))
            else:
                sim["t"], sim["w"] = t0 + (i + 1) * 0.02, time.time()
                if i % 10 == 0:
                    await asyncio.sleep(0)  # let the worker run, like a loop between packets
            await lt.on_audio("mic", f)
        await lt.flush()
        await lt.aclose()
        return lt

    lt = asyncio.run(main())
    return events, lt


def test_live_final_text_and_latency():
    sents = ["Please send the slides to the marketing team before Friday.",
             "The new office in Berlin opens in September."]
    audio, placed = compose(sents, gap=2.0, lead=1.0)
    events, lt = run_live(audio, realtime=True)
    finals = [ev for _, ev in events if ev["is_final"]]
    interims = [ev for _, ev in events if not ev["is_final"]]
    print("events", events)
    print("final latencies (s, after end of utterance audio):", [round(x, 2) for x in lt.final_latencies])
    assert len(finals) == 2
    for ev, p in zip(finals, placed):
        assert wer(p.text, ev["text"]) <= 0.3  # tiny.en on one short utterance
        assert set(ev) == {"text", "is_final", "start", "end"}
        assert ev["start"] < ev["end"] and isinstance(ev["start"], int)
    # times on the (wall) clock: each final spans its sentence to within half a second
    t0 = finals[0]["start"] / 1000 - (placed[0].start - 0.2)
    for ev, p in zip(finals, placed):
        assert abs(ev["start"] / 1000 - t0 - p.start) < 0.5
    # Each final comes after its utterance ended (how soon is a speed figure: tests/bench/index.py).
    assert len(lt.final_latencies) == 2 and all(x > 0 for x in lt.final_latencies)
    assert interims, "interim text is emitted while the sentence is being spoken"


def test_live_faster_than_realtime_and_silence():
    import numpy as np

    audio, placed = compose(["Remember to water the tomato plants in the greenhouse."], gap=1.0, lead=0.5)
    noise = np.random.default_rng(0).normal(0, 0.002, 48000 * 3).astype(np.float32)
    events, lt = run_live(np.concatenate([noise, audio]), realtime=False, interim=False)
    finals = [ev for _, ev in events if ev["is_final"]]
    assert len(finals) == 1 and wer(placed[0].text, finals[0]["text"]) <= 0.3


def test_is_a_capture_live_consumer():
    from reeldb.capture.live import AudioConsumer
    from reeldb.index.live import LiveTranscriber

    assert isinstance(LiveTranscriber(lambda ch, ev: None), AudioConsumer)


def test_a_transcriber_that_falls_behind_keeps_a_bounded_backlog_of_the_newest_speech():
    """Decoding held up (a machine that cannot keep up): the oldest waiting finals are dropped
    once ``max_backlog`` seconds of speech wait; what is kept is the newest speech, transcribed."""
    import concurrent.futures
    import threading

    from reeldb.index.live import LiveTranscriber

    sents = ["Please send the slides to the marketing team before Friday.",
             "The new office in Berlin opens in September.",
             "Remember to water the tomato plants in the greenhouse.",
             "Our quarterly budget review moved to next Tuesday.",
             "The train to Amsterdam leaves from platform seven."]
    audio, placed = compose(sents, gap=1.5, lead=0.5)
    spoken = sum(p.end - p.start for p in placed)
    release = threading.Event()
    events = []

    async def main():
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        pool.submit(release.wait)  # the only decoder thread is busy until released

        async def emit(ch, ev):
            events.append(ev)

        lt = LiveTranscriber(emit, executor=pool, interim=False, max_backlog=8.0)
        for i, f in enumerate(frames(audio)):
            if i % 10 == 0:
                await asyncio.sleep(0)
            await lt.on_audio("mic", f)
        backlog = lt._streams["mic"].pending
        release.set()
        await lt.flush()
        await lt.aclose()
        pool.shutdown()
        return lt, backlog

    lt, backlog = asyncio.run(main())
    assert backlog <= 8.0
    assert lt.dropped_seconds >= spoken - 8.0 - 3.0  # all but the backlog's worth (+ the final in hand)
    finals = [ev for ev in events if ev["is_final"]]
    assert 1 <= len(finals) < len(sents)
    assert wer(placed[-1].text, finals[-1]["text"]) <= 0.3  # the newest sentence survived, transcribed
