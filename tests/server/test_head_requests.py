"""``HEAD`` on streams and pages (issue 10, "HTTP details"), against a real server: every kind of
stream file, page, player file and static file answers ``HEAD`` with the status and headers its
``GET`` has (``Content-Type``, ``Content-Length``, ``Cache-Control``…) and not one byte of body;
``OPTIONS`` and a 405 say ``HEAD`` where it is answered; playlists and segments carry the
``Cache-Control`` a VOD rendition deserves.
"""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import requests
from support.media import make_video

IMMUTABLE = "public, max-age=31536000, immutable"


def raw_head(url: str, extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """HEAD over a bare socket, read until the server closes: what follows the headers is the body."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"HEAD {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close",
             *(f"{k}: {v}" for k, v in (extra or {}).items())]
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def same_as_get(url: str) -> requests.Response:
    """HEAD says what GET says, without the body; returns the GET."""
    get = requests.get(url)
    status, headers, body = raw_head(url)
    assert body == b"", (url, body[:200])
    assert status == get.status_code, (url, status, get.status_code)
    expected = {k.lower(): v for k, v in get.headers.items() if k.lower() not in ("date", "connection")}
    got = {k: v for k, v in headers.items() if k not in ("date", "connection")}
    assert got == expected, (url, got, expected)
    assert "content-type" in got and int(got["content-length"]) == len(get.content), (url, got)
    return get


def test_head_answers_as_get_on_every_stream_and_page(server, conn, tmp_path):
    video = conn.get_collection().upload(file_path=str(make_video(tmp_path / "v.mp4", 4.0)))
    stream = video.stream_url.rsplit("/", 1)[0]
    playlist = same_as_get(video.stream_url)
    assert playlist.headers["cache-control"] == IMMUTABLE
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    segment = next(line for line in playlist.text.splitlines() if line.endswith(".ts"))
    ts = same_as_get(f"{stream}/{segment}")
    assert ts.headers["cache-control"] == IMMUTABLE and ts.headers["content-type"] == "video/mp2t"
    for name in ("poster.jpg", "storyboard.vtt"):
        assert same_as_get(f"{stream}/{name}").headers["cache-control"] == IMMUTABLE, name

    # A byte range is for GET only: a HEAD with one describes the whole file (RFC 9110 §14.2).
    status, headers, body = raw_head(f"{stream}/{segment}", {"Range": "bytes=0-99"})
    assert (status, body) == (200, b"") and int(headers["content-length"]) == len(ts.content)

    # An exact clip: its playlist and its re-encoded edge pieces.
    clip = video.generate_stream(timeline=[(0.5, 2.5)])
    clip_list = same_as_get(clip)
    assert clip_list.headers["cache-control"] == "no-cache"  # the clip cache is bounded: asked again, cut again
    pieces = [line for line in clip_list.text.splitlines() if line and not line.startswith("#")]
    piece = next(p for p in pieces if "clips/" in p)
    assert same_as_get(requests.compat.urljoin(clip, piece)).headers["cache-control"] == IMMUTABLE

    # A compilation's playlist.
    made = requests.post(f"{server.url}/compile", headers={"x-access-token": server.api_key},
                         json=[{"video_id": video.id, "shots": [[0.5, 1.5], [2.0, 3.0]]}]).json()["data"]
    assert same_as_get(made["stream_url"]).headers["cache-control"] == "no-cache"

    # What the player reads beside the stream follows the index: asked again each time.
    for name in ("info.json", "search?q=budget", "captions.vtt", "transcript.json", "subtitles.m3u8"):
        response = same_as_get(f"{stream}/{name}")
        if response.status_code == 200:
            assert response.headers["cache-control"] == "no-cache", name
    assert same_as_get(f"{stream}/info.json").status_code == 200

    # Pages, good and bad links alike.
    token = stream.rsplit("/", 1)[1]
    for path in (f"/watch?v={token}", f"/embed?v={token}&t=1-2", f"/watch?c={made['stream_url'].rsplit('/', 1)[1][:-5]}",
                 f"/player?url={video.stream_url}", "/capture?session_id=cap-x", "/watch?v=nope",
                 "/player?url=http://x/y"):
        page = same_as_get(server.url + path)
        assert page.headers["content-type"].startswith("text/html") and page.headers["cache-control"] == "no-cache"
        assert page.status_code == (404 if "nope" in path or "x/y" in path else 200), path

    # The favicon, the player's static files (vendored and ours) and the API docs page.
    assert same_as_get(f"{server.url}/favicon.ico").headers["content-type"] == "image/svg+xml"
    for name in ("watch.js", "watch.css", "hls.min.js", "redoc.standalone.js"):
        static = same_as_get(f"{server.url}/player/static/{name}")
        assert static.status_code == 200 and static.headers["cache-control"] == "max-age=600, public", name
    assert same_as_get(f"{server.url}/player/static/redoc.standalone.js").headers["content-type"].startswith(
        "text/javascript")
    assert same_as_get(f"{server.url}/schema").headers["content-type"].startswith("text/html")
    assert same_as_get(f"{server.url}/schema/openapi.json").status_code == 200
    assert same_as_get(f"{server.url}/health").status_code == 200

    # A signed file link (an image asset) and links that point at nothing.
    image = video.generate_thumbnail(time=1.0)
    assert same_as_get(image.url).headers["content-type"] == "image/jpeg"
    for url in (f"{server.url}/stream/bogus/index.m3u8", f"{stream}/seg_99999.ts", f"{server.url}/files/bogus",
                f"{server.url}/compile/bogus.m3u8", f"{server.url}/player/static/nope.js"):
        assert same_as_get(url).status_code == 404, url


def test_allow_says_head_where_it_is_answered(server):
    for path in ("/watch", "/stream/x/index.m3u8", "/player/static/watch.js", "/favicon.ico", "/capture", "/schema",
                 "/health", "/files/x"):
        allow = requests.options(server.url + path).headers["allow"]
        assert re.split(r",\s*", allow) == ["GET", "HEAD", "OPTIONS"], (path, allow)
        refused = requests.put(server.url + path)
        assert refused.status_code == 405 and refused.headers["allow"] == allow, (path, refused.headers)
    # The API answers HEAD nowhere (a GET there needs credentials and is not a page): 405, and Allow says so.
    status, headers, body = raw_head(server.url + "/collection")
    assert status == 405 and "HEAD" not in headers["allow"] and "POST" in headers["allow"]
    assert requests.options(server.url + "/collection").headers["allow"] == headers["allow"]
