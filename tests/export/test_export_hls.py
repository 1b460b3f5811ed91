"""make_hls(): VOD HLS by stream copy for video+audio, video-only and audio-only inputs."""

from __future__ import annotations

import av
import pytest

from support.export_helpers import video_packets
from reeldb.export.hls import HlsError, make_hls


def _check_playlist(playlist):
    text = playlist.read_text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and "#EXT-X-ENDLIST" in text
    segs = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert segs and all((playlist.parent / s).exists() for s in segs)
    total = sum(float(line.split(":")[1].rstrip(",")) for line in text.splitlines() if line.startswith("#EXTINF"))
    assert not list(playlist.parent.glob(".hls-*"))
    return segs, total


def test_muxed_video_and_audio(std_export, tmp_path):
    pl = make_hls(std_export.muxed_path, tmp_path / "hls", segment_seconds=2)
    segs, total = _check_playlist(pl)
    assert len(segs) == 3 and total == pytest.approx(6.0, abs=0.5)
    with av.open(str(pl)) as c:
        assert sorted(s.codec_context.name for s in c.streams) == ["aac", "h264"]
        assert c.duration / 1e6 == pytest.approx(6.0, abs=0.5)
        frames = sum(1 for _ in c.decode(video=0))
    assert frames == len(video_packets(std_export.muxed_path))
    # every segment starts with a keyframe (cut at keyframes), and decodes alone
    for s in segs:
        with av.open(str(pl.parent / s)) as c:
            first = next(p for p in c.demux(c.streams.video[0]) if p.size)
            assert first.is_keyframe
            assert sum(1 for _ in c.decode(audio=0)) > 0


def test_video_only(std_export, tmp_path):
    pl = make_hls(std_export.channels["display:1"].path, tmp_path, segment_seconds=4)
    segs, total = _check_playlist(pl)
    assert total == pytest.approx(6.0, abs=0.5)
    with av.open(str(pl)) as c:
        assert [s.type for s in c.streams] == ["video"]


def test_audio_only(std_session, tmp_path):
    from reeldb.export.mux import export_session
    from support.media import AudioSpec, make_session

    folder = make_session(tmp_path, [], [AudioSpec(duration=5.0)], session_id="cap-a")
    r = export_session(folder, tmp_path / "out", include_raw=False)
    pl = make_hls(r.muxed_path, tmp_path / "hls", segment_seconds=2)
    segs, total = _check_playlist(pl)
    assert len(segs) >= 2 and total == pytest.approx(5.0, abs=0.5)
    with av.open(str(pl)) as c:
        assert [s.codec_context.name for s in c.streams] == ["aac"]
        samples = sum(f.samples for f in c.decode(audio=0))
    assert samples / 48000 == pytest.approx(5.0, abs=0.5)


def test_opus_only_is_refused(std_export, tmp_path):
    with pytest.raises(HlsError, match="opus"):
        make_hls(std_export.channels["mic:default"].path, tmp_path)
    assert not any(tmp_path.iterdir())
