"""The documentation pages at ``/docs``: built with MkDocs (Material theme) from the Markdown that
ships inside the package (``reeldb.docs``, the repository's ``docs/``), into ``<data dir>/docs-site/``.

Why built on the first visit rather than at install: ``pip install .`` stays a plain wheel build
(no build hook that imports the package), and the configuration page is generated from the settings
object of the code that is installed, so it describes exactly what this server reads. The build
takes a few seconds once, offline (Material's fonts off: nothing is fetched), and is kept under a
key of the sources and the version, so a later start serves it at once and an upgrade rebuilds it.

By hand: ``python -m reeldb.server.docs OUT`` builds the same site into ``OUT``.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import io
import shutil
import sys
import threading
from pathlib import Path

from .settings import Settings

SOURCES = Path(__file__).resolve().parent.parent / "docs"  # installed: reeldb/docs
_lock = threading.Lock()


def settings_reference() -> str:
    """A Markdown table of every ``REELDB_*`` setting: its variable, default and what it does, read
    from :class:`Settings` itself (its fields and the ``#:`` comment above each)."""
    source = inspect.getsource(Settings).splitlines()
    tree = ast.parse(inspect.getsource(Settings)).body[0]
    docs: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.AnnAssign):
            continue
        comment, line = [], node.lineno - 2
        while line >= 0 and source[line].strip().startswith("#:"):
            comment.insert(0, source[line].strip()[2:].strip())
            line -= 1
        docs[node.target.id] = " ".join(comment)
    rows = ["| Variable | Default | What it does |", "| --- | --- | --- |"]
    for f in dataclasses.fields(Settings):
        rows.append(f"| `REELDB_{f.name.upper()}` | {_default(f)} | {_cell(docs.get(f.name, ''))} |")
    return "\n".join(rows) + "\n"


def _default(f: dataclasses.Field) -> str:
    value = f.default if f.default is not dataclasses.MISSING else None
    if value is None:
        return "unset"
    if isinstance(value, Path) and not value.is_absolute():
        return f"`./{value.as_posix()}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e9:
        value = int(value)
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("``", "`").replace("|", "\\|").replace("\n", " ")


def sources_key() -> str:
    """What the built site depends on: the pages, the site's config and hook, the settings, the version."""
    digest = hashlib.sha256()
    for path in sorted(SOURCES.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(SOURCES).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update(inspect.getsource(Settings).encode())
    return digest.hexdigest()[:16]


def build(out: Path) -> Path:
    """Build the site into ``out`` (replaced); returns it."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config

    staging = out.with_name(out.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    # Read as bytes with no file name and every path given absolute: the config lives beside the
    # pages it builds, which MkDocs refuses for a config file it opens itself.
    config = load_config(io.BytesIO((SOURCES / "mkdocs.yml").read_bytes()), docs_dir=str(SOURCES),
                         site_dir=str(staging), hooks=[str(SOURCES / "hooks.py")])
    config.plugins.on_startup(command="build", dirty=False)
    try:
        mkdocs_build(config)
    finally:
        config.plugins.on_shutdown()
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


def site(data_dir: Path) -> Path:
    """The built site for these sources under ``data_dir``, built now if it is not there yet."""
    root = data_dir / "docs-site"
    out = root / sources_key()
    with _lock:
        if not (out / "index.html").exists():
            root.mkdir(parents=True, exist_ok=True)
            for old in root.iterdir():  # earlier versions' sites
                shutil.rmtree(old, ignore_errors=True)
            build(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m reeldb.server.docs OUT")
    print(build(Path(sys.argv[1]).resolve()))
