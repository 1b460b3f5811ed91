"""capture.writer: encoded frames → Matroska without re-encoding; keyframe gating, gaps, crash safety."""

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from support.media import h264_access_units, opus_packets, probe, vp8_frames
from reeldb.capture.writer import (
    ChannelWriter, InlineWriter, WriterError, h264_is_keyframe, vp8_dimensions, vp8_is_keyframe,
)

T0 = 1_700_000_000.0


def test_h264_round_trip_keeps_duration_and_size(tmp_path):
    aus = h264_access_units(3, fps=30, gop=30)
    w = ChannelWriter(tmp_path / "v.mkv", "h264")
    for i, au in enumerate(aus):
        w.write(au, T0 + 10 + i / 30)
    w.close()
    info = probe(tmp_path / "v.mkv")
    assert info["codec"] == "h264" and info["errors"] == 0
    assert info["frames"] == len(aus) == 90
    assert info["first"] == 0.0 and info["last"] == pytest.approx(89 / 30, abs=0.01)
    assert (w.width, w.height) == (320, 240) and w.start_time == T0 + 10


def test_drops_until_first_keyframe(tmp_path):
    aus = h264_access_units(2, gop=30)
    w = ChannelWriter(tmp_path / "v.mkv", "h264")
    # start mid-GOP: frames 5..29 are not keyframes and must be dropped
    for i, au in enumerate(aus[5:], start=5):
        w.write(au, T0 + i / 30)
    w.close()
    assert w.dropped == 25 and w.frames == 30
    assert w.start_time == pytest.approx(T0 + 1.0)  # pts 0 is the first keyframe
    info = probe(tmp_path / "v.mkv")
    assert info["frames"] == 30 and info["errors"] == 0


def test_no_keyframe_means_no_file(tmp_path):
    aus = h264_access_units(1, gop=30)
    w = ChannelWriter(tmp_path / "v.mkv", "h264")
    for i, au in enumerate(aus[1:]):
        w.write(au, T0 + i / 30)
    w.close()
    assert not (tmp_path / "v.mkv").exists() and w.frames == 0


def test_gap_after_loss_resumes_at_next_keyframe(tmp_path):
    aus = h264_access_units(4, gop=30)
    w = ChannelWriter(tmp_path / "v.mkv", "h264")
    for i, au in enumerate(aus):
        if 40 <= i < 45:
            continue  # lost on the network
        w.write(au, T0 + i / 30, discontinuity=(i == 45))
    w.close()
    # frames 45..59 refer to lost data: dropped; writing resumes at the IDR at 60
    assert w.dropped == 15
    assert w.gaps == [[pytest.approx(T0 + 39 / 30), pytest.approx(T0 + 60 / 30)]]
    info = probe(tmp_path / "v.mkv")
    assert info["errors"] == 0 and info["frames"] == 120 - 5 - 15
    assert info["last"] == pytest.approx(119 / 30, abs=0.01)  # pts keep the hole


def test_opus_round_trip(tmp_path):
    pkts = opus_packets(2.0)
    w = ChannelWriter(tmp_path / "a.mka", "opus")
    for i, p in enumerate(pkts):
        w.write(p, T0 + i * 0.02)
    w.close()
    info = probe(tmp_path / "a.mka")
    assert info["codec"] == "opus" and info["errors"] == 0
    assert info["frames"] == len(pkts)
    assert info["last"] == pytest.approx((len(pkts) - 1) * 0.02, abs=0.03)


def test_vp8_round_trip_and_header(tmp_path):
    frames = vp8_frames(2, gop=30)
    assert vp8_is_keyframe(frames[0]) and not vp8_is_keyframe(frames[1])
    assert vp8_dimensions(frames[0]) == (320, 240)
    w = ChannelWriter(tmp_path / "v.mkv", "vp8")
    for i, f in enumerate(frames):
        w.write(f, T0 + i / 30)
    w.close()
    info = probe(tmp_path / "v.mkv")
    assert info["codec"] == "vp8" and info["frames"] == 60 and info["errors"] == 0


def test_keyframe_detection_h264():
    aus = h264_access_units(1, gop=10)
    assert [h264_is_keyframe(a) for a in aus[:11]] == [True] + [False] * 9 + [True]


