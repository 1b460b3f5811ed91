"""The README is the guide: its quickstart must run as written against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from support.media import make_video

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    block = lines[lines.index("```sh") + 1: lines.index("```", lines.index("```sh"))]
    assert block == ["python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/reeldb serve",
                     "bash tests/run.sh"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "bash tests/run.sh" in ci


def test_quickstart_runs(server_factory, tmp_path):
    from support.server_process import ServerProcess

    server = ServerProcess(tmp_path / "data", api_key="")  # the quickstart reads the generated key
    server.start()
    try:
        code = re.search(r"## Quickstart with the official SDK.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
        make_video(tmp_path / "meeting.mp4", seconds=1.0)
        code = code.replace("http://127.0.0.1:8700", server.url)
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.split("\n")
        assert lines[0].startswith("m-") and float(lines[0].split()[1]) > 0.9
        assert lines[1] == "created"
    finally:
        server.stop()
