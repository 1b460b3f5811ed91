"""The encoded-frame tap: the ONLY module that touches aiortc's private internals.

Pinned to aiortc 1.16 (``aiortc/rtcrtpreceiver.py``); upgrading aiortc means re-reading that file
and this one. What we rely on, and why:

- ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue``: after the jitter buffer reassembles a frame and
  the ``TimestampMapper`` rebases its timestamp, ``_handle_rtp_packet`` calls
  ``__decoder_queue.put((codec, JitterFrame))`` on the event-loop thread. We swap in a queue
  whose ``put()`` hands the encoded frame to our callback and forwards it to the decoder thread
  only while a live consumer wants decoded frames, from a keyframe on (when decoding starts and
  after a loss). Stock aiortc decodes every frame into an unbounded queue even when nobody reads
  the track: that is most of its CPU.
  The ``None`` sentinel (stop / BYE / disconnect) is always forwarded so the decoder thread and
  the track end normally.
- ``_RTCRtpReceiver__timestamp_mapper._origin``: the raw RTP timestamp the rebasing started from,
  so sender reports (raw 32-bit RTP timestamps) can be related to the rebased ones.
- ``_handle_rtcp_packet``: wrapped per instance to see RTCP sender reports (NTP, RTP) pairs.
- ``_RTCRtpReceiver__jitter_buffer``: ``smart_remove`` (overflow) and ``remove(capacity)``
  (misorder reset) are the only ways the buffer throws away packets it never delivered. aiortc
  sends a PLI there but nothing tells a consumer; we flag the next frame as a discontinuity so
  the writer waits for a keyframe and records the gap.
- ``JitterBuffer.add`` / ``_remove_frame`` / ``_origin`` / ``_packets``: aiortc's video jitter
  buffer (512 packets, no timeout) waits at an unrepaired hole until 512 packets are behind it,
  and hands out one frame per arriving packet. With a low-bitrate stream (a static screen is one
  packet per frame) a single lost packet whose retransmission is lost too stops the recording
  for 34 s or more, and what waited behind the hole stays as permanent latency and is lost at
  close. So a video tap gives up on a hole once the packets after it have waited
  ``stall_timeout`` (discard up to the next frame, flag the loss, send a PLI), and drains every
  complete frame the buffer holds, not just one per packet.
- ``_send_rtcp_pli`` / ``_RTCRtpReceiver__remote_streams`` / ``__rtx_ssrc``: to ask the sender
  for a keyframe when a video track starts, on resume and on the ingest's keyframe cadence.
- ``_send_rtcp`` / ``_RTCRtpReceiver__rtcp_ssrc``: to send a FIR (RFC 5104), which aiortc has no
  method for. aiortc's own capabilities never offer ``ccm fir``, so FIR is only used where the
  ingest negotiated it (mirrored from the offer into the answer, see ``capture/ingest.py``).
  The FIR's common-header media SSRC is set to the media SSRC (RFC 5104 says 0): libwebrtc
  reads only the FCI entries, and aiortc routes feedback to a sender by that header field.

Install with :func:`install_tap` after ``setRemoteDescription`` and before the connection starts
the receiver (``receive()`` runs during connection setup).
"""

from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import struct

from aiortc import RTCRtpReceiver
from aiortc.rtp import RTCP_PSFB_FIR, RtcpPsfbPacket, RtcpSrPacket
from aiortc.utils import uint16_add

from .clock import SenderReport, ntp_to_unix
from .writer import is_keyframe

logger = logging.getLogger(__name__)

_PREFIX = "_RTCRtpReceiver__"

