"""Per-channel writer: encoded H.264 / VP8 / Opus frames into Matroska, without re-encoding.

Why each rule exists (see the aiortc tap notes):
- Nothing is decoded or re-encoded: the receive path is the CPU floor, writing costs ~nothing.
- Video is dropped until the first keyframe (a file must start decodable), and after a loss
  (``discontinuity=True``) nothing is written until the next keyframe, because the frames in
  between refer to data we never got; the hole is recorded in :attr:`ChannelWriter.gaps`.
- A packet's pts is its capture time minus :attr:`ChannelWriter.start_time`, so pauses and gaps
  stay holes in the timeline and channels line up at export.
- Matroska buffers a cluster in memory and PyAV buffers writes: a SIGKILL would lose them. The
  muxer is told to close a cluster every ``flush_interval`` and to flush its I/O after every
  packet, so at most about one second is lost.
- Timestamps are made in the container's own time base: Matroska stores milliseconds
  (TimestampScale 1 ms; it rewrites any stream time base to 1/1000). Keeping pts strictly
  increasing in a finer unit (1/90000) is not enough: two frames 1/90000 s apart round to the
  same millisecond, the file then holds equal DTS, and MP4 muxers refuse to copy it
  (reference/export-dts-failure.md). So pts are computed, compared and clamped in ms, and every
  clamp is counted (:attr:`ChannelWriter.clamps`, ``dts_clamps`` in the manifest).
- Opus in Matroska needs an OpusHead in CodecPrivate; a stream made with ``add_mux_stream``
  ignores extradata, so the Opus stream gets a libopus encoder context (never fed) whose header
  the muxer writes.

This class is synchronous and not thread-safe; :class:`InlineWriter` runs one on the event loop,
which measured cheaper than a worker thread (see there).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av

logger = logging.getLogger(__name__)

#: Matroska's native timestamp unit; packets are written in it, so what we compare is what is stored.
CONTAINER_TIME_BASE = Fraction(1, 1000)
CODEC_KIND = {"h264": "video", "vp8": "video", "opus": "audio"}
FILE_EXT = {"video": ".mkv", "audio": ".mka"}


class WriterError(Exception):
    """A channel writer could not be created or used (the message names the file, not its folder)."""

    code = "CHANNEL_WRITE_FAILED"


def h264_is_keyframe(data: bytes) -> bool:
    """True if an Annex-B access unit holds an IDR slice (NAL type 5)."""
    i = 0
    n = len(data)
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= n:
            return False
        if data[i + 3] & 0x1F == 5:
            return True
        i += 3


def vp8_is_keyframe(data: bytes) -> bool:
    """True if a VP8 frame is a key frame (bit 0 of the frame tag is 0)."""
    return len(data) >= 3 and (data[0] & 0x01) == 0


def vp8_dimensions(data: bytes) -> Optional[tuple[int, int]]:
    """Width and height from a VP8 key frame header (RFC 6386 §9.1)."""
    if len(data) < 10 or not vp8_is_keyframe(data) or data[3:6] != b"\x9d\x01\x2a":
        return None
    return (int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF)


def is_keyframe(codec: str, data: bytes) -> bool:
    """Keyframe test per codec; every Opus packet stands alone."""
    if codec == "h264":
        return h264_is_keyframe(data)
    if codec == "vp8":
        return vp8_is_keyframe(data)
    return True


def _video_dimensions(codec: str, data: bytes) -> Optional[tuple[int, int]]:
    """Dimensions of a key frame. H.264 needs the SPS parsed: decoding one frame is simplest."""
    if codec == "vp8":
        return vp8_dimensions(data)
    try:
        ctx = av.CodecContext.create("h264", "r")
        for frame in ctx.decode(av.Packet(data)):
            return frame.width, frame.height
        for frame in ctx.decode(None):
            return frame.width, frame.height
    except av.FFmpegError:
        return None
    return None


class ChannelWriter:
    """Writes one channel's encoded frames to a Matroska file.

    ``write()`` takes capture-clock seconds; the first written frame (a keyframe) becomes
    pts 0 and :attr:`start_time`. The file is created lazily on that first frame, so a channel
    that never sends media leaves no file.
    """

    def __init__(
        self,
        path: str | Path,
        codec: str,
        *,
        sample_rate: int = 48000,
        audio_channels: int = 2,
        flush_interval: float = 0.5,
    ) -> None:
        codec = codec.lower()
        if codec not in CODEC_KIND:
            raise WriterError(f"unsupported codec {codec!r}: expected one of {sorted(CODEC_KIND)}")
        self.path = Path(path)
        self.codec = codec
        self.kind = CODEC_KIND[codec]
        self.time_base = CONTAINER_TIME_BASE
        self.sample_rate = sample_rate
        self.audio_channels = audio_channels
        self.flush_interval = flush_interval
        self.width: Optional[int] = None
        self.height: Optional[int] = None
        self.start_time: Optional[float] = None
        self.first_frame_at: Optional[float] = None
        self.last_frame_at: Optional[float] = None
        self.frames = 0
        self.dropped = 0
        self.clamps = 0  # frames whose pts was moved forward to stay after the previous one
        self.gaps: list[list[float]] = []
        self.closed = False
        self._container: Optional[av.container.OutputContainer] = None
        self._stream = None
        self._last_pts = -1
        self._waiting_keyframe = True
        self._gap_start: Optional[float] = None

    @property
    def opened(self) -> bool:
        """True once the file exists (first keyframe written)."""
        return self._container is not None

    def _open(self, first: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # flush_packets: avio_flush after each packet, so bytes reach the OS (survive SIGKILL).
        container = av.open(
            str(self.path),
            "w",
            format="matroska",
            options={"cluster_time_limit": str(int(self.flush_interval * 1000))},
        )
        container.flags |= av.container.Flags.flush_packets.value
        if self.kind == "video":
            dims = _video_dimensions(self.codec, first)
            if dims:
                self.width, self.height = dims
            stream = container.add_mux_stream(
                self.codec, width=self.width or 0, height=self.height or 0
            )
        else:
            # An encoder context that is opened but never fed: it makes the OpusHead header.
            stream = container.add_stream("libopus", rate=self.sample_rate)
            stream.codec_context.layout = "stereo" if self.audio_channels == 2 else "mono"
        self._container = container
        self._stream = stream

    def write(self, data: bytes, capture_time: float, discontinuity: bool = False) -> bool:
        """Write one encoded frame captured at ``capture_time``; return True if it was written.

        ``discontinuity`` says frames were lost right before this one. Video then waits for the
        next keyframe and records ``[last written, this keyframe]`` as a gap; audio just records
        the gap (Opus packets decode alone).
        """
        if self.closed:
            raise WriterError(f"{self.path.name}: write after close")
        if not data:
            return False
        key = is_keyframe(self.codec, data)
        if discontinuity and self.frames and self._gap_start is None:
            self._gap_start = self.last_frame_at
            if self.kind == "video":
                self._waiting_keyframe = True
        if self._waiting_keyframe:
            if not key:
                self.dropped += 1
                return False
            self._waiting_keyframe = False
        if self._container is None:
            self._open(data)
            self.start_time = capture_time
            self.first_frame_at = capture_time
        if self._gap_start is not None:
            self.gaps.append([self._gap_start, capture_time])
            self._gap_start = None
        pts = int(round((capture_time - self.start_time) / self.time_base))
        if pts <= self._last_pts:
            # Strictly increasing in the stored unit (ms), whatever the clock did: a capture
            # clock that stepped back, a reconnect's fresh clock, two frames in one ms.
            pts = self._last_pts + 1
            self.clamps += 1
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.time_base = self.time_base
        packet.pts = packet.dts = pts
        packet.is_keyframe = key
        self._container.mux(packet)
        self._last_pts = pts
        self.frames += 1
        self.last_frame_at = capture_time
        return True

    def close(self) -> None:
        """Write the trailer (duration, cues). Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._container is not None:
            try:
                self._container.close()
            finally:
                self._container = None


