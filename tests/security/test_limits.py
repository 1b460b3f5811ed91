"""Limits and leftovers from issue 9 (items 4 and 9): a forged Host never reaches a link or a
page, an upload URL takes one file once, websockets per key are bounded, link lifetimes are
settings."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import requests
import videodb
import websockets


def test_a_forged_host_header_is_not_echoed(server):
    headers = {"x-access-token": server.api_key, "Host": "evil.example"}
    upload = requests.get(server.url + "/collection/default/upload_url", headers=headers).json()["data"]["upload_url"]
    assert upload.startswith(server.url + "/upload/") and "evil" not in upload
    socket_url = requests.get(server.url + "/collection/default/websocket", headers=headers).json()["data"]
    assert "evil" not in socket_url["websocket_url"]
    # (a capture link: /capture opened bare redirects to the sign-in page)
    page = requests.get(server.url + "/capture?session_id=cap-x", headers={"Host": "evil.example"}).text
    assert "evil.example" not in page and server.url in page
    # the trusted name still works as before
    page = requests.get(server.url + "/capture?session_id=cap-x").text
    assert server.url in page


def test_an_upload_url_takes_one_file_once(server, tmp_path):
    from support.media import make_video

    data = make_video(tmp_path / "clip.mp4", 1.0).read_bytes()
    url = requests.get(server.url + "/collection/default/upload_url",
                       headers={"x-access-token": server.api_key}).json()["data"]["upload_url"]

    def post(_: int) -> int:
        return requests.post(url, files={"file": ("clip.mp4", data)}).status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(post, range(4)))
    assert statuses == [200, 409, 409, 409]
    assert post(0) == 409
    video = videodb.connect(api_key=server.api_key, base_url=server.url).get_collection().upload(url=url)
    assert abs(video.length - 1.0) < 0.15


def test_websockets_per_key_are_bounded(in_process_factory):
    server = in_process_factory(max_websockets_per_key="2")

    url = requests.get(server.url + "/collection/default/websocket",
                       headers={"x-access-token": server.api_key}).json()["data"]["websocket_url"]

    async def main() -> list[str]:
        outcomes = []
        opened = []
        for _ in range(3):
            try:
                ws = await websockets.connect(url)
                first = await asyncio.wait_for(ws.recv(), 5)
                opened.append(ws)
                outcomes.append("open" if "connection_id" in first else "?")
            except (websockets.ConnectionClosed, websockets.InvalidHandshake):
                outcomes.append("refused")
        await opened[0].close()
        await asyncio.sleep(0.5)
        ws = await websockets.connect(url)  # a slot was freed
        outcomes.append("open" if "connection_id" in await asyncio.wait_for(ws.recv(), 5) else "?")
        for socket in [*opened[1:], ws]:
            await socket.close()
        return outcomes

    assert asyncio.run(main()) == ["open", "open", "refused", "open"]


def test_link_lifetimes_are_settings(in_process_factory, tmp_path):
    from support.media import make_audio

    server = in_process_factory(file_link_ttl="5")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    audio = conn.get_collection().upload(file_path=str(make_audio(tmp_path / "a.wav", 1.0)))
    url = audio.generate_url()
    assert requests.get(url).status_code == 200  # within its 5 s, however busy the machine
    time.sleep(6.2)  # past REELDB_FILE_LINK_TTL from when it was made, which was before the fetch
    response = requests.get(url)
    assert response.status_code == 404 and response.json()["success"] is False
