"""An alert's moment links (``/moment/…``) refuse what they were not signed for: a forged or
truncated token, and a link signed for another purpose (a stream's), as a 404 in the envelope for
the playlist and as the player's friendly page for people. What a good link opens, before and after
its session is exported, is tests/e2e/test_live_indexes.py's."""

from __future__ import annotations

import pytest
import requests

from reeldb.server.links import Links


@pytest.mark.parametrize("payload, expected", [
    ("rts-abc~1765086190200~1765086192900", ("rts-abc", 1765086190.2, 1765086192.9)),
    ("rts-abc~12", None), ("rts-abc~-1~2", None), ("rts-abc~1.5~2", None), ("~~", None),
])
def test_a_moment_payload_is_read_or_refused(payload, expected):
    assert Links.moment_of(payload) == expected


def test_forged_and_foreign_moment_links_are_404(server, conn, tmp_path):
    for token in ("garbage", "rts-x~1~2.4102444800.AAAA", "a" * 300):
        stream = requests.get(f"{server.url}/moment/{token}/index.m3u8", allow_redirects=False)
        assert stream.status_code == 404 and stream.json()["success"] is False, stream.text
        page = requests.get(f"{server.url}/moment/{token}", allow_redirects=False)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "expired" in page.text
    # A websocket link's token (signed for "ws") opens no moment.
    token = conn.get("collection/default/websocket")["websocket_url"].split("token=")[1]
    assert requests.get(f"{server.url}/moment/{token}/index.m3u8").status_code == 404
