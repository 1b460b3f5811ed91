"""Benchmark: how long after a phrase is said its alert arrives, against the live transcript's own
latency on the same speech.

    .venv/bin/python tests/bench/live_alerts.py              # 8 phrases said, 2 sessions
    .venv/bin/python tests/bench/live_alerts.py --quick      # 3 phrases, 1 session: checks it works

A real server (``reeldb serve``, ingest workers as configured by default) records a session through
the official SDK's ``CaptureClient`` driving ``reeldb-recorder``. The mic plays espeak-ng sentences,
half of them with the phrase "the quarterly budget", 2.5 s apart. The application, as in VideoDB's
docs, makes an event ``"the quarterly budget"`` and starts a live spoken-word index on the mic
(``segmenter="sentence", length=1``) with an alert that posts to a webhook and to the websocket.
It also asks for the live transcript on the same websocket.

Measured per phrase, from the end of the record that holds it (the ``end_time`` the alert
carries: unix seconds of the last word's audio as the server received it):
- the alert on the websocket, and as a signed webhook (the stored channel's goes through the
  outbox);
- the baseline, the live transcript's final that holds the phrase, on the websocket: the
  transcriber's own latency, which every live index has to wait for.
Goal (issue 21): alert p50 <= 2 s on 2 cores.

And the CPU of a live spoken-word index on one channel: the server's processes (the control node
and its ingest workers), CPU seconds over the session's wall time, with the index (and the live
transcript under it) against the same session recorded with no live work.
Run it on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.media import screen_ts, write_wav  # noqa: E402
from support.recording import listen_for, record, use_reeldb_recorder, when_active  # noqa: E402
from support.server_process import ServerProcess, WebhookReceiver, process_family  # noqa: E402
from support.speech import compose, require_espeak  # noqa: E402

PHRASE = "the quarterly budget"
WITH = ["We need to talk about the quarterly budget today.", "I sent the quarterly budget to finance.",
        "Is the quarterly budget approved yet?", "The quarterly budget looks tight this time."]
WITHOUT = ["The printer on the third floor is out of paper.", "Remember to water the tomato plants.",
           "The new office in Berlin opens in September.", "Latency on the search endpoint went up."]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants, from /proc."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for member in process_family(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone since it was listed
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


@dataclass
class Watched:
    """A session as the application saw it: websocket messages with when each arrived, the alert
    webhooks with theirs, and the server's CPU (cores) from active to the end of listening."""

    seen: list[tuple[float, dict]]
    webhooks: list[tuple[float, dict]]
    cores: float


def watch(server: ServerProcess, hook: WebhookReceiver, conn, sources: dict[str, str], store: dict[str, bool],
          seconds: float, label: str, start_live: Callable[[Any, Any], Awaitable[None]] | None,
          done: Callable[[list[dict]], bool] | None = None) -> Watched:
    """Record ``sources`` through CaptureClient; once the session is active, ``start_live(live,
    ws)`` (the application's live work; None: none), then listen for ``seconds`` from the start
    and until ``done(messages)`` (at most 20 s more); the alert webhooks labelled ``label`` that
    came for the alerts the websocket saw (what came is reported either way)."""
    cap = conn.create_capture_session(end_user_id="bench")
    token = conn.generate_client_token(expires_in=600)
    messages: list[dict] = []
    arrived: list[float] = []
    hooks_before = len(hook.events)
    cpu: list[float] = []

    async def during(client, channels):
        started = time.time()
        live, ws = await when_active(conn, cap.id)
        cpu.extend([tree_cpu(server.proc.pid), time.time()])
        if start_live is not None:
            await start_live(live, ws)
        await listen_for(ws, messages, started + seconds, done, wait=20.0, arrived=arrived)
        cpu[0], cpu[1] = tree_cpu(server.proc.pid) - cpu[0], time.time() - cpu[1]

    asyncio.run(record(server.url, token, cap.id, sources, store, 0, during=during))
    seen = list(zip(arrived, messages))
    alerts = sum(m.get("channel") == "alert" for m in messages)
    try:
        hook.wait_for(lambda events: len(events) - hooks_before >= alerts, timeout=30)
    except AssertionError:
        pass
    webhooks = [(at, body) for at, body in zip(hook.arrived[hooks_before:], hook.events[hooks_before:])
                if body.get("label") == label]
    return Watched(seen, webhooks, cpu[0] / cpu[1])


