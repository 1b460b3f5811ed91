"""Ingest CPU, side by side: ReelDB's stored-channel ingest against aiortc's MediaRecorder and
against aiortc's bare receive path (frames tapped and discarded), on the same streams.

Usage:
    .venv/bin/python tests/bench/ingest.py [--sessions 1 5 10] [--seconds 20] [--size 1280x720]
        [--fps 30] [--modes bare tap recorder]

Each session is a 720p30 screen (pre-encoded H.264, constrained baseline, keyframe every 2 s, from
MPEG-TS) plus two Opus audio channels (mic and system audio, pre-encoded, from Ogg), all stored.
One sender process relays every session's packets without encoding anything, so the figures are
the receiver's. Each mode runs in its own receiver process, one after the other in this run, and its
CPU time (getrusage) is what is reported:
- ``bare``: aiortc's receive path with the encoded-frame tap discarding frames: the floor;
- ``tap``: ReelDB's IngestSession (tap + Matroska mux per channel, nothing decoded);
- ``recorder``: aiortc's MediaRecorder to MP4 (decode + libx264/AAC), what ReelDB does not do.
"Dropped" counts frames the receiver did not get or did not write, against what the files hold.
Test media is cached under tests/.cache/.

Ingest workers (issue 13):
    .venv/bin/python tests/bench/ingest.py --workers 1 2 [--sessions 5 10 15 20 25 30 40]

For each worker count k, a real control node (``reeldb serve``, REELDB_INGEST_WORKERS=external,
no automatic export) and k ``reeldb worker ingest`` processes receive N sessions whose offers go
through the API (``capture/session/start`` + ``offer``), for each N of ``--sessions`` in turn;
the bare receive path (one process, frames discarded) runs at the same N as the reference. The
largest N whose stored video lost no more than the bare path's loss + 0.5 % of what was sent is
k's capacity. Printed side by side: worker CPU per session (fraction of one core, all workers
summed), the control node's CPU, and the sender's CPU and its share of the machine (the sender
relays without encoding, but at high N it needs a core of its own: past that it starves the
receivers and the figures measure the sender).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from reeldb.capture.ice import restrict_host_addresses

restrict_host_addresses(["127.0.0.1"])  # the bench's peers talk over loopback only

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "tests" / ".cache"
AUDIO_CHANNELS = ("mic:default", "system_audio:default")


def media(seconds: int, size: str, fps: int) -> tuple[Path, Path, Path]:
    """Generate (once) the screen TS and two Opus files the sender relays."""
    import av
    import numpy as np

    CACHE.mkdir(parents=True, exist_ok=True)
    w, h = (int(x) for x in size.split("x"))
    ts = CACHE / f"bench_{w}x{h}_{fps}_{seconds}s.ts"
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
            base = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
            for i in range(seconds * fps + 1):
                f = av.VideoFrame.from_ndarray(np.roll(base, i * 4, axis=1), format="rgb24").reformat(format="yuv420p")
                f.pts = i
                for p in list(ctx.encode(f)) + (list(ctx.encode(None)) if i == seconds * fps else []):
                    p.stream = s
                    c.mux(p)
        os.replace(tmp, ts)
    oggs = []
    for hz in (440, 1000):
        ogg = CACHE / f"bench_{hz}hz_{seconds}s.ogg"
        if not ogg.exists():
            tmp = ogg.with_suffix(".tmp")
            with av.open(str(tmp), "w", format="ogg") as c:
                stream = c.add_stream("libopus", rate=48000)
                stream.layout = "stereo"
                t = np.arange(seconds * 48000) / 48000
                tone = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
                pcm = np.stack([tone, tone])
                for i in range(0, pcm.shape[1], 960):
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, i:i + 960]), format="fltp",
                                                       layout="stereo")
                    frame.sample_rate, frame.pts, frame.time_base = 48000, i, Fraction(1, 48000)
                    for packet in stream.encode(frame):
                        c.mux(packet)
                for packet in stream.encode():
                    c.mux(packet)
            os.replace(tmp, ogg)
        oggs.append(ogg)
    return ts, oggs[0], oggs[1]


# -- sender process: every session's offer on stdout, answers on stdin -------------------------------
async def sender(ts: str, mic: str, system: str, sessions: int) -> None:
    from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from reeldb.capture.sources import open_source

    pcs, ends = [], []
    for _ in range(sessions):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        tracks = {"display:1": open_source("display:1", ts)[0], "mic:default": open_source("mic:default", mic)[0],
                  "system_audio:default": open_source("system_audio:default", system)[0]}
        trs = {cid: pc.addTransceiver(t, direction="sendonly") for cid, t in tracks.items()}
        await pc.setLocalDescription(await pc.createOffer())
        print(json.dumps({"sdp": pc.localDescription.sdp, "tracks": {t.mid: c for c, t in trs.items()}}), flush=True)
        ended = asyncio.Event()
        tracks["display:1"].on("ended", ended.set)
        pcs.append(pc)
        ends.append(ended)
    loop = asyncio.get_running_loop()
    for pc in pcs:
        answer = await loop.run_in_executor(None, sys.stdin.readline)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=json.loads(answer), type="answer"))
    await asyncio.gather(*(e.wait() for e in ends))
    await asyncio.sleep(1.5)  # let the last frames and the jitter buffers drain
    for pc in pcs:
        await pc.close()


# -- receiver process: one mode, N sessions ----------------------------------------------------------
async def receiver(mode: str, sessions: int, ts: Path, mic: Path, system: Path) -> dict:
    from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription

    proc = subprocess.Popen([sys.executable, __file__, "--sender", str(ts), str(mic), str(system), str(sessions)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    loop = asyncio.get_running_loop()
    offers = [json.loads(await loop.run_in_executor(None, proc.stdout.readline)) for _ in range(sessions)]
    out = Path(tempfile.mkdtemp(prefix="reeldb-bench-"))
    counts: dict[str, int] = {"video": 0, "audio": 0}
    closers = []
    before = resource.getrusage(resource.RUSAGE_SELF)
    for i, offer in enumerate(offers):
        if mode == "tap":
            from reeldb.capture.ingest import IngestSession

            chans = [{"channel_id": c, "kind": "video" if c.startswith("display") else "audio", "store": True}
                     for c in offer["tracks"].values()]
            session = IngestSession(out / f"s{i}", f"cap-bench-{i}", chans)
            answer = await session.accept_offer(offer["sdp"], offer["tracks"])
            closers.append(session.close)
        else:
            # max-bundle as IngestSession does: aiortc's default policy starves a second audio track.
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
            if mode == "recorder":
                from aiortc.contrib.media import MediaRecorder

                rec = MediaRecorder(str(out / f"s{i}.mp4"))
                closers.append(rec.stop)
            # The sender relays H.264: negotiate it, as IngestSession does (preferences must be set on
            # transceivers made before the offer is applied).
            for kind in [line[2:].split()[0] for line in offer["sdp"].splitlines() if line.startswith("m=")]:
                t = pc.addTransceiver(kind, direction="recvonly")
                if kind == "video":
                    t.setCodecPreferences([c for c in RTCRtpReceiver.getCapabilities("video").codecs
                                           if c.mimeType == "video/H264"])
            await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            if mode == "recorder":
                for t in pc.getTransceivers():
                    rec.addTrack(t.receiver.track)
            if mode == "bare":
                from reeldb.capture.tap import install_tap

                for t in pc.getTransceivers():
                    kind = t.kind

                    def count(_frame, kind=kind) -> None:
                        counts[kind] += 1

                    install_tap(t.receiver, count)
            await pc.setLocalDescription(await pc.createAnswer())
            answer = pc.localDescription.sdp
            if mode == "recorder":
                await rec.start()
            closers.append(pc.close)
        proc.stdin.write(json.dumps(answer) + "\n")
        proc.stdin.flush()
    await loop.run_in_executor(None, proc.wait)
    written: dict[str, int] = {"video": 0, "audio": 0}
    for close in closers:
        result = await close()
        if mode == "tap":
            for c in result.channels:
                written[c.kind] += c.frames
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if mode == "recorder":
        written = _frames_in(sorted(out.glob("*.mp4")))
    elif mode == "bare":
        written = counts
    shutil.rmtree(out, ignore_errors=True)
    return {"mode": mode, "sessions": sessions, "cpu_s": round(cpu, 3), "frames": written}


# -- ingest workers: a control node and k worker processes, offers through the API ------------------
def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_run(k: int, n: int, ts: Path, mic: Path, system: Path) -> dict:
    import requests

    sys.path.insert(0, str(ROOT / "tests"))
    from support.server_process import REELDB, free_port, wait_until

    data = Path(tempfile.mkdtemp(prefix="reeldb-bench-workers-"))
    port, key, token = free_port(), "sk-bench-" + "b" * 24, "wk-bench-" + "t" * 24
    env = {**os.environ, "REELDB_DATA_DIR": str(data), "REELDB_PORT": str(port), "REELDB_API_KEY": key,
           "REELDB_INGEST_WORKERS": "external", "REELDB_WORKER_TOKEN": token, "REELDB_AUTO_EXPORT": "0",
           "REELDB_ICE_ADDRESSES": "127.0.0.1", "REELDB_LOG_LEVEL": "warning", "HF_HUB_OFFLINE": "1"}
    url = f"http://127.0.0.1:{port}"
    log = open(data.parent / f"{data.name}.log", "ab")
    procs = [subprocess.Popen([REELDB, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)]
    try:
        wait_until(lambda: _up(url), 60, "the control node")
        procs += [subprocess.Popen([REELDB, "worker", "ingest", "--id", f"bench-{i}"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT) for i in range(k)]
        roster = lambda: requests.get(url + "/internal/ingest/workers", headers={"x-reeldb-worker-token": token},
                                      timeout=5).json()["data"]["workers"]
        wait_until(lambda: sum(w["up"] for w in roster()) == k, 60, f"{k} ingest workers")
        api = {"x-access-token": key}
        coll = requests.get(url + "/collection", headers=api, timeout=10).json()["data"]["default_collection"]
        sender = subprocess.Popen([sys.executable, __file__, "--sender", str(ts), str(mic), str(system), str(n)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        offers = [json.loads(sender.stdout.readline()) for _ in range(n)]
        before = {p.pid: _proc_cpu(p.pid) for p in procs}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        ids = []
        for offer in offers:
            cap = requests.post(f"{url}/collection/{coll}/capture/session", headers=api, timeout=30,
                                json={"end_user_id": "bench"}).json()["data"]["session_id"]
            chans = [{"channel_id": c, "type": "video" if c.startswith("display") else "audio", "store": True}
                     for c in offer["tracks"].values()]
            r = requests.post(f"{url}/capture/session/start", headers=api, timeout=30,
                              json={"session_id": cap, "channels": chans})
            r.raise_for_status()
            r = requests.post(f"{url}/capture/session/{cap}/offer", headers=api, timeout=60,
                              json={"sdp": offer["sdp"], "tracks": offer["tracks"], "type": "offer"})
            r.raise_for_status()
            sender.stdin.write(json.dumps(r.json()["data"]["sdp"]) + "\n")
            sender.stdin.flush()
            ids.append(cap)
        t0 = time.time()
        sender.wait()
        wall = time.time() - t0
        spent = resource.getrusage(resource.RUSAGE_CHILDREN)
        sender_cpu = (spent.ru_utime - children.ru_utime) + (spent.ru_stime - children.ru_stime)
        for cap in ids:
            requests.post(f"{url}/capture/session/{cap}/stop", headers=api, timeout=120)
        cpu = {p.pid: _proc_cpu(p.pid) - before[p.pid] for p in procs}
        written = {"video": 0, "audio": 0}
        for cap in ids:
            manifest = json.loads((data / "sessions" / cap / "manifest.json").read_text())
            for c in manifest["channels"]:
                written[c["kind"]] += c.get("frames", 0)
        return {"workers": k, "sessions": n, "worker_cpu_s": sum(cpu[p.pid] for p in procs[1:]),
                "control_cpu_s": cpu[procs[0].pid], "sender_cpu_s": sender_cpu, "wall": wall, "frames": written}
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(data, ignore_errors=True)


def _up(url: str) -> bool:
    import requests

    try:
        return requests.get(url + "/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def compare_workers(args: argparse.Namespace, ts: Path, mic: Path, system: Path, expected: dict) -> None:
    cores = os.cpu_count() or 1
    print(f"{args.size}@{args.fps} screen + {len(AUDIO_CHANNELS)} Opus channels, {args.seconds} s per session, "
          f"{cores} cores; CPU as a fraction of one core")
    print(f"{'workers':>7} {'sessions':>8} {'worker core/sess':>16} {'control core':>12} {'sender core':>11} "
          f"{'sender share':>12} {'lost video':>10} {'bare lost':>9} {'ok':>3}")
    capacity: dict[int, tuple[int, float]] = {}
    bare_lost: dict[int, int] = {}
    for k in args.workers:
        for n in args.sessions:
            if n not in bare_lost:
                out = subprocess.run([sys.executable, __file__, "--receiver", "bare", str(n), "--seconds",
                                      str(args.seconds), "--size", args.size, "--fps", str(args.fps)],
                                     capture_output=True, text=True, check=True)
                bare = json.loads(out.stdout.strip().splitlines()[-1])
                bare_lost[n] = max(0, expected["video"] * n - bare["frames"]["video"])
            row = workers_run(k, n, ts, mic, system)
            lost = max(0, expected["video"] * n - row["frames"]["video"])
            ok = lost <= bare_lost[n] + 0.005 * expected["video"] * n
            per = row["worker_cpu_s"] / n / args.seconds
            sender = row["sender_cpu_s"] / args.seconds
            print(f"{k:>7} {n:>8} {per:>16.4f} {row['control_cpu_s'] / args.seconds:>12.3f} {sender:>11.3f} "
                  f"{sender / cores:>11.0%} {lost:>10} {bare_lost[n]:>9} {'yes' if ok else 'no':>3}", flush=True)
            if not ok:
                break
            capacity[k] = (n, per)
    print()
    for k in args.workers:
        n, per = capacity.get(k, (0, float("nan")))
        print(f"{k} worker(s): {n} sessions with no frame lost beyond the bare path, {per:.4f} core per session")
    if len(capacity) >= 2:
        (k1, (n1, p1)), (k2, (n2, p2)) = sorted(capacity.items())[:2]
        print(f"{k2} vs {k1} workers: {n2 / n1 if n1 else float('nan'):.2f}x the sessions, CPU per session "
              f"{(p2 / p1 - 1) if p1 else float('nan'):+.0%}")


def _frames_in(files: list[Path]) -> dict[str, int]:
    import av

    totals = {"video": 0, "audio": 0}
    for f in files:
        with av.open(str(f)) as c:
            for packet in c.demux():
                if packet.size:
                    totals[packet.stream.type] = totals.get(packet.stream.type, 0) + 1
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 5, 10])
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--modes", nargs="+", default=["bare", "tap", "recorder"], choices=["bare", "tap", "recorder"])
    ap.add_argument("--sender", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--receiver", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, nargs="+", help="ingest worker counts to compare (see above)")
    args = ap.parse_args()
    if args.sender:
        asyncio.run(sender(*args.sender[:3], int(args.sender[3])))
        return
    ts, mic, system = media(args.seconds, args.size, args.fps)
    if args.receiver:
        print(json.dumps(asyncio.run(receiver(args.receiver[0], int(args.receiver[1]), ts, mic, system))))
        return
    expected = {"video": args.seconds * args.fps, "audio": args.seconds * 50 * len(AUDIO_CHANNELS)}
    if args.workers:
        return compare_workers(args, ts, mic, system, expected)
    print(f"{args.size}@{args.fps} screen + {len(AUDIO_CHANNELS)} Opus channels, {args.seconds} s per session; "
          "receiver CPU per session as a fraction of one core")
    print(f"{'sessions':>8} {'mode':>9} {'cpu s':>8} {'core/sess':>10} {'vs bare':>8} {'vs recorder':>12} "
          f"{'dropped video':>14} {'dropped audio':>14}")
    for n in args.sessions:
        rows = {}
        for mode in args.modes:
            t0 = time.time()
            out = subprocess.run([sys.executable, __file__, "--receiver", mode, str(n), "--seconds", str(args.seconds),
                                  "--size", args.size, "--fps", str(args.fps)], capture_output=True, text=True)
            if out.returncode:
                print(out.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{mode} receiver failed")
            rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            rows[mode]["wall"] = time.time() - t0
        for mode, row in rows.items():
            per = row["cpu_s"] / n / args.seconds
            vs_bare = row["cpu_s"] / rows["bare"]["cpu_s"] if "bare" in rows else float("nan")
            vs_rec = row["cpu_s"] / rows["recorder"]["cpu_s"] if "recorder" in rows else float("nan")
            dv = max(0, expected["video"] * n - row["frames"].get("video", 0))
            da = max(0, expected["audio"] * n - row["frames"].get("audio", 0))
            print(f"{n:>8} {mode:>9} {row['cpu_s']:>8.2f} {per:>10.4f} {vs_bare:>8.2f} {vs_rec:>12.3f} "
                  f"{dv:>14} {da:>14}")


if __name__ == "__main__":
    main()