# Seconds the packets behind a hole in a video jitter buffer may wait before the tap discards
# the hole: NACK + retransmission repair a hole within a round trip; after this long the
# retransmission is not coming. Longer costs latency, not data; shorter risks giving up on a
# retransmission that was still on its way (a gap until the next keyframe).
STALL_TIMEOUT = 1.0


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
        self._deliver(codec, frame)
        # aiortc hands out one frame per arriving packet: drain the complete frames behind it.
        jitter = self._tap.jitter
        mapper = getattr(self._tap.receiver, _PREFIX + "timestamp_mapper", None)
        while jitter is not None and mapper is not None:
            extra = jitter._remove_frame(0)  # the argument is unused by aiortc 1.16
            if extra is None:
                break
            extra.timestamp = mapper.map(extra.timestamp)
            self._deliver(codec, extra)

    def _deliver(self, codec: Any, frame: Any) -> None:
        tap = self._tap
        lost = tap._loss
        tap._frame(codec, frame)
        if not tap.decode:
            return
        if tap.awaiting_keyframe or lost:
            # A decoder that starts mid-stream (or after a loss) has no reference picture: every
            # frame before the next keyframe would only fail to decode (and say so in the log).
            if not is_keyframe(codec.name.lower(), frame.data):
                tap.awaiting_keyframe = True
                return
            tap.awaiting_keyframe = False
        super().put((codec, frame))


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
        self._decode = False
        #: Frames go to the decoder from the next keyframe on (set when decoding starts).
        self.awaiting_keyframe = False
        self.frames = 0
        self.losses = 0
        self.ended = False
        self._on_frame = on_frame
        self._on_sender_report = on_sender_report
        self._on_end = on_end
        self._loss = False
        self.jitter: Any = None  # the video jitter buffer, once installed (drained on delivery)
        self.stall_timeout = STALL_TIMEOUT
        # Keyframe requests: which feedback the sender agreed to (set by the ingest from the
        # negotiated SDP; PLI is aiortc's default), and what was sent.
        self.pli = True
        self.fir = False
        self.plis_sent = 0
        self.firs_sent = 0
        self._fir_seq = 0

    @property
    def decode(self) -> bool:
        """Whether frames go on to aiortc's decoder (a live consumer wants them decoded)."""
        return self._decode

    @decode.setter
    def decode(self, on: bool) -> None:
        if on and not self._decode:
            self.awaiting_keyframe = True
        self._decode = on

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

    async def request_keyframe(self, escalate: bool = False) -> bool:
        """Ask the sender for a keyframe; False if no media SSRC is known yet (nothing sent).

        Sends an RTCP PLI where PLI was negotiated (every browser and aiortc), a FIR where only
        FIR was; ``escalate`` (an earlier request went unanswered) sends a FIR as well where it
        was negotiated, since some encoders honour only one of the two.
        Why at all: a browser sender starts with a keyframe the receiver may miss, then sends
        another one only when asked; nothing in a decoder-less receiver would ever ask.
        """
        ssrc = self.media_ssrc()
        if ssrc is None:
            return False
        send_pli = self.pli or not self.fir
        send_fir = self.fir and (escalate or not self.pli)
        if send_pli:
            await self.receiver._send_rtcp_pli(ssrc)
            self.plis_sent += 1
        if send_fir:
            if not await self._send_fir(ssrc):
                return send_pli
        return True

    async def _send_fir(self, media_ssrc: int) -> bool:
        rtcp_ssrc = getattr(self.receiver, _PREFIX + "rtcp_ssrc", None)
        if rtcp_ssrc is None:
            return False
        self._fir_seq = (self._fir_seq + 1) % 256  # a new request: new sequence number
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_FIR,
            ssrc=rtcp_ssrc,
            media_ssrc=media_ssrc,
            fci=struct.pack("!LB3x", media_ssrc, self._fir_seq),
        )
        await self.receiver._send_rtcp(packet)
        self.firs_sent += 1
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
    for name in ("decoder_queue", "timestamp_mapper", "jitter_buffer", "decoder_thread", "rtcp_ssrc"):
        if not hasattr(receiver, _PREFIX + name):
            raise TapError(
                f"aiortc internals changed: RTCRtpReceiver has no __{name}; re-check capture/tap.py"
            )
    if getattr(receiver, _PREFIX + "decoder_thread") is not None:
        raise TapError("receiver already started: install the tap before the connection starts")
    for name in ("_send_rtcp_pli", "_send_rtcp"):
        if not callable(getattr(receiver, name, None)):
            raise TapError(f"aiortc internals changed: RTCRtpReceiver has no {name}; re-check capture/tap.py")
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
    if getattr(receiver, _PREFIX + "kind", None) == "video":
        _install_stall_breaker(tap, jitter)

    original_rtcp = receiver._handle_rtcp_packet

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            tap._sender_report(packet)
        await original_rtcp(packet)

    receiver._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
    return tap


def _install_stall_breaker(tap: ReceiverTap, jitter: Any) -> None:
    """Give up on a hole in a video jitter buffer after ``tap.stall_timeout``; see the module doc."""
    for name in ("_remove_frame", "_origin", "_packets", "add"):
        if not hasattr(jitter, name):
            raise TapError(f"aiortc internals changed: JitterBuffer has no {name}; re-check capture/tap.py")
    original_add = jitter.add
    tap.jitter = jitter

    def add(packet: Any) -> tuple[bool, Any]:
        now = time.monotonic()
        packet._tap_arrival = now
        pli, frame = original_add(packet)
        if frame is not None:
            return pli, frame
        skip = _hole_skip(jitter, packet.sequence_number)
        if skip is None:
            return pli, frame
        # The hole is as old as the first packet seen after it (each hole ages on its own, so
        # successive holes are not waited for one after the other).
        after = jitter._packets[(jitter._origin + skip) % jitter.capacity]
        if now - getattr(after, "_tap_arrival", now) < tap.stall_timeout:
            return pli, frame
        # Drop the frame in front of the hole, the hole and the rest of a frame it cut into
        # (smart_remove is wrapped: the next frame out is flagged as a discontinuity).
        if jitter.smart_remove(skip):  # wiped the whole ring: restart after this packet
            jitter._origin = uint16_add(packet.sequence_number, 1)
        return True, jitter._remove_frame(packet.sequence_number)

    jitter.add = add


def _hole_skip(jitter: Any, newest: int) -> Optional[int]:
    """Slots from the buffer's origin to the first packet after its first hole, if there is a
    hole before ``newest`` (the packet just added); None if the buffer is just waiting for the
    rest of its newest frame."""
    origin = jitter._origin
    if origin is None:
        return None
    span = uint16_add(newest, -origin)
    capacity = jitter.capacity
    if span >= capacity:  # a late packet aiortc ignored
        return None
    packets = jitter._packets
    hole = False
    for i in range(span + 1):
        present = packets[(origin + i) % capacity] is not None
        if not present:
            hole = True
        elif hole:
            return i
    return None


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
