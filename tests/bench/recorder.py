"""Benchmark: reeldb-recorder's CPU per 1080p30 screen against ffmpeg's CLI doing the same capture.

    python tests/bench/recorder.py                 # 30 s each, 1920x1080 at 30 fps
    python tests/bench/recorder.py --seconds 8     # to check the script works

An Xvfb screen (1920x1080) plays ffmpeg's animated ``testsrc2`` full screen through SDL, so every
frame changes. Then, one after the other, on the same screen:

- **ffmpeg**: ``ffmpeg -f x11grab -framerate 30 -i :N -c:v libx264`` with the recorder's x264
  settings (preset, ``zerolatency``, baseline, CRF, VBV cap, 2 s keyframes), written to MPEG-TS
  in /dev/null;
- **reeldb-recorder**: the console script driven over its stdin/stdout protocol, recording
  ``display:1`` (``x11:<display>``) into a ReelDB server on loopback (the server's CPU is not
  counted; the recorder's includes the RTP packetizing and SRTP that ffmpeg does not do).

Each process's CPU (user + system, from /proc) is read over the same window after a 3 s warm-up,
as percent of one core, with the frames per second it reached; the ratio is recorder / ffmpeg
(goal: at most 1.1). The recorder's own ``recording-progress`` figures (its CPU budget and the
share spent grabbing and encoding) are printed beside them. The animating ffmpeg (SDL) runs in
both windows and is counted in neither; on 2 cores it competes with both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import requests  # noqa: E402
from support.desktop import start_desktop  # noqa: E402
from support.server_process import ServerProcess  # noqa: E402

from reeldb.capture.device_tracks import EncoderSettings  # noqa: E402

RECORDER = str(Path(sys.executable).with_name("reeldb-recorder"))
TICK = os.sysconf("SC_CLK_TCK")
WARMUP = 3.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def measure(pid: int, seconds: float) -> float:
    """Percent of one core ``pid`` used over ``seconds`` from now."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def x264_cli(settings: EncoderSettings, width: int, height: int) -> list[str]:
    opts = settings.x264_options(width, height)
    return ["-c:v", "libx264", "-preset", opts["preset"], "-tune", opts["tune"], "-profile:v", opts["profile"],
            "-crf", opts["crf"], "-maxrate", opts["maxrate"], "-bufsize", opts["bufsize"],
            "-x264-params", opts["x264-params"], "-pix_fmt", "yuv420p"]


def run_ffmpeg(display: str, settings: EncoderSettings, width: int, height: int, seconds: float) -> dict:
    argv = ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1",
            "-f", "x11grab", "-framerate", str(settings.fps), "-video_size", f"{width}x{height}",
            "-draw_mouse", "1", "-i", display, "-t", str(seconds + WARMUP + 2),
            *x264_cli(settings, width, height), "-f", "mpegts", "-y", "/dev/null"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    frames: list[tuple[float, int]] = []

    def read() -> None:
        for line in proc.stdout:
            if line.startswith("frame="):
                frames.append((time.monotonic(), int(line.split("=", 1)[1])))

    threading.Thread(target=read, daemon=True).start()
    time.sleep(WARMUP)
    start = time.monotonic()
    cpu = measure(proc.pid, seconds)
    end = time.monotonic()
    proc.wait(60)
    window = [n for t, n in frames if start <= t <= end]
    fps = (window[-1] - window[0]) / (end - start) if len(window) > 1 else float("nan")
    return {"cpu": cpu, "fps": fps, "argv": " ".join(argv)}


