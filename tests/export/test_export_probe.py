"""probe(): kind, duration, codecs; typed MediaError for unusable files."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from reeldb.export.probe import MediaError, probe


def test_channel_files(std_session):
    v = probe(std_session / "display_1.mkv")
    assert (v.kind, v.video_codec, v.width, v.height, v.audio_codec) == ("video", "h264", 320, 240, None)
    assert v.duration == pytest.approx(6.0, abs=0.1) and v.fps == pytest.approx(30, abs=1)
    a = probe(std_session / "system_audio_default.mka")
    assert (a.kind, a.audio_codec, a.sample_rate, a.channels) == ("audio", "opus", 48000, 2)
    assert a.duration == pytest.approx(4.5, abs=0.1)
    assert v.size == (std_session / "display_1.mkv").stat().st_size


def test_export_outputs(std_export):
    info = probe(std_export.muxed_path)
    assert info.kind == "video" and info.format.startswith("mov,mp4")
    assert info.to_dict()["audio_codec"] == "aac"


def _image(path, codec, fmt, pix_fmt):
    arr = np.zeros((48, 64, 3), np.uint8)
    arr[..., 1] = 200
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec)
        s.width, s.height, s.pix_fmt = 64, 48, pix_fmt
        f = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format=pix_fmt)
        f.pts, f.time_base = 0, Fraction(1, 25)
        c.mux(s.encode(f))
        c.mux(s.encode(None))


@pytest.mark.parametrize(
    "name, codec, fmt, pix_fmt",
    [("a.png", "png", "image2", "rgb24"), ("a.jpg", "mjpeg", "image2", "yuvj420p"), ("a.webp", "libwebp", "webp", "yuv420p")],
)
def test_images(tmp_path, name, codec, fmt, pix_fmt):
    path = tmp_path / name
    _image(path, codec, fmt, pix_fmt)
    info = probe(path)
    assert info.kind == "image" and (info.width, info.height) == (64, 48) and info.duration is None


def test_missing_empty_garbage(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path / "nope.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        probe(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x13\x37" * 5000)
    with pytest.raises(MediaError) as err:
        probe(tmp_path / "junk.mp4")
    assert err.value.path == tmp_path / "junk.mp4"
    with pytest.raises(MediaError):
        probe(tmp_path)


def test_truncated_mp4_without_index(std_session, tmp_path):
    # A plain (not faststart) MP4 keeps its index at the end: cut it and nothing is playable.
    src = tmp_path / "plain.mp4"
    with av.open(str(std_session / "display_1.mkv")) as i, av.open(str(src), "w") as o:
        s = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(i.streams.video[0]):
            if p.dts is not None:
                p.stream = s
                o.mux(p)
    data = src.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError):
        probe(tmp_path / "cut.mp4")


def test_truncated_matroska_still_probes_readable_part(std_session, tmp_path):
    data = (std_session / "display_1.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    info = probe(tmp_path / "cut.mkv")
    assert info.kind == "video" and 1.0 < info.duration < 5.0
    (tmp_path / "head.mkv").write_bytes(data[:300])
    with pytest.raises(MediaError):
        probe(tmp_path / "head.mkv")


def _faststart_mp4(path, seconds=3.0, fps=30):
    """A full H.264 MP4 with its index (moov) first, so a cut keeps the header."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": "15"})
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        rng = np.random.default_rng(1)
        for i in range(int(seconds * fps)):
            arr = rng.integers(0, 255, (120, 160, 3), np.uint8)  # noise: packets of similar size
            f = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def _packet_ends(path):
    """End times of the packets whose bytes are really in the file (what a player gets)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        ends = []
        try:
            for p in c.demux(s):
                if p.pts is not None and p.size:
                    ends.append(float((p.pts + (p.duration or 0)) * p.time_base))
        except av.error.FFmpegError:
            pass
        return ends


def test_truncated_faststart_mp4_reports_the_packets_duration(tmp_path):
    full = tmp_path / "full.mp4"
    _faststart_mp4(full)
    assert probe(full).duration == pytest.approx(3.0, abs=0.05)
    data = full.read_bytes()
    with av.open(str(full)) as c:
        assert c.duration / 1e6 == pytest.approx(3.0, abs=0.05)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.38)])
    with av.open(str(cut)) as c:
        assert c.duration / 1e6 == pytest.approx(3.0, abs=0.05)  # the header still says 3 s
    real = max(_packet_ends(cut))
    assert 0.5 < real < 2.0
    info = probe(cut)
    assert info.duration == pytest.approx(real, abs=0.05)


def test_header_without_any_packet_is_unreadable(tmp_path):
    full = tmp_path / "full.mp4"
    _faststart_mp4(full, seconds=1.0)
    data = full.read_bytes()
    moov_end = data.index(b"mdat") + 4  # the index and the data box header, no sample bytes
    (tmp_path / "empty.mp4").write_bytes(data[:moov_end])
    with pytest.raises(MediaError) as err:
        probe(tmp_path / "empty.mp4")
    assert err.value.code == "MEDIA_UNREADABLE" and str(tmp_path) not in str(err.value)
