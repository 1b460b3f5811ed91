"""Benchmark: the storyboard (and poster) of a video against HLS segmenting of the same file.

    python tests/bench/thumbnails.py            # 10-minute 720p25 H.264, 4 s GOP (made once, cached)
    python tests/bench/thumbnails.py --short    # 30 s variant, to check the script works

The file is made with PyAV (libx264 ultrafast, a moving bar over static noise so keyframes are
screen-sized) under tests/.cache/ (gitignored). ``make_hls`` is what every video gets today
(stream copy into MPEG-TS); the storyboard decodes only keyframes. Prints CPU and wall
seconds of each, best of --runs, and the storyboard's cost as a ratio of HLS's.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

from reeldb.export.hls import make_hls  # noqa: E402
from reeldb.export.thumbnails import poster, storyboard  # noqa: E402

# One long-video generator for the benches (cached under /tmp, made once).
from clips import FPS, GOP_SECONDS, make_video  # noqa: E402


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
