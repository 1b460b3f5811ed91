"""The encoded-frame tap: the ONLY module that touches aiortc's private internals.

Pinned to aiortc 1.16 (``aiortc/rtcrtpreceiver.py``); upgrading aiortc means re-reading that file
and this one. What we rely on, and why:

- ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue``: after the jitter buffer reassembles a frame and
  the ``TimestampMapper`` rebases its timestamp, ``_handle_rtp_packet`` calls
  ``__decoder_queue.put((codec, JitterFrame))`` on the event-loop thread. We swap in a queue
  whose ``put()`` hands the encoded frame to our callback and forwards it to the decoder thread
  only while a live consumer wants decoded frames. Stock aiortc decodes every frame into an
  unbounded queue even when nobody reads the track: that is most of its CPU.
  The ``None`` sentinel (stop / BYE / disconnect) is always forwarded so the decoder thread and
  the track end normally.
- ``_RTCRtpReceiver__timestamp_mapper._origin``: the raw RTP timestamp the rebasing started from,
  so sender reports (raw 32-bit RTP timestamps) can be related to the rebased ones.
- ``_handle_rtcp_packet``: wrapped per instance to see RTCP sender reports (NTP, RTP) pairs.
- ``_RTCRtpReceiver__jitter_buffer``: ``smart_remove`` (overflow) and ``remove(capacity)``
  (misorder reset) are the only ways the buffer throws away packets it never delivered. aiortc
  sends a PLI there but nothing tells a consumer; we flag the next frame as a discontinuity so
  the writer waits for a keyframe and records the gap.
- ``_send_rtcp_pli`` / ``_RTCRtpReceiver__remote_streams`` / ``__rtx_ssrc``: to ask the sender
  for a keyframe when a video track starts.

Install with :func:`install_tap` after ``setRemoteDescription`` and before the connection starts
the receiver (``receive()`` runs during connection setup).
"""

from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from aiortc import RTCRtpReceiver
from aiortc.rtp import RtcpSrPacket

from .clock import SenderReport, ntp_to_unix

logger = logging.getLogger(__name__)

_PREFIX = "_RTCRtpReceiver__"


class TapError(Exception):
    """The tap could not be installed (aiortc internals changed or receiver already started)."""


@dataclass
class TappedFrame:
    """One encoded frame as it leaves aiortc's jitter buffer.

    ``timestamp`` is extended (unwrapped) and rebased to 0 per receiver by aiortc; ``origin`` is
    the raw RTP timestamp it was rebased from (``raw = (timestamp + origin) mod 2^32``).
    ``discontinuity`` says the jitter buffer discarded packets right before this frame.
    """

    codec: str
    clock_rate: int
    data: bytes
    timestamp: int
    origin: Optional[int]
    arrival: float
    discontinuity: bool


FrameCallback = Callable[[TappedFrame], None]
ReportCallback = Callable[[SenderReport], None]
EndCallback = Callable[[], None]


class _TapQueue(queue.Queue):
    """Stands in for the receiver's decoder queue. ``put()`` runs on the event-loop thread."""

    def __init__(self, tap: "ReceiverTap") -> None:
        super().__init__()
        self._tap = tap

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        if item is None:
            self._tap._ended()
            super().put(None)
            return
        codec, frame = item
        self._tap._frame(codec, frame)
        if self._tap.decode:
            super().put(item, block, timeout)


