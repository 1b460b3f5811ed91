"""Receiver CPU benchmark for the capture stage (not a pytest test).

Usage:
    .venv/bin/python tests/bench/ingest.py [--seconds 20] [--size 1280x720] [--fps 30]
        [--mode tap|tap-live|recorder] [--no-audio]

A sender subprocess relays a pre-encoded H.264 MPEG-TS (constrained baseline, keyframe every 2 s,
no re-encoding) and encodes a WAV tone to Opus; this process is the receiver only, and its CPU
time (getrusage) is what is reported:
- ``tap``: ReelDB's IngestSession (encoded-frame tap + Matroska mux, no decode);
- ``tap-live``: the same with an RMS meter attached to the audio channel (audio decoded);
- ``recorder``: aiortc's MediaRecorder to .mp4 (decode + libx264/AAC), the baseline to beat.
Signalling goes over the sender's stdin/stdout. Test media is cached under tests/.cache/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reeldb.capture.ice import restrict_host_addresses

restrict_host_addresses(["127.0.0.1"])  # the bench's peers talk over loopback only

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = ROOT / "tests" / ".cache"
sys.path.insert(0, str(ROOT / "tests" / "capture"))


def media(seconds: int, size: str, fps: int) -> tuple[Path, Path]:
    """Generate (once) the TS and WAV the sender plays."""
    from fractions import Fraction

    import av
    import numpy as np

    from capmedia import write_wav

    CACHE.mkdir(parents=True, exist_ok=True)
    w, h = (int(x) for x in size.split("x"))
    ts = CACHE / f"bench_{w}x{h}_{fps}_{seconds}s.ts"
    wav = CACHE / f"bench_{seconds}s.wav"
    if not ts.exists():
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuv420p"
        ctx.time_base, ctx.framerate = Fraction(1, fps), Fraction(fps, 1)
        ctx.bit_rate = 1_000_000
        ctx.options = {"profile": "baseline", "preset": "veryfast", "tune": "zerolatency",
                       "keyint": str(2 * fps), "min-keyint": str(2 * fps), "scenecut": "0"}
        tmp = ts.with_suffix(".tmp")
        with av.open(str(tmp), "w", format="mpegts") as c:
            s = c.add_mux_stream("h264", width=w, height=h)
            rng = np.random.default_rng(0)
            base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            for i in range(seconds * fps + 1):
                img = np.roll(base, i * 4, axis=1)
                f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
                f.pts = i
                for p in list(ctx.encode(f)) + (list(ctx.encode(None)) if i == seconds * fps else []):
                    p.stream = s
                    c.mux(p)
        os.replace(tmp, ts)
    if not wav.exists():
        write_wav(wav, seconds)
    return ts, wav


async def sender(ts: str, wav: str, audio: bool) -> None:
    """Subprocess side: offer on stdout, answer on stdin, play the files once, exit."""
    from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from reeldb.capture.sources import open_source

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    tracks = {"display:1": open_source("display:1", ts)[0]}
    if audio:
        tracks["mic:default"] = open_source("mic:default", wav)[0]
    trs = {cid: pc.addTransceiver(t, direction="sendonly") for cid, t in tracks.items()}
    await pc.setLocalDescription(await pc.createOffer())
    print(json.dumps({"sdp": pc.localDescription.sdp, "tracks": {t.mid: c for c, t in trs.items()}}), flush=True)
    answer = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=json.loads(answer), type="answer"))
    ended = asyncio.Event()
    for t in tracks.values():
        t.on("ended", ended.set)
    await ended.wait()
    await asyncio.sleep(1.0)
    await pc.close()


async def receiver(args: argparse.Namespace) -> dict:
    ts, wav = media(args.seconds, args.size, args.fps)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--sender", str(ts), str(wav)] + (["--no-audio"] if args.no_audio else []),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    offer = json.loads(await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline))
    out = Path(tempfile.mkdtemp(prefix="reeldb-bench-"))
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.time()
    if args.mode in ("tap", "tap-live"):
        from reeldb.capture.ingest import IngestSession
        from reeldb.capture.live import RmsMeter

        chans = [{"channel_id": cid, "kind": "video" if cid.startswith("display") else "audio", "store": True}
                 for cid in offer["tracks"].values()]
        session = IngestSession(out, "cap-bench", chans)
        meter = RmsMeter()
        if args.mode == "tap-live" and not args.no_audio:
            session.live.attach("mic:default", meter)
        answer = await session.accept_offer(offer["sdp"], offer["tracks"])
    else:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
        from aiortc.contrib.media import MediaRecorder

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        rec = MediaRecorder(str(out / "baseline.mp4"))
        pc.on("track", rec.addTrack)
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription.sdp
        await rec.start()
    proc.stdin.write(json.dumps(answer) + "\n")
    proc.stdin.flush()
    await asyncio.get_running_loop().run_in_executor(None, proc.wait)
    if args.mode in ("tap", "tap-live"):
        manifest = await session.close()
        frames = {c.channel_id: c.frames for c in manifest.channels}
    else:
        await rec.stop()
        await pc.close()
        frames = {}
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    files = {p.name: p.stat().st_size for p in out.iterdir()}
    if not args.keep:
        import shutil

        shutil.rmtree(out)
    return {"mode": args.mode, "seconds": args.seconds, "size": args.size, "fps": args.fps,
            "audio": not args.no_audio, "receiver_cpu_s": round(cpu, 3), "wall_s": round(time.time() - t0, 2),
            "frames": frames, "files": files, "out": str(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--mode", choices=["tap", "tap-live", "recorder"], default="tap")
    ap.add_argument("--no-audio", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the received files (printed as out)")
    ap.add_argument("--sender", nargs=2, metavar=("TS", "WAV"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sender:
        asyncio.run(sender(args.sender[0], args.sender[1], not args.no_audio))
        return
    print(json.dumps(asyncio.run(receiver(args)), indent=1))


if __name__ == "__main__":
    main()
