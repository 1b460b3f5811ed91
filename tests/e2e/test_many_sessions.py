"""Fifty capture sessions on one busy server: each pauses, resumes and runs a live transcript on its
mic, and every one ends ``exported`` with a display whose packets have strictly increasing DTS.

Why: issue 9. The "…part returned 22" export failures (``/work/shared/reference/export-dts-failure.md``)
showed up in 3 of 37 sessions on a starved 2-core machine, so a single session proves nothing; this
records many sessions through the official SDK's ``CaptureClient`` driving ``reeldb-recorder``
against ONE server process on a busy machine (the suite's other workers, or CPU burners from
``support.load`` for the cores they leave free), a few sessions at a time (bounded concurrency keeps
CI on 2 cores inside minutes).

The helpers here (:func:`drive_session`, :func:`display_report`, ...) are also
used by ``tests/bench/soak.py``, which runs fewer, much longer sessions and watches memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: also when imported by the soak

from support.load import busy_cpu  # noqa: E402
from support.media import make_video, write_wav  # noqa: E402
from support.recording import record, use_reeldb_recorder  # noqa: E402
from support.speech import MEETING_A, compose, require_espeak  # noqa: E402

SESSIONS = int(os.environ.get("MANY_SESSIONS_N", "50"))  # the override is for trying things out
CONCURRENCY = 5  # sessions recording at once (a rolling pool, not strict waves)
SECONDS = 8.0  # media per session, counted from the moment the session is active
PAUSE_AT, PAUSE_FOR = 3.0, 1.5  # one pause of mic and display per session
FPS = 15


# ------------------------------------------------------------------------------ shared helpers

def speech_wav(path: Path, seconds: float) -> Path:
    """espeak-ng sentences (MEETING_A) with pauses between them, repeated to cover ``seconds``."""
    require_espeak()
    block, _ = compose(MEETING_A, gap=0.8, lead=0.5)
    reps = int(np.ceil(seconds * 48000 / len(block)))
    return write_wav(path, np.tile(block, reps)[: int(seconds * 48000)])


def screen(path: Path, seconds: float, fps: int = FPS, colour=(40, 90, 160)) -> Path:
    """A 320x240 H.264 screen in MPEG-TS with a keyframe every second, relayed as is.

    Not ``recording.screen_ts``: its ``keyint`` options are not libx264 AVOptions, so libx264
    ignores them and keeps its default GOP (a keyframe every 250 frames, 16.7 s at 15 fps); a
    display resumed after a pause then waits that long for a keyframe. ``x264-params`` reaches
    x264 itself."""
    return make_video(path, seconds, (320, 240), fps, tone_hz=None, background=colour, container="mpegts",
                      x264={"profile": "baseline", "preset": "ultrafast", "tune": "zerolatency",
                            "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0:bframes=0"})


def make_sources(folder: Path, seconds: float) -> dict[str, str]:
    """A mic that speaks and a small relayed H.264 screen (320x240, 15 fps), each ``seconds`` long."""
    folder.mkdir(parents=True, exist_ok=True)
    return {"mic:default": str(speech_wav(folder / "speech.wav", seconds)),
            "display:1": str(screen(folder / "screen.ts", seconds))}


STORE = {"mic:default": True, "display:1": True}


@dataclass
class SessionRun:
    """What happened to one session, as the client saw it."""

    index: int
    cap_id: str = ""
    transcript_status: Optional[str] = None
    messages: list[dict[str, Any]] = field(default_factory=list)  # what reached the websocket
    records: list[dict[str, Any]] = field(default_factory=list)  # the mic's get_transcript() after stop
    pauses: list[tuple[float, float]] = field(default_factory=list)  # wall-clock (paused, resumed)
    active_at: Optional[float] = None
    stopped_at: Optional[float] = None
    recorder_events: list[dict] = field(default_factory=list)
    error: Optional[str] = None
    status: Optional[str] = None  # the server's final status
    session: Optional[Any] = None  # the SDK's CaptureSession, once settled

    @property
    def finals(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("channel") == "transcript" and m["data"].get("is_final")]

    @property
    def transcript_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("channel") == "transcript"]


async def _in_thread(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


async def wait_status(conn, cap_id: str, wanted: tuple[str, ...], timeout: float) -> str:
    deadline = time.time() + timeout
    while True:
        status = (await _in_thread(conn.get_capture_session, cap_id)).status
        if status in wanted or time.time() > deadline:
            return status
        await asyncio.sleep(0.25)


async def drive_session(run: SessionRun, conn, server_url: str, sources: dict[str, str], seconds: float,
                        pauses: list[tuple[float, float]], linger: float = 120.0) -> SessionRun:
    """One session through CaptureClient + reeldb-recorder: wait until it is active, start a live
    transcript of its mic on a fresh websocket, pause and resume mic and display at ``pauses``
    ((offset, length) in seconds after active), stop ``seconds`` after active, and keep listening
    until the session has left ``stopping`` (the server flushes live transcripts while it
    stops; at most ``linger`` seconds). Never raises: a failure lands in ``run.error``."""
    ws = None
    listener = None
    mic = None
    try:
        cap = await _in_thread(conn.create_capture_session, end_user_id=f"many-{run.index}")
        run.cap_id = cap.id
        token = await _in_thread(conn.generate_client_token, expires_in=3 * 3600)

        async def during(client, channels):
            nonlocal ws, listener, mic
            status = await wait_status(conn, cap.id, ("active",), timeout=60)
            assert status == "active", f"{cap.id} never became active ({status})"
            run.active_at = time.time()
            live = await _in_thread(conn.get_capture_session, cap.id)
            ws = await (await _in_thread(conn.connect_websocket)).connect()
            mic = next(r for r in live.get_rtstream("mic") if r.name == "mic:default")
            result = await _in_thread(mic.start_transcript, ws.connection_id)
            run.transcript_status = result.get("status")

            async def listen():
                async for message in ws.receive():
                    run.messages.append(message)
            listener = asyncio.create_task(listen())
            for offset, length in pauses:
                await asyncio.sleep(max(0.0, run.active_at + offset - time.time()))
                paused = time.time()
                await channels.mics.default.pause()
                await channels.displays.default.pause()
                await asyncio.sleep(max(0.0, paused + length - time.time()))
                await channels.mics.default.resume()
                await channels.displays.default.resume()
                run.pauses.append((paused, time.time()))
            await asyncio.sleep(max(0.0, run.active_at + seconds - time.time()))

        run.recorder_events = await record(server_url, token, cap.id, sources, STORE, 0, primary="display:1",
                                           during=during)
        run.stopped_at = time.time()
        # The last utterance is finalised while the session stops: listen until it has stopped.
        await wait_status(conn, cap.id, ("stopped", "exported", "failed"), timeout=linger)
        await asyncio.sleep(0.5)
        if mic is not None:
            run.records = (await _in_thread(mic.get_transcript))["transcription_records"]
            # a final kept just now may still be on its way (a busy machine): give it time to arrive
            deadline = time.time() + 30
            while len(run.finals) < len(run.records) and time.time() < deadline:
                await asyncio.sleep(0.2)
    except Exception as exc:  # noqa: BLE001 - one session's failure is reported, not fatal to the rest
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
    return run


def dts_problems(path: Path, kind: str = "video") -> tuple[int, list[str]]:
    """(packets, problems): every packet of the first ``kind`` stream must have a DTS strictly
    above the one before it."""
    problems: list[str] = []
    count = 0
    last = None
    with av.open(str(path)) as container:
        streams = container.streams.video if kind == "video" else container.streams.audio
        if not streams:
            return 0, [f"{path.name}: no {kind} stream"]
        for packet in container.demux(streams[0]):
            if packet.size == 0:
                continue  # the demuxer's flush packet
            count += 1
            if packet.dts is None:
                problems.append(f"{path.name}: packet {count} has no DTS")
            elif last is not None and packet.dts <= last:
                problems.append(f"{path.name}: packet {count} DTS {packet.dts} <= {last}")
            if packet.dts is not None:
                last = packet.dts
    return count, problems


def raw_session(conn, cap_id: str) -> dict[str, Any]:
    """The session as the API returns it (status, export_status, export_error, error)."""
    raw = conn.get(f"collection/{conn.get_collection().id}/capture/session/{cap_id}")
    return {k: raw.get(k) for k in ("status", "export_status", "export_error", "error")}


def media_file(data_dir: Path, collection_id: str, media_id: str) -> Path:
    """The stored file of a video in the library (``media/<collection>/<id>/source.*``)."""
    return next((data_dir / "media" / collection_id / media_id).glob("source.*"))


def display_report(folder: Path, channel_id: str = "display:1", fps: int = FPS) -> dict[str, Any]:
    """Frames a stored display holds against what its source sent while it was not paused.

    ``expected`` is fps × (last − first frame time − paused time inside that span); a resume waits
    for the next keyframe (up to one GOP), which is by design, so ``lost`` includes up to about one
    second of frames per pause."""
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = next(c for c in manifest["channels"] if c["channel_id"] == channel_id)
    packets, problems = dts_problems(folder / entry["file"])
    first, last = entry.get("first_frame_at"), entry.get("last_frame_at")
    paused = 0.0
    for start, end in entry.get("pauses") or []:
        end = last if end is None else end
        if first is not None and last is not None:
            paused += max(0.0, min(end, last) - max(start, first))
    span = (last - first) if first is not None and last is not None else 0.0
    expected = int(round((span - paused) * fps)) + 1 if span else 0
    return {"packets": packets, "expected": expected, "lost": max(0, expected - packets),
            "dts_problems": problems, "dts_clamps": entry.get("dts_clamps", 0),
            "dropped_frames": entry.get("dropped_frames", 0), "gaps": len(entry.get("gaps") or []),
            "gap_seconds": sum(e - s for s, e in entry.get("gaps") or []), "pauses": entry.get("pauses") or [],
            "manifest_frames": entry.get("frames", 0)}


def check_export(conn, data_dir: Path, run: SessionRun) -> list[str]:
    """Problems with a settled session's export: status, the muxed MP4's and the raw display
    asset's DTS, the pauses in the manifest."""
    problems: list[str] = []
    cap = run.session
    if cap is None or cap.status != "exported":
        return [f"{run.cap_id}: status {cap.status if cap else None}"]
    coll = conn.get_collection()
    muxed = media_file(data_dir, coll.id, cap.exported_video_id)
    packets, bad = dts_problems(muxed)
    problems += [f"{run.cap_id} muxed: {p}" for p in bad[:5]]
    if packets == 0:
        problems.append(f"{run.cap_id} muxed: no video packets")
    raw = conn.get(f"collection/{coll.id}/capture/session/{cap.id}")
    asset = next((r["exported_asset_id"] for r in raw["rtstreams"] if r["name"] == "display:1"), None)
    if not asset:
        problems.append(f"{run.cap_id}: no raw display asset")
    else:
        _, bad = dts_problems(media_file(data_dir, coll.id, asset))
        problems += [f"{run.cap_id} display asset: {p}" for p in bad[:5]]
    manifest = json.loads((data_dir / "sessions" / cap.id / "manifest.json").read_text())
    for entry in manifest["channels"]:
        closed = [p for p in entry.get("pauses") or [] if p[1] is not None]
        if len(closed) != len(run.pauses):
            problems.append(f"{run.cap_id} {entry['channel_id']}: pauses {entry.get('pauses')} "
                            f"for {len(run.pauses)} made")
    return problems