def session(server: ServerProcess, hook: WebhookReceiver, folder: Path, phrases: int, live_work: bool = True
            ) -> dict[str, list[float]]:
    import videodb

    sentences = [s for i in range(phrases) for s in (WITH[i % len(WITH)], WITHOUT[i % len(WITHOUT)])]
    audio, _ = compose(sentences, gap=2.5, lead=4.0)
    seconds = len(audio) / 48000 + 3.0
    sources = {"mic:default": str(write_wav(folder / "mic.wav", audio)),
               "display:1": str(screen_ts(folder / "screen.ts", int(seconds) + 2, (90, 90, 90)))}
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    event_id = conn.create_event(f'"{PHRASE}"', "budget")

    async def start_live(live, ws):
        rts = live.get_rtstream("mic")[0]
        await asyncio.to_thread(rts.start_transcript, ws_connection_id=ws.connection_id)
        index = await asyncio.to_thread(rts.index_spoken_words, segmenter="sentence", length=1,
                                        ws_connection_id=ws.connection_id)
        await asyncio.to_thread(index.create_alert, event_id, hook.url, ws.connection_id)

    got = watch(server, hook, conn, sources, {"mic:default": True, "display:1": True}, seconds + 5.0,  # the last finals
                "budget", start_live if live_work else None)
    alerts = [(at, m["data"]) for at, m in got.seen if m.get("channel") == "alert"]
    finals = [(at, m["data"]) for at, m in got.seen if m.get("channel") == "transcript"
              and m["data"].get("is_final") and "budget" in m["data"]["text"].lower()]
    return {"alert_ws": [at - a["end_time"] for at, a in alerts],
            "alert_webhook": [at - b["end_time"] for at, b in got.webhooks],
            "transcript_final_ws": [at - f["end"] / 1000 for at, f in finals],
            "said": [float(phrases)] if live_work else [],
            "cores_live" if live_work else "cores_plain": [got.cores]}


Session = Callable[[ServerProcess, WebhookReceiver, Path], dict[str, list[float]]]


def on_one_server(sessions: list[Session]) -> dict[str, list[float]]:
    """Run each session, in a folder of its own, on one real server with a webhook receiver for
    its alerts; their figures, merged by name."""
    use_reeldb_recorder()
    hook = WebhookReceiver()
    found: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data").start()
        try:
            for n, run in enumerate(sessions):
                folder = Path(tmp) / f"s{n}"
                folder.mkdir()
                for key, values in run(server, hook, folder).items():
                    found.setdefault(key, []).extend(values)
        finally:
            server.stop()
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phrases", type=int, default=4, help="phrases said per session")
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.phrases, args.sessions = 3, 1
    require_espeak()
    # each session with the live index, then the same session without
    found = on_one_server([functools.partial(session, phrases=args.phrases, live_work=live_work)
                           for _ in range(args.sessions) for live_work in (True, False)])
    said = int(sum(found.pop("said", [])))
    print(f"{said} phrases said over {args.sessions} session(s); seconds from the end of the record "
          f"that holds the phrase:")
    for key in ("transcript_final_ws", "alert_ws", "alert_webhook"):
        values = found.get(key, [])
        print(f"  {key:20s} n={len(values):3d}  p50 {percentile(values, 0.5):6.2f}  p90 {percentile(values, 0.9):6.2f}"
              f"  max {max(values) if values else float('nan'):6.2f}")
    base = percentile(found.get("transcript_final_ws", []), 0.5)
    print(f"  alert p50 - transcript final p50: {percentile(found.get('alert_ws', []), 0.5) - base:+.2f} s "
          f"(what the index, the match and the delivery add); goal alert p50 <= 2 s")
    live, plain = found.get("cores_live", []), found.get("cores_plain", [])
    print(f"server CPU during the session (cores): with the live index {sum(live) / len(live):.3f}, "
          f"without {sum(plain) / len(plain):.3f}: the live spoken-word index and its transcript cost "
          f"{sum(live) / len(live) - sum(plain) / len(plain):.3f} of a core on one channel")


if __name__ == "__main__":
    main()
