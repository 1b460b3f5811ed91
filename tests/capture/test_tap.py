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


def test_video_hole_is_given_up_after_stall_timeout_and_backlog_drained():
    """aiortc's video jitter buffer alone waits for 512 packets at a hole and then hands out one
    frame per packet; the tap gives up on the hole after ``stall_timeout`` and drains the rest."""
    from aiortc import RTCRtpCodecParameters
    from aiortc.rtp import RtpPacket

    async def main():
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        frames = []
        tap = install_tap(receiver, frames.append)
        jitter = receiver._RTCRtpReceiver__jitter_buffer
        mapper = receiver._RTCRtpReceiver__timestamp_mapper
        q = receiver._RTCRtpReceiver__decoder_queue
        codec = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
        plis = []

        def feed(seq):  # what RTCRtpReceiver._handle_rtp_packet does with a one-packet frame
            p = RtpPacket(payload_type=102, sequence_number=seq, timestamp=seq * 3000)
            p._data = bytes([seq])
            pli, f = jitter.add(p)
            plis.append(pli)
            if f is not None:
                f.timestamp = mapper.map(f.timestamp)
                q.put((codec, f))

        tap.stall_timeout = 60.0
        for seq in [0, 1, 2] + list(range(4, 10)):  # 3 is lost for good
            feed(seq)
        assert [f.data for f in frames] == [b"\x00", b"\x01"]  # stuck at the hole
        tap.stall_timeout = 0.0
        feed(10)
        # 2 went with the hole (aiortc cannot tell it was complete); 4 is flagged; 5..9 drained
        assert [f.data[0] for f in frames] == [0, 1, 4, 5, 6, 7, 8, 9]
        assert [f.discontinuity for f in frames] == [False, False, True] + [False] * 5
        assert [f.timestamp for f in frames][2:] == [i * 3000 for i in range(4, 10)]
        assert plis[-1] is True and tap.losses == 1
        feed(11)  # no hole any more: one frame per packet as usual
        assert frames[-1].data == b"\x0a" and not frames[-1].discontinuity
        await pc.close()

    asyncio.run(main())
