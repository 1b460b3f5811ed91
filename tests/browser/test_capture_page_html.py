"""The capture page as the server hands it out (no browser): assets exist, the API base is injected."""

from __future__ import annotations

import re

from reeldb.player.pages import STATIC_DIR, capture_page


def test_page_assets_exist():
    page = capture_page()
    assets = re.findall(r'(?:src|href)="/player/static/([^"]+)"', page)
    assert sorted(assets) == ["capture.css", "capture.js"]
    assert all((STATIC_DIR / name).is_file() for name in assets)
    assert "data-api" not in page  # same origin unless the server says otherwise


def test_api_base_is_injected_and_escaped():
    page = capture_page('https://example.org/reel"db/')
    assert '<html lang="en" data-api="https://example.org/reel&quot;db">' in page
    assert 'src="https://example.org/reel&quot;db/player/static/capture.js"' in page
    assert 'href="https://example.org/reel&quot;db/player/static/capture.css"' in page
    assert '"/player/static/' not in page
