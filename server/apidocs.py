"""The API docs page at ``/schema``: Redoc, vendored and pinned, so it renders with no network.

litestar's render plugins load their renderer (and fonts, and a favicon) from CDNs. This one
serves ``player/static/redoc.standalone.js`` (Redoc 2.5.4, recorded in ``player/static/VENDORED``)
from this server, asks for no web fonts, and uses our favicon. Redoc's sidebar footer shows
Redocly's logo from its CDN; the page's Content-Security-Policy keeps every fetch on this server,
so the browser drops that image without a request and the link keeps its text.
"""

from __future__ import annotations

import html
from typing import Any, Callable
from urllib.parse import urlsplit

from litestar import Request, Router
from litestar.openapi.plugins import RedocRenderPlugin

STATIC = "/player/static"
#: The page's own frame around Redoc: a header back to the library and the docs (the web pages' look).
CHROME_CSS = ("body { margin: 0; padding: 0; } "
              "header.top { display: flex; flex-wrap: wrap; gap: 6px 20px; align-items: center; padding: 10px 20px; "
              "background: #111; font: 15px system-ui, sans-serif; } "
              "header.top a { color: #8fb8ff; } header.top .brand { color: #e4e4e4; font-weight: 700; "
              "text-decoration: none; } header.top nav { display: flex; gap: 16px; } "
              ".skip { position: absolute; left: -9999px; } .skip:focus { left: 8px; top: 8px; z-index: 10; "
              "background: #000; color: #fff; padding: 8px; } :focus-visible { outline: 3px solid #ffbf47; }")
REDOC = "redoc.standalone.js"


class OfflineRedoc(RedocRenderPlugin):
    """Redoc at ``/schema`` (and ``/schema/redoc``), every asset from this server.

    ``base_url(request)`` is the server's public base (``Links.base_url``), so the page also works
    behind a proxy that mounts ReelDB under a path.
    """

    def __init__(self, base_url: Callable[[Request], str]) -> None:
        super().__init__(js_url=f"{STATIC}/{REDOC}", google_fonts=False, favicon="")
        self._base_url = base_url

    def receive_router(self, router: Router) -> None:
        """The docs router's pages answer ``HEAD`` too (server/guard.py)."""
        router.opt["head"] = True

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        base = self._base_url(request).rstrip("/")
        parts = urlsplit(base)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
        here = f"'self' {origin}".strip()
        policy = (f"default-src {here}; script-src {here} 'unsafe-inline'; style-src {here} 'unsafe-inline'; "
                  f"img-src {here} data:; font-src {here} data:; worker-src blob:; connect-src {here}; "
                  "object-src 'none'; base-uri 'none'; form-action 'none'")
        attr = lambda text: html.escape(text, quote=True)  # noqa: E731
        # The document goes inline as JSON; "</" inside a string would end the <script> early.
        spec = self.render_json(request, openapi_schema).replace(b"</", b"<\\/")
        head = (
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{attr(policy)}\">"
            f"<title>{html.escape(str(openapi_schema['info']['title']))} API</title>"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<link rel=\"icon\" type=\"image/svg+xml\" href=\"{attr(base)}/favicon.ico\">"
            f"<script src=\"{attr(base + self.js_url)}\"></script>"
            f"<style>{CHROME_CSS}</style></head>"
        )
        chrome = (f"<header class=\"top\"><a class=\"brand\" href=\"{attr(base)}/\">ReelDB</a>"
                  f"<nav aria-label=\"Main\"><a href=\"{attr(base)}/\">Library</a>"
                  f"<a href=\"{attr(base)}/docs\">Docs</a>"
                  f"<a href=\"{attr(base)}/schema/openapi.json\">openapi.json</a></nav></header>")
        return b"".join([
            head.encode(),
            b"<body><a class=\"skip\" href=\"#redoc-container\">Skip to the API reference</a>",
            chrome.encode(),
            b"<main id=\"redoc-container\" aria-label=\"API reference\"></main><script>Redoc.init(",
            spec,
            b", {}, document.getElementById(\"redoc-container\"))</script></body></html>",
        ])