def test_unsupported_codec_and_write_after_close(tmp_path):
    with pytest.raises(WriterError, match="unsupported codec"):
        ChannelWriter(tmp_path / "x.mkv", "hevc")
    w = ChannelWriter(tmp_path / "a.mka", "opus")
    w.close()
    with pytest.raises(WriterError):
        w.write(b"x", T0)


def test_inline_writer(tmp_path):
    pkts = opus_packets(1.0)
    tw = InlineWriter(ChannelWriter(tmp_path / "a.mka", "opus"))
    for i, p in enumerate(pkts):
        tw.submit(p, T0 + i * 0.02)
    tw.close()
    assert tw.error is None and tw.writer.closed and tw.writer.frames == len(pkts)
    assert probe(tmp_path / "a.mka")["frames"] == len(pkts)


WRITER_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {helpers!r})
    from support.media import h264_access_units, opus_packets
    from reeldb.capture.writer import ChannelWriter
    aus = h264_access_units(20, fps=30, gop=60)
    ops = opus_packets(20)
    v = ChannelWriter(sys.argv[1] + "/v.mkv", "h264")
    a = ChannelWriter(sys.argv[1] + "/a.mka", "opus")
    t0 = time.time()
    print(t0, flush=True)
    vi = ai = 0
    while vi < len(aus):
        now = time.time() - t0
        while vi < len(aus) and vi / 30 <= now:
            v.write(aus[vi], t0 + vi / 30); vi += 1
        while ai < len(ops) and ai * 0.02 <= now:
            a.write(ops[ai], t0 + ai * 0.02); ai += 1
        time.sleep(0.005)
""")


@pytest.mark.slow
def test_sigkill_keeps_all_but_the_last_second(tmp_path):
    script = tmp_path / "w.py"
    script.write_text(WRITER_SCRIPT.format(helpers=str(Path(__file__).parents[1])))
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        t0 = float(proc.stdout.readline())
        time.sleep(max(0.0, t0 + 3.5 - time.time()))
        proc.send_signal(signal.SIGKILL)
        killed_at = time.time() - t0
    finally:
        proc.kill()
        proc.wait()
    for name in ("v.mkv", "a.mka"):
        info = probe(tmp_path / name)
        assert info["errors"] == 0, name
        assert info["last"] is not None and info["last"] >= killed_at - 1.0, (name, info, killed_at)


def _stored_dts(path):
    import av

    with av.open(str(path)) as c:
        return [p.dts for p in c.demux(c.streams[0]) if p.dts is not None and p.size]


def test_clock_steps_back_never_give_equal_dts_in_the_file(tmp_path):
    """The capture clock stepping back (a late sender report, then an on-time one) or two
    frames within one millisecond must still leave strictly increasing DTS in the stored unit
    (Matroska's ms), and every moved frame is counted."""
    aus = h264_access_units(2, fps=30, gop=30)
    times = [T0 + i / 30 for i in range(len(aus))]
    times[20:24] = [times[19] - 0.05, times[19] - 0.0498, times[19] + 0.0001, times[19] + 0.0003]
    w = ChannelWriter(tmp_path / "v.mkv", "h264")
    for au, t in zip(aus, times):
        assert w.write(au, t)
    w.close()
    dts = _stored_dts(tmp_path / "v.mkv")
    assert len(dts) == len(aus)
    assert all(b > a for a, b in zip(dts, dts[1:])), dts[15:30]
    assert w.clamps == 4


def test_audio_pause_and_reconnect_keep_dts_increasing(tmp_path):
    """A reconnect maps a fresh RTP clock; its first frames may land before the last one."""
    packets = opus_packets(2)
    w = ChannelWriter(tmp_path / "a.mka", "opus")
    t = T0
    for i, p in enumerate(packets):
        if i == 50:
            t -= 0.1  # the new connection's clock starts a little behind
            w.write(p, t, discontinuity=True)
        else:
            w.write(p, t)
        t += 0.02
    w.close()
    dts = _stored_dts(tmp_path / "a.mka")
    assert all(b > a for a, b in zip(dts, dts[1:]))
    assert w.clamps > 0 and len(w.gaps) == 1
