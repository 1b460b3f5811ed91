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


def capture_page(api_url: str | None = None) -> str:
    """The browser capture page (``GET /capture``).

    ``api_url`` is where the page sends its API calls and loads its assets from; pass the server's
    public base URL (``svc.base_url(request)``) so the page also works behind a proxy that mounts
    ReelDB under a path. Without it the page uses its own origin.
    """
    page = _template("capture.html")
    if not api_url:
        return page
    base = html.escape(api_url.rstrip("/"), quote=True)
    page = page.replace('"/player/static/', f'"{base}/player/static/')
    return page.replace('<html lang="en">', f'<html lang="en" data-api="{base}">', 1)
