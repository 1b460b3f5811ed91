"""Exact clips (export/clips.py): spans of an HLS rendition cut to the frame by smart cut.

The videos say their frame number in every picture and mark every half second in their audio
(support/media.py), so a decoded clip tells which frames and which audio it holds. Checked: the
first and last frame within one frame of the span, no frame missing or repeated, audio within
25 ms of both edges and in step with the video, whole segments and GOPs reused byte for byte,
at most one GOP re-encoded per edge, ffmpeg reading the playlist without a warning, and a second
request answered from the cache.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from support.media import BURST_EVERY, RATE, frame_number, make_numbered
from reeldb.export.clips import ClipError, Piece, clip_playlist, clip_segments, shift_timestamps
from reeldb.export.hls import make_hls

FPS = 25
TS = 90000


class Rendition:
    def __init__(self, root: Path, name: str, seconds: float, gop: float, bframes: bool) -> None:
        self.seconds, self.gop = seconds, gop
        self.source = make_numbered(root / f"{name}.mp4", seconds, gop, preset="fast" if bframes else "ultrafast",
                                    bframes=bframes)
        self.hls = root / name
        make_hls(self.source, self.hls)
        with av.open(str(self.hls / "seg_00000.ts")) as c:
            self.origin = next(p.pts for p in c.demux(c.streams.video[0]) if p.pts is not None)

    def clip(self, spans, cache: Path | None = None) -> list[list[Piece]]:
        return clip_segments(self.source, self.hls, spans, cache or self.hls / "clips")

    def packets(self) -> dict[int, bytes]:
        """Every video packet of the rendition, by pts."""
        out = {}
        for seg in sorted(self.hls.glob("seg_*.ts")):
            with av.open(str(seg)) as c:
                for p in c.demux(c.streams.video[0]):
                    if p.size:
                        out[p.pts] = bytes(p)
        return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Rendition]:
    root = tmp_path_factory.mktemp("clips")
    return {
        "gop2": Rendition(root, "gop2", 12, 2, bframes=True),     # B-frames: both edges re-encoded
        "gop30": Rendition(root, "gop30", 70, 30, bframes=False),  # P only: the end is a copied prefix
        "gop30b": Rendition(root, "gop30b", 70, 30, bframes=True),
    }


def expected_frames(start: float, end: float, seconds: float) -> list[int]:
    """Frames whose middle lies in [start, end)."""
    first = max(0, math.ceil(start * FPS - 0.5 - 1e-9))
    last = min(int(seconds * FPS), math.ceil(end * FPS - 0.5 - 1e-9)) - 1
    return list(range(first, last + 1))


def write_playlist(folder: Path, name: str, parts) -> Path:
    """The playlist as a file beside the pieces; a piece the playlist shifts is written shifted
    (what the server's segment route does for ``?shift=``)."""
    path = folder / name

    def shifted(uri: str, ticks: int) -> str:
        copy = f"shifted-{ticks}-{uri.replace('/', '_')}"
        (folder / copy).write_bytes(shift_timestamps((folder / uri).read_bytes(), ticks))
        return copy

    path.write_text(clip_playlist(parts, shifted))
    return path


def decode(playlist: Path) -> tuple[list[int], list[int], list[tuple[int, np.ndarray]]]:
    """Frame numbers, video pts and audio (pts, samples) of a playlist, in playback order."""
    numbers, pts, audio = [], [], []
    with av.open(str(playlist)) as c:
        for frame in c.decode(c.streams.video[0], c.streams.audio[0]):
            if isinstance(frame, av.VideoFrame):
                numbers.append(frame_number(frame))
                pts.append(frame.pts)
            else:
                audio.append((frame.pts, frame.to_ndarray().reshape(-1)))
    return numbers, pts, audio


def ffmpeg_complaints(playlist: Path) -> str:
    done = subprocess.run(["ffmpeg", "-nostdin", "-v", "warning", "-i", str(playlist), "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr.strip()


def extinf_total(playlist: Path) -> float:
    return sum(float(line[8:].split(",")[0]) for line in playlist.read_text().splitlines()
               if line.startswith("#EXTINF:"))


def assert_frames(numbers: list[int], expected: list[int]) -> None:
    assert numbers, "no frame decoded"
    assert abs(numbers[0] - expected[0]) <= 1 and abs(numbers[-1] - expected[-1]) <= 1, (numbers[:3], numbers[-3:])
    assert numbers == list(range(numbers[0], numbers[-1] + 1)), "a frame is missing or repeated"


SPANS = {
    "gop2": [(1.3, 5.7), (0.52, 10.96), (2.5, 3.1), (4.0, 8.0), (0, 12), (3.97, 4.05), (7.9, 11.5), (6.0, 30.0)],
    "gop30": [(12.3, 47.9), (31.0, 33.0), (29.96, 60.04), (0, 70), (58.7, 61.3), (5.0, 5.5)],
    "gop30b": [(12.3, 47.9), (31.0, 33.0), (59.5, 69.9), (0.5, 29.5)],
}


@pytest.mark.parametrize("name,start,end", [(n, s, e) for n, spans in SPANS.items() for s, e in spans])
def test_clip_plays_exactly_the_span(videos, tmp_path, name, start, end):
    video = videos[name]
    [pieces] = video.clip([(start, end)])
    end_c = min(end, video.seconds)
    playlist = write_playlist(video.hls, f"t-{start}-{end}.m3u8", [([pieces], "")])
    numbers, pts, audio = decode(playlist)

    expected = expected_frames(start, end_c, video.seconds)
    assert_frames(numbers, expected)
    assert len(numbers) / FPS == pytest.approx(end_c - start, abs=0.1)
    assert extinf_total(playlist) == pytest.approx(end_c - start, abs=0.1)
    # Source timestamps are kept: frame n is shown at origin + n / fps.
    assert all(abs((p - video.origin) / TS - n / FPS) < 0.5 / FPS for p, n in zip(pts, numbers))

    # Audio: from start to end within 25 ms, in step with the video (its markers where they belong).
    a0 = (audio[0][0] - video.origin) / TS
    last_pts, last = audio[-1]
    a1 = (last_pts - video.origin) / TS + len(last) / RATE
    assert abs(a0 - start) <= 0.025 and abs(a1 - end_c) <= 0.025, (a0, a1)
    samples = np.concatenate([s for _, s in audio])
    assert len(samples) / RATE == pytest.approx(end_c - start, abs=0.05)
    loud = np.flatnonzero(np.abs(samples) > 0.2)
    onsets = [i for k, i in enumerate(loud) if k == 0 or i - loud[k - 1] > RATE * 0.1]
    for i in onsets[1 if onsets and onsets[0] < RATE * 0.03 else 0:]:
        t = a0 + i / RATE
        assert abs(t - round(t / BURST_EVERY) * BURST_EVERY) <= 0.025, t
    assert len(onsets) >= int((end_c - start) / BURST_EVERY) - 1

    assert ffmpeg_complaints(playlist) == ""


@pytest.mark.parametrize("name,start,end", [("gop2", 0.52, 10.96), ("gop30", 12.3, 67.9), ("gop30b", 12.3, 67.9)])
def test_clip_reuses_source_bytes_and_reencodes_at_most_a_gop_per_edge(videos, name, start, end):
    video = videos[name]
    [pieces] = video.clip([(start, end)])
    source = video.packets()
    gop_frames = int(video.gop * FPS)
    encoded = [p for p in pieces if p.reencoded]
    assert len(encoded) <= 2
    copied = 0
    for piece in pieces:
        with av.open(str(piece.path)) as c:
            packets = [p for p in c.demux(c.streams.video[0]) if p.size]
        assert packets[0].is_keyframe  # every piece starts with a keyframe
        if piece.reencoded:
            assert len(packets) <= gop_frames
            continue
        for p in packets:  # copied GOPs: the rendition's own bytes
            assert bytes(p) == source[p.pts]
        copied += len(packets)
        if not piece.path.is_relative_to(video.hls / "clips"):
            assert piece.path.parent == video.hls and piece.uri == piece.path.name  # the segment itself
    assert any(not p.path.is_relative_to(video.hls / "clips") for p in pieces), "no whole segment reused"
    assert copied >= (end - start - 2 * video.gop) * FPS
    # The discontinuity flags surround each re-encoded piece.
    for a, b in zip(pieces, pieces[1:]):
        if a.reencoded or b.reencoded:
            assert b.discontinuity


def test_clip_p_only_end_is_copied_not_reencoded(videos):
    [pieces] = videos["gop30"].clip([(30.0, 45.3)])  # starts at a keyframe, ends inside the GOP
    assert pieces and not any(p.reencoded for p in pieces)


def test_clip_compile_across_videos_plays_in_order(videos, tmp_path):
    a, b = videos["gop2"], videos["gop30b"]
    plan = [(a, [(1.3, 3.3), (8.5, 10.1)]), (b, [(12.3, 14.7), (40.1, 41.0)]), (a, [(0.2, 1.0)])]
    parts, expected, total = [], [], 0.0
    for video, spans in plan:
        clips = video.clip(spans)
        parts.append((clips, f"{video.hls.name}/"))
        for s, e in spans:
            expected.append(expected_frames(s, e, video.seconds))
            total += e - s
    for video in (a, b):
        shutil.copytree(video.hls, tmp_path / video.hls.name)  # the server's layout: one prefix per video
    playlist = write_playlist(tmp_path, "compile.m3u8", parts)
    text = playlist.read_text()
    assert text.count("#EXT-X-DISCONTINUITY") >= 4 and text.count("shifted-") >= 1
    numbers, _, audio = decode(playlist)
    flat = [n for span in expected for n in span]
    assert len(numbers) == pytest.approx(len(flat), abs=len(expected))
    # Each span's frames, consecutive, in the order asked.
    i = 0
    for span in expected:
        run = numbers[i:i + len(span)]
        assert abs(run[0] - span[0]) <= 1 and run == list(range(run[0], run[0] + len(run)))
        i += len(span)
    assert len(numbers) / FPS == pytest.approx(total, abs=0.1)
    assert extinf_total(playlist) == pytest.approx(total, abs=0.1)
    assert sum(len(s) for _, s in audio) / RATE == pytest.approx(total, abs=0.1)
    assert ffmpeg_complaints(playlist) == ""
    assert "#EXT-X-TARGETDURATION:" in text and "#EXT-X-ENDLIST" in text
    target = int(text.split("#EXT-X-TARGETDURATION:")[1].split()[0])
    assert all(float(line[8:].rstrip(",")) <= target + 0.5 for line in text.splitlines() if line.startswith("#EXTINF:"))


def test_clip_b_frame_tail_copies_its_closed_prefix(videos):
    """A span ending inside a GOP with B-frames: the GOP's frames up to the last point where the
    decode order has shown exactly its first frames are the source's bytes; only the few frames
    after it (fewer than the B-frames between two references) are re-encoded."""
    video = videos["gop30b"]
    [pieces] = video.clip([(30.0, 45.3)])  # starts at a keyframe, ends inside the GOP
    source = video.packets()
    shown = []
    encoded = 0
    for piece in pieces:
        with av.open(str(piece.path)) as c:
            packets = [p for p in c.demux(c.streams.video[0]) if p.size]
        if piece.reencoded:
            encoded += len(packets)
        else:
            assert all(bytes(p) == source[p.pts] for p in packets)
        shown += sorted(p.pts for p in packets)
    assert [p.reencoded for p in pieces][-1] and sum(p.reencoded for p in pieces) == 1
    assert 1 <= encoded <= 3  # x264 "fast": at most 3 B-frames between references
    assert shown == sorted(shown) and len(shown) == len(expected_frames(30.0, 45.3, video.seconds))


def test_clip_reencoded_edges_match_the_source_pictures(videos):
    """Re-encoded edges decode to the source's pictures (PSNR), although pictures that no other
    refers to are skipped when decoding the frames before the cut."""
    video = videos["gop30b"]
    [pieces] = video.clip([(12.3, 47.9)])
    source = {}
    for seg in sorted(video.hls.glob("seg_*.ts")):
        with av.open(str(seg)) as c:
            for frame in c.decode(video=0):
                source[frame.pts] = frame.to_ndarray(format="gray").astype(np.float64)
    checked = 0
    for piece in (p for p in pieces if p.reencoded):
        with av.open(str(piece.path)) as c:
            for frame in c.decode(video=0):
                error = np.mean((frame.to_ndarray(format="gray") - source[frame.pts]) ** 2)
                assert 10 * math.log10(255 ** 2 / max(error, 1e-9)) > 35, frame.pts
                checked += 1
    assert checked >= (30 - 12.3) * FPS - 2


def test_clip_is_reference_reads_nal_ref_idc(videos):
    from reeldb.export.clips import _is_reference

    refs = {}
    for name in ("gop30", "gop30b"):
        with av.open(str(videos[name].hls / "seg_00001.ts")) as c:
            refs[name] = [_is_reference(p) for p in c.demux(c.streams.video[0]) if p.size]
    assert all(refs["gop30"])  # P-only: every picture is a reference
    assert refs["gop30b"][0] and 0 < refs["gop30b"].count(False) < len(refs["gop30b"])


def test_clip_concurrent_requests_cut_what_one_at_a_time_cuts(videos, tmp_path):
    """The server cuts on a pool: concurrent calls share the kept first segments and the edge
    workers, and give the same pieces, byte for byte, as calls one after the other."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(name, span) for name in ("gop2", "gop30b") for span in SPANS[name][:3]]

    def cut(job, cache):
        name, span = job
        [pieces] = videos[name].clip([span], cache / name / f"{span[0]}-{span[1]}")
        return [(p.duration, p.reencoded, p.path.read_bytes()) for p in pieces]

    alone = [cut(job, tmp_path / "alone") for job in jobs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda job: cut(job, tmp_path / "together"), jobs))
    assert together == alone


def test_clip_second_request_is_a_cache_read(videos, tmp_path, monkeypatch):
    video = videos["gop30b"]
    cache = tmp_path / "cache"
    first = video.clip([(12.3, 47.9), (31.0, 33.0)], cache)
    stamps = {p.path: p.path.stat().st_mtime_ns for span in first for p in span}

    import reeldb.export.clips as clips

    def no_cutting(*args, **kwargs):
        raise AssertionError("cut again instead of reading the cache")

    monkeypatch.setattr(clips, "_Cutter", no_cutting)
    again = video.clip([(12.3, 47.9), (31.0, 33.0)], cache)
    assert again == first
    assert {p.path: p.path.stat().st_mtime_ns for span in again for p in span} == stamps
    assert not list(cache.glob(".*.part"))


def test_clip_cache_is_keyed_by_the_rendition(tmp_path):
    source = make_numbered(tmp_path / "v.mp4", 6, 2, bframes=True, preset="fast")
    hls = tmp_path / "hls"
    make_hls(source, hls)
    first = clip_segments(source, hls, [(1.1, 4.3)], tmp_path / "cache")
    shutil.rmtree(hls)
    make_numbered(source, 6, 3, bframes=True, preset="fast")  # the video replaced: a new rendition
    make_hls(source, hls)
    again = clip_segments(source, hls, [(1.1, 4.3)], tmp_path / "cache")
    assert again[0][0].path.parent != first[0][0].path.parent
    numbers, _, _ = decode(write_playlist(hls, "p.m3u8", [(again, "")]))
    assert_frames(numbers, expected_frames(1.1, 4.3, 6))


def test_clip_spans_outside_the_video(videos):
    video = videos["gop2"]
    assert video.clip([(20.0, 25.0)]) == [[]]
    with pytest.raises(ValueError):
        clip_playlist([(video.clip([(20.0, 25.0)]), "")])
    [pieces] = video.clip([(10.5, 99.0)])  # clamped to the end
    assert sum(p.duration for p in pieces) == pytest.approx(1.5, abs=0.05)


def test_clip_unreadable_rendition(tmp_path):
    with pytest.raises(ClipError):
        clip_segments(None, tmp_path / "nothing", [(0, 1)], tmp_path / "cache")


def test_clip_audio_only_rendition(tmp_path):
    source = make_numbered(tmp_path / "a.mp4", 10, 2)
    with av.open(str(source)) as inp, av.open(str(tmp_path / "a.m4a"), "w") as out:
        stream = out.add_stream_from_template(inp.streams.audio[0])
        for p in inp.demux(inp.streams.audio[0]):
            if p.size:
                p.stream = stream
                out.mux(p)
    hls = tmp_path / "hls"
    make_hls(tmp_path / "a.m4a", hls)
    [pieces] = clip_segments(tmp_path / "a.m4a", hls, [(2.3, 7.7)], tmp_path / "cache")
    playlist = write_playlist(hls, "p.m3u8", [([pieces], "")])
    with av.open(str(playlist)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    assert samples / RATE == pytest.approx(5.4, abs=0.05)
    assert ffmpeg_complaints(playlist) == ""


def test_clip_shift_timestamps_moves_every_pts_dts(videos, tmp_path):
    video = videos["gop2"]
    [pieces] = video.clip([(1.3, 9.9)])
    ticks = 123456789
    for piece in pieces:
        shifted = tmp_path / "s.ts"
        shifted.write_bytes(shift_timestamps(piece.path.read_bytes(), ticks))
        with av.open(str(piece.path)) as a, av.open(str(shifted)) as b:
            before = [(p.stream.type, p.pts, p.dts, bytes(p)) for p in a.demux() if p.size]
            after = [(p.stream.type, p.pts, p.dts, bytes(p)) for p in b.demux() if p.size]
        assert [(t, pts + ticks, dts + ticks, d) for t, pts, dts, d in before] == after


def test_clip_playlist_keeps_spans_in_order_unshifted(videos):
    video = videos["gop2"]
    text = clip_playlist([(video.clip([(1.3, 3.3), (8.5, 10.1)]), "")])
    assert "?shift=" not in text and text.count("#EXT-X-DISCONTINUITY") >= 1
    text = clip_playlist([(video.clip([(8.5, 10.1), (1.3, 3.3)]), "p/")])
    assert "?shift=" in text
