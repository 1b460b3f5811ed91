"""Benchmark: ReelDB's export against ffmpeg (-c:v copy + amix + AAC) on the same session.

    python tests/bench/export.py            # 10-minute 1080p30 session (made once, cached)
    python tests/bench/export.py --short    # 30 s variant, to check the script works

The session (display H.264 1080p30, mic with a pause, system audio starting 1.5 s late, both
Opus) is generated once under tests/.cache/ (gitignored). Both sides do the same work: copy
the video, align the two audio channels by capture time, fill holes with silence, mix,
encode AAC once at 128 kb/s with the same AAC coder, write a faststart MP4. They run
alternately in the same process run, best of --runs. Goals: ReelDB <= 1.2x ffmpeg's time
and >= 100x real time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.media import AudioSpec, VideoSpec, make_session  # noqa: E402

from reeldb.export import mux  # noqa: E402
from reeldb.export.plan import load_manifest, make_plan  # noqa: E402
from reeldb.export.probe import probe  # noqa: E402


def session(seconds: int, cache: Path) -> Path:
    folder = cache / f"bench-export-{seconds}s" / "cap-bench"
    if (folder / "manifest.json").exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    print(f"generating a {seconds} s 1080p30 session in {folder} (once) ...", flush=True)
    t = time.perf_counter()
    make_session(
        folder.parent,
        [VideoSpec("display:1", (40, 60, 90), width=1920, height=1080, fps=30, duration=seconds, keyint=300, primary=True, texture=24)],
        [
            AudioSpec("mic:default", 220.0, duration=seconds, pauses=[(seconds * 0.4, seconds * 0.4 + 5)], noise=0.02),
            AudioSpec("system_audio:default", 660.0, start=1.5, duration=seconds - 1.5, noise=0.02),
        ],
        session_id="cap-bench",
    )
    print(f"  generated in {time.perf_counter() - t:.1f} s", flush=True)
    return folder


def ffmpeg_cmd(folder: Path, out: Path, aac_coder: str) -> list[str]:
    """The same export with the ffmpeg CLI: copy video, delay each audio input to its capture
    offset (aresample async fills pauses/gaps with silence), amix without 1/n scaling, AAC."""
    plan = make_plan(load_manifest(folder))
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    inputs = [plan.video] + list(plan.audio)
    for p in inputs:
        cmd += ["-i", str(folder / p.channel.file)]
    chains, labels = [], []
    for i, p in enumerate(plan.audio, start=1):
        delay_ms = max(0, int(round(p.offset * 1000)))
        chains.append(f"[{i}:a]aresample=async=1:first_pts=0,adelay={delay_ms}:all=1[a{i}]")
        labels.append(f"[a{i}]")
    graph = ";".join(chains) + f";{''.join(labels)}amix=inputs={len(labels)}:normalize=0:dropout_transition=0[aout]"
    cmd += ["-filter_complex", graph, "-map", "0:v", "-map", "[aout]", "-c:v", "copy",
            "-c:a", "aac", "-aac_coder", aac_coder, "-b:a", "128k", "-movflags", "+faststart", str(out)]  # fmt: skip
    return cmd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="30 s session instead of 10 minutes")
    ap.add_argument("--seconds", type=int, default=None, help="session length (overrides --short)")
    ap.add_argument("--runs", type=int, default=3, help="runs per side; the best is reported")
    ap.add_argument("--aac-coder", default=mux.AAC_OPTIONS.get("aac_coder", "twoloop"), choices=["fast", "twoloop"])
    ap.add_argument("--raw", action="store_true", help="also time ReelDB with raw channel assets")
    ap.add_argument("--cache", type=Path, default=ROOT / "tests" / ".cache")
    args = ap.parse_args()
    seconds = args.seconds or (30 if args.short else 600)
    if shutil.which("ffmpeg") is None:
        print("ffmpeg not found on PATH (apt-get install ffmpeg)", file=sys.stderr)
        return 2
    mux.AAC_OPTIONS = {"aac_coder": args.aac_coder}
    folder = session(seconds, args.cache)
    size_mb = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
    ffver = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"session: {seconds} s, {size_mb:.0f} MB; aac_coder={args.aac_coder}; baseline: {ffver}")

    best = {"reeldb": float("inf"), "ffmpeg": float("inf"), "reeldb+raw": float("inf")}
    with tempfile.TemporaryDirectory(prefix="reeldb-bench-") as tmp:
        tmp = Path(tmp)
        for run in range(args.runs):
            out = tmp / f"r{run}"
            t = time.perf_counter()
            res = mux.export_session(folder, out, include_raw=False)
            best["reeldb"] = min(best["reeldb"], time.perf_counter() - t)
            ff_out = tmp / f"ff{run}.mp4"
            t = time.perf_counter()
            subprocess.run(ffmpeg_cmd(folder, ff_out, args.aac_coder), check=True)
            best["ffmpeg"] = min(best["ffmpeg"], time.perf_counter() - t)
            if args.raw:
                t = time.perf_counter()
                mux.export_session(folder, tmp / f"raw{run}")
                best["reeldb+raw"] = min(best["reeldb+raw"], time.perf_counter() - t)
            ours, theirs = res.muxed_info, probe(ff_out)
            print(f"  run {run + 1}: reeldb {best['reeldb']:.2f} s (best), ffmpeg {best['ffmpeg']:.2f} s (best); "
                  f"durations {ours.duration:.2f} / {theirs.duration:.2f} s", flush=True)  # fmt: skip
            shutil.rmtree(out, ignore_errors=True)
            ff_out.unlink(missing_ok=True)

    r, f = best["reeldb"], best["ffmpeg"]
    print()
    print(f"{'':14}{'seconds':>9}{'x real time':>13}")
    print(f"{'reeldb':14}{r:9.2f}{seconds / r:13.0f}")
    print(f"{'ffmpeg':14}{f:9.2f}{seconds / f:13.0f}")
    if args.raw:
        print(f"{'reeldb+raw':14}{best['reeldb+raw']:9.2f}{seconds / best['reeldb+raw']:13.0f}")
    ratio = r / f
    print(f"ratio reeldb/ffmpeg: {ratio:.2f}  (goal <= 1.2)   real time: {seconds / r:.0f}x  (goal >= 100x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
