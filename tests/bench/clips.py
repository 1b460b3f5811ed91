"""Benchmark: exact clips (smart cut) against ffmpeg re-encoding and ffmpeg stream copy.

    python tests/bench/clips.py              # 60-minute 720p25 H.264 + AAC, 4 s GOP (made once)
    python tests/bench/clips.py --short      # 2-minute variant, to check the script works
    python tests/bench/clips.py --minutes 10 # any length (each made once)
    python tests/bench/clips.py --generate   # only make the video and its HLS rendition

The video is made with PyAV (libx264 ``fast`` preset, so B-frames, CRF 30: a low bitrate; a
moving bar and the frame number over a still background) and cached with its HLS rendition
(``make_hls``, what every video has) under ``/tmp/reeldb-bench-clips/``. For 10 spans spread
over the video it times, each in one run:

- ReelDB: ``clip_segments`` with an empty cache (the edges decoded and re-encoded, whole GOPs
  copied, inner segments listed) plus ``clip_playlist``; then the same again, warm (a cache read);
- ``ffmpeg -ss S -t D -i src -c:v libx264 -c:a aac`` (the exact cut most tools make);
- ``ffmpeg -ss S -t D -i src -c copy`` (fast and inexact: starts at a keyframe).

Then the export of the same video as an upload: the wait before it plays (``prepare_asset``:
its folder and stream) side by side with ``make_hls`` alone, best of 2, then its ``previews``
job (poster and storyboard, which follow the stream as a job of their own).

Last, what the budget checks of issue 18 add to a clip request (the spans checked, their cache
entries looked up, the link's and the address's token buckets), per request, beside the warm read.

Goals (issue 10): exact clips >= 20x faster than the re-encode and <= 3x the inexact copy; an upload
playable after <= 1.1x ``make_hls`` alone, its previews after.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from concurrent.futures import ThreadPoolExecutor

from reeldb.export.clips import EDGE_WORKERS, PIECES_NAME, clip_entries, clip_playlist, clip_segments
from reeldb.export.hls import make_hls
from reeldb.server.clip_budget import SpanLimits, TokenBucket, check_spans

CACHE = Path("/tmp/reeldb-bench-clips")
FPS = 25
GOP_SECONDS = 4
#: (start, length) of the spans, as fractions of the video and seconds: shots of a search
#: (a few seconds) to long excerpts, never on a keyframe.
SPANS = [(0.031, 6.3), (0.097, 12.7), (0.163, 31.1), (0.247, 3.4), (0.329, 58.9),
         (0.418, 21.3), (0.502, 9.9), (0.611, 44.2), (0.744, 17.6), (0.873, 75.5)]


def make_video(path: Path, seconds: int, width: int = 1280, height: int = 720) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    rng = np.random.default_rng(1)
    # yuv420p planes stacked as PyAV wants them: Y (h rows), then U and V (h/4 rows each).
    base = np.empty((height * 3 // 2, width), np.uint8)
    base[:height] = rng.integers(40, 90, (height, width), dtype=np.uint8) // 8 * 8
    base[height:] = 128
    gop = GOP_SECONDS * FPS
    t0 = time.perf_counter()
    with av.open(str(tmp), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.codec_context.options = {"preset": "fast", "crf": "30",
                                   "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        block = 48000 // FPS * 4
        t = np.arange(block * 1000) / 48000
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        samples = 0
        for i in range(seconds * FPS):
            img = base.copy()
            y = (i * 4) % (height - 60)
            img[y:y + 60, : width // 2] = 220
            for b in range(17):
                img[:24, b * 24:(b + 1) * 24] = 255 if (i >> b) & 1 else 0
            frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for p in s.encode(frame):
                c.mux(p)
            while samples < (i + 1) * 48000 // FPS:
                chunk = tone[samples % (block * 500): samples % (block * 500) + 1024][None, :]
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = 48000, samples, Fraction(1, 48000)
                for p in a.encode(af):
                    c.mux(p)
                samples += 1024
            if i % (FPS * 300) == 0 and i:
                print(f"  made {i // FPS // 60} min of video ({time.perf_counter() - t0:.0f} s)", flush=True)
        for p in s.encode():
            c.mux(p)
        for p in a.encode():
            c.mux(p)
    tmp.rename(path)
    return path


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ffmpeg(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (all its threads) of one ffmpeg run."""
    t, c = time.perf_counter(), children_cpu()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)
    return time.perf_counter() - t, children_cpu() - c


