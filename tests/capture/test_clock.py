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
