"""The watch page as the server hands it out (no browser): assets exist and are vendored as
recorded, values land escaped in <html> attributes, scripts load from the stream's own server."""

from __future__ import annotations

import hashlib
import re

from reeldb.player.pages import STATIC_DIR, watch_page


def test_page_assets_exist_and_nothing_is_remote():
    page = watch_page(None)
    assets = re.findall(r'(?:src|href)="/player/static/([^"]+)"', page)
    assert sorted(assets) == ["favicon.svg", "hls.min.js", "media-chrome.min.js", "watch.css", "watch.js"]
    assert all((STATIC_DIR / name).is_file() for name in assets)
    for name in ("watch.html", "watch.js", "watch.css"):
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//|@import|url\(\s*['\"]?(https?:)?//", text), name


def test_vendored_files_match_their_record():
    rows = [line.split() for line in (STATIC_DIR / "VENDORED").read_text().splitlines()]
    recorded = {row[2]: row[-1] for row in rows if len(row) >= 6 and re.fullmatch(r"[0-9a-f]{64}", row[-1])}
    assert set(recorded) == {"hls.min.js", "htmx.min.js", "media-chrome.min.js", "redoc.standalone.js"}
    for name, digest in recorded.items():
        assert hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest() == digest, name
    for license in ("hls.js.LICENSE", "htmx.LICENSE", "media-chrome.LICENSE", "redoc.LICENSE", "redoc.standalone.js.LICENSE.txt"):
        assert (STATIC_DIR / license).is_file(), license


def test_stream_start_end_title_are_escaped_attributes():
    url = 'http://127.0.0.1:8700/stream/tok"en/index.m3u8'
    page = watch_page(url, start=12.5, end=20, title='<Budget> & "Plans"')
    html_tag = re.search(r"<html[^>]*>", page).group(0)
    assert 'data-src="http://127.0.0.1:8700/stream/tok&quot;en/index.m3u8"' in html_tag
    assert 'data-start="12.5"' in html_tag and 'data-end="20"' in html_tag
    assert 'data-title="&lt;Budget&gt; &amp; &quot;Plans&quot;"' in html_tag
    assert 'src="http://127.0.0.1:8700/player/static/watch.js"' in page
    assert '"/player/static/' not in page


def test_positional_call_still_works_and_an_end_needs_a_start():
    page = watch_page("/compile/abc.m3u8")
    assert '<html lang="en" data-src="/compile/abc.m3u8">' in page
    assert 'src="/player/static/watch.js"' in page  # a relative stream: same origin
    assert "data-end" not in watch_page("/compile/abc.m3u8", start=5, end=3)


def test_a_bad_link_page_says_so():
    page = watch_page(None, error="This link has expired.")
    assert 'data-error="This link has expired."' in page and "data-src" not in page
