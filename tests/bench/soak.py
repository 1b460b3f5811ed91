"""Soak: N capture sessions × M minutes on one server, watching its memory, exports and frames.

Usage:
    .venv/bin/python tests/bench/soak.py [--sessions 10] [--minutes 10] [--pause 5] [--burn] [--keep]

Every session is recorded at the same time through the official SDK's ``CaptureClient`` driving
``reeldb-recorder`` (a speaking mic from espeak-ng and a 320x240 15 fps H.264 screen, both stored;
the screen encoded by the recorder, or with ``--screen relay`` a pre-encoded file relayed as is),
runs a live transcript of its mic over a websocket, and pauses mic and display for ``--pause``
seconds once a minute (at 30 s, 1:30, ...). The server's resident memory (VmRSS from
/proc/<pid>/status, no psutil, summed over the ingest worker processes it starts) is sampled
every minute while recording and once more after the exports. It prints:

- memory per minute, and its growth after the first minute (goal ≤ 10 %: the first minute loads
  whisper and warms the caches);
- failed exports (goal 0);
- frames per session: what each stored file holds against its source over its recorded span
  minus the pauses (video: 15 per second; audio: one 20 ms Opus packet per 20 ms), next to what
  the manifest says (``dropped_frames`` while waiting for a keyframe after a resume,
  ``dts_clamps``, ``gaps``); a count off by a frame or two per pause, as pause requests take time;
- holes in each file's own timeline: frames lost outside the pauses (goal 0), and the resume
  delay after each pause (for video, the wait for the keyframe asked for).

It stops by itself: the sessions end after ``--minutes``, the exports are waited for at most
``--export-timeout`` seconds, and a watchdog ends the whole run ``--minutes`` × 60 + 900 s after it
started. Exit status 0 when the three goals are met, 1 otherwise. ``--burn`` adds one busy-looping
python per core, as the many-sessions test does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
os.environ["REELDB_ICE_ADDRESSES"] = "127.0.0.1"  # recorders and server talk over loopback only
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from reeldb.capture.ice import restrict_host_addresses  # noqa: E402

restrict_host_addresses(["127.0.0.1"])

from support.load import busy_cpu  # noqa: E402
from support.server_process import ServerProcess  # noqa: E402
from test_many_sessions import (  # noqa: E402
    SessionRun, display_report, drive_session, make_sources, raw_session, use_reeldb_recorder,
    wait_status,
)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and every process under it, in MiB, from /proc (VmRSS is in kB):
    ``reeldb serve`` receives sessions in ingest worker processes it starts (one per core by
    default), so the server's memory is the tree's."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue  # ended meanwhile
        total += next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)
    if total == 0.0:
        raise RuntimeError(f"no VmRSS for {pid}")
    return total


def audio_report(folder: Path, channel_id: str = "mic:default", ptime: float = 0.020) -> dict:
    """Opus packets a stored mic holds against its span minus pauses (one packet per ``ptime``)."""
    import av

    manifest = json.loads((folder / "manifest.json").read_text())
    entry = next(c for c in manifest["channels"] if c["channel_id"] == channel_id)
    with av.open(str(folder / entry["file"])) as c:
        packets = sum(1 for p in c.demux(audio=0) if p.size)
    first, last = entry.get("first_frame_at"), entry.get("last_frame_at")
    paused = sum(max(0.0, min(last if e is None else e, last) - max(s, first))
                 for s, e in entry.get("pauses") or []) if first is not None and last is not None else 0.0
    span = (last - first) if first is not None and last is not None else 0.0
    expected = int(round((span - paused) / ptime)) + 1 if span else 0
    return {"packets": packets, "expected": expected, "lost": max(0, expected - packets),
            "gaps": len(entry.get("gaps") or []), "dts_clamps": entry.get("dts_clamps", 0)}


def hole_report(folder: Path, channel_id: str, interval: float) -> dict:
    """Holes in a stored channel's own timeline: frames missing outside the pauses, and how long
    after each pause's end the channel went on again.

    Why holes and not a count against the span: the span's pauses are the server's times of the
    pause and resume requests, which differ from when the source stopped and started by a request's
    latency, so a count is off by a frame or two per pause whatever happened. A hole in the file's
    timestamps that no pause explains is a lost frame, on any machine. A hole that holds a pause
    is the pause; the part of it after the pause's end is the resume delay (for video, the wait for
    the keyframe the resume asked for)."""
    import av

    manifest = json.loads((folder / "manifest.json").read_text())
    entry = next(c for c in manifest["channels"] if c["channel_id"] == channel_id)
    with av.open(str(folder / entry["file"])) as c:
        stream = c.streams[0]
        times = sorted(float(p.pts * stream.time_base) for p in c.demux(stream) if p.size and p.pts is not None)
    if not times or entry.get("first_frame_at") is None:
        return {"lost": 0, "holes": [], "resume_delays": []}
    origin = entry["first_frame_at"] - times[0]  # epoch seconds of the file's t = 0
    pauses = [(start - origin, (entry["last_frame_at"] if end is None else end) - origin)
              for start, end in entry.get("pauses") or []]
    lost, holes, delays = 0, [], []
    for a, b in zip(times, times[1:]):
        if b - a <= 1.5 * interval:
            continue
        held = [(s, e) for s, e in pauses if a - 0.5 <= s and e <= b + 0.5]  # a pause inside the hole
        if held:
            delays.append(max(0.0, b - max(e for _, e in held)))
        else:
            missing = int(round((b - a) / interval)) - 1
            lost += missing
            holes.append((round(a, 3), round(b - a, 3), missing))
    return {"lost": lost, "holes": holes, "resume_delays": delays}


async def soak(args, server: ServerProcess, conn, sources: dict[str, str]) -> dict:
    seconds = args.minutes * 60.0
    pauses = [(60.0 * k + 30.0, args.pause) for k in range(args.minutes) if 60.0 * k + 30.0 + args.pause < seconds - 5]
    runs = [SessionRun(i) for i in range(args.sessions)]
    samples: list[tuple[float, float]] = []  # (minutes since the soak started, MiB)
    started = time.time()
    samples.append((0.0, rss_mb(server.proc.pid)))
    print(f"server pid {server.proc.pid}; {args.sessions} sessions × {args.minutes} min, pauses at "
          f"{[p[0] for p in pauses]} s for {args.pause} s; RSS at start {samples[0][1]:.1f} MiB", flush=True)

    async def sampler():
        minute = 1
        while True:
            await asyncio.sleep(max(0.0, started + 60 * minute - time.time()))
            mib = rss_mb(server.proc.pid)
            samples.append((float(minute), mib))
            active = sum(1 for r in runs if r.active_at and not r.stopped_at)
            print(f"  minute {minute:3d}: RSS {mib:8.1f} MiB  ({active} sessions recording)", flush=True)
            minute += 1

    sampling = asyncio.create_task(sampler())
    await asyncio.gather(*(drive_session(r, conn, server.url, sources, seconds, pauses) for r in runs))
    recorded_until = time.time()
    sampling.cancel()
    samples.append(((recorded_until - started) / 60, rss_mb(server.proc.pid)))
    print(f"  recording over at {samples[-1][0]:.1f} min: RSS {samples[-1][1]:.1f} MiB", flush=True)

    for r in runs:
        if r.cap_id:
            r.status = await wait_status(conn, r.cap_id, ("exported", "failed"), timeout=args.export_timeout)
    after = rss_mb(server.proc.pid)
    print(f"  exports settled after {time.time() - recorded_until:.0f} s: RSS {after:.1f} MiB", flush=True)
    return {"runs": runs, "samples": samples, "after_exports": after}


def report(args, server: ServerProcess, conn, result: dict) -> bool:
    runs: list[SessionRun] = result["runs"]
    samples = result["samples"]
    print("\nmemory (server VmRSS):")
    for minute, mib in samples:
        print(f"  {minute:6.1f} min  {mib:8.1f} MiB")
    print(f"  after exports  {result['after_exports']:8.1f} MiB")
    base = next((mib for minute, mib in samples if minute >= 1.0), samples[0][1])
    recording = [mib for minute, mib in samples if minute >= 1.0]
    last = recording[-1] if recording else base
    growth = (last - base) / base * 100
    peak = (max(recording) - base) / base * 100 if recording else 0.0
    print(f"  growth after the first minute: {growth:+.1f} % at the end of recording, peak {peak:+.1f} % "
          f"(goal ≤ 10 %); after exports {(result['after_exports'] - base) / base * 100:+.1f} %")

    failed = [r for r in runs if r.status != "exported"]
    print(f"\nexports: {len(runs) - len(failed)} of {len(runs)} exported, {len(failed)} failed (goal 0)")
    for r in failed:
        detail = raw_session(conn, r.cap_id) if r.cap_id else None
        print(f"  session {r.index} {r.cap_id}: {r.error or ''} {detail}")

    print("\nframes per session (stored file vs source over its span minus pauses):")
    print("  session                                   display: kept/expected lost (waited-for-key, clamps, gaps)"
          "   mic: kept/expected lost (gaps)   pauses  ws msgs/finals  records")
    lost_v = lost_a = expected_v = expected_a = 0
    for r in runs:
        folder = server.data_dir / "sessions" / r.cap_id
        if not r.cap_id or not (folder / "manifest.json").exists():
            print(f"  session {r.index}: no session folder ({r.error})")
            continue
        try:
            v, a = display_report(folder), audio_report(folder)
        except Exception as exc:  # noqa: BLE001 - a broken file is a finding, not a crash of the soak
            print(f"  {r.cap_id}: cannot read its files: {exc}")
            continue
        lost_v, expected_v = lost_v + v["lost"], expected_v + v["expected"]
        lost_a, expected_a = lost_a + a["lost"], expected_a + a["expected"]
        print(f"  {r.cap_id}  {v['packets']:6d}/{v['expected']:<6d} {v['lost']:5d} ({v['dropped_frames']}, "
              f"{v['dts_clamps']}, {v['gaps']})   {a['packets']:6d}/{a['expected']:<6d} {a['lost']:5d} ({a['gaps']})"
              f"   {len(v['pauses'])}/{len(r.pauses)}   {len(r.transcript_messages)}/{len(r.finals)}"
              f"   {len(r.records)}" + (f"  DTS: {v['dts_problems'][:2]}" if v["dts_problems"] else ""))
    print(f"  total: display lost {lost_v} of {expected_v} ({lost_v / max(1, expected_v) * 100:.2f} %), "
          f"mic lost {lost_a} of {expected_a} ({lost_a / max(1, expected_a) * 100:.2f} %)")

    print("\nholes in each stored file's timeline (frames missing outside the pauses; resume delay after each):")
    outside = 0
    delays: dict[str, list[float]] = {"display:1": [], "mic:default": []}
    for r in runs:
        folder = server.data_dir / "sessions" / r.cap_id
        if not r.cap_id or not (folder / "manifest.json").exists():
            continue
        line = [r.cap_id]
        for channel_id, interval in (("display:1", 1 / 15), ("mic:default", 0.020)):
            h = hole_report(folder, channel_id, interval)
            outside += h["lost"]
            delays[channel_id] += h["resume_delays"]
            line.append(f"{channel_id}: {h['lost']} lost {h['holes'][:3] if h['holes'] else ''}")
        print("  " + "   ".join(line))
    for channel_id, values in delays.items():
        if values:
            print(f"  {channel_id} resume delay: mean {sum(values) / len(values) * 1000:.0f} ms, "
                  f"max {max(values) * 1000:.0f} ms over {len(values)} resumes")
    ok = growth <= 10.0 and not failed and outside == 0
    print(f"\ngoals: memory growth ≤ 10 %: {'met' if growth <= 10.0 else 'MISSED'}; "
          f"failed exports 0: {'met' if not failed else 'MISSED'}; "
          f"frames lost outside the pauses 0: {'met' if outside == 0 else f'MISSED ({outside})'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--pause", type=float, default=5.0, help="seconds each minute's pause lasts")
    parser.add_argument("--export-timeout", type=float, default=600.0)
    parser.add_argument("--burn", action="store_true", help="keep every core busy with a python burner")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (printed) for inspection")
    parser.add_argument("--screen", choices=["encoded", "relay"], default="encoded",
                        help="encoded: bars encoded by the recorder, which answers keyframe requests as "
                             "browsers and real screens do; relay: a pre-encoded H.264 file (1 s GOP) "
                             "relayed as is, so a resume waits for its next keyframe")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the server (repeatable), e.g. to compare allocators")
    args = parser.parse_args()
    if args.sessions < 1 or args.minutes < 1:
        parser.error("--sessions and --minutes must be at least 1")

    import videodb

    use_reeldb_recorder()
    work = Path(tempfile.mkdtemp(prefix="reeldb-soak-"))
    print(f"generating {args.minutes + 1} min of media in {work} ...", flush=True)
    sources = make_sources(work / "media", args.minutes * 60.0 + 60.0)  # sources play once: outlast the run
    if args.screen == "encoded":
        sources["display:1"] = "pattern:bars:320x240@15"
    env = {"REELDB_SYNC_WAIT": "10", **dict(item.split("=", 1) for item in args.server_env)}
    server = ServerProcess(work / "data", env=env).start()
    ok = False
    try:
        conn = videodb.connect(api_key=server.api_key, base_url=server.url)
        watchdog = args.minutes * 60 + 900

        async def run():
            return await asyncio.wait_for(soak(args, server, conn, sources), timeout=watchdog)

        if args.burn:
            with busy_cpu():
                result = asyncio.run(run())
        else:
            result = asyncio.run(run())
        ok = report(args, server, conn, result)
    except asyncio.TimeoutError:
        print(f"watchdog: the soak did not finish within {watchdog} s; stopped", flush=True)
    finally:
        server.stop()
        if args.keep:
            print(f"data kept in {work} (server log {server.log_path})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
