"""The player's pages, as files the server serves: no templating engine, one substitution."""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"


@lru_cache(maxsize=None)
def _template(name: str) -> str:
    return (STATIC_DIR / name).read_text()


def watch_page(stream_url: str | None, *, start: float | None = None, end: float | None = None,
               title: str | None = None, error: str | None = None, embed: bool = False,
               assets: str | None = None) -> str:
    """The watch page for one stream; every value goes in an attribute of ``<html>``, escaped.

    ``start``/``end`` (seconds on the video's clock) start playback there and stop it at ``end``;
    without them the page reads ``t=`` from its own URL. ``title`` saves the page a look at
    ``info.json``; ``error`` (with no stream) renders a friendly page for a bad or expired link.
    ``assets`` is the base URL the page loads its scripts from (default: the stream's own server,
    so the page works behind a proxy that mounts ReelDB under a path).
    """
    attrs: dict[str, str] = {}
    if stream_url:
        attrs["data-src"] = stream_url
    if start is not None:
        attrs["data-start"] = f"{float(start):g}"
        if end is not None and end > start:
            attrs["data-end"] = f"{float(end):g}"
    if title:
        attrs["data-title"] = title
    if error:
        attrs["data-error"] = error
    if embed:
        attrs["data-embed"] = ""
    text = "".join(f' {k}="{html.escape(v, quote=True)}"' for k, v in attrs.items())
    page = _template("watch.html").replace('<html lang="en">', f'<html lang="en"{text}>', 1)
    base = assets if assets is not None else _server_of(stream_url)
    if base:
        page = page.replace('"/player/static/', f'"{html.escape(base.rstrip("/"), quote=True)}/player/static/')
    return page


def _server_of(stream_url: str | None) -> str | None:
    """``https://host/prefix`` of a stream URL this server made (…/stream/… or …/compile/…)."""
    if not stream_url:
        return None
    for marker in ("/stream/", "/compile/"):
        if marker in stream_url:
            base = stream_url.split(marker, 1)[0]
            return base if base.startswith(("http://", "https://")) else None
    return None


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
