"""Capture clock: map RTP timestamps to wall-clock (capture) time.

Pure functions and a small stateful mapper, no I/O, no aiortc.

Why: every receiver rebases its RTP timestamps to 0 independently, so two channels of one session
are not aligned by their timestamps alone. RTCP sender reports carry pairs (NTP wall clock, RTP
timestamp) taken on the sender's clock; with them, any RTP timestamp maps to the sender's wall
clock, ``ntp_of_SR + (rtp - rtp_of_SR) / clock_rate``, so all channels of one sender share one
timeline. Without a sender report we fall back to arrival time (``clock = "arrival"``).

Timestamps used here are the *extended* (unwrapped, rebased) RTP timestamps the tap delivers;
raw 32-bit values from sender reports are unwrapped against them with :func:`unwrap_near`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional

RTP_MOD = 1 << 32
NTP_UNIX_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def ntp_to_unix(ntp: int) -> float:
    """64-bit NTP timestamp (32.32 fixed point since 1900) to unix seconds."""
    return (ntp >> 32) - NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / (1 << 32)


def unix_to_ntp(t: float) -> int:
    """Unix seconds to a 64-bit NTP timestamp (inverse of :func:`ntp_to_unix`)."""
    secs = int(t // 1) + NTP_UNIX_OFFSET
    frac = int(round((t % 1) * (1 << 32)))
    if frac >= 1 << 32:
        secs, frac = secs + 1, frac - (1 << 32)
    return (secs << 32) | frac


def unwrap_near(raw: int, reference: int) -> int:
    """Return the integer congruent to ``raw`` mod 2^32 that is nearest to ``reference``.

    Why: a sender report holds a 32-bit RTP timestamp, while the tap's timestamps are extended
    (they keep counting past 2^32). The nearest congruent value is right as long as the two are
    less than 2^31 ticks apart (13 hours at 90 kHz), which a report about the live stream is.
    """
    delta = (raw - reference) % RTP_MOD
    if delta >= RTP_MOD // 2:
        delta -= RTP_MOD
    return reference + delta


def rtp_to_time(rtp: int, ref_rtp: int, ref_time: float, clock_rate: int) -> float:
    """Wall time of extended RTP timestamp ``rtp`` given one reference pair (linear clock)."""
    return ref_time + (rtp - ref_rtp) / clock_rate


def time_to_rtp(t: float, ref_rtp: int, ref_time: float, clock_rate: int) -> int:
    """Inverse of :func:`rtp_to_time`, rounded to the nearest tick."""
    return ref_rtp + int(round((t - ref_time) * clock_rate))


@dataclass(frozen=True)
class SenderReport:
    """One RTCP sender report as the tap saw it.

    ``rtp_timestamp`` is the raw 32-bit value; ``ntp_time`` is unix seconds (already converted).
    """

    ntp_time: float
    rtp_timestamp: int
    arrival: float


class CaptureClock:
    """Maps a channel's extended RTP timestamps to capture time.

    The tap gives extended timestamps rebased to 0 plus the 32-bit ``origin`` they were rebased
    from, so ``raw = (extended + origin) mod 2^32``. Until a sender report arrives the mapping
    uses the arrival time of the first frame; :attr:`source` tells which (``"rtcp"`` or
    ``"arrival"``).

    How reports are applied, and why: a report pairs the wall time at which the sender actually
    sent its last RTP packet with that packet's timestamp. When the sender's event loop ran late
    (a busy CPU), frames leave in a catch-up burst and the report is late by the stall, so
    ``ntp - rtp/rate`` (the wall time of RTP 0) comes out too large; the next on-time report
    brings it back. Applying every report made the mapping step forward and back by 50-130 ms,
    and a backward step put frames at or before earlier ones (reference/export-dts-failure.md).
    Send delay only ever *adds* lateness, so the estimate is the minimum of ``ntp - rtp/rate``
    over the last :attr:`WINDOW` seconds of media: late reports never raise it. Until
    :meth:`lock` the mapping takes that minimum outright (nothing is written yet); once locked
    it slews toward it by at most :attr:`SLEW` seconds per second of media and :attr:`MAX_STEP`
    per report, which still follows a drifting sender clock (and a first report that was itself
    late) but can never move a frame back past the previous one.
    """

    WINDOW = 30.0  # seconds of media the minimum filter looks back (drift over it is ~ms)
    SLEW = 0.01  # the most the locked mapping moves per second of media (1 %)
    MAX_STEP = 0.015  # ... and per report: less than one audio (20 ms) or video frame
    LATE = 0.02  # a report this far above the minimum is counted as late (and has no effect)

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.origin: Optional[int] = None
        self._last_ext: Optional[int] = None
        self._arrival_ref: Optional[tuple[int, float]] = None
        self._reports: deque[tuple[int, float]] = deque()  # (ext, ntp - ext/rate)
        self._base: Optional[float] = None  # rtcp mapping: time = base + ext / rate
        self._base_ext = 0
        self._pending: list[SenderReport] = []
        self._locked = False
        self.late_reports = 0

    @property
    def source(self) -> str:
        """``"rtcp"`` once a sender report has been applied, else ``"arrival"``."""
        return "rtcp" if self._base is not None else "arrival"

    @property
    def has_reference(self) -> bool:
        """True once any mapping (arrival or report) exists."""
        return self._base is not None or self._arrival_ref is not None

    def observe_frame(self, ext_ts: int, arrival: float, origin: Optional[int]) -> None:
        """Record a frame's extended timestamp and arrival time (first one anchors arrival)."""
        if origin is not None and self.origin is None:
            self.origin = origin % RTP_MOD
        self._last_ext = ext_ts
        if self._arrival_ref is None:
            self._arrival_ref = (ext_ts, arrival)
        if self._pending and self.origin is not None:
            pending, self._pending = self._pending, []
            for report in pending:
                self.add_sender_report(report)

    def lock(self) -> str:
        """Fix the source: if no report has been applied yet, ignore all later ones.

        Why: a file's pts come from this mapping; switching from arrival to report time in the
        middle of a file would shift everything after the switch. From here on a report-based
        mapping only slews. Returns the source kept.
        """
        self._locked = True
        return self.source

    def _minimum(self) -> Optional[float]:
        return min((o for _, o in self._reports), default=None)

    def add_sender_report(self, report: SenderReport) -> None:
        """Take a sender report into the estimate (kept for later if no frame has been seen yet)."""
        if self.origin is None or self._last_ext is None:
            self._pending.append(report)
            return
        ext = unwrap_near((report.rtp_timestamp - self.origin) % RTP_MOD, self._last_ext)
        offset = report.ntp_time - ext / self.clock_rate
        self._reports.append((ext, offset))
        horizon = ext - self.WINDOW * self.clock_rate
        while self._reports and self._reports[0][0] < horizon:
            self._reports.popleft()
        best = self._minimum()
        assert best is not None
        if offset > best + self.LATE:
            self.late_reports += 1
        if self._locked and self._base is None:
            return  # an arrival-clock file; the estimate still gives rtcp_offset
        if not self._locked or self._base is None:
            self._base, self._base_ext = best, ext
            return
        limit = min(self.MAX_STEP, self.SLEW * max(0, ext - self._base_ext) / self.clock_rate)
        self._base += max(-limit, min(limit, best - self._base))
        self._base_ext = max(self._base_ext, ext)

    @property
    def rtcp_offset(self) -> Optional[float]:
        """Seconds to add to this clock's times to get sender-report (RTCP) time.

        0.0 when the source is ``rtcp``; for a clock locked to arrival time, known once a report
        arrives late (e.g. a browser's first audio report after ``sr_wait``), so export can still
        line the channel up with the others; None until then.
        """
        if self._base is not None:
            return 0.0
        best = self._minimum()
        if best is None or self._arrival_ref is None:
            return None
        ext, t = self._arrival_ref
        return best + ext / self.clock_rate - t

    def to_time(self, ext_ts: int) -> float:
        """Capture time (unix seconds) of an extended RTP timestamp."""
        if self._base is not None:
            return self._base + ext_ts / self.clock_rate
        if self._arrival_ref is None:
            raise ValueError("no reference yet: call observe_frame first")
        return rtp_to_time(ext_ts, *self._arrival_ref, self.clock_rate)
