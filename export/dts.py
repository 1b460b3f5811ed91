"""Strictly increasing DTS for every packet export copies into a muxer.

Why: MP4 (and MPEG-TS) muxers refuse a packet whose DTS is not above the previous one of its
stream ("non monotonically increasing dts"; PyAV raises ``ArgumentError(22)``), and one such
packet used to fail a whole export. Capture files written before the writer kept millisecond
DTS increasing hold runs of equal DTS (reference/export-dts-failure.md), and uploads may too.
Matroska accepts them, so the repair belongs where packets are copied: every copy path (muxed
video, raw assets, the transcode's own frames, HLS) passes its packets through one
:class:`DtsGuard`.

The repair is the ffmpeg CLI's: a packet at or below the last DTS written gets
``dts = last + 1`` and ``pts = max(pts, dts)``. Nothing is dropped, so no decoder loses a
reference. Comparisons are in the packet's (input) time base; every output export writes to
(MP4's video timescale >= 10000, MPEG-TS's 1/90000, WebM's 1/1000) is at least as fine as the
Matroska input's 1/1000, so order survives the rescale.
"""

from __future__ import annotations

from typing import Hashable

import av


class DtsGuard:
    """Per-stream last DTS written; :meth:`fix` nudges a packet that would not increase it."""

    def __init__(self) -> None:
        self._last: dict[Hashable, int] = {}
        self.nudged = 0

    def fix(self, packet: av.Packet, key: Hashable = 0) -> av.Packet:
        """Make ``packet``'s DTS (or PTS when it has none) exceed the last one of ``key``."""
        dts = packet.dts if packet.dts is not None else packet.pts
        if dts is None:
            return packet
        last = self._last.get(key)
        if last is not None and dts <= last:
            dts = last + 1
            self.nudged += 1
            if packet.pts is not None and packet.pts < dts:
                packet.pts = dts
        if packet.dts is not None or packet.pts is not None:
            packet.dts = dts
        self._last[key] = dts
        return packet

    def next_pts(self, pts: int, key: Hashable = 0) -> int:
        """The same rule for frames handed to an encoder (x264 refuses repeated pts)."""
        last = self._last.get(key)
        if last is not None and pts <= last:
            pts = last + 1
            self.nudged += 1
        self._last[key] = pts
        return pts
