"""Hostile requests get a 4xx in the envelope, never a 500 (issue 9, items 4 and 8).

Each case reproduces what an attack on the server found: a NUL in a static path, JSON nested
100,000 deep before auth, a 4,400-digit Range header, oversized headers, a 1 MB channel name,
and a long-lived stream link used to open the original file or the websocket.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import requests
import videodb
import websockets


def envelope(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = response.json()
    assert body["success"] is False and isinstance(body["message"], str) and body["message"]
    return body


def test_nul_byte_in_a_static_path_is_a_404_not_a_500(server):
    envelope(requests.get(server.url + "/player/static/%00x"), 404)
    envelope(requests.get(server.url + "/video/m-%00", headers={"x-access-token": server.api_key}), 404)


def test_json_nested_deeper_than_the_decoder_goes_is_a_400(server):
    body = "[" * 100_000 + "]" * 100_000
    deep_object = '{"a":' * 100_000 + "1" + "}" * 100_000
    response = requests.post(server.url + "/collection", data=deep_object,
                             headers={"content-type": "application/json", "x-access-token": server.api_key})
    assert "nested too deeply" in envelope(response, 400)["message"]
    for path in ("/collection", "/collection/default/capture/session"):
        response = requests.post(server.url + path, data=body, headers={"content-type": "application/json",
                                                                        "x-access-token": server.api_key})
        envelope(response, 400)  # refused as a bad body, whichever check sees it first
    # before auth too: no credentials, same answer class (a 4xx), never a 500
    response = requests.post(server.url + "/collection", data=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500


def test_a_range_header_of_thousands_of_digits_is_not_a_500(server):
    headers = {"Range": "bytes=" + "9" * 4400 + "-"}
    response = requests.get(server.url + "/player/static/hls.min.js", headers=headers)
    assert response.status_code < 500
    headers = {"Range": "bytes=-" + "9" * 4400}
    assert requests.get(server.url + "/player/static/hls.min.js", headers=headers).status_code < 500


def test_oversized_headers_are_refused(server):
    response = requests.get(server.url + "/collection", headers={"x-access-token": server.api_key,
                                                                 "x-padding": "a" * 40_000})
    assert envelope(response, 431)["error_code"] == "HEADERS_TOO_LARGE"


def test_a_one_megabyte_channel_name_is_refused(server):
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="u")
    token = conn.generate_client_token(expires_in=600)
    channels = [{"channel_id": "mic:default", "type": "audio", "store": True, "name": "n" * 1_000_000}]
    response = requests.post(server.url + "/capture/session/start", json={"session_id": cap.id, "channels": channels},
                             headers={"x-access-token": token})
    assert "longer than" in envelope(response, 400)["message"]
    assert conn.get_capture_session(cap.id).status == "created"


def test_a_stream_link_opens_its_stream_and_nothing_else(server, tmp_path):
    from support.media import make_video

    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    video = conn.get_collection().upload(file_path=str(make_video(tmp_path / "clip.mp4", 2.0)))
    token = re.search(r"/stream/([^/]+)/index\.m3u8", video.stream_url).group(1)
    assert requests.get(video.stream_url).status_code == 200
    envelope(requests.get(f"{server.url}/files/{token}"), 404)  # not the original upload

    async def open_ws() -> str:
        url = server.url.replace("http://", "ws://") + f"/ws?token={token}"
        try:
            async with websockets.connect(url) as ws:
                return await asyncio.wait_for(ws.recv(), 5)  # the connection_id of an accepted socket
        except (websockets.ConnectionClosed, websockets.InvalidHandshake):
            return "refused"

    assert asyncio.run(open_ws()) == "refused"  # a stream link is not a websocket credential
    envelope(requests.post(f"{server.url}/upload/x?sig={token}", files={"file": b"x"}), 404)


@pytest.mark.parametrize("method", ["TRACE", "PUT"])
def test_undeclared_methods_are_405_with_allow(server, method):
    response = requests.request(method, server.url + "/collection", headers={"x-access-token": server.api_key})
    envelope(response, 405)
    assert "GET" in response.headers["allow"]


def test_the_openapi_document_describes_the_envelope(server):
    schema = requests.get(server.url + "/schema/openapi.json").json()
    # Each operation lists only the errors it can give (a list has no 404; one collection has).
    for path, statuses in (("/collection", ("400", "401", "403")),
                           ("/collection/{collection_id}", ("400", "401", "403", "404"))):
        responses = schema["paths"][path]["get"]["responses"]
        assert set(statuses) <= set(responses), (path, sorted(responses))
        for status in (s for s in responses if s >= "400"):
            body = responses[status]["content"]["application/json"]["schema"]
            assert body["required"] == ["success", "message"], (path, status)
            assert "detail" not in json.dumps(body)
