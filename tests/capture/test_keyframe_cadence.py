"""Keyframe cadence at ingest: real aiortc peers on loopback, IngestSession, the stored .mkv.

The sender is aiortc's own encoder path (``RTCRtpSender`` encodes the track's frames and makes
the next frame a keyframe when a PLI or FIR arrives: ``_send_keyframe``), with an encoder whose
natural GOP is far longer than the recording, like a browser's: VP8 as aiortc sets it up
(``gop_size`` 3000 frames = 200 s at 15 fps) and H.264 as aiortc sets it up but with x264's
periodic and scene-cut keyframes turned off. So every keyframe after the first is one the
ingest asked for, and with the cadence off (``keyframe_interval=0``) the long GOP stays.
"""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import pytest
from aiortc import RTCSessionDescription
from aiortc.codecs import h264 as aiortc_h264
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket

from support.caploop import make_offer
from support.media import probe
from reeldb.capture.ingest import IngestSession, _fir_payload_types, _video_feedback, with_fir
from reeldb.capture.manifest import load_manifest
from reeldb.capture.sources import BarsTrack

FPS = 15
VIDEO = [{"channel_id": "display:1", "kind": "video", "store": True}]


class LongGopH264Encoder(aiortc_h264.H264Encoder):
    """aiortc's H.264 encoder (libx264, baseline, zerolatency, forced I on request) whose own
    keyframes never come: no periodic IDR, no scene-cut IDR."""

    def _encode_frame(self, frame, force_keyframe):
        if self.codec is None:
            codec = av.CodecContext.create("libx264", "w")
            codec.width, codec.height = frame.width, frame.height
            codec.bit_rate = self.target_bitrate
            codec.pix_fmt = "yuv420p"
            codec.framerate = fractions.Fraction(aiortc_h264.MAX_FRAME_RATE, 1)
            codec.time_base = fractions.Fraction(1, aiortc_h264.MAX_FRAME_RATE)
            codec.gop_size = 100000
            codec.options = {"level": "31", "tune": "zerolatency",
                             "x264-params": "keyint=infinite:min-keyint=100000:scenecut=0"}
            codec.profile = "Baseline"
            self.codec = codec
        return super()._encode_frame(frame, force_keyframe)


@pytest.fixture
def long_gop_h264(monkeypatch):
    import aiortc.rtcrtpsender as sender_module
    from aiortc.codecs import get_encoder

    def encoder_for(codec):
        if codec.mimeType.lower() == "video/h264":
            return LongGopH264Encoder()
        return get_encoder(codec)

    monkeypatch.setattr(sender_module, "get_encoder", encoder_for)


def _feedback_log(pc, track) -> list[int]:
    """PSFB formats (PLI 1, FIR 4) the sender of ``track`` received."""
    sender = next(s for s in pc.getSenders() if s.track is track)
    original = sender._handle_rtcp_packet
    seen: list[int] = []

    async def handle(packet):
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            seen.append(packet.fmt)
        await original(packet)

    sender._handle_rtcp_packet = handle
    return seen


async def _record(folder, seconds: float, codec: str, offer_edit=None, **session_kw):
    """One sender → one IngestSession for ``seconds``; returns (manifest, PSFB formats seen)."""
    session = IngestSession(folder, "cap-kf", VIDEO, **session_kw)
    track = BarsTrack(320, 240, FPS, duration=seconds)
    pc, sdp, mapping = await make_offer({"display:1": track}, video_codec=codec)
    if offer_edit is not None:
        sdp = offer_edit(sdp)
    answer = await session.accept_offer(sdp, mapping)
    seen = _feedback_log(pc, track)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    deadline = time.time() + seconds + 8.0
    while track.readyState != "ended" and time.time() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    await pc.close()
    return await session.close(), seen


