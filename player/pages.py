"""The player's pages, as files the server serves: no templating engine, one substitution."""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"


@lru_cache(maxsize=None)
def _template(name: str) -> str:
    return (STATIC_DIR / name).read_text()


def watch_page(stream_url: str | None) -> str:
    """The watch page for one stream; the URL goes in an attribute, escaped."""
    attr = f' data-src="{html.escape(stream_url, quote=True)}"' if stream_url else ""
    return _template("watch.html").replace('<html lang="en">', f'<html lang="en"{attr}>', 1)
