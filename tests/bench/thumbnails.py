"""Benchmark: the storyboard (and poster) of a video against HLS segmenting of the same file.

    python tests/bench/thumbnails.py            # 10-minute 720p30 H.264, 4 s GOP (made once, cached)
    python tests/bench/thumbnails.py --short    # 30 s variant, to check the script works

The file is made with PyAV (libx264 ultrafast, a moving bar over static noise so keyframes are
screen-sized) under tests/.cache/ (gitignored). ``make_hls`` is what every video gets today
(stream copy into MPEG-TS); the storyboard decodes only keyframes. Prints CPU and wall
seconds of each, best of --runs, and the storyboard's cost as a ratio of HLS's.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

from reeldb.export.hls import make_hls  # noqa: E402
from reeldb.export.thumbnails import poster, storyboard  # noqa: E402

FPS = 30
GOP_SECONDS = 4


def make_video(path: Path, seconds: int, width: int = 1280, height: int = 720) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 64, (height, width, 3), dtype=np.uint8)
    gop = GOP_SECONDS * FPS
    with av.open(str(tmp), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.codec_context.gop_size = gop
        s.codec_context.options = {"preset": "ultrafast", "crf": "28",
                                   "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(1024) / 48000)).astype(np.float32)
        samples = 0
        for i in range(seconds * FPS):
            img = noise.copy()
            y = (i * 6) % (height - 40)
            img[y:y + 40] = (200, 120, 40)
            img[:, (i * 4) % width] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for p in s.encode(frame):
                c.mux(p)
            while samples < (i + 1) * 48000 // FPS:
                af = av.AudioFrame.from_ndarray(np.stack([tone, tone]).reshape(1, -1), format="flt", layout="stereo")
                af.sample_rate, af.pts = 48000, samples
                for p in a.encode(af):
                    c.mux(p)
                samples += 1024
        for st in (s, a):
            for p in st.encode(None):
                c.mux(p)
    tmp.rename(path)
    return path


def timed(fn) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    seconds = 30 if args.short else 600
    src = make_video(ROOT / "tests" / ".cache" / f"bench-thumbs-{seconds}s.mp4", seconds)
    work = Path(tempfile.mkdtemp(prefix="bench-thumbs-"))
    try:
        results: dict[str, list[tuple[float, float]]] = {"hls": [], "storyboard": [], "poster": []}
        board = None
        for run in range(args.runs):
            out = work / str(run)
            results["hls"].append(timed(lambda: make_hls(src, out / "hls")))
            holder = {}
            results["storyboard"].append(timed(lambda: holder.setdefault("b", storyboard(src, out / "sb"))))
            results["poster"].append(timed(lambda: poster(src, out / "poster.jpg")))
            board = holder["b"]
            shutil.rmtree(out)
        best = {k: min(v, key=lambda r: r[0]) for k, v in results.items()}
        print(f"source: {seconds} s 720p{FPS} H.264, {GOP_SECONDS} s GOP, {src.stat().st_size / 1e6:.1f} MB; "
              f"best of {args.runs}")
        print(f"storyboard: {len(board.tiles)} tiles from {board.keyframes} keyframes, "
              f"{board.decoded_frames} frames decoded of {seconds * FPS}")
        for k in ("hls", "storyboard", "poster"):
            cpu, wall = best[k]
            print(f"{k:>11}: cpu {cpu:7.3f} s  wall {wall:7.3f} s")
        ratio = best["storyboard"][0] / best["hls"][0]
        ratio_wall = best["storyboard"][1] / best["hls"][1]
        print(f"storyboard / hls: {ratio:.2f}x cpu, {ratio_wall:.2f}x wall "
              f"(+ poster: {(best['storyboard'][0] + best['poster'][0]) / best['hls'][0]:.2f}x cpu)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
