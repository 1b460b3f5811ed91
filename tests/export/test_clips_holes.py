"""Exact clips across a stretch where the display sent no frames (issue 17).

Two renditions with a 6 s pause of the display (3-9 s) and audio throughout: the HLS of an export
(which now holds the picture across the pause) and a video made the way exports were before, a
real hole in the video (the cutter must hold the picture itself). Spans inside the pause, ending
in it, starting in it and crossing it each play their whole length in video and in audio
(± 0.1 s), and ffmpeg reads the clip without a word.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest

from support.media import AudioSpec, VideoSpec, make_numbered, make_session, play
from reeldb.export.clips import clip_playlist, clip_segments
from reeldb.export.hls import make_hls
from reeldb.export.mux import export_session

SECONDS, PAUSE = 12.0, (3.0, 9.0)
SPANS = {"inside": (4.0, 8.0), "ends_in": (1.0, 5.0), "starts_in": (6.0, 11.0), "crosses": (2.0, 10.5)}


@pytest.fixture(scope="module")
def renditions(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("clip-holes")
    folder = make_session(root, [VideoSpec(duration=SECONDS, pauses=[PAUSE], keyint=30)],
                          [AudioSpec(duration=SECONDS)], session_id="cap-clip-pause")
    exported = export_session(folder, root / "out", include_raw=False).muxed_path
    legacy = make_numbered(root / "legacy.mp4", SECONDS, 1.0, hole=PAUSE)
    out = {}
    for name, source in (("export", exported), ("legacy", legacy)):
        make_hls(source, root / name)
        out[name] = (source, root / name)
    return out


@pytest.mark.parametrize("kind", ["export", "legacy"])
@pytest.mark.parametrize("span", SPANS)
def test_a_span_across_a_pause_plays_its_whole_length(renditions, kind, span):
    source, hls = renditions[kind]
    start, end = SPANS[span]
    with av.open(str(hls / "seg_00000.ts")) as c:
        origin = next(float(p.pts * p.time_base) for p in c.demux(c.streams.video[0]) if p.pts is not None)
    pieces = clip_segments(source, hls, [(start, end)], hls / "clips")
    assert pieces[0], "the span was reported outside the video"
    playlist = hls / f"{span}.m3u8"
    playlist.write_text(clip_playlist([(pieces, "")]))
    first, last, audio = play(playlist)
    assert first - origin == pytest.approx(start, abs=0.1)
    assert last - first == pytest.approx(end - start, abs=0.1)
    assert audio == pytest.approx(end - start, abs=0.1)
    errors = subprocess.run(["ffmpeg", "-v", "error", "-i", str(playlist), "-f", "null", "-"],
                            capture_output=True, text=True).stderr
    assert errors == ""
