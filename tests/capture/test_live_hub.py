"""capture.live: decoded audio for live consumers, only while someone listens."""

import asyncio
import math

import av
import numpy as np
import pytest

from support.caploop import publish
from support.media import tone
from reeldb.capture.ingest import IngestSession
from reeldb.capture.live import BoundedAudioQueue, LiveError, LiveHub, RmsMeter, frame_samples
from reeldb.capture.sources import ToneTrack


def s16_frame(samples: np.ndarray) -> av.AudioFrame:
    data = (samples * 32767).astype(np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
    frame.sample_rate = 48000
    return frame


def test_rms_meter_reads_a_sine():
    meter = RmsMeter()
    x = tone(0.5, 440, amplitude=0.5)
    for i in range(0, len(x), 960):
        asyncio.run(meter.on_audio("mic:default", s16_frame(x[i:i + 960])))
    assert meter.rms == pytest.approx(0.5 / math.sqrt(2), rel=0.01)
    assert meter.dbfs == pytest.approx(-9.03, abs=0.1)
    assert meter.peak == pytest.approx(0.5, abs=0.01)
    assert RmsMeter().dbfs == float("-inf")


def test_frame_samples_planar_float():
    frame = av.AudioFrame.from_ndarray(np.full((2, 480), 0.25, dtype=np.float32), format="fltp", layout="stereo")
    assert frame_samples(frame).shape == (2, 480) and float(frame_samples(frame).max()) == 0.25


def test_bounded_queue_drops_oldest():
    async def main():
        q = BoundedAudioQueue(maxsize=3)
        frames = [s16_frame(np.zeros((960, 2))) for _ in range(5)]
        for f in frames:
            await q.on_audio("mic:default", f)
        got = [await q.get() for _ in range(3)]
        return q, frames, got

    q, frames, got = asyncio.run(main())
    assert q.dropped == 2 and len(q) == 0
    assert [f for _, f in got] == frames[2:]


def test_attach_rejects_non_consumers():
    with pytest.raises(LiveError):
        LiveHub().attach("mic:default", object())


@pytest.mark.slow
def test_meter_on_ephemeral_channel_and_no_decode_without_consumer(tmp_path):
    """A level meter on an ephemeral mic sees the tone; an unconsumed channel is never decoded."""
    async def main():
        session = IngestSession(tmp_path, "cap-live", [
            {"channel_id": "mic:default", "kind": "audio", "store": False},
            {"channel_id": "system_audio:default", "kind": "audio", "store": False},
        ])
        meter = RmsMeter()
        detach = session.live.attach("mic:default", meter)  # before the track exists
        pc = await publish(session, {"mic:default": ToneTrack(440, amplitude=0.5),
                                     "system_audio:default": ToneTrack(880, amplitude=0.5)})
        await asyncio.sleep(2.0)
        decoding = (session.live.is_decoding("mic:default"), session.live.is_decoding("system_audio:default"))
        other = session._channels["system_audio:default"].tap
        backlog = other.receiver.track._queue.qsize()
        other_frames = other.frames
        frames_before = meter.frames
        detach()
        stopped = session.live.is_decoding("mic:default")
        await asyncio.sleep(0.5)
        frames_after = meter.frames
        await pc.close()
        await session.close()
        return meter, decoding, backlog, other_frames, frames_before, frames_after, stopped

    meter, decoding, backlog, other_frames, before, after, stopped = asyncio.run(main())
    assert decoding == (True, False)
    assert other_frames > 50 and backlog == 0  # received, tapped, never decoded or queued
    assert before > 50 and meter.dbfs == pytest.approx(-9.0, abs=1.5)
    assert not stopped and after == before
    assert list(tmp_path.iterdir()) == [tmp_path / "manifest.json"]


class _Shedding:
    """A consumer that says how much it shed, as the live transcriber does (``dropped_seconds``)."""

    def __init__(self, shed: float) -> None:
        self.dropped_seconds = shed

    async def on_audio(self, channel_id, frame) -> None:
        return None


def test_shed_seconds_count_present_and_past_consumers():
    hub = LiveHub()
    assert hub.shed_seconds("mic:default") == 0.0
    first, second = _Shedding(1.5), _Shedding(0.25)
    hub.attach("mic:default", first)
    detach = hub.attach("mic:default", second)
    hub.attach("mic:default", RmsMeter())  # a consumer that never sheds counts nothing
    assert hub.shed_seconds("mic:default") == 1.75
    detach()  # a counter: what a consumer shed outlives it
    second.dropped_seconds = 99.0
    assert hub.shed_seconds("mic:default") == 1.75
    first.dropped_seconds = 2.0
    assert hub.shed_seconds("mic:default") == 2.25 and hub.shed_seconds("system_audio:default") == 0.0
