"""Clips within a budget (issue 18): each attack a holder of a shared stream link could make, replayed
against a real server: refused with a 4xx naming the limit, or run within its budget.

- many spans in one URL, or spans too short to hold a frame: 400;
- new spans without an API key: a token bucket per link and per address (429 + ``Retry-After``),
  cached spans free, an API key not limited;
- the clip cache stays within ``REELDB_CLIP_CACHE_MB`` (least recently used out, what is being
  played kept, an evicted clip cut again when asked for again);
- compile bodies and shot counts bounded (413/400);
- a client that leaves a compilation's first playback stops its cutting.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from support.media import make_numbered
from support.server_process import wait_until
from videodb.exceptions import InvalidRequestError


def upload(conn, path: Path):
    return conn.get_collection().upload(file_path=str(path))


def clip_url(video, spans: str) -> str:
    return video.stream_url.rsplit("/", 1)[0] + f"/t/{spans}.m3u8"


def clip_entries(server) -> list[Path]:
    return [p for p in (server.data_dir / "media").glob("*/*/hls/clips/*") if not p.name.startswith(".")]


def clip_bytes(server) -> int:
    return sum(f.stat().st_size for e in clip_entries(server) for f in e.iterdir() if f.is_file())


def refusal(response: requests.Response, status: int, named: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and named in body["message"], body
    return body


@pytest.fixture
def video_file(tmp_path):
    return make_numbered(tmp_path / "v.mp4", 12, 2, preset="fast", bframes=True)


def test_spans_per_request_and_their_length_are_bounded(in_process_factory, video_file):
    import videodb

    server = in_process_factory(clip_max_spans="5")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    video = upload(conn, video_file)
    six = ",".join(f"{i}-{i + 0.5}" for i in range(6))
    refusal(requests.get(clip_url(video, six)), 400, "REELDB_CLIP_MAX_SPANS")
    refusal(requests.get(clip_url(video, "1-1.05")), 400, "REELDB_CLIP_MIN_SPAN")
    assert requests.get(clip_url(video, "1-1.5,3-4")).status_code == 200
    with pytest.raises(InvalidRequestError, match="REELDB_CLIP_MIN_SPAN"):
        video.generate_stream(timeline=[(1.0, 1.0005)])  # sub-millisecond: a 400, not a dead link
    with pytest.raises(InvalidRequestError, match="REELDB_CLIP_MAX_SPANS"):
        video.generate_stream(timeline=[(i, i + 0.5) for i in range(6)])
    with pytest.raises(InvalidRequestError, match="REELDB_CLIP_MIN_SPAN"):
        conn.post(path="compile", data=[{"video_id": video.id, "shots": [(1.0, 1.0004)]}])
    assert clip_entries(server) and all((e / "pieces.json").is_file() for e in clip_entries(server))


def test_new_spans_without_an_api_key_are_budgeted_per_link_and_address(in_process_factory, video_file, tmp_path):
    import videodb

    server = in_process_factory(clip_new_spans_per_minute="3")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    video = upload(conn, video_file)
    other = upload(conn, make_numbered(tmp_path / "w.mp4", 6, 2, preset="fast", bframes=True, background=90))
    firsts = ["0.3-1.3", "2.3-3.3", "4.3-5.3"]
    for spans in firsts:
        assert requests.get(clip_url(video, spans)).status_code == 200
    refused = requests.get(clip_url(video, "6.3-7.3"))
    body = refusal(refused, 429, "REELDB_CLIP_NEW_SPANS_PER_MINUTE")
    assert body["error_code"] == "RATE_LIMITED" and 1 <= int(refused.headers["retry-after"]) <= 60
    # cached spans are free, whoever asks
    assert requests.get(clip_url(video, firsts[0])).status_code == 200
    # the address's budget is spent too: another link from the same client waits as well
    refusal(requests.get(clip_url(other, "1.3-2.3")), 429, "REELDB_CLIP_NEW_SPANS_PER_MINUTE")
    # a caller with an API key is not limited (a wrong one is no key)
    assert requests.get(clip_url(video, "6.3-7.3"), headers={"x-access-token": "sk-wrong"}).status_code == 429
    assert requests.get(clip_url(video, "6.3-7.3"), headers={"x-access-token": server.api_key}).status_code == 200
    # a compilation's first playback pays for its new shots with its own link and the address
    made = conn.post(path="compile", data=[{"video_id": video.id, "shots": [(8.3, 9.3)]}])
    refusal(requests.get(made["stream_url"]), 429, "REELDB_CLIP_NEW_SPANS_PER_MINUTE")
    assert requests.get(made["stream_url"], headers={"x-access-token": server.api_key}).status_code == 200


def test_the_clip_cache_stays_within_its_bytes(in_process_factory, video_file):
    import videodb

    server = in_process_factory(clip_cache_mb="0.25", clip_new_spans_per_minute="0")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    video = upload(conn, video_file)
    played = clip_url(video, "0.3-1.3")
    first = requests.get(played)
    piece = next(line for line in first.text.splitlines() if "clips/" in line)
    playing_entry = piece.split("/")[-2]
    budget = 0.25 * 2**20
    for i in range(1, 16):
        assert requests.get(clip_url(video, f"{0.3 + i * 0.6:.1f}-{1.1 + i * 0.6:.1f}")).status_code == 200
        assert clip_bytes(server) <= budget, (i, clip_bytes(server))
        # the first clip is being played: each of its pieces served marks it in use
        assert requests.get(requests.compat.urljoin(played, piece)).status_code == 200
    names = {e.name for e in clip_entries(server)}
    assert playing_entry in names and len(names) < 16  # older clips went, the one being played stayed
    # an evicted clip asked for again is cut again, and plays
    again = requests.get(clip_url(video, "0.9-1.7"))
    assert again.status_code == 200
    for line in again.text.splitlines():
        if line and not line.startswith("#"):
            assert requests.get(requests.compat.urljoin(again.url, line)).status_code == 200, line
    assert clip_bytes(server) <= budget


def test_compile_bodies_and_shots_are_bounded(in_process_factory, video_file):
    import videodb

    server = in_process_factory(compile_max_shots="20", compile_max_body_kb="16")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    video = upload(conn, video_file)
    key = {"x-access-token": server.api_key}
    many = [{"video_id": video.id, "shots": [[i * 0.5, i * 0.5 + 0.4] for i in range(21)]}]
    refusal(requests.post(f"{server.url}/compile", json=many, headers=key), 400, "REELDB_COMPILE_MAX_SHOTS")
    spread = [{"video_id": video.id, "shots": [[1, 2]] * 5} for _ in range(5)]  # 25 across parts
    refusal(requests.post(f"{server.url}/compile", json=spread, headers=key), 400, "REELDB_COMPILE_MAX_SHOTS")
    big = [{"video_id": video.id, "shots": [[1, 2]], "collection_id": "x" * 20000}]
    refusal(requests.post(f"{server.url}/compile", json=big, headers=key), 413, "REELDB_COMPILE_MAX_BODY_KB")
    chunked = requests.post(f"{server.url}/compile", data=iter([b"[" + b" " * 20000, b"]"]),
                            headers={**key, "content-type": "application/json"})
    refusal(chunked, 413, "REELDB_COMPILE_MAX_BODY_KB")
    lax = [{"video_id": video.id, "shots": [[1, "2"]]}]  # the strict decoding every body gets still runs
    refusal(requests.post(f"{server.url}/compile", json=lax, headers=key), 400, "shots")
    ok = [{"video_id": video.id, "shots": [[i * 0.5, i * 0.5 + 0.4] for i in range(20)]}]
    made = requests.post(f"{server.url}/compile", json=ok, headers=key)
    assert made.status_code == 200, made.text
    assert requests.get(made.json()["data"]["stream_url"]).status_code == 200


@pytest.mark.slow
def test_a_client_that_leaves_a_compilation_stops_its_cutting(in_process_factory, tmp_path):
    import videodb

    shots = 400
    server = in_process_factory(compile_max_shots=str(shots), clip_new_spans_per_minute="0")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    video = upload(conn, make_numbered(tmp_path / "long.mp4", 90, 2, preset="fast", bframes=True))
    made = conn.post(path="compile", data=[
        {"video_id": video.id, "shots": [(i * 0.2 + 0.07, i * 0.2 + 0.33) for i in range(shots)]}])
    url = urlsplit(made["stream_url"])
    with socket.create_connection((url.hostname, url.port)) as client:  # a player that gives up
        client.sendall(f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
        wait_until(lambda: len(clip_entries(server)) >= 3, 60, "the compilation's cutting to start", every=0.05)
    counts = [len(clip_entries(server))]

    def settled() -> bool:
        time.sleep(2)
        counts.append(len(clip_entries(server)))
        return counts[-1] == counts[-2]

    wait_until(settled, 60, "the cutting to stop after the client left", every=0)
    time.sleep(3)
    assert len(clip_entries(server)) == counts[-1] < shots, counts  # nothing more was cut for nobody
    # the server is fine: the compilation plays when asked again, cut to its end
    assert requests.get(made["stream_url"], timeout=600).status_code == 200
    assert len(clip_entries(server)) == shots
