"""Disk is a resource (issue 18): a recording whose disk fills stops its stored channels with an event
and a webhook naming the cause and keeps everything written before; uploads are refused with 507
before a byte is written; ``/metrics`` and ``reeldb doctor`` show the headroom.

The media root is a small tmpfs of its own (the database stays on the data dir): the test fills it
with a ballast file while a session records through CaptureClient, until it is below
``REELDB_DISK_FLOOR_MB``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import av
import pytest
import requests
import videodb
from support.media import make_video, screen_ts
from support.recording import record, use_reeldb_recorder
from support.server_process import REELDB, wait_until
from videodb.exceptions import InvalidRequestError

pytestmark = pytest.mark.slow

SIZE_MB, FLOOR_MB = 64, 24


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "media-root"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"this test mounts a tmpfs (it runs as root in CI): {done.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_to_below_floor(mount: Path) -> Path:
    ballast = mount / "ballast.bin"
    free = shutil.disk_usage(mount).free
    with open(ballast, "wb") as out:
        out.truncate(0)
        left = free - (FLOOR_MB - 4) * 1024 * 1024  # 4 MB under the floor, room still to finish cleanly
        block = b"\0" * (1 << 20)
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)
    return ballast


def test_a_full_disk_stops_stored_channels_with_a_reason_and_refuses_uploads(server_factory, small_disk, tmp_path,
                                                                             hook):
    use_reeldb_recorder()
    server = server_factory(media_root=str(small_disk), disk_floor_mb=str(FLOOR_MB), sync_wait="10",
                            media_timeout="60", reconnect_grace="60", auto_index="false")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="u", callback_url=hook.url)
    token = conn.generate_client_token(expires_in=600)
    screen = screen_ts(tmp_path / "screen.ts", 60, (30, 120, 200))
    seen: dict = {}

    async def during(client, channels) -> None:
        await asyncio.sleep(4)  # some seconds reach the disk first
        seen["ballast"] = await asyncio.to_thread(fill_to_below_floor, small_disk)
        deadline = time.time() + 30
        while time.time() < deadline:
            session = await asyncio.to_thread(conn.get_capture_session, cap.id)
            if session.status in ("stopped", "exported", "failed"):
                break
            await asyncio.sleep(0.5)
        seen["status"] = session.status
        await asyncio.sleep(1)

    events = asyncio.run(record(server.url, token, cap.id, {"mic:default": "pattern:tone:440", "display:1": str(screen)},
                                {"mic:default": True, "display:1": True}, 0, during=during))
    assert seen["status"] == "stopped", seen

    # The webhook and the session both say why, naming the setting.
    stopping = next(e for e in hook.wait_for(lambda ev: any(e["status"] == "stopped" for e in ev), timeout=30)
                    if e["status"] == "stopping")
    assert "REELDB_DISK_FLOOR_MB" in stopping["data"]["reason"], stopping
    body = requests.get(f"{server.url}/capture/session/{cap.id}", headers={"x-access-token": server.api_key},
                        timeout=10).json()["data"]
    assert "REELDB_DISK_FLOOR_MB" in body["stop_reason"] and body["export_status"] == "failed"
    assert "free some space" in body["export_error"]
    # The recorder (and so CaptureClient's events) heard the reason too.
    told = [e for e in events if e.get("event") == "error"]
    assert any("REELDB_DISK_FLOOR_MB" in str(e) for e in told), events

    # What was written before is kept and readable: several seconds of the display and the mic.
    folder = small_disk / "sessions" / cap.id
    display = next(folder.glob("display*.mkv"))
    with av.open(str(display)) as c:
        frames = sum(1 for _ in c.demux(video=0))
    assert frames > 15 * 3

    # Uploads are refused before a byte is written, with the limit in words.
    clip = make_video(tmp_path / "clip.mp4", 1.0)
    with pytest.raises(InvalidRequestError, match="REELDB_DISK_FLOOR_MB") as refused:
        conn.get_collection().upload(file_path=str(clip))
    assert refused.value.response.status_code == 507
    # A client that already holds an upload URL is refused too, before its body is written.
    slot = requests.get(server.url + "/collection/default/upload_url", headers={"x-access-token": server.api_key},
                        timeout=10)
    assert slot.status_code == 507 and "REELDB_DISK_FLOOR_MB" in slot.json()["message"]
    assert not list((small_disk / "uploads").glob("*"))
    # The headroom shows in /metrics and in doctor.
    metrics = requests.get(server.url + "/metrics", timeout=10).text
    headroom = next(float(line.split()[-1]) for line in metrics.splitlines()
                    if line.startswith("reeldb_media_root_headroom_bytes"))
    assert headroom < 0
    env = {**os.environ, "REELDB_MEDIA_ROOT": str(small_disk), "REELDB_DISK_FLOOR_MB": str(FLOOR_MB)}
    doctor = subprocess.run([REELDB, "doctor", "--data-dir", str(server.data_dir), "--port", "1"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert "below the floor" in doctor.stdout, doctor.stdout

    # Space freed: the kept recording exports on request, and uploads work again.
    seen["ballast"].unlink()
    export = conn.get_capture_session(cap.id).export()
    wait_until(lambda: conn.get_capture_session(cap.id).status == "exported", 120, "the export after freeing space",
               every=0.5)
    assert conn.get_collection().upload(file_path=str(clip)).id.startswith("m-")
    assert export is not None
    # An upload larger than the room left is refused from its announced length, before its body.
    slot = requests.get(server.url + "/collection/default/upload_url", headers={"x-access-token": server.api_key},
                        timeout=10).json()["data"]["upload_url"]
    parts = urlsplit(slot)
    http = HTTPConnection(parts.hostname, parts.port, timeout=30)
    http.putrequest("POST", f"{parts.path}?{parts.query}")
    http.putheader("content-type", "multipart/form-data; boundary=b")
    http.putheader("content-length", str(SIZE_MB * 2 * 1024 * 1024))
    http.endheaders(b"--b\r\n")
    too_big = http.getresponse()
    assert too_big.status == 507 and "REELDB_DISK_FLOOR_MB" in json.loads(too_big.read())["message"]
    http.close()
