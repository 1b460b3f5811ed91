"""Secrets at rest and in flight: keyed credential hashes, revocation, the one environment key,
``REELDB_SECRET_KEY`` keeping secrets out of the data dir, and webhook signatures that cannot be
replayed later."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests
import sqlite_utils
import videodb
from support.media import make_video
from support.server_process import NO_INGEST, REELDB, ServerProcess
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def keys(data_dir: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "REELDB_SECRET_KEY"}
    return subprocess.run([REELDB, "keys", *args, "--data-dir", str(data_dir)], capture_output=True, text=True,
                          check=check, env={**environ, **(env or {})})


def create_key(data_dir: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    return dict(line.split("=", 1) for line in keys(data_dir, "create", env=env).stdout.split())


def table(data_dir: Path, name: str) -> list[dict]:
    with sqlite3.connect(f"file:{data_dir / 'reeldb.db'}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f"select * from {name}")]


def status(server: ServerProcess, secret: str, path: str = "collection/default") -> int:
    return requests.get(f"{server.url}/{path}", headers={"x-access-token": secret}, timeout=10).status_code


def wait_status(server: ServerProcess, secret: str, expected: int, path: str = "collection/default",
                timeout: float = 15.0) -> int:
    deadline = time.time() + timeout
    while True:
        got = status(server, secret, path)
        if got == expected or time.time() > deadline:
            return got
        time.sleep(0.25)


def readme_verify():
    """The operations page's webhook verification function, executed as written."""
    section = OPERATIONS.read_text().split("## Verifying webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(code, scope)
    return scope["verify_webhook"]


def test_credentials_are_stored_keyed_and_list_hides_secrets(server, conn):
    token = conn.generate_client_token(expires_in=600)
    [key_row] = table(server.data_dir, "api_keys")
    assert key_row["key_hash"] not in (server.api_key, sha256(server.api_key))
    assert key_row["hash_scheme"].startswith("hmac-sha256:") and key_row["origin"] == "env"
    [token_row] = table(server.data_dir, "client_tokens")
    assert token_row["token_hash"] not in (token, sha256(token))
    assert token_row["hash_scheme"] == key_row["hash_scheme"]
    listed = keys(server.data_dir, "list").stdout
    assert key_row["id"] in listed and "origin=env" in listed and "active" in listed
    assert "whsec_" not in listed and server.api_key not in listed
    assert f"webhook_secret={key_row['webhook_secret']}" in keys(server.data_dir, "list", "--show-secrets").stdout


def test_revoked_key_and_its_client_tokens_stop_working(server, conn):
    made = create_key(server.data_dir)
    other = videodb.connect(api_key=made["api_key"], base_url=server.url)
    cap = other.create_capture_session(end_user_id="u")
    token = other.generate_client_token(expires_in=600)
    assert status(server, token, f"capture/session/{cap.id}") == 200
    assert status(server, made["api_key"]) == 200
    ws_url = other.connect_websocket().url
    opened = contextlib.ExitStack()
    socket = opened.enter_context(ws_connect(ws_url))
    assert "connection_id" in json.loads(socket.recv(timeout=10))

    out = keys(server.data_dir, "revoke", made["key_id"]).stdout
    assert made["key_id"] in out and "revoked=" in out
    # The server remembers verified credentials for a few seconds; revocation wins after that.
    assert wait_status(server, made["api_key"], 401) == 401
    assert wait_status(server, token, 401, f"capture/session/{cap.id}") == 401
    assert "revoked" in requests.get(f"{server.url}/collection/default", headers={"x-access-token": made["api_key"]},
                                     timeout=10).json()["message"]
    # Its open websocket is closed within seconds, and its websocket link (valid a day) opens nothing.
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            socket.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    opened.close()
    with pytest.raises(InvalidStatus) as refused:  # refused at the handshake
        with ws_connect(ws_url):
            pass
    assert refused.value.response.status_code == 403
    assert status(server, server.api_key) == 200  # other keys are untouched
    listed = {line.split("\t")[0]: line for line in keys(server.data_dir, "list").stdout.splitlines()}
    assert "revoked=" in listed[made["key_id"]]
    assert keys(server.data_dir, "revoke", "sk-nope", check=False).returncode == 1


@pytest.mark.process
def test_the_environment_key_is_the_only_environment_key(tmp_path):
    data = tmp_path / "data"
    key_a, key_b = "sk-env-a-" + "a" * 32, "sk-env-b-" + "b" * 32
    server = ServerProcess(data, env=NO_INGEST, api_key=key_a).start()
    try:
        made = create_key(data)  # a key made by hand stays whatever the environment says
        server.stop()
        server = ServerProcess(data, env=NO_INGEST, api_key=key_b, port=server.port).start()
        assert status(server, key_a) == 401
        assert status(server, key_b) == 200
        assert status(server, made["api_key"]) == 200
        listed = keys(data, "list").stdout
        assert "(replaced)" in listed
        server.stop()
        # Naming the first key again brings it back and retires the second.
        server = ServerProcess(data, env=NO_INGEST, api_key=key_a, port=server.port).start()
        assert (status(server, key_a), status(server, key_b), status(server, made["api_key"])) == (200, 401, 200)
    finally:
        server.stop()


@pytest.mark.process
def test_old_plain_hashes_are_accepted_once_and_rewritten(tmp_path):
    """A database written before keyed hashes: rows hold plain SHA-256 and no scheme column."""
    from reeldb.server.schema import migrations

    data = tmp_path / "data"
    data.mkdir()
    old_env, old_cli, old_token = "sk-test-" + "k" * 24, "sk-" + "c" * 43, "st-" + "t" * 43
    db = sqlite_utils.Database(data / "reeldb.db")
    migrations.apply(db, stop_before="m005_secrets")
    now = time.time()
    db["api_keys"].insert_all([
        {"id": "sk-0001", "key_hash": sha256(old_env), "webhook_secret": "whsec_a", "created_at": now},
        {"id": "sk-0002", "key_hash": sha256(old_cli), "webhook_secret": "whsec_b", "created_at": now},
    ])
    db["client_tokens"].insert({"token_hash": sha256(old_token), "api_key_id": "sk-0002", "user_id": None,
                                "expires_at": now + 3600, "created_at": now})
    db.close()

    server = ServerProcess(data, env=NO_INGEST, api_key=old_env).start()
    try:
        rows = {r["id"]: r for r in table(data, "api_keys")}
        # The environment's key is known in plaintext at start: rewritten right away and marked env.
        assert rows["sk-0001"]["hash_scheme"].startswith("hmac-sha256:") and rows["sk-0001"]["origin"] == "env"
        assert rows["sk-0002"]["hash_scheme"] == "sha256" and rows["sk-0002"]["origin"] == "unknown"
        assert status(server, old_cli) == 200
        cap = videodb.connect(api_key=old_cli, base_url=server.url).create_capture_session(end_user_id="u")
        assert status(server, old_token, f"capture/session/{cap.id}") == 200
        rows = {r["id"]: r for r in table(data, "api_keys")}
        assert rows["sk-0002"]["hash_scheme"] == rows["sk-0001"]["hash_scheme"]
        assert rows["sk-0002"]["key_hash"] != sha256(old_cli)
        [token_row] = table(data, "client_tokens")
        assert token_row["hash_scheme"] == rows["sk-0001"]["hash_scheme"] and token_row["token_hash"] != sha256(old_token)
        server.restart()  # the rewritten rows verify under the new scheme
        assert (status(server, old_cli), status(server, old_token, f"capture/session/{cap.id}")) == (200, 200)
    finally:
        server.stop()


@pytest.mark.process
def test_secret_key_keeps_working_secrets_out_of_the_data_dir(tmp_path):
    data = tmp_path / "data"
    secret = {"REELDB_SECRET_KEY": "outside-the-data-dir-" + "s" * 32}
    server = ServerProcess(data, env={**NO_INGEST, **secret}, api_key="").start()
    try:
        key = re.search(r"generated an API key:\s+(sk-\S+)", server.log()).group(1)
        assert not (data / "api_key").exists() and not (data / "server_secret").exists()
        assert not any(key.encode() in p.read_bytes() for p in data.rglob("*") if p.is_file())
        conn = videodb.connect(api_key=key, base_url=server.url)
        video = conn.get_collection().upload(file_path=str(make_video(tmp_path / "clip.mp4", seconds=1.0)))
        assert video.id.startswith("m-")  # the signed upload URL verified
        # A CLI without the server's secret key refuses to make keys the server could not verify.
        refused = keys(data, "create", check=False)
        assert refused.returncode == 2 and "REELDB_SECRET_KEY" in refused.stderr
        assert not (data / "server_secret").exists()
        made = create_key(data, env=secret)
        assert status(server, made["api_key"]) == 200
        server.restart()
        assert (status(server, key), status(server, made["api_key"])) == (200, 200)
        assert server.log().count(key) == 1
    finally:
        server.stop()


@pytest.mark.process
def test_switching_to_a_secret_key_keeps_existing_keys(tmp_path):
    data = tmp_path / "data"
    server = ServerProcess(data, env=NO_INGEST).start()
    try:
        made = create_key(data)
        server.stop()
        server = ServerProcess(data, port=server.port,
                               env={**NO_INGEST, "REELDB_SECRET_KEY": "later-" + "x" * 32}).start()
        assert (status(server, server.api_key), status(server, made["api_key"])) == (200, 200)
        schemes = {r["hash_scheme"] for r in table(data, "api_keys")}
        assert len(schemes) == 1  # both rewritten under the secret key's pepper
    finally:
        server.stop()


def test_webhook_signature_binds_time_so_a_replay_fails_the_readme_check(server, conn, hook):
    verify = readme_verify()
    conn.create_capture_session(end_user_id="u", callback_url=hook.url)
    hook.wait_for(lambda ev: len(ev) >= 1)
    body, headers = hook.raw[0]
    secret = keys(server.data_dir, "list", "--show-secrets").stdout.split("webhook_secret=")[1].split()[0]
    t = int(dict(item.split("=", 1) for item in headers["X-VideoDB-Signature"].split(","))["t"])

    assert verify(secret, headers, body)
    assert verify(secret, headers, body, now=t + 299)
    assert not verify(secret, headers, body, now=t + 301)  # the same delivery replayed later
    assert not verify(secret, headers, body + b" ")
    assert not verify("whsec_other", headers, body)
    # Moving t forward to look fresh breaks the signature.
    fresh = headers["X-VideoDB-Signature"].replace(f"t={t}", f"t={t + 600}")
    assert not verify(secret, {**headers, "X-VideoDB-Signature": fresh}, body, now=t + 600)
    # A signature of the bare body (the old format) is refused.
    bare = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert not verify(secret, {**headers, "X-VideoDB-Signature": bare}, body)
