"""Names, ids and file names are bounded (issue 18's smaller holes): a 1 MB name, a NUL in a name, a
1 MB channel id and a 300-character static file name each get a clear 4xx in the envelope."""

from __future__ import annotations

import requests

from reeldb.server.ids import is_id, new_id
from reeldb.server.routes.workers import own_address


def test_ids_that_name_folders_are_ids():
    made = new_id("capture_session")
    assert is_id("capture_session", made)
    for hostile in ("..", "cap-..", "cap-x/../../etc", made + "/..", made.upper(), "", None, 7, "cap-" + "a" * 5000):
        assert not is_id("capture_session", hostile), hostile
    assert not is_id("capture_session", new_id("video"))


def test_names_ids_and_file_names_are_bounded(server):
    key = {"x-access-token": server.api_key}
    base = server.url

    def refused(method: str, path: str, **kw) -> dict:
        answer = requests.request(method, base + path, headers=key, timeout=30, **kw)
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:300])
        body = answer.json()
        assert body["success"] is False and len(body["message"]) < 500, body
        return body

    huge = "x" * (1 << 20)
    body = refused("POST", "/collection", json={"name": huge})
    assert "name" in body["message"]
    body = refused("POST", "/collection", json={"name": "a\x00b"})
    assert body["message"] == "name must be one line of text, not blank, without control characters"
    refused("POST", "/collection", json={"name": "   "})
    refused("POST", "/collection/default/upload", json={"url": "https://example.com/a.mp4", "name": "a\x00b"})
    refused("POST", "/collection/default/upload", json={"url": "https://example.com/a.mp4", "description": "x\x1b[2J"})
    refused("GET", "/collection/default/upload_url", params={"name": "a\x00b"})
    made = requests.post(base + "/collection", headers=key, timeout=30,
                         json={"name": "Ünïcode name — fine", "description": "two\nlines\tand a tab"})
    assert made.status_code in (200, 201) and made.json()["data"]["name"] == "Ünïcode name — fine"

    cap = requests.post(base + "/collection/default/capture/session", headers=key, timeout=30,
                        json={"end_user_id": "u"}).json()["data"]
    token = requests.post(base + "/capture/session/token", headers=key, timeout=30,
                          json={"expires_in": 600}).json()["data"]["token"]
    answer = requests.post(base + "/capture/session/start", headers={"x-access-token": token}, timeout=30,
                           json={"session_id": cap["session_id"],
                                 "channels": [{"channel_id": "mic:" + "a" * (1 << 20), "type": "audio", "store": True}]})
    assert answer.status_code == 400 and len(answer.json()["message"]) < 500, answer.text[:300]

    answer = requests.get(base + "/player/static/" + "a" * 300, timeout=30)
    assert answer.status_code == 404 and answer.json()["success"] is False


def test_a_worker_announces_a_url_on_its_own_address():
    assert own_address("http://10.0.0.5:9000", "10.0.0.5")
    assert own_address("http://127.0.0.1:9000", "127.0.0.1") and own_address("http://localhost:1", "127.0.0.1")
    assert own_address("http://[::1]:9000", "127.0.0.1")  # loopback is loopback
    for url, client in (("http://169.254.169.254/latest", "10.0.0.5"), ("http://10.0.0.6:9000", "10.0.0.5"),
                        ("http://example.com:80", "10.0.0.5"), ("file:///etc/passwd", "127.0.0.1"),
                        ("http://127.0.0.1:9", "10.0.0.5"), ("not a url", "127.0.0.1"), ("http://10.0.0.5", None)):
        assert not own_address(url, client), (url, client)
