"""The README starts with the two commands, and CI runs the second (its quickstart runs as written:
tests/docs/test_runnable_docs.py)."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    block = lines[lines.index("```sh") + 1: lines.index("```", lines.index("```sh"))]
    assert block == ["python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/reeldb serve",
                     "bash tests/run.sh"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "bash tests/run.sh" in ci