def _keyframe_times(path) -> tuple[list[float], float]:
    """Seconds of the keyframe packets of a stored file, and its last packet's time."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        packets = [(float(p.pts * p.time_base), p.is_keyframe) for p in c.demux(s) if p.pts is not None]
    return [t for t, k in packets if k], packets[-1][0]


def _max_gap(keys: list[float], end: float) -> float:
    return max(b - a for a, b in zip(keys, keys[1:] + [end]))


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["h264", "vp8"])
def test_cadence_bounds_the_gop_and_off_keeps_the_long_gop(tmp_path, codec, long_gop_h264):
    """Two sessions side by side from the same kind of sender, 22 s each: the default cadence
    (4 s) keeps keyframes at most 5 s apart; with the cadence off only the first keyframe(s)
    (the sender's first frame and the answer to the start PLI) come."""
    seconds = 22.0

    async def main():
        return await asyncio.gather(
            _record(tmp_path / "on", seconds, codec),  # the default: keyframe_interval=4.0
            _record(tmp_path / "off", seconds, codec, keyframe_interval=0),
        )

    (on, seen_on), (off, seen_off) = asyncio.run(main())

    disp = on.channel("display:1")
    assert disp.complete and disp.error is None and disp.codec == codec
    path = tmp_path / "on" / disp.file
    assert probe(path)["errors"] == 0
    keys, end = _keyframe_times(path)
    assert end > seconds - 2
    assert keys[0] == 0.0
    assert _max_gap(keys, end) <= 4.0 + 1.0, keys
    assert len(keys) >= 5, keys
    # the manifest counts what happened
    assert disp.keyframe_interval == 4.0
    assert disp.keyframe_requests >= len(keys) - 1
    assert disp.keyframes >= len(keys)
    assert disp.max_keyframe_gap is not None and disp.max_keyframe_gap <= 5.0
    assert seen_on.count(RTCP_PSFB_PLI) >= len(keys) - 1 and RTCP_PSFB_FIR not in seen_on
    back = load_manifest(tmp_path / "on").channel("display:1")
    assert (back.keyframe_requests, back.keyframes, back.max_keyframe_gap) == (
        disp.keyframe_requests, disp.keyframes, disp.max_keyframe_gap)

    # cadence off: the long GOP stays (proves the cadence does the work)
    quiet = off.channel("display:1")
    assert quiet.complete and quiet.keyframe_interval == 0.0
    path = tmp_path / "off" / quiet.file
    assert probe(path)["errors"] == 0
    keys_off, end_off = _keyframe_times(path)
    assert end_off > seconds - 2
    assert len(keys_off) <= 2, keys_off  # the first frame, maybe the answer to the start PLI
    assert _max_gap(keys_off, end_off) > seconds - 5
    assert quiet.keyframe_requests == 1  # the one at start
    assert quiet.max_keyframe_gap is None or quiet.max_keyframe_gap < 2.0


def _fir_only(sdp: str) -> str:
    """A sender that offers FIR and not PLI for its video codecs."""
    out = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=rtcp-fb:") and line.endswith(" nack pli"):
            out.append(line.replace(" nack pli", " ccm fir"))
            continue
        out.append(line)
    return "\r\n".join(out)


@pytest.mark.slow
def test_fir_is_used_where_only_fir_is_negotiated(tmp_path, long_gop_h264):
    seconds = 10.0
    manifest, seen = asyncio.run(
        _record(tmp_path / "s", seconds, "h264", offer_edit=_fir_only, keyframe_interval=2.0))
    disp = manifest.channel("display:1")
    keys, end = _keyframe_times(tmp_path / "s" / disp.file)
    assert _max_gap(keys, end) <= 2.0 + 1.0, keys
    assert len(keys) >= 4
    # the cadence's requests were FIRs (aiortc's own jitter-buffer PLIs need a loss: none here)
    assert seen.count(RTCP_PSFB_FIR) >= len(keys) - 1 and RTCP_PSFB_PLI not in seen
    assert disp.keyframe_requests == seen.count(RTCP_PSFB_FIR)


def test_fir_mirrored_into_the_answer_only_where_offered():
    offer = "\r\n".join([
        "v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 ccm fir",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98", "a=mid:1", "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000", "a=rtpmap:98 H264/90000", "a=rtcp-fb:96 nack pli",
        "a=rtcp-fb:96 ccm fir", "a=rtcp-fb:98 nack pli",
        "m=video 9 UDP/TLS/RTP/SAVPF 100", "a=mid:2", "a=rtpmap:100 H264/90000",
        "a=rtcp-fb:* ccm fir", ""])
    assert _fir_payload_types(offer) == {"1": {96}, "2": {100}}
    answer = "\r\n".join([
        "v=0", "m=video 9 UDP/TLS/RTP/SAVPF 98 96", "a=rtpmap:98 H264/90000", "a=rtcp-fb:98 nack pli",
        "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack pli", "a=mid:1",
        "m=video 9 UDP/TLS/RTP/SAVPF 100", "a=rtpmap:100 H264/90000", "a=mid:2", ""])
    out = with_fir(answer, _fir_payload_types(offer))
    assert out.count("ccm fir") == 2
    assert "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 ccm fir" in out
    assert "a=rtpmap:100 H264/90000\r\na=rtcp-fb:100 ccm fir" in out
    assert _video_feedback(out) == {"1": {"nack pli", "ccm fir"}, "2": {"ccm fir"}}
    assert with_fir(answer, {}) == answer


def test_keyframe_interval_validated(tmp_path):
    with pytest.raises(ValueError):
        IngestSession(tmp_path, "cap-x", VIDEO, keyframe_interval=-1)
    s = IngestSession(tmp_path, "cap-x", VIDEO + [{"channel_id": "mic:1", "kind": "audio", "store": True}])
    assert s.keyframe_interval == 4.0
    assert s.manifest.channel("display:1").keyframe_interval == 4.0
    assert "keyframe_interval" not in s.manifest.channel("mic:1").to_dict()
