"""Recording with the official SDK's CaptureClient driving reeldb-recorder, as a user would."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import types
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def use_reeldb_recorder() -> None:
    """The README's two lines: make the SDK's capture-binary lookup find reeldb-recorder."""
    exe = shutil.which("reeldb-recorder", path=os.path.dirname(sys.executable))
    sys.modules["videodb_capture_bin"] = types.SimpleNamespace(get_binary_path=lambda: exe)


def screen_ts(path: Path, seconds: float, colour: tuple[int, int, int], size=(320, 240), fps=15) -> Path:
    """A synthetic screen: H.264 (baseline, keyframe every second) in MPEG-TS, relayed as is."""
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"profile": "baseline", "preset": "ultrafast", "tune": "zerolatency",
                          "keyint": str(fps), "min-keyint": str(fps), "scenecut": "0", "bframes": "0"}
        for i in range(int(seconds * fps)):
            img = np.zeros((size[1], size[0], 3), np.uint8)
            img[:] = colour
            img[(i * 4) % size[1], :, :] = 255  # a moving line, so frames differ
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


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