def timed(fn) -> tuple[float, float]:
    """CPU seconds of this process (every thread) and wall seconds of ``fn()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def export_share(src: Path, work: Path, runs: int = 2) -> None:
    """An upload's export as the server runs it: ``prepare_asset`` (the asset's folder and its
    stream: the wait before the video plays) against ``make_hls`` alone, then its ``previews``
    job (poster + storyboard, run after the upload's row is written), each best of ``runs``."""
    from reeldb.export import probe
    from reeldb.server.assets import make_previews, prepare_asset
    from reeldb.server.storage import MediaRoot

    info = probe(src)
    best: dict[str, tuple[float, float]] = {}
    for run in range(runs):
        out = work / f"export{run}"
        storage = MediaRoot(out / "root")
        (out / "root").mkdir(parents=True)
        record: dict = {}
        results = {
            "hls": timed(lambda: make_hls(src, out / "plain")),
            "playable": timed(lambda: record.update(prepare_asset(storage, "m-bench", src, info, "video", "c-bench",
                                                                  "bench", "upload", move=False))),
        }
        hls_dir = storage.path(record["hls_path"]).parent
        results["previews"] = timed(lambda: make_previews("m-bench", storage.path(record["path"]), hls_dir))
        for k, v in results.items():
            best[k] = min(best.get(k, v), v)
        shutil.rmtree(out)
    hls, playable, previews = best["hls"], best["playable"], best["previews"]
    print(f"\nexport of the same video as an upload (best of {runs}): make_hls alone cpu {hls[0]:.2f} s "
          f"wall {hls[1]:.2f} s; playable after (prepare_asset) cpu {playable[0]:.2f} s wall {playable[1]:.2f} s "
          f"= {playable[1] / hls[1]:.2f}x make_hls's wall; then its previews job (poster + storyboard) "
          f"cpu {previews[0]:.2f} s wall {previews[1]:.2f} s")
    print(f"goal: playable after <= 1.1x make_hls alone ({'met' if playable[1] <= 1.1 * hls[1] else 'NOT met'} "
          f"in wall time, {'met' if playable[0] <= 1.1 * hls[0] else 'NOT met'} in cpu time), previews after")


def budget_checks(src: Path, hls: Path, spans: list[tuple[float, float]], cache: Path, runs: int = 200) -> float:
    """Seconds the budget of a clip request costs: what ``server/clips.py`` does before cutting
    for a caller without an API key (best of ``runs``)."""
    limits, bucket = SpanLimits(max_spans=50, min_span=0.1), TokenBucket(rate=1e9)  # never refuses
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        check_spans(spans, limits)
        new = sum(1 for e in clip_entries(src, hls, spans, cache) if not (e / PIECES_NAME).is_file())
        bucket.take([("link", "m"), ("client", "127.0.0.1")], new, time.monotonic())
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--minutes", type=int, default=None, help="video length (default 60; --short: 2)")
    ap.add_argument("--generate", action="store_true")
    ap.add_argument("--no-export", action="store_true", help="skip the storyboard's share of the export")
    opts = ap.parse_args()
    minutes = opts.minutes or (2 if opts.short else 60)
    folder = CACHE / f"{minutes}min"
    src = make_video(folder / "video.mp4", minutes * 60)
    hls = folder / "hls"
    if not (hls / "index.m3u8").exists():
        t = time.perf_counter()
        make_hls(src, hls)
        print(f"HLS rendition made in {time.perf_counter() - t:.1f} s")
    if opts.generate:
        return
    length = minutes * 60
    spans = [(round(f * length, 2), min(d, length * 0.1)) for f, d in SPANS]

    work = Path(tempfile.mkdtemp(prefix="clips-bench-"))
    cache = work / "cache"
    rows = []
    edges = ThreadPoolExecutor(EDGE_WORKERS, thread_name_prefix="clip-edges")  # the server's Runtime owns its own
    try:
        for start, dur in spans:
            t, c = time.perf_counter(), time.process_time()
            pieces = clip_segments(src, hls, [(start, start + dur)], cache, executor=edges)
            clip_playlist([(pieces, "")])
            cold, cold_cpu = time.perf_counter() - t, time.process_time() - c
            t = time.perf_counter()
            clip_playlist([(clip_segments(src, hls, [(start, start + dur)], cache), "")])
            warm = time.perf_counter() - t
            enc = sum(1 for p in pieces[0] if p.reencoded)
            reencode, reencode_cpu = ffmpeg(["-ss", f"{start}", "-t", f"{dur}", "-i", str(src), "-c:v", "libx264",
                                             "-c:a", "aac", str(work / "re.mp4")])
            copy, copy_cpu = ffmpeg(["-ss", f"{start}", "-t", f"{dur}", "-i", str(src), "-c", "copy",
                                     str(work / "copy.mp4")])
            rows.append((start, dur, cold, warm, reencode, copy, len(pieces[0]), enc, cold_cpu, reencode_cpu, copy_cpu))
        checks = budget_checks(src, hls, [(s, s + d) for s, d in spans], cache)
    finally:
        edges.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{minutes}-minute 1280x720 {FPS} fps, {GOP_SECONDS} s GOP ({src.stat().st_size / 1e6:.0f} MB), "
          f"10 spans, seconds each:")
    print(f"{'span':>17} {'exact':>7} {'cached':>7} {'ffmpeg re-enc':>14} {'ffmpeg copy':>12} "
          f"{'vs re-enc':>10} {'vs copy':>8}  pieces (re-encoded)")
    for start, dur, cold, warm, reencode, copy, n, enc, *_ in rows:
        print(f"{start:8.2f}+{dur:6.1f} s {cold:7.3f} {warm:7.4f} {reencode:14.3f} {copy:12.3f} "
              f"{reencode / cold:9.1f}x {cold / copy:7.2f}x  {n} ({enc})")
    tot = [sum(r[i] for r in rows) for i in (2, 3, 4, 5)]
    print(f"{'total':>17} {tot[0]:7.3f} {tot[1]:7.4f} {tot[2]:14.3f} {tot[3]:12.3f} "
          f"{tot[2] / tot[0]:9.1f}x {tot[0] / tot[3]:7.2f}x")
    cpu = [sum(r[i] for r in rows) for i in (8, 9, 10)]
    print(f"{'total cpu':>17} {cpu[0]:7.3f} {'':7} {cpu[1]:14.3f} {cpu[2]:12.3f} "
          f"{cpu[1] / cpu[0]:9.1f}x {cpu[0] / cpu[2]:7.2f}x  (CPU seconds of every thread: load on the machine "
          f"shifts them less)")
    print(f"goals: >= 20x faster than re-encoding ({'met' if tot[2] / tot[0] >= 20 else 'NOT met'}), "
          f"<= 3x the inexact copy ({'met' if tot[0] / tot[3] <= 3 else 'NOT met'})")
    print(f"budget checks (issue 18): {checks * 1e3:.3f} ms a request of 10 spans (spans checked, cache entries "
          f"looked up, two token buckets), {checks / max(tot[1] / len(rows), 1e-9):.2f}x a warm read of one span")

    if not opts.no_export:
        work = Path(tempfile.mkdtemp(prefix="clips-bench-export-"))
        try:
            export_share(src, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