class ReceiverTap:
    """Handle on one tapped receiver.

    Set :attr:`decode` to True while a live consumer wants decoded frames on
    ``receiver.track`` (see ``capture/live.py``); otherwise nothing is decoded.
    """

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        on_frame: FrameCallback,
        on_sender_report: Optional[ReportCallback] = None,
        on_end: Optional[EndCallback] = None,
    ) -> None:
        self.receiver = receiver
        self.decode = False
        self.frames = 0
        self.losses = 0
        self.ended = False
        self._on_frame = on_frame
        self._on_sender_report = on_sender_report
        self._on_end = on_end
        self._loss = False

    # -- called from the patched receiver ---------------------------------------------------
    def _frame(self, codec: Any, frame: Any) -> None:
        mapper = getattr(self.receiver, _PREFIX + "timestamp_mapper", None)
        origin = getattr(mapper, "_origin", None)
        discontinuity, self._loss = self._loss, False
        self.frames += 1
        tapped = TappedFrame(
            codec=codec.name.lower(),
            clock_rate=codec.clockRate,
            data=frame.data,
            timestamp=frame.timestamp,
            origin=None if origin is None else origin % (1 << 32),
            arrival=time.time(),
            discontinuity=discontinuity,
        )
        try:
            self._on_frame(tapped)
        except Exception:  # noqa: BLE001 - never break aiortc's receive path
            logger.exception("tap frame callback failed")

    def _mark_loss(self) -> None:
        self.losses += 1
        self._loss = True

    def _sender_report(self, packet: RtcpSrPacket) -> None:
        rtx = getattr(self.receiver, _PREFIX + "rtx_ssrc", {})
        if packet.ssrc in rtx or self._on_sender_report is None:
            return
        info = packet.sender_info
        report = SenderReport(
            ntp_time=ntp_to_unix(info.ntp_timestamp),
            rtp_timestamp=info.rtp_timestamp,
            arrival=time.time(),
        )
        try:
            self._on_sender_report(report)
        except Exception:  # noqa: BLE001
            logger.exception("tap sender-report callback failed")

    def _ended(self) -> None:
        if self.ended:
            return
        self.ended = True
        if self._on_end is not None:
            try:
                self._on_end()
            except Exception:  # noqa: BLE001
                logger.exception("tap end callback failed")

    # -- public ------------------------------------------------------------------------------
    def media_ssrc(self) -> Optional[int]:
        """The sender's media SSRC (not RTX), once a packet has arrived."""
        streams = getattr(self.receiver, _PREFIX + "remote_streams", {})
        rtx = getattr(self.receiver, _PREFIX + "rtx_ssrc", {})
        for ssrc in streams:
            if ssrc not in rtx:
                return ssrc
        return None

    async def request_keyframe(self) -> bool:
        """Send an RTCP PLI to the sender; False if no media SSRC is known yet.

        Why: a browser sender starts with a keyframe the receiver may miss, and nothing in a
        decoder-less receiver would ever ask for another one.
        """
        ssrc = self.media_ssrc()
        if ssrc is None:
            return False
        await self.receiver._send_rtcp_pli(ssrc)
        return True


def install_tap(
    receiver: RTCRtpReceiver,
    on_frame: FrameCallback,
    on_sender_report: Optional[ReportCallback] = None,
    on_end: Optional[EndCallback] = None,
) -> ReceiverTap:
    """Patch ``receiver`` so encoded frames go to ``on_frame``; see the module doc for why.

    Raises :class:`TapError` if aiortc's internals are not what this module expects, or if the
    receiver has already started (its decoder thread holds the old queue).
    """
    for name in ("decoder_queue", "timestamp_mapper", "jitter_buffer", "decoder_thread"):
        if not hasattr(receiver, _PREFIX + name):
            raise TapError(
                f"aiortc internals changed: RTCRtpReceiver has no __{name}; re-check capture/tap.py"
            )
    if getattr(receiver, _PREFIX + "decoder_thread") is not None:
        raise TapError("receiver already started: install the tap before the connection starts")
    if isinstance(getattr(receiver, _PREFIX + "decoder_queue"), _TapQueue):
        raise TapError("tap already installed on this receiver")

    tap = ReceiverTap(receiver, on_frame, on_sender_report, on_end)
    setattr(receiver, _PREFIX + "decoder_queue", _TapQueue(tap))

    jitter = getattr(receiver, _PREFIX + "jitter_buffer")
    original_smart_remove = jitter.smart_remove
    original_remove = jitter.remove

    def smart_remove(count: int) -> bool:
        tap._mark_loss()
        return original_smart_remove(count)

    def remove(count: int) -> None:
        if count >= jitter.capacity:  # misorder reset: everything buffered is thrown away
            tap._mark_loss()
        original_remove(count)

    jitter.smart_remove = smart_remove
    jitter.remove = remove

    original_rtcp = receiver._handle_rtcp_packet

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            tap._sender_report(packet)
        await original_rtcp(packet)

    receiver._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
    return tap



def discard_decoded(track: Any) -> int:
    """Drop decoded frames waiting in a remote track's queue; returns how many.

    Why: when the last live consumer leaves, frames already decoded would sit in aiortc's
    unbounded ``RemoteStreamTrack._queue`` and reach the next consumer stale. The ``None``
    end-of-track marker is kept so a later ``recv()`` still ends the track.
    """
    q = getattr(track, "_queue", None)
    if q is None:
        return 0
    dropped = 0
    ended = False
    while not q.empty():
        item = q.get_nowait()
        if item is None:
            ended = True
        else:
            dropped += 1
    if ended:
        q.put_nowait(None)
    return dropped
