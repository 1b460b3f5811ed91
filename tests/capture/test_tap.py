"""capture.tap: installation guards (the receive path itself is exercised by test_ingest)."""

import asyncio

import pytest

from aiortc import RTCConfiguration, RTCPeerConnection

from reeldb.capture.tap import TapError, discard_decoded, install_tap


def test_install_guards():
    async def main():
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        receiver = pc.addTransceiver("audio", direction="recvonly").receiver
        frames = []
        tap = install_tap(receiver, frames.append)
        assert tap.decode is False and tap.frames == 0
        with pytest.raises(TapError, match="already installed"):
            install_tap(receiver, frames.append)
        # pretend the receiver started: its decoder thread would hold the old queue
        receiver._RTCRtpReceiver__decoder_thread = object()
        other = pc.addTransceiver("video", direction="recvonly").receiver
        other._RTCRtpReceiver__decoder_thread = object()
        with pytest.raises(TapError, match="already started"):
            install_tap(other, frames.append)
        other._RTCRtpReceiver__decoder_thread = None
        receiver._RTCRtpReceiver__decoder_thread = None
        # the None sentinel always reaches the decoder queue and reports the end once
        q = receiver._RTCRtpReceiver__decoder_queue
        q.put(None)
        assert tap.ended and q.get_nowait() is None
        await pc.close()

    asyncio.run(main())


def test_discard_decoded_keeps_end_marker():
    class Track:
        _queue = asyncio.Queue()

    t = Track()
    for item in ("a", "b", None):
        t._queue.put_nowait(item)
    assert discard_decoded(t) == 2
    assert t._queue.get_nowait() is None and t._queue.empty()