# ------------------------------------------------------------------------------ the test

@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_fifty_sessions_on_a_busy_machine_all_export_with_increasing_dts(server_factory, tmp_path):
    import videodb

    use_reeldb_recorder()
    sources = make_sources(tmp_path / "media", 60.0)  # longer than any session: sources play once
    server = server_factory(sync_wait="10", auto_index="false")  # capacity of ingest and export, not of whisper
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    runs = [SessionRun(i) for i in range(SESSIONS)]

    async def main():
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(run: SessionRun):
            async with gate:
                await drive_session(run, conn, server.url, sources, SECONDS, [(PAUSE_AT, PAUSE_FOR)])
            if run.cap_id:
                run.status = await wait_status(conn, run.cap_id, ("exported", "failed"), timeout=300)
                run.session = await _in_thread(conn.get_capture_session, run.cap_id)

        await asyncio.gather(*(one(run) for run in runs))

    with busy_cpu():
        asyncio.run(main())

    errors = [f"session {r.index} ({r.cap_id}): {r.error}" for r in runs if r.error]
    assert not errors, "\n".join(errors)
    statuses = {r.cap_id: r.status for r in runs}
    exported = [r for r in runs if r.status == "exported"]
    failed = {r.cap_id: raw_session(conn, r.cap_id) for r in runs if r.status != "exported"}
    assert len(exported) == SESSIONS, f"{len(exported)} of {SESSIONS} exported; not exported: {failed}\n" + \
        "\n".join(line for line in server.log().splitlines() if "failed" in line.lower())[-4000:]

    problems = [p for r in runs for p in check_export(conn, server.data_dir, r)]
    assert not problems, "\n".join(problems)

    # Every session ran a live transcript of its mic and it heard words; every final it kept also
    # reached its websocket, the ones finalised while the session stopped included.
    assert all(r.transcript_status == "running" for r in runs), {r.cap_id: r.transcript_status for r in runs}
    deaf = [r.cap_id for r in runs if not r.records and not r.finals]
    assert not deaf, f"the live transcript of these sessions heard nothing: {deaf}"
    unsent = {r.cap_id: (len(r.finals), len(r.records)) for r in runs if len(r.finals) < len(r.records)}
    assert not unsent, f"finals kept but never sent (sent, kept): {unsent}"
    heard = " ".join(m["data"]["text"].lower() for r in runs for m in r.transcript_messages)
    assert any(word in heard for word in ("budget", "database", "quarterly", "migration")), heard[:500]

    # Report what the stored displays hold (informative; lost frames are the soak's business).
    reports = {r.cap_id: display_report(server.data_dir / "sessions" / r.cap_id) for r in runs}
    print(f"\n{SESSIONS} sessions exported; display dts_clamps total "
          f"{sum(x['dts_clamps'] for x in reports.values())}, dropped_frames total "
          f"{sum(x['dropped_frames'] for x in reports.values())}, frames lost vs source total "
          f"{sum(x['lost'] for x in reports.values())} of {sum(x['expected'] for x in reports.values())}; "
          f"transcript: {sum(len(r.finals) for r in runs)} finals on websockets, "
          f"{sum(len(r.records) for r in runs)} records kept, {sum(not r.transcript_messages for r in runs)} "
          f"websockets without a message; statuses {set(statuses.values())}")
    stored_dts = [p for x in reports.values() for p in x["dts_problems"]]
    assert not stored_dts, "stored display files hold non-increasing DTS:\n" + "\n".join(stored_dts[:20])
