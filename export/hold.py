"""Held pictures: what fills a recording's holes in a stream-copied H.264 track.

A display that is paused, joins late, ends before the audio or stops sending frames leaves a
stretch of the timeline without video frames; players then show nothing there and the exact-clip
cutter finds no picture to cut. The export fills such a stretch by holding a picture (the last
one before it, or the first one after it when the display has not begun), without touching the
recorded frames:

- the picture is decoded from the recorded packets of its GOP (:class:`LastPicture` keeps the
  packets since the last keyframe, so only that GOP is decoded, and only when a hold needs it);
- a :class:`HeldRun` encodes it with x264 matched to the recording (:mod:`.x264`): one IDR with
  its SPS/PPS in band, then P-frames of the same picture (all skipped macroblocks: a few bytes
  each), a new IDR every :data:`~.plan.HOLD_KEYFRAME_SECONDS`;
- its packets go into the same track between the copied ones, in the track's NAL framing
  (length-prefixed as the avcC says, or Annex B);
- the recorded keyframe after a hold gets its SPS/PPS from the track's avcC in front of it when
  it does not carry them itself (WebRTC senders do; a file relayed as is may not): the decoder
  switched to x264's parameter sets and must switch back. Its slices stay byte for byte.

A hold is only put before a recorded keyframe (or at the end): an IDR resets the decoder, and a
recorded P-frame after it would refer to pictures it no longer has. Capture resumes every paused
or interrupted video at a keyframe, so that is every hole it records.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

import av

from .x264 import matching_encoder

#: x264 quality of a held picture: it is shown for seconds, so a little better than the edges.
HOLD_CRF = "20"
SPS, PPS = 7, 8


class TrackFormat:
    """How a recorded H.264 (or other) track frames its packets, from its stream's extradata."""

    def __init__(self, stream: av.video.stream.VideoStream) -> None:
        cc = stream.codec_context
        self.codec = cc.name
        self.extradata: Optional[bytes] = bytes(cc.extradata) if cc.extradata else None
        self.width, self.height = cc.width or 320, cc.height or 240
        self.profile, self.level = cc.profile, cc.level
        extra = self.extradata or b""
        #: NAL length size of length-prefixed packets (avcC), None for Annex B.
        self.nal_size: Optional[int] = (extra[4] & 3) + 1 if len(extra) > 6 and extra[0] == 1 else None
        self.parameter_sets: list[bytes] = _avcc_parameter_sets(extra) if self.nal_size else []

    def frame_nal(self, data: bytes) -> bytes:
        """Annex B (what x264 gives) -> this track's framing."""
        if self.nal_size is None:
            return data
        return b"".join(len(n).to_bytes(self.nal_size, "big") + n for n in split_annexb(data))

    def nal_types(self, data: bytes) -> set[int]:
        units = split_length_prefixed(data, self.nal_size) if self.nal_size else split_annexb(data)
        return {u[0] & 0x1F for u in units if u}

    def with_parameter_sets(self, data: bytes) -> bytes:
        """``data`` (a recorded keyframe) with the avcC's SPS/PPS in front, unless it has them."""
        if self.codec != "h264" or not self.parameter_sets or {SPS, PPS} <= self.nal_types(data):
            return data
        return b"".join(self.frame_nal(b"\x00\x00\x00\x01" + p) for p in self.parameter_sets) + data


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit (start codes of 3 or 4 bytes)."""
    units, i = [], data.find(b"\x00\x00\x01")
    while i >= 0:
        j = data.find(b"\x00\x00\x01", i + 3)
        unit = data[i + 3: j if j >= 0 else len(data)]
        if j >= 0 and unit.endswith(b"\x00"):
            unit = unit[:-1]  # the next start code's leading zero
        if unit:
            units.append(unit)
        i = j
    return units


def split_length_prefixed(data: bytes, size: int) -> list[bytes]:
    units, i = [], 0
    while i + size <= len(data):
        n = int.from_bytes(data[i: i + size], "big")
        units.append(data[i + size: i + size + n])
        i += size + n
    return units


def _avcc_parameter_sets(extra: bytes) -> list[bytes]:
    """SPS and PPS NAL units of an avcC record (ISO/IEC 14496-15 5.2.4.1)."""
    out: list[bytes] = []
    try:
        pos, count = 6, extra[5] & 0x1F
        for kind_count in (count, None):
            if kind_count is None:
                kind_count, pos = extra[pos], pos + 1
            for _ in range(kind_count):
                n = int.from_bytes(extra[pos: pos + 2], "big")
                out.append(bytes(extra[pos + 2: pos + 2 + n]))
                pos += 2 + n
    except IndexError:
        return []
    return [p for p in out if p]


class LastPicture:
    """The recorded packets since the last keyframe, decoded only when a hold needs the picture."""

    def __init__(self, fmt: TrackFormat) -> None:
        self.fmt = fmt
        self._gop: list[tuple[bytes, int]] = []

    def add(self, data: bytes, pts: int, keyframe: bool) -> None:
        if keyframe:
            self._gop.clear()
        self._gop.append((data, pts))

    def picture(self) -> Optional[av.VideoFrame]:
        """The last picture shown by the packets kept (None if they do not decode)."""
        return decode_last(self.fmt, self._gop)


def decode_last(fmt: TrackFormat, packets: list[tuple[bytes, int]]) -> Optional[av.VideoFrame]:
    """Decode ``packets`` (one GOP, from its keyframe) and return its last picture shown."""
    if not packets:
        return None
    try:
        decoder = av.CodecContext.create(fmt.codec, "r")
        if fmt.extradata:
            decoder.extradata = fmt.extradata
        best: Optional[av.VideoFrame] = None
        for data, pts in packets + [(None, None)]:
            packet = None
            if data is not None:
                packet = av.Packet(data)
                packet.pts = packet.dts = pts
            for frame in decoder.decode(packet):
                if best is None or (frame.pts or 0) >= (best.pts or 0):
                    best = frame
        return best
    except av.error.FFmpegError:
        return None


def black(width: int, height: int) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(frame.planes, (16, 128, 128)):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


class HeldRun:
    """One hold: ``picture`` encoded as one IDR then P-frames of it, in ``fmt``'s framing.

    ``time_base`` is the track's; :meth:`frame` gives the packets of one held frame (x264 with
    ``zerolatency`` returns each frame's packet at once), :meth:`close` the rest.
    """

    def __init__(self, picture: av.VideoFrame, fmt: TrackFormat, time_base: Fraction, interval: float,
                 keyframe_seconds: float) -> None:
        self.fmt = fmt
        self.time_base = time_base
        self.duration = max(1, int(round(interval / time_base)))
        width, height = picture.width // 2 * 2, picture.height // 2 * 2
        if picture.format.name != "yuv420p" or (width, height) != (picture.width, picture.height):
            picture = picture.reformat(width=width, height=height, format="yuv420p")
        self.picture = picture
        keyint = max(1, int(round(keyframe_seconds / interval)))
        rate = Fraction(1 / interval).limit_denominator(1001)
        self.encoder = matching_encoder(width, height, "yuv420p", time_base, rate, fmt.profile, fmt.level, HOLD_CRF,
                                        tune="zerolatency",
                                        params=(f"keyint={keyint}", f"min-keyint={keyint}", "scenecut=0"))
        self.frames = 0

    def frame(self, pts: int) -> list[av.Packet]:
        self.picture.pts = pts
        self.picture.time_base = self.time_base
        self.picture.pict_type = av.video.frame.PictureType.NONE
        self.frames += 1
        return self._framed(self.encoder.encode(self.picture))

    def close(self) -> list[av.Packet]:
        return self._framed(self.encoder.encode(None))

    def _framed(self, packets: list[av.Packet]) -> list[av.Packet]:
        out = []
        for p in packets:
            q = av.Packet(self.fmt.frame_nal(bytes(p)))
            q.pts, q.dts = p.pts, p.pts
            q.time_base = self.time_base
            q.duration = self.duration
            q.is_keyframe = p.is_keyframe
            out.append(q)
        return out
