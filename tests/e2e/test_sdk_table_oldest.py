"""The SDK table of docs/sdk.md holds for the oldest SDK release ReelDB supports, too (``videodb==0.4.5``).

``tests/run.sh`` installs that release into ``.venv/sdk-0.4.5``; this test runs
``test_sdk_table.py`` in a pytest of its own with that folder first on the path, so its SDK calls
go through 0.4.5 (search through the legacy route, results read from ``stream_link``) against a
real server, while the rest of the suite uses the venv's 0.5.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
OLDEST = ROOT / ".venv" / "sdk-0.4.5"


def test_the_sdk_table_holds_for_sdk_0_4_5(tmp_path):
    assert (OLDEST / "videodb").is_dir(), f"videodb==0.4.5 is not in {OLDEST}: bash tests/run.sh installs it there"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(OLDEST), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    check = subprocess.run([sys.executable, "-c", "from importlib.metadata import version; print(version('videodb'))"],
                           env=env, capture_output=True, text=True, check=True)
    assert check.stdout.strip() == "0.4.5", check.stdout
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
                          "--basetemp", str(tmp_path / "t"), str(ROOT / "tests" / "e2e" / "test_sdk_table.py")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
