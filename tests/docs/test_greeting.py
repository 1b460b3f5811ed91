"""`reeldb` greets a person: `--help` lists every command with a line each, `--version` says the
installed version, and `reeldb serve` says where the pages are, where the API key is and how to use it."""

from __future__ import annotations

import re
import subprocess
from importlib.metadata import version

from support.server_process import REELDB, ServerProcess

COMMANDS = {"serve", "keys", "doctor", "backup", "restore", "jobs", "worker", "record", "sample"}


def test_help_lists_every_command_with_a_line():
    out = subprocess.run([REELDB, "--help"], capture_output=True, text=True, check=True, timeout=60).stdout
    listed = dict(re.findall(r"^    (\w+)\s+(\S.*)$", out, re.M))
    assert set(listed) == COMMANDS, out
    assert "worker ingest" in out and "worker jobs" in out  # both kinds of worker, in the worker's line


def test_version():
    out = subprocess.run([REELDB, "--version"], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.strip() == f"reeldb {version('reeldb')}"


def test_sample_writes_a_playable_video(tmp_path):
    import av

    subprocess.run([REELDB, "sample", "meeting.mp4", "--seconds", "3"], cwd=tmp_path, check=True, timeout=120)
    with av.open(str(tmp_path / "meeting.mp4")) as media:
        assert {s.type for s in media.streams} == {"video", "audio"}
        assert 2.9 < media.duration / 1e6 < 3.2
        assert sum(1 for _ in media.decode(video=0)) > 60


def test_serve_says_where_to_go_and_where_the_key_is(tmp_path):
    server = ServerProcess(tmp_path / "data", api_key="").start()  # a generated key, kept in data/api_key
    try:
        banner = server.log()
    finally:
        server.stop()
    assert f"listening on {server.url}" in banner
    assert f"{server.url}/capture" in banner and f"{server.url}/docs" in banner
    assert f"in {tmp_path / 'data' / 'api_key'}" in banner
    assert "videodb.connect(api_key=" in banner
