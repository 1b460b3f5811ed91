"""Benchmark: the storyboard (and poster) against the export they belong to.

    python tests/bench/thumbnails.py            # 10-minute 720p25 upload + 5-minute 1080p30 recording
    python tests/bench/thumbnails.py --short    # 30 s / 60 s variants, to check the script works

Two cases, each made once and cached under tests/.cache/ (gitignored), each timed side by side
in one run, best of --runs, in CPU seconds of every thread (``time.process_time``) and wall:

- **upload**: a 720p25 H.264 file, 4 s GOP (libx264 ``fast``, CRF 30; a moving bar over static
  noise, so keyframes are screen-sized). Its export is ``make_hls`` (stream copy into MPEG-TS)
  with the storyboard made from the keyframes it reads (``make_hls(watch=StoryboardMaker())``)
  and the poster; also shown: ``storyboard()`` reading the file on its own.
- **recording**: a capture session as a browser leaves it (1080p30 H.264 screen with static
  noise, a keyframe every 4 s as ``REELDB_KEYFRAME_INTERVAL`` asks, plus an Opus mic). Its
  export is ``export_session`` (video copied, audio decoded, mixed and encoded to AAC), then
  ``make_hls`` with the storyboard, and the poster: what ``/capture``'s export does.

Prints the storyboard's cost (make_hls with it minus make_hls alone) as a share of the export.
Goal (issue 10): <= 10 %.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from reeldb.export.hls import make_hls  # noqa: E402
from reeldb.export.thumbnails import StoryboardMaker, poster, storyboard  # noqa: E402

# One long-video generator for the benches (cached under /tmp, made once).
from clips import FPS, GOP_SECONDS, make_video  # noqa: E402


def timed(fn) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def recording(seconds: int) -> Path:
    from support.media import AudioSpec, VideoSpec, make_session

    root = ROOT / "tests" / ".cache" / f"bench-recording-{seconds}s"
    folder = root / "cap-recording"
    if not (folder / "manifest.json").exists():
        print(f"generating a {seconds} s 1080p30 recording in {folder} (once) ...", flush=True)
        make_session(root, [VideoSpec("display:1", (40, 60, 90), width=1920, height=1080, fps=30, duration=seconds,
                                      keyint=4 * 30, primary=True, texture=24)],
                     [AudioSpec("mic:default", 220.0, duration=seconds, noise=0.02)], session_id="cap-recording")
    return folder


def report(title: str, best: dict[str, tuple[float, float]], tiles: int, before: tuple[str, ...] = ()) -> None:
    print(f"\n{title}")
    for k, (cpu, wall) in best.items():
        print(f"{k:>22}: cpu {cpu:7.3f} s  wall {wall:7.3f} s")
    for i, kind in ((0, "cpu"), (1, "wall")):
        board = max(0.0, best["make_hls+storyboard"][i] - best["make_hls"][i])
        export = sum(best[k][i] for k in before) + best["make_hls+storyboard"][i] + best["poster"][i]
        print(f"storyboard ({tiles} tiles) {kind}: {board:.3f} s = {board / export:.1%} of the export "
              f"({export:.2f} s; goal <= 10 %), {board / best['make_hls'][i]:.2f}x make_hls")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-recording", action="store_true")
    args = ap.parse_args()
    seconds = 30 if args.short else 600
    rec_seconds = 60 if args.short else 300
    src = make_video(ROOT / "tests" / ".cache" / f"bench-upload-{seconds}s.mp4", seconds)
    work = Path(tempfile.mkdtemp(prefix="bench-thumbs-"))
    try:
        results: dict[str, list[tuple[float, float]]] = {}
        board = tiles = None
        for run in range(args.runs):
            out = work / str(run)
            maker = StoryboardMaker()
            holder = {}
            for k, fn in (("make_hls", lambda: make_hls(src, out / "plain")),
                          ("make_hls+storyboard", lambda: (make_hls(src, out / "hls", watch=maker),
                                                           maker.finish(out / "hls"))),
                          ("poster", lambda: poster(src, out / "poster.jpg", width=640)),
                          ("storyboard() alone", lambda: holder.setdefault("b", storyboard(src, out / "sb")))):
                results.setdefault(k, []).append(timed(fn))
            board, tiles = holder["b"], maker.decoded
            shutil.rmtree(out)
        best = {k: min(v, key=lambda r: r[0]) for k, v in results.items()}
        print(f"upload: {seconds} s 720p{FPS} H.264, {GOP_SECONDS} s GOP, {src.stat().st_size / 1e6:.1f} MB; "
              f"storyboard: {len(board.tiles)} tiles from {board.keyframes} keyframes, "
              f"{board.decoded_frames} frames decoded of {seconds * FPS}; best of {args.runs}")
        report("upload export (make_hls + storyboard + poster):", best, tiles)

        if not args.skip_recording:
            from reeldb.export import mux

            folder = recording(rec_seconds)
            results = {}
            for run in range(args.runs):
                out = work / f"r{run}"
                maker = StoryboardMaker()
                holder = {}
                results.setdefault("export_session", []).append(timed(
                    lambda: holder.setdefault("r", mux.export_session(folder, out / "export", include_raw=False))))
                muxed = holder["r"].muxed_path
                for k, fn in (("make_hls", lambda: make_hls(muxed, out / "plain")),
                              ("make_hls+storyboard", lambda: (make_hls(muxed, out / "hls", watch=maker),
                                                               maker.finish(out / "hls"))),
                              ("poster", lambda: poster(muxed, out / "poster.jpg", width=640))):
                    results.setdefault(k, []).append(timed(fn))
                tiles = maker.decoded
                shutil.rmtree(out)
            best = {k: min(v, key=lambda r: r[0]) for k, v in results.items()}
            report(f"recording export, {rec_seconds} s 1080p30 screen (4 s GOP) + mic "
                   f"(export_session + make_hls + storyboard + poster):", best, tiles, before=("export_session",))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
