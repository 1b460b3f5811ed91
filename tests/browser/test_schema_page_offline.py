"""The API docs page (``/schema``, issue 10) renders in Debian's headless Chromium with every
request to a host other than the server aborted: Redoc, its favicon and the OpenAPI document all
come from ReelDB, and nothing is even attempted elsewhere.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = pytest.mark.slow



def test_schema_page_renders_offline(server, chromium, tmp_path):
    host = urlsplit(server.url).netloc
    aborted: list[str] = []     # requests that reached the network layer for another host
    elsewhere: list[str] = []   # requests the page made for another host, refused or not
    problems: list[str] = []
    blocked: dict[str, str] = {}

    def foreign(url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != host

    def route(r) -> None:
        if foreign(r.request.url):
            aborted.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    def failed(r) -> None:
        if foreign(r.url):
            blocked[r.url] = r.failure or ""
        else:
            problems.append(f"failed: {r.url} {r.failure}")

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.route("**/*", route)
    page = context.new_page()
    page.on("request", lambda r: foreign(r.url) and elsewhere.append(r.url))
    page.on("requestfailed", failed)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
    console: list[str] = []
    page.on("console", lambda m: m.type == "error" and console.append(m.text))
    try:
        page.goto(f"{server.url}/schema")
        # Redoc's sidebar lists the operations by summary in their groups (tags); its middle panel
        # shows them with their paths.
        page.locator("h2", has_text="Create a capture session").first.wait_for(timeout=30_000)
        body = page.inner_text("body")
        for summary in ("List collections", "Create a collection", "Get a capture session", "Stop a capture session (recorder)",
                        "Compile spans of videos into one stream"):
            assert summary in body, summary
        assert re.search(r"ReelDB\s*\(0\.1\.0\)", body), body[:500]
        page.get_by_text("collections", exact=True).first.click()  # the sidebar's group opens
        page.get_by_text("Create a collection", exact=True).first.click()
        page.locator("h2", has_text="Create a collection").first.wait_for(timeout=10_000)
        assert "/collection/{collection_id}/capture/session" in page.inner_text("body")
        page.screenshot(path=str(tmp_path / "schema.png"))
    finally:
        context.close()

    assert aborted == [], f"the docs page reached for other hosts: {aborted}"
    assert problems == [], problems
    # The one outside fetch in Redoc's bundle (Redocly's logo in the sidebar footer) is refused by
    # the page's own Content-Security-Policy inside the browser, before any connection: it never
    # reaches the network (``aborted`` above), and it is the only console error.
    assert set(elsewhere) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, elsewhere
    assert all(why in ("csp", "net::ERR_BLOCKED_BY_CSP") for why in blocked.values()) and set(blocked) == set(elsewhere), blocked
    assert all("Content Security Policy" in line and "cdn.redoc.ly" in line for line in console), console


def test_schema_page_and_renderer_headers(server):
    page = requests.get(f"{server.url}/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in page.text and "/player/static/redoc.standalone.js" in page.text
    assert not re.search(r"(src|href)=\"https?://(?!127\.0\.0\.1)", page.text)
    script = requests.get(f"{server.url}/player/static/redoc.standalone.js")
    assert script.status_code == 200
    assert script.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
    assert script.content.startswith(b"/*! For license information please see redoc.standalone.js.LICENSE.txt */")
