"""`reeldb doctor`, `reeldb backup`/`restore` refusals, /metrics auth, REELDB_ICE_SERVERS."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
import requests
from support.server_process import REELDB

from reeldb.capture.ice import parse_ice_servers


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([REELDB, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **env})


def lines(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        state, _, rest = line.partition(" ")
        if state in ("ok", "warn", "FAIL") and ":" in rest:
            found[rest.strip().split(":")[0]] = state
    return found


@pytest.mark.process(ingest_workers="auto")  # doctor beside a `reeldb serve` as a user runs it (its ingest workers)
def test_doctor_passes_beside_a_running_server(server):
    done = run("doctor", "--data-dir", str(server.data_dir), REELDB_PORT=str(server.port),
               REELDB_ICE_PORT_RANGE="47000-47009")
    checks = lines(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(checks) == {"data dir", "disk", "database", "whisper model", "embedding model", "port",
                           "ice candidates", "ice servers", "ingest workers", "ffmpeg, espeak"}
    assert all(state in ("ok", "warn") for state in checks.values()), done.stdout
    assert "is ReelDB, answering /health" in done.stdout
    assert "127.0.0.1" in done.stdout  # REELDB_ICE_ADDRESSES of the suite
    assert "UDP ports 47000-47009 (REELDB_ICE_PORT_RANGE)" in done.stdout


@pytest.mark.process
def test_doctor_fails_on_a_foreign_port_and_bad_ice_servers(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        done = run("doctor", "--data-dir", str(tmp_path / "d"), "--port", str(port),
                   REELDB_ICE_SERVERS='[{"urls": "http://stun.example"}]', REELDB_ICE_PORT_RANGE="99-1")
    checks = lines(done.stdout)
    assert done.returncode == 1, done.stdout
    assert checks["port"] == "FAIL" and "not ReelDB" in done.stdout
    assert checks["ice servers"] == "FAIL" and "not a stun:/turn: URL" in done.stdout
    assert checks["ice candidates"] == "FAIL" and "REELDB_ICE_PORT_RANGE" in done.stdout
    assert checks["whisper model"] == checks["embedding model"] == "ok"
    assert checks["database"] == "ok" and "not created yet" in done.stdout


@pytest.mark.process
def test_backup_and_restore_refusals(server, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    done = run("backup", str(full), "--data-dir", str(server.data_dir))
    assert done.returncode == 2 and "not empty" in done.stderr
    done = run("backup", str(tmp_path / "b"), "--data-dir", str(tmp_path / "nothing"))
    assert done.returncode == 2 and "no database" in done.stderr
    done = run("backup", str(server.data_dir / "backup"), "--data-dir", str(server.data_dir))
    assert done.returncode == 2 and "inside the data dir" in done.stderr
    done = run("restore", str(full), "--data-dir", str(tmp_path / "r"))
    assert done.returncode == 2 and "not a ReelDB backup" in done.stderr
    assert run("backup", str(tmp_path / "b"), "--data-dir", str(server.data_dir)).returncode == 0
    assert run("restore", str(tmp_path / "b"), "--data-dir", str(server.data_dir)).returncode == 2  # not empty
    other = tmp_path / "other"
    other.mkdir()
    (other / "reeldb.db").write_text("stale")
    done = run("restore", str(tmp_path / "b"), "--data-dir", str(other), "--force")
    assert done.returncode == 0, done.stderr
    assert (other / "reeldb.db").read_bytes()[:15] == b"SQLite format 3"


def test_metrics_token(in_process_factory):
    server = in_process_factory(metrics_token="scrape-me")
    assert requests.get(server.url + "/metrics", timeout=10).status_code == 401
    body = requests.get(server.url + "/metrics", headers={"authorization": "Bearer wrong"}, timeout=10)
    assert body.status_code == 401 and body.json()["success"] is False and "REELDB_METRICS_TOKEN" in body.json()["message"]
    ok = requests.get(server.url + "/metrics", headers={"authorization": "Bearer scrape-me"}, timeout=10)
    assert ok.status_code == 200 and "reeldb_capture_sessions" in ok.text
    by_key = requests.get(server.url + "/metrics", headers={"x-access-token": server.api_key}, timeout=10)
    assert by_key.status_code == 200
    assert requests.get(server.url + "/metrics", headers={"x-access-token": "sk-nope"}, timeout=10).status_code == 401
    assert "/metrics" not in requests.get(server.url + "/schema/openapi.json", timeout=10).json()["paths"]


def test_ice_servers_setting():
    servers = parse_ice_servers('[{"urls": "stun:stun.example.org:3478"}, '
                                '{"urls": ["turn:turn.example.org:3478?transport=udp"], "username": "u", "credential": "p"}]')
    assert [s.urls for s in servers] == ["stun:stun.example.org:3478", ["turn:turn.example.org:3478?transport=udp"]]
    assert (servers[1].username, servers[1].credential) == ("u", "p")
    assert parse_ice_servers("") == [] and parse_ice_servers(None) == []
    assert [s.urls for s in parse_ice_servers('"stun:a.example:3478"')] == ["stun:a.example:3478"]
    with pytest.raises(ValueError, match="not JSON"):
        parse_ice_servers("stun:a")
    with pytest.raises(ValueError, match="needs urls"):
        parse_ice_servers('[{"username": "u"}]')


@pytest.mark.process
def test_a_bad_ice_servers_value_stops_the_start(tmp_path):
    proc = subprocess.run([REELDB, "serve", "--data-dir", str(tmp_path / "d"), "--port", "1"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "REELDB_ICE_SERVERS": "[{"})
    assert proc.returncode != 0 and "REELDB_ICE_SERVERS is not JSON" in proc.stderr
    proc = subprocess.run([REELDB, "serve", "--data-dir", str(tmp_path / "d"), "--port", "1"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "REELDB_ICE_PORT_RANGE": "40000"})
    assert proc.returncode == 2 and "expected LOW-HIGH" in proc.stderr


def test_json_logs(server_factory):
    import json
    import time

    import videodb

    server = server_factory(log_format="json", webhook_backoff="0.2", webhook_max_attempts="2")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    conn.create_capture_session(end_user_id="u", callback_url="http://127.0.0.1:9/hook")  # nothing listens
    deadline = time.time() + 20
    while "given up" not in server.log() and time.time() < deadline:
        time.sleep(0.2)
    entries = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    others = [line for line in server.log().splitlines() if line and not line.startswith("{")]
    # print()ed lines (the banner, a generated key, an ingest worker's address) are not log
    # records; every log record is JSON, the libraries' included
    assert all(line.startswith(("ReelDB ", "  ")) for line in others), others
    assert {"ts", "level", "logger", "message"} <= set(entries[0])
    assert any(e["logger"] == "reeldb.events" and "given up" in e["message"] for e in entries), entries
    proc = subprocess.run([REELDB, "serve", "--data-dir", "/nonexistent/x", "--port", "1"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "REELDB_LOG_FORMAT": "xml"})
    assert proc.returncode == 2 and "text or json" in proc.stderr