class InlineWriter:
    """Runs a :class:`ChannelWriter` on the caller's thread (the event loop), keeping its errors.

    Why not a worker thread: measured with tests/bench/ingest.py (10 sessions of a 720p30 screen
    and two Opus channels), handing every frame to a writer thread cost 1.5x the CPU of aiortc's
    bare receive path, almost all of it GIL hand-offs at ~130 frames/s per session; muxing inline
    costs 1.1x. One mux call takes tens of microseconds and the file is flushed to the page cache
    every ``flush_interval``, so the loop is not held up. Errors are logged and kept in
    :attr:`error` (the channel stops being written, the session goes on).
    """

    def __init__(self, writer: ChannelWriter, name: str = "writer") -> None:
        self.writer = writer
        self.name = name
        self.error: Optional[BaseException] = None

    def submit(self, data: bytes, capture_time: float, discontinuity: bool = False) -> None:
        """Write one frame now; after an error the channel's frames are dropped."""
        if self.error is not None:
            return
        try:
            self.writer.write(data, capture_time, discontinuity)
        except Exception as exc:  # noqa: BLE001 - keep the session alive, report the channel
            logger.exception("writer %s failed", self.writer.path)
            self.error = exc

    def close(self, timeout: Optional[float] = None) -> None:
        """Close the file (finalizes the container; may block on I/O: call via a thread)."""
        try:
            self.writer.close()
        except Exception as exc:  # noqa: BLE001
            logger.exception("closing %s failed", self.writer.path)
            self.error = self.error or exc
