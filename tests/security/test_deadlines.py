"""Slow clients are cut off and credentials come before bodies (issue 18).

A real server with 1 s header and body deadlines: a client that trickles its headers, one that
connects and says nothing, and one that announces a large body and sends it a byte at a time each
lose their connection; a request without a key that announces a 10 MB body is refused before a byte
of it is sent; ordinary requests, kept-alive ones, a slow but steady upload and a websocket left
open past both deadlines still work.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
import requests
import videodb

pytestmark = pytest.mark.slow


def connect(server) -> socket.socket:
    host, port = server.url.split("//", 1)[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=15)
    return sock


def closed_within(sock: socket.socket, trickle: list[bytes], every: float, limit: float) -> bool:
    """Send ``trickle`` a piece every ``every`` s; True if the server closes the connection first."""
    deadline = time.monotonic() + limit
    sock.settimeout(every)
    pieces = iter(trickle)
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return True
        piece = next(pieces, None)
        if piece is not None:
            try:
                sock.sendall(piece)
            except (ConnectionResetError, BrokenPipeError):
                return True
    return False


def read_response(sock: socket.socket) -> tuple[int, dict]:
    sock.settimeout(15)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        rest += sock.recv(65536)
    return status, json.loads(rest[:length] or b"{}")


def test_slow_clients_are_cut_off_and_credentials_come_first(in_process_factory):
    server = in_process_factory(header_timeout="1", body_timeout="1")
    key = server.api_key

    # slowloris: a header line every 0.5 s, for ever
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    assert closed_within(sock, [b"X-Pad-%d: y\r\n" % i for i in range(100)], 0.5, 20), "trickled headers kept"
    sock.close()

    # slowloris on a kept-alive connection: its first request answered, the next one's headers
    # trickled (the connection's one header timer, armed for the first request, covers the next)
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(sock)[0] == 200
    time.sleep(0.7)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    assert closed_within(sock, [b"X-Pad-%d: y\r\n" % i for i in range(100)], 0.5, 20), "trickled headers kept"
    sock.close()

    # a connection that never sends a byte
    sock = connect(server)
    assert closed_within(sock, [], 0.5, 20), "a silent connection was kept"
    sock.close()

    # a body announced as 10 MB and sent a byte at a time, with a valid key
    sock = connect(server)
    sock.sendall(b"POST /collection HTTP/1.1\r\nHost: x\r\nx-access-token: " + key.encode() +
                 b"\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n{")
    assert closed_within(sock, [b" "] * 100, 0.5, 20), "a trickled body was kept"
    sock.close()

    # no key, a 10 MB body announced: refused at once, before the body is sent
    for headers in (b"", b"x-access-token: sk-wrong\r\n"):
        sock = connect(server)
        sock.sendall(b"POST /collection HTTP/1.1\r\nHost: x\r\n" + headers +
                     b"content-type: application/json\r\ncontent-length: 10000000\r\n\r\n")
        status, body = read_response(sock)
        assert status == 401 and body["success"] is False, (status, body)
        sock.close()

    # a client token on a key-only route with a body: 403 before the body
    token = requests.post(server.url + "/capture/session/token", headers={"x-access-token": key},
                          json={"expires_in": 600}, timeout=30).json()["data"]["token"]
    sock = connect(server)
    sock.sendall(b"POST /collection HTTP/1.1\r\nHost: x\r\nx-access-token: " + token.encode() +
                 b"\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n")
    status, body = read_response(sock)
    assert status == 403 and body["success"] is False
    sock.close()

    # ordinary use is untouched: kept-alive requests, and a slow but steady body
    with requests.Session() as http:
        for _ in range(3):
            assert http.get(server.url + "/health", timeout=10).status_code == 200
            time.sleep(1.5)  # idle between requests longer than the header deadline: keep-alive's business

    def steady():
        payload = json.dumps({"name": "steady", "description": "x" * 6000}).encode()
        for i in range(0, len(payload), 1500):
            yield payload[i:i + 1500]
            time.sleep(0.3)

    made = requests.post(server.url + "/collection", data=steady(), timeout=30,
                         headers={"x-access-token": key, "content-type": "application/json"})
    assert made.status_code in (200, 201), made.text

    # A websocket is no slow request: it outlives both deadlines (uvicorn leaves h11 in the middle
    # of the upgrade request, which looked like a stalled body: every socket was cut at 30 s).
    conn = videodb.connect(api_key=key, base_url=server.url)

    async def idle_socket():
        ws = await conn.connect_websocket().connect()
        await asyncio.sleep(3.5)
        await ws.send({"type": "ping"})
        async for message in ws.receive():
            await ws.close()
            return message

    assert asyncio.run(asyncio.wait_for(idle_socket(), 30)) == {"type": "pong"}
