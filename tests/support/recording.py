"""Recording with the official SDK's CaptureClient driving reeldb-recorder, as a user would."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
import types
from typing import Callable, Optional

from . import refuse_in_fast_tier



def use_reeldb_recorder() -> None:
    """The docs' two lines (README, docs/recording.md): make the SDK's capture-binary lookup find reeldb-recorder."""
    refuse_in_fast_tier("a recorder")
    exe = shutil.which("reeldb-recorder", path=os.path.dirname(sys.executable))
    sys.modules["videodb_capture_bin"] = types.SimpleNamespace(get_binary_path=lambda: exe)


async def record(server_url: str, token: str, session_id: str, sources: dict[str, str], store: dict[str, bool],
                 seconds: float, primary: str | None = None, during=None) -> list[dict]:
    """Start a session through CaptureClient with ``store`` flags, record ``seconds``, stop; return events."""
    import videodb.capture as sdk_capture

    os.environ["REELDB_CAPTURE_SOURCES"] = json.dumps(sources)
    client = sdk_capture.CaptureClient(client_token=token, base_url=server_url)
    events: list[dict] = []
    try:
        channels = await client.list_channels()
        chosen = []
        for ch in channels.all():
            if ch.id in store:
                ch.store = store[ch.id]
                ch.is_primary = ch.id == primary
                chosen.append(ch)
        await client.start_session(capture_session_id=session_id, channels=chosen)
        if during is not None:
            await during(client, channels)
        else:
            await asyncio.sleep(seconds)
        await client.stop_session()
        async def drain():
            async for event in client.events():
                events.append(event)
                if event.get("event") in ("recording-complete", "error"):
                    return
        await asyncio.wait_for(drain(), 20)
    finally:
        await client.shutdown()
    return events


def two_speakers(folder) -> tuple[dict[str, str], float]:
    """A mic saying MEETING_A's first sentence and system audio MEETING_B's, each after 4 s of
    silence (time to start live work on an active session), and a grey screen: the sources for
    ``REELDB_CAPTURE_SOURCES`` and how long to stream for the words to be said."""
    from .media import screen_ts, write_wav
    from .speech import MEETING_A, MEETING_B, compose, require_espeak

    require_espeak()
    mic_audio, _ = compose([MEETING_A[0]], lead=4.0)
    sys_audio, _ = compose([MEETING_B[0]], lead=4.0)
    sources = {"mic:default": str(write_wav(folder / "mic.wav", mic_audio)),
               "system_audio:default": str(write_wav(folder / "sys.wav", sys_audio)),
               "display:1": str(screen_ts(folder / "screen.ts", 20, (90, 90, 90)))}
    return sources, max(len(mic_audio), len(sys_audio)) / 48000 + 2.5


async def when_active(conn, session_id: str):
    """Inside ``record``'s ``during``: wait for the session to be ``active``; its view then, and
    a connected websocket (``connection_id`` for live work)."""
    while (await asyncio.to_thread(conn.get_capture_session, session_id)).status != "active":
        await asyncio.sleep(0.1)
    live = await asyncio.to_thread(conn.get_capture_session, session_id)
    return live, await conn.connect_websocket().connect()


async def listen_for(ws, messages: list[dict], until: float, done: Optional[Callable[[list[dict]], bool]] = None,
                     wait: float = 60.0, arrived: Optional[list[float]] = None) -> None:
    """Inside ``record``'s ``during``: collect the websocket's messages (and, in ``arrived``, when
    each came) until the wall-clock time ``until``, then until ``done(messages)`` or ``wait``
    seconds more (a busy machine decodes late: wait for the condition, not a time); then close it."""
    async def listen():
        async for message in ws.receive():
            if arrived is not None:
                arrived.append(time.time())
            messages.append(message)

    listener = asyncio.create_task(listen())
    try:
        await asyncio.sleep(max(0.0, until - time.time()))
        deadline = time.time() + wait
        while done is not None and time.time() < deadline and not done(messages):
            await asyncio.sleep(0.2)
    finally:
        listener.cancel()
        await ws.close()
