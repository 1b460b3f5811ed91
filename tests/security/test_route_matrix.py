"""Every route against hostile ids and foreign credentials (issue 9's matrix).

Walks the server's own OpenAPI document, so a route added later is covered without editing this
file: each path parameter gets traversal payloads and each operation is called with no
credentials, a forged key, a client token and the API key. Nothing may answer 5xx, leak a file
from outside the data dir, or let a client token past the capture endpoints.
"""

from __future__ import annotations

import re

import pytest
import requests
import videodb

TRAVERSALS = ["../../../../etc/passwd", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
              "/etc/passwd", "..\\..\\windows\\win.ini", "reeldb.db", "%252e%252e%252f", "a" * 5000]
#: What a client token may call (the recorder's endpoints and the websocket URL); all else is 403.
TOKEN_ROUTES = re.compile(r"^/(capture/session/|collection/\{collection_id\}/websocket|health|stream/|watch|embed"
                          r"|capture$|player/|player$|files/|frames/|upload/|compile/|favicon\.ico)")
#: Opened by a signed link or public by design (pages, static files, health).
PUBLIC = re.compile(r"^/(health|stream/|watch|embed|capture$|player/|player$|files/|frames/|upload/|schema|compile/"
                    r"|favicon\.ico)")


def operations(server) -> list[tuple[str, str]]:
    schema = requests.get(server.url + "/schema/openapi.json").json()
    ops = []
    for path, item in schema["paths"].items():
        for method in ("get", "post", "patch", "delete", "put"):
            if method in item:
                ops.append((method.upper(), path))
    assert len(ops) > 40
    return ops


def fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: value, path)


def no_leak(response: requests.Response) -> None:
    assert response.status_code < 500, (response.request.method, response.request.url, response.text[:300])
    assert "root:x:0:0" not in response.text and "SQLite format" not in response.text


def test_traversal_payloads_in_every_path_parameter(server):
    headers = {"x-access-token": server.api_key}
    for method, path in operations(server):
        if "{" not in path:
            continue
        for payload in TRAVERSALS:
            response = requests.request(method, server.url + fill(path, payload), headers=headers, json={},
                                        allow_redirects=False)
            no_leak(response)
            assert response.status_code in (400, 401, 403, 404, 405, 409, 414, 422), (method, path, payload,
                                                                                      response.status_code)
            if response.headers.get("content-type", "").startswith("application/json"):
                assert response.json()["success"] is False


@pytest.mark.parametrize("who", ["nobody", "forged", "token"])
def test_credentials_out_of_scope_are_refused_everywhere(server, who):
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    headers = {"nobody": {}, "forged": {"x-access-token": "sk-forged-" + "x" * 30},
               "token": {"x-access-token": conn.generate_client_token(expires_in=600)}}[who]
    for method, path in operations(server):
        if PUBLIC.match(path):
            continue
        response = requests.request(method, server.url + fill(path, "default"), headers=headers, json={})
        no_leak(response)
        if who == "token":
            if TOKEN_ROUTES.match(path):
                continue
            # 403, or 400 when the body is refused before the credentials are looked at: never run
            assert response.status_code in (400, 403), (method, path, response.status_code, response.text[:200])
        else:
            assert response.status_code in (400, 401), (method, path, response.status_code, response.text[:200])
