"""Client tokens reach the one session they started and nothing else (issue 9, item 3).

Before: a token handed to one end user's recorder read, started and stopped a session created for
another end user, pointed its ``callback_url`` at an internal address, set its
``ws_connection_id``, and read any ``/async-response/{job}``.
"""

from __future__ import annotations

import pytest
import requests
import videodb

CHANNELS = [{"channel_id": "mic:default", "type": "audio", "store": True}]


def call(server, method: str, path: str, token: str, body: dict | None = None) -> requests.Response:
    return requests.request(method, server.url + path, json=body, headers={"x-access-token": token})


@pytest.fixture
def two_users(server):
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    mine = conn.create_capture_session(end_user_id="alice")
    theirs = conn.create_capture_session(end_user_id="bob")
    token_a = conn.generate_client_token(expires_in=600)
    token_b = conn.generate_client_token(expires_in=600)
    started = call(server, "POST", "/capture/session/start", token_a, {"session_id": mine.id, "channels": CHANNELS})
    assert started.status_code == 200, started.text
    return conn, mine, theirs, token_a, token_b


def test_a_token_reaches_only_the_session_it_started(server, two_users):
    conn, mine, theirs, token_a, token_b = two_users
    assert call(server, "GET", f"/capture/session/{mine.id}", token_a).status_code == 200
    for method, path, body in [
        ("GET", f"/capture/session/{mine.id}", None),
        ("POST", f"/capture/session/{mine.id}/stop", {}),
        ("POST", f"/capture/session/{mine.id}/pause", {"channels": ["mic:default"]}),
        ("POST", f"/capture/session/{mine.id}/resume", {"channels": ["mic:default"]}),
        ("POST", f"/capture/session/{mine.id}/offer", {"sdp": "v=0", "tracks": {}}),
        ("POST", "/capture/session/start", {"session_id": mine.id, "channels": CHANNELS}),
    ]:
        response = call(server, method, path, token_b, body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["success"] is False
    assert conn.get_capture_session(mine.id).status == "starting"  # untouched by token B
    # A not yet started session of the key is readable (any token of the key could start it);
    # once token B starts it, it is B's alone.
    assert call(server, "GET", f"/capture/session/{theirs.id}", token_a).status_code == 200
    assert call(server, "POST", "/capture/session/start", token_b,
                {"session_id": theirs.id, "channels": CHANNELS}).status_code == 200
    assert call(server, "GET", f"/capture/session/{theirs.id}", token_a).status_code == 403
    assert call(server, "GET", f"/capture/session/{theirs.id}", token_b).status_code == 200


def test_a_token_cannot_set_where_events_go(server, two_users):
    conn, mine, theirs, token_a, token_b = two_users
    for extra in ({"callback_url": "http://169.254.169.254/latest"}, {"ws_connection_id": "ws-stolen"}):
        response = call(server, "POST", "/capture/session/start", token_b,
                        {"session_id": theirs.id, "channels": CHANNELS, **extra})
        assert response.status_code == 403, response.text
    fresh = conn.get_capture_session(theirs.id)
    assert fresh.status == "created" and fresh.callback_url is None


def test_a_token_reads_no_job_results_and_no_library(server, two_users, tmp_path):
    from support.media import make_video

    conn, mine, theirs, token_a, token_b = two_users
    body = requests.post(server.url + "/collection/default/upload",
                         json={"url": "http://127.0.0.1:9/nothing.mp4"},
                         headers={"x-access-token": server.api_key}).json()
    job_id = (body.get("data") or {}).get("id") or "job-x"
    for path in (f"/async-response/{job_id}", "/collection", "/video", "/collection/default/capture/session",
                 "/rtstream"):
        response = call(server, "GET", path, token_a)
        assert response.status_code == 403, (path, response.text)
    video = conn.get_collection().upload(file_path=str(make_video(tmp_path / "v.mp4", 1.0)))
    assert call(server, "GET", f"/video/{video.id}", token_a).status_code == 403
