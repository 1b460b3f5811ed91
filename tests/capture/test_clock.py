"""capture.clock: RTP timestamp ↔ capture time, wrap-safe."""

import pytest

from reeldb.capture.clock import (
    CaptureClock, SenderReport, ntp_to_unix, rtp_to_time, time_to_rtp, unix_to_ntp, unwrap_near,
)

WRAP = 1 << 32


def test_ntp_round_trip():
    for t in (0.0, 1795614385.4985735, 1700000000.999999):
        assert ntp_to_unix(unix_to_ntp(t)) == pytest.approx(t, abs=1e-6)
    assert ntp_to_unix(2208988800 << 32) == 0.0


@pytest.mark.parametrize("raw,ref,expected", [
    (100, 90, 100),
    (WRAP - 10, 5, -10),             # raw just before a wrap, reference just after
    (5, WRAP - 10, WRAP + 5),        # raw just after a wrap, reference just before
    (7, 3 * WRAP + 2, 3 * WRAP + 7),  # many wraps already
])
def test_unwrap_near(raw, ref, expected):
    assert unwrap_near(raw, ref) == expected


def test_linear_mapping_inverse():
    t = rtp_to_time(90000 * 5, 0, 1000.0, 90000)
    assert t == 1005.0
    assert time_to_rtp(t, 0, 1000.0, 90000) == 450000


def test_arrival_until_report_then_rtcp():
    clock = CaptureClock(90000)
    origin = WRAP - 45000  # the sender's raw timestamps wrap 0.5 s into the stream
    clock.observe_frame(0, arrival=2000.0, origin=origin)
    assert clock.source == "arrival"
    assert clock.to_time(90000) == pytest.approx(2001.0)
    # report taken 2 s in (raw timestamp already wrapped), sender clock 0.25 s behind arrival
    clock.observe_frame(180000, arrival=2002.0, origin=origin)
    raw = (origin + 180000) % WRAP
    assert raw < origin  # wrapped
    clock.add_sender_report(SenderReport(ntp_time=2001.75, rtp_timestamp=raw, arrival=2002.0))
    assert clock.source == "rtcp"
    assert clock.to_time(180000) == pytest.approx(2001.75)
    assert clock.to_time(0) == pytest.approx(1999.75)


def test_report_before_first_frame_is_kept():
    clock = CaptureClock(48000)
    clock.add_sender_report(SenderReport(ntp_time=500.0, rtp_timestamp=1000 + 4800, arrival=0))
    assert clock.source == "arrival" and not clock.has_reference
    clock.observe_frame(0, arrival=600.0, origin=1000)
    assert clock.source == "rtcp"
    assert clock.to_time(4800) == pytest.approx(500.0)


def test_lock_keeps_arrival():
    clock = CaptureClock(90000)
    clock.observe_frame(0, arrival=10.0, origin=0)
    assert clock.lock() == "arrival"
    assert clock.rtcp_offset is None
    clock.add_sender_report(SenderReport(ntp_time=99.0, rtp_timestamp=0, arrival=10.0))
    assert clock.source == "arrival" and clock.to_time(0) == 10.0
    assert clock.rtcp_offset == pytest.approx(89.0)  # the late report still tells export the offset


def test_no_reference_raises():
    with pytest.raises(ValueError):
        CaptureClock(90000).to_time(0)


def _run_reports(clock, lateness, rate=90000, fps=30, t0=5000.0, origin=12345):
    """Frames every 1/fps s with a report each second; ``lateness(i)`` is how late (s) report i
    was taken. Returns the mapped times of every frame, in order."""
    times = []
    step = rate // fps
    for n in range(len(lateness) * fps):
        ext = n * step
        clock.observe_frame(ext, arrival=t0 + ext / rate + 0.01, origin=origin)
        if n % fps == 0:
            i = n // fps
            true = t0 + ext / rate
            clock.add_sender_report(SenderReport(true + lateness[i], (origin + ext) % WRAP, true + 0.01))
            if i == 0:
                clock.lock()
        times.append(clock.to_time(ext))
    return times


def test_late_reports_after_lock_never_step_back():
    # On time, then reports late by 54-85 ms (a sender whose loop stalled), then on time again:
    # the export-dts-failure mechanism. The mapping must not follow them, in either direction.
    lateness = [0.0] * 5 + [0.054, 0.0, 0.074, 0.085, 0.0, 0.061, 0.0] + [0.0] * 5
    clock = CaptureClock(90000)
    times = _run_reports(clock, lateness)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) > 0.0 and max(gaps) < 2 / 30
    truth = [5000.0 + i / 30 for i in range(len(times))]
    assert max(abs(t - u) for t, u in zip(times, truth)) < 1e-6  # late reports ignored entirely
    assert clock.late_reports == 4 and clock.source == "rtcp"


def test_a_late_first_report_is_corrected_by_slewing_not_stepping():
    lateness = [0.08] + [0.0] * 29  # the reference the clock locked to was itself 80 ms late
    clock = CaptureClock(90000)
    times = _run_reports(clock, lateness)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) > 1 / 30 - CaptureClock.MAX_STEP - 1e-9  # never back, never a jump
    assert times[0] - 5000.0 == pytest.approx(0.08)
    assert times[-1] - (5000.0 + (len(times) - 1) / 30) == pytest.approx(0.0, abs=1e-6)  # converged


def test_drifting_sender_clock_is_followed_gradually():
    # The sender's RTP clock runs 0.1 % slow against its wall clock: reports creep 1 ms/s.
    clock = CaptureClock(48000)
    origin = 77
    for i in range(60):
        ext = i * 48000
        clock.observe_frame(ext, arrival=100.0 + i, origin=origin)
        clock.add_sender_report(SenderReport(100.0 + i * 1.001, (origin + ext) % WRAP, 100.0 + i))
        if i == 0:
            clock.lock()
    # The windowed minimum trails the drift by at most its window's worth (~30 ms here).
    assert clock.to_time(59 * 48000) == pytest.approx(100.0 + 59 * 1.001, abs=0.035)