def run_recorder(display: str, settings: EncoderSettings, seconds: float, root: Path) -> dict:
    server = ServerProcess(root / "server", env={"REELDB_AUTO_EXPORT": "false", "REELDB_ICE_ADDRESSES": "127.0.0.1"})
    server.start()
    try:
        h = {"x-access-token": server.api_key}
        session = requests.post(f"{server.url}/collection/default/capture/session", json={"end_user_id": "bench"},
                                headers=h, timeout=10).json()["data"]
        token = requests.post(f"{server.url}/capture/session/token", json={"expires_in": 600}, headers=h,
                              timeout=10).json()["data"]["token"]
        env = {**os.environ, "REELDB_CAPTURE_SOURCES": json.dumps({"display:1": f"x11:{display}"}),
               "REELDB_ICE_ADDRESSES": "127.0.0.1", "REELDB_RECORDER_FPS": str(settings.fps),
               "REELDB_RECORDER_PRESET": settings.preset, "REELDB_RECORDER_CRF": str(settings.crf),
               "REELDB_RECORDER_PROGRESS": "1"}
        proc = subprocess.Popen([RECORDER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, bufsize=1)
        events: list[dict] = []

        def read() -> None:
            for line in proc.stdout:
                if line.startswith("videodb_recorder|"):
                    events.append(json.loads(line.split("|", 1)[1]))

        threading.Thread(target=read, daemon=True).start()

        def send(command: str, params: dict) -> None:
            proc.stdin.write("videodb_recorder|" + json.dumps({"command": command, "commandId": command,
                                                                "params": params}) + "\n")
            proc.stdin.flush()

        send("init", {"apiUrl": server.url})
        send("startRecording", {"sessionId": session.get("session_id") or session["id"], "uploadToken": token,
                                "channels": [{"channel_id": "display:1", "type": "video", "store": True,
                                              "is_primary": True}]})
        deadline = time.monotonic() + 30
        while not any(e.get("event") == "recording-started" for e in events):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the recorder did not start: {events}")
            time.sleep(0.05)
        time.sleep(WARMUP)
        before = [e for e in events if e.get("event") == "recording-progress"]
        start = time.monotonic()
        cpu = measure(proc.pid, seconds)
        end = time.monotonic()
        after = [e for e in events if e.get("event") == "recording-progress"]
        send("stopRecording", {})
        send("shutdown", {})
        proc.wait(30)
        first, last = before[-1]["payload"], after[-1]["payload"]
        frames = last["channels"]["display:1"]["frames"] - first["channels"]["display:1"]["frames"]
        span = last["elapsed"] - first["elapsed"]
        encode = (last["channels"]["display:1"]["encoder_cpu_seconds"]
                  - first["channels"]["display:1"]["encoder_cpu_seconds"])
        return {"cpu": cpu, "fps": frames / span if span else float("nan"),
                "screen_thread_cpu": 100 * encode / span if span else float("nan"),
                "bitrate": last["channels"]["display:1"]["bitrate"], "budget": last["cpu"], "window": end - start}
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--preset", default="ultrafast")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    settings = EncoderSettings(fps=args.fps, preset=args.preset)
    with tempfile.TemporaryDirectory(prefix="reeldb-bench-recorder-") as tmp:
        root = Path(tmp)
        desk = start_desktop(root / "desktop", width, height)
        try:
            animate = subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                 f"testsrc2=size={width}x{height}:rate={args.fps}", "-pix_fmt", "yuv420p", "-window_borderless", "1",
                 "-f", "sdl2", "bench"], env={**os.environ, **desk.env, "SDL_VIDEODRIVER": "x11"},
                stdin=subprocess.DEVNULL)
            desk.procs.append(animate)
            time.sleep(2)
            print(f"screen {width}x{height} at {args.fps} fps (testsrc2 through SDL), x264 {args.preset}, "
                  f"{args.seconds:.0f} s measured after {WARMUP:.0f} s of warm-up, 2 cores shared with the animation")
            ff = run_ffmpeg(desk.display, settings, width, height, args.seconds)
            rec = run_recorder(desk.display, settings, args.seconds, root)
        finally:
            desk.stop()
    print(f"{'':18}{'CPU (% of a core)':>18}{'fps':>8}")
    print(f"{'ffmpeg CLI':18}{ff['cpu']:>18.1f}{ff['fps']:>8.1f}")
    print(f"{'reeldb-recorder':18}{rec['cpu']:>18.1f}{rec['fps']:>8.1f}   "
          f"(screen thread {rec['screen_thread_cpu']:.1f} %, {rec['bitrate'] / 1e6:.2f} Mbit/s sent)")
    ratio = rec["cpu"] / ff["cpu"] if ff["cpu"] else float("nan")
    per_frame = (rec["cpu"] / rec["fps"]) / (ff["cpu"] / ff["fps"]) if ff["cpu"] and rec["fps"] and ff["fps"] else float("nan")
    print(f"ratio recorder/ffmpeg: {ratio:.2f}x CPU, {per_frame:.2f}x CPU per frame (goal <= 1.1x)")
    print(f"recorder's own report: {json.dumps(rec['budget'])}")
    print(f"ffmpeg: {re.sub(r' +', ' ', ff['argv'])}")


if __name__ == "__main__":
    main()
