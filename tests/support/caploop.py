"""An in-process aiortc sender peer that publishes tracks to an IngestSession over loopback."""

from __future__ import annotations

import time
from typing import Optional

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from reeldb.capture.ice import restrict_host_addresses

restrict_host_addresses(["127.0.0.1"])  # test peers talk over loopback only


async def make_offer(tracks: dict[str, MediaStreamTrack], video_codec: Optional[str] = None):
    """Sender peer with one sendonly transceiver per channel; returns (pc, offer sdp, mid→channel)."""
    # max-bundle: under aiortc's default "balanced" policy a second track of one kind (two audio
    # channels after a video one) rides a transport that BUNDLE negotiation discards.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    transceivers = {}
    for cid, track in tracks.items():
        t = pc.addTransceiver(track, direction="sendonly")
        if video_codec and track.kind == "video":
            caps = RTCRtpSender.getCapabilities("video").codecs
            t.setCodecPreferences([c for c in caps if c.mimeType.lower() == f"video/{video_codec.lower()}"])
        transceivers[cid] = t
    await pc.setLocalDescription(await pc.createOffer())
    mapping = {t.mid: cid for cid, t in transceivers.items()}
    return pc, pc.localDescription.sdp, mapping


async def publish(session, tracks: dict[str, MediaStreamTrack], video_codec: Optional[str] = None) -> RTCPeerConnection:
    """Offer, let the session answer, apply the answer: media starts flowing."""
    pc, sdp, mapping = await make_offer(tracks, video_codec)
    answer = await session.accept_offer(sdp, mapping)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc


def drop_rtp(pc: RTCPeerConnection, track: MediaStreamTrack, start: float, end: float) -> list[int]:
    """Simulate network loss: the sender's RTP packets of ``track`` sent in [start, end) (unix
    time) never leave. Returns the list that counts dropped packets."""
    sender = next(s for s in pc.getSenders() if s.track is track)
    transport = sender.transport
    original = transport._send_rtp
    ssrc = sender._ssrc.to_bytes(4, "big")
    dropped: list[int] = []

    async def send_rtp(data: bytes) -> None:
        is_rtcp = len(data) > 1 and 192 <= data[1] <= 223
        if not is_rtcp and data[8:12] == ssrc and start <= time.time() < end:
            dropped.append(len(data))
            return
        await original(data)

    transport._send_rtp = send_rtp
    return dropped
