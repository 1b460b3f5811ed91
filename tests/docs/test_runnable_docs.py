"""The README's quickstart and the docs' how-to pages run as written, in the order a reader meets
them, against a real server: every ```python block of a page, in one Python process per page, from
a folder whose ``data/`` is the server's data dir. The quickstart's blocks are pasted into Python's
interactive prompt line by line, as its reader is told to do.

What a block says it prints is checked: a top-level ``print(...)`` with a comment after it must
print a line that the comment matches (``…`` stands for anything). Where a page needs a screen
and a microphone, the recorder gets test patterns and espeak speech through
``REELDB_CAPTURE_SOURCES``, as on a machine without devices. Code fenced as ```py is shown, not run
(the seed page's originals that fail inside the SDK).
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
from support.server_process import ServerProcess
from support.media import write_wav
from support.speech import compose, require_espeak

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URL = "http://127.0.0.1:8700"


def section(text: str, heading: str) -> str:
    """The part of a Markdown text under ``heading`` (a ``## `` line), up to the next ``## ``."""
    return re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M).group(1)


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def promised(block: str) -> list[str]:
    """The comments after the block's top-level ``print(...)`` calls: what the reader is told it prints."""
    lines = block.splitlines()
    said = []
    for token in tokenize.generate_tokens(io.StringIO(block).readline):
        if token.type == tokenize.COMMENT and lines[token.start[0] - 1].startswith("print("):
            said.append(token.string.lstrip("#").strip())
    return said


#: Pastes the blocks into Python's interactive prompt, line by line, as a reader does (the prompt
#: is stricter than a script: a compound statement must end with a blank line); stops at an error.
PROMPT = """
import code, sys

class Prompt(code.InteractiveConsole):
    def showtraceback(self):
        super().showtraceback()
        sys.exit(1)

    def showsyntaxerror(self, filename=None, **kwargs):
        super().showsyntaxerror(filename)
        sys.exit(1)

prompt = Prompt()
for block in BLOCKS:
    for line in block.splitlines():
        prompt.push(line)
    if prompt.push(""):
        print("the block does not end where it seems to", file=sys.stderr)
        sys.exit(1)
    print(MARKER, flush=True)
"""


def run_blocks(blocks: list[str], workdir: Path, url: str, env: dict[str, str | None], prompt: bool = False) -> list[str]:
    """Run the blocks in one process, in order, with ``env`` (None: unset), as one script or pasted
    into the interactive prompt; returns each block's output; fails on an error or on a promised
    line that was not printed."""
    marker = "@@ end of block"
    blocks_here = [block.replace(DEFAULT_URL, url) for block in blocks]
    if prompt:
        script = f"BLOCKS = {blocks_here!r}\nMARKER = {marker!r}\n" + PROMPT
    else:
        script = "".join(block + f"\nprint({marker!r}, flush=True)\n" for block in blocks_here)
    environ = {**os.environ, "BROWSER": "true", **env}  # BROWSER: play() opens a browser that shows nothing
    out = subprocess.run([sys.executable, "-c", script], cwd=workdir, capture_output=True, text=True, timeout=600,
                         env={name: value for name, value in environ.items() if value is not None})
    outputs = out.stdout.split(marker + "\n")
    assert out.returncode == 0, f"block {len(outputs)} failed:\n{blocks[len(outputs) - 1]}\n{out.stdout}\n{out.stderr}"
    for block, output in zip(blocks, outputs):
        printed = output.splitlines()
        for said in promised(block):
            pattern = ".+".join(re.escape(part.replace(DEFAULT_URL, url)) for part in said.split("…"))
            assert any(re.fullmatch(pattern, line) for line in printed), (said, printed, block)
    return outputs[:len(blocks)]


def sh_commands(text: str, venv_bin: Path) -> list[list[str]]:
    """The quickstart's shell lines, less the SDK's install (the test's environment has it)."""
    block = re.search(r"^```sh\n(.*?)^```", text, re.S | re.M).group(1)
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words and not words[0].endswith("pip"):
            commands.append([str(venv_bin / Path(words[0]).name) if words[0].startswith(".venv/bin/") else words[0],
                             *words[1:]])
    return commands


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    """A reader's folder with ``reeldb serve`` running in it (its key generated into data/api_key),
    and speech for the microphone the pages record."""
    require_espeak()
    folder = tmp_path_factory.mktemp("reader")
    server = ServerProcess(folder / "data", api_key="").start()
    audio, _ = compose(["Let's review the budget.", "The action items from the meeting follow."], gap=2.0)
    speech = write_wav(folder / "speech.wav", audio)
    sources = {"mic:default": str(speech), "display:1": "pattern:bars:320x240@15",
               "system_audio:default": "pattern:silence"}
    yield folder, server, {"REELDB_CAPTURE_SOURCES": json.dumps(sources)}
    server.stop()


def test_the_readme_quickstart_runs_as_written(reader):
    folder, server, env = reader
    quickstart = section((ROOT / "README.md").read_text(), "Quickstart")
    for command in sh_commands(quickstart, Path(sys.executable).parent):
        subprocess.run(command, cwd=folder, check=True, capture_output=True, timeout=120)
    outputs = run_blocks(python_blocks(quickstart), folder, server.url, env, prompt=True)
    assert re.search(r"^\d+\.\ds: .*budget", outputs[-1], re.M | re.I), outputs[-1]  # the spoken words, found


def test_recording_with_the_sdk_runs_as_written(reader):
    folder, server, env = reader
    outputs = run_blocks(python_blocks((ROOT / "docs" / "recording.md").read_text()), folder, server.url, env)
    assert "recording-started" in outputs[1] and "recording-complete" in outputs[1]
    assert "mic:default True" in outputs[2] and "display:1 True" in outputs[2]


def test_the_seed_page_runs_as_written(reader):
    folder, server, _ = reader
    env = {"REELDB_CAPTURE_SOURCES": None}  # the page's own default: two screens of test patterns
    outputs = run_blocks(python_blocks((ROOT / "docs" / "seed.md").read_text()), folder, server.url, env)
    assert "display:1  primary=True" in outputs[5] and "display:2  primary=False" in outputs[5]


def test_the_webhook_check_on_the_operations_page_runs(reader):
    folder, server, env = reader
    blocks = python_blocks(section((ROOT / "docs" / "operations.md").read_text(), "Verifying webhooks"))
    run_blocks(blocks, folder, server.url, env)
