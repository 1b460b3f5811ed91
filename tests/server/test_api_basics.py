"""Wire conventions: auth, the envelope, status codes, trailing slashes, the schema, key generation."""

from __future__ import annotations

import re
import time

import pytest
import requests
import videodb
from videodb.exceptions import AuthenticationError, InvalidRequestError


def test_health_and_schema(server):
    assert requests.get(server.url + "/health").json() == {"success": True, "data": {"status": "ok"}}
    schema = requests.get(server.url + "/schema/openapi.json").json()
    assert "/collection/{collection_id}/capture/session" in schema["paths"]
    assert requests.get(server.url + "/schema").status_code == 200
    # every operation has a written summary, not litestar's one made from the handler's name
    unnamed = [(m, p, op.get("summary")) for p, item in schema["paths"].items() for m, op in item.items()
               if " " not in op.get("summary", "")]
    assert unnamed == []


def test_wrong_key_is_401_through_the_sdk(server):
    conn = videodb.connect(api_key="sk-wrong", base_url=server.url)
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        conn.get_collection()


def test_missing_key_is_401_in_the_envelope(server):
    response = requests.get(server.url + "/collection")
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert "x-access-token" in response.json()["message"]


def test_trailing_slash_and_unknown_routes(server):
    headers = {"x-access-token": server.api_key}
    assert requests.get(server.url + "/collection/default/", headers=headers).json()["success"] is True
    missing = requests.get(server.url + "/no/such/thing", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "message": "No such endpoint: GET /no/such/thing",
                              "error_code": "NOT_FOUND"}


def test_malformed_bodies_are_400_with_a_message(server):
    headers = {"x-access-token": server.api_key, "content-type": "application/json"}
    url = server.url + "/collection/default/capture/session"
    bad_json = requests.post(url, data=b"{not json", headers=headers)
    assert bad_json.status_code == 400
    assert bad_json.json()["success"] is False and bad_json.json()["message"]
    wrong_type = requests.post(url, json={"end_user_id": "u", "metadata": "not-an-object"}, headers=headers)
    assert wrong_type.status_code == 400
    assert "metadata" in wrong_type.json()["message"]
    missing = requests.post(url, json={}, headers=headers)
    assert missing.status_code == 400 and missing.json()["message"] == "end_user_id is required"
    not_list = requests.post(server.url + "/collection", json=["x"], headers=headers)
    assert not_list.status_code == 400


def test_generated_key_is_printed_once_and_kept(server_factory, tmp_path):
    from support.server_process import NO_INGEST, ServerProcess

    proc = ServerProcess(tmp_path / "keyless", api_key="", env=NO_INGEST)
    proc.start()
    try:
        key_file = tmp_path / "keyless" / "api_key"
        key = key_file.read_text().strip()
        assert re.fullmatch(r"sk-[A-Za-z0-9_\-]{40,}", key)
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        assert proc.log().count(key) == 1
        conn = videodb.connect(api_key=key, base_url=proc.url)
        assert conn.get_collection().id.startswith("c-")
        proc.restart()
        assert proc.log().count(key) == 1, "the key must be printed only on the start that made it"
        assert videodb.connect(api_key=key, base_url=proc.url).get_collection().id.startswith("c-")
    finally:
        proc.stop()


def test_ids_have_videodb_prefixes(conn):
    coll = conn.create_collection(name="prefixes", description="d")
    assert coll.id.startswith("c-")
    cap = conn.create_capture_session(end_user_id="u1", collection_id=coll.id)
    assert cap.id.startswith("cap-")
    token = conn.generate_client_token()
    assert token.startswith("st-")
    with pytest.raises(InvalidRequestError):
        conn.get_capture_session("cap-does-not-exist")


def test_an_sdk_connection_idle_for_its_poll_interval_is_still_open(conn):
    """The SDK polls every 5 s over a pooled keep-alive connection; a server that closes idle
    connections at 5 s (uvicorn's default) races it, and the SDK's POST then fails with
    "Connection error" (urllib3 retries no POST). The same connection must serve after 6 s idle."""
    from videodb._constants import HttpClientDefaultValues

    conn.get_collection()
    pools = conn.session.get_adapter(conn.base_url).poolmanager.pools
    pool = pools[next(iter(pools.keys()))]

    def local_ports() -> set[int]:
        return {c.sock.getsockname()[1] for c in list(pool.pool.queue) if c is not None and c.sock is not None}

    before = local_ports()
    assert len(before) == 1
    time.sleep(HttpClientDefaultValues.poll_interval + 1)
    conn.create_collection(name="after idle", description="kept alive")
    assert local_ports() == before, "the server closed the idle connection; the SDK had to open another"
