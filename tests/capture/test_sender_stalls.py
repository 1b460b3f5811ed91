"""The mechanism behind "export … returned 22" (reference/export-dts-failure.md), reproduced:
the sender's event loop blocks ~85 ms at random intervals, so frames leave in catch-up bursts
and some RTCP sender reports are late by the stall. The stored files must still have strictly
increasing DTS and the recording must export."""

from __future__ import annotations

import asyncio

import av
import pytest

from support.media import write_ts
from support.capthread import ThreadedSender
from reeldb.capture.ingest import IngestSession
from reeldb.capture.sources import ToneTrack, open_source
from reeldb.export.mux import export_session

SECONDS = 24.0
CHANNELS = [
    {"channel_id": "display:1", "kind": "video", "store": True},
    {"channel_id": "mic:default", "kind": "audio", "store": True},
]


def stored_dts(path):
    with av.open(str(path)) as c:
        return [p.dts for p in c.demux(c.streams[0]) if p.dts is not None and p.size]


@pytest.mark.slow
def test_a_stalling_sender_records_and_exports(tmp_path):
    folder = tmp_path / "cap-stall"
    screen = tmp_path / "screen.ts"
    write_ts(screen, SECONDS + 2, fps=30, gop=30)  # relayed as the recorder does: no re-encode

    async def main():
        session = IngestSession(folder, "cap-stall", CHANNELS)
        sender = ThreadedSender(
            session, asyncio.get_running_loop(),
            lambda: {"display:1": open_source("display:1", str(screen))[0], "mic:default": ToneTrack(440)},
            stall=0.085, every=(0.15, 1.0),
        )
        await sender.start()
        await asyncio.sleep(SECONDS)
        await sender.stop()
        return await session.close(), sender.stalls

    manifest, stalls = asyncio.run(main())
    assert stalls > 20  # the sender really was starved, many times
    for ch in manifest.channels:
        assert ch.clock == "rtcp" and ch.frames > 100 and ch.error is None
        assert ch.last_frame_at - ch.first_frame_at == pytest.approx(SECONDS, abs=2.0)
        dts = stored_dts(folder / ch.file)
        assert len(dts) == ch.frames
        assert all(b > a for a, b in zip(dts, dts[1:])), ch.channel_id

    result = export_session(folder, tmp_path / "out")
    assert result.video_copied and result.muxed_info.duration == pytest.approx(SECONDS, abs=2.0)
    for path in [result.muxed_path] + [a.path for a in result.channels.values()]:
        dts = stored_dts(path)
        assert dts and all(b > a for a, b in zip(dts, dts[1:])), path.name
