"""``reeldb record`` on a laptop-like desktop (Xvfb + PulseAudio): start, Ctrl-C, a working link.

It starts its own server (no REELDB_URL), records the screen and the microphone, stops on SIGINT,
prints the player link, indexes, and keeps serving until the second SIGINT.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest
import requests
from support.desktop import start_desktop
from support.server_process import free_port

pytestmark = pytest.mark.slow

REELDB = str(Path(sys.executable).with_name("reeldb"))


@pytest.fixture
def desktop(tmp_path):
    desk = start_desktop(tmp_path / "desktop")
    yield desk
    desk.stop()


def test_reeldb_record_until_ctrl_c_prints_a_player_link_that_plays(desktop, tmp_path):
    desktop.fill("#20c040")
    env = {**os.environ, **{k: v for k, v in desktop.env.items() if k != "HOME"}, "REELDB_ICE_ADDRESSES": "127.0.0.1",
           "HF_HUB_OFFLINE": "1"}
    for key in ("REELDB_URL", "REELDB_API_KEY", "REELDB_CAPTURE_SOURCES", "WAYLAND_DISPLAY", "REELDB_SECRET_KEY"):
        env.pop(key, None)
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen([REELDB, "record", "--data-dir", str(data), "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in proc.stdout], daemon=True).start()

    def wait_for(pattern: str, timeout: float) -> re.Match:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                assert proc.poll() is None, "\n".join(seen)
                continue
            seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m
        raise AssertionError(f"no {pattern!r} in:\n" + "\n".join(seen))

    try:
        wait_for(r"^Started a ReelDB server at http://127\.0\.0\.1:%d" % port, 90)
        wait_for(r"^Recording Display 1 .*Default Microphone", 30)
        progress = wait_for(r"● REC 00:0\d\s+([\d.]+) Mbit/s\s+disk ([\d.]+) (kB|MB)", 30)
        assert float(progress.group(1)) > 0 and float(progress.group(2)) > 0, progress.group(0)
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        wait_for(r"^Stopping", 20)
        stream_url = wait_for(r"^Video m-\S+: (http\S+/index\.m3u8)", 120).group(1)
        player_url = wait_for(r"^Player: (http\S+/watch\?v=\S+)", 10).group(1)
        wait_for(r"^Searchable: ", 120)
        wait_for(r"keeps serving at", 10)

        page = requests.get(player_url, timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        with av.open(stream_url) as c:
            frames = [f for _, f in zip(range(1000), c.decode(video=0))]
        assert len(frames) > 30
        rgb = frames[len(frames) // 2].to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
        assert rgb[1] > 150 and rgb[0] < 90, rgb  # the green drawn on the screen

        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, "\n".join(seen)
        with pytest.raises(requests.ConnectionError):
            requests.get(player_url, timeout=5)  # the server it started is gone with it
    finally:
        for _ in range(3):  # SIGINTs, as a user would: `reeldb record` stops the server it started
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log = data / "record-server.log"
        if proc.returncode != 0 and log.exists():
            print(log.read_text()[-3000:])
