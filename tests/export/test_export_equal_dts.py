"""Files from older captures hold runs of equal DTS (Matroska stores ms; see
reference/export-dts-failure.md). MP4 refuses them; export must repair, never fail."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from support.media import AudioSpec, VideoSpec, make_session
from reeldb.export.hls import make_hls
from reeldb.export.mux import export_session

MS = Fraction(1, 1000)


def _with_equal_dts(path):
    """Rewrite a Matroska video file so that runs of 2-3 packets share one DTS, about a second
    apart, each after a forward jump (the pattern the stepping capture clock left)."""
    tmp = path.with_suffix(".tmp.mkv")
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        packets = [p for p in c.demux(s) if p.size]
        times = [int(round(float(p.pts * p.time_base) * 1000)) for p in packets]
        for start in range(25, len(times) - 3, 30):
            times[start] += 60  # a late report: forward jump
            times[start + 1] = times[start]  # the on-time report: back, clamped to the same ms
            if start % 60 == 25:
                times[start + 2] = times[start]
            for k in range(start + 3, len(times)):
                times[k] = max(times[k], times[k - 1])
        with av.open(str(tmp), "w", format="matroska") as out:
            st = out.add_stream_from_template(s)
            for p, t in zip(packets, times):
                p.stream, p.time_base = st, MS
                p.pts = p.dts = t
                out.mux(p)
    tmp.replace(path)
    return times


def _dts(path, kind="video"):
    with av.open(str(path)) as c:
        s = c.streams.video[0] if kind == "video" else c.streams.audio[0]
        return [p.dts for p in c.demux(s) if p.dts is not None and p.size]


def test_equal_dts_in_a_stored_display_export_and_segment(tmp_path):
    folder = make_session(tmp_path, [VideoSpec(mux_stream=True, duration=4.0)], [AudioSpec(duration=4.0)],
                          session_id="cap-dts")
    times = _with_equal_dts(folder / "display_1.mkv")
    stored = _dts(folder / "display_1.mkv")
    assert stored == times and any(b == a for a, b in zip(stored, stored[1:]))  # the bad file

    result = export_session(folder, tmp_path / "out")
    for path in (result.muxed_path, result.channels["display:1"].path):
        dts = _dts(path)
        assert len(dts) == len(stored)  # nudged, nothing dropped
        assert all(b > a for a, b in zip(dts, dts[1:]))
    playlist = make_hls(result.muxed_path, tmp_path / "hls")
    assert playlist.exists() and list((tmp_path / "hls").glob("seg_*.ts"))


def test_equal_dts_in_an_upload_is_segmented(tmp_path):
    """HLS copies uploads as they are: a Matroska upload with repeated DTS segments too."""
    folder = make_session(tmp_path, [VideoSpec(mux_stream=True, duration=3.0)], [], session_id="cap-up")
    _with_equal_dts(folder / "display_1.mkv")
    playlist = make_hls(folder / "display_1.mkv", tmp_path / "hls")
    segs = sorted((tmp_path / "hls").glob("seg_*.ts"))
    assert playlist.exists() and segs
    dts = [d for seg in segs for d in _dts(seg)]
    assert all(b > a for a, b in zip(dts, dts[1:]))
    assert len(dts) == pytest.approx(90, abs=1)
