"""Session events: signed webhooks from a durable outbox, retries, restarts, and websockets."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import videodb
from support.server_process import WebhookReceiver, signed_by, webhook_secret
from test_capture_sessions import CHANNELS, recorder


def test_lifecycle_webhooks_are_signed_and_complete(server, conn, hook):
    began = int(time.time())
    cap = conn.create_capture_session(end_user_id="user-9", callback_url=hook.url, metadata={"k": 1})
    rec = recorder(server, conn)
    rec.post("capture/session/start", data={"session_id": cap.id, "channels": CHANNELS})
    rec.post(f"capture/session/{cap.id}/stop")
    events = hook.wait_for(lambda ev: len(ev) >= 4)
    assert [e["event"] for e in sorted(events, key=lambda e: e["timestamp"])] == [
        "capture_session.created", "capture_session.starting", "capture_session.stopping",
        "capture_session.stopped"]
    for e in events:
        assert set(e) == {"id", "version", "event", "timestamp", "capture_session_id", "end_user_id", "status", "data"}
        assert e["version"] == "2" and e["capture_session_id"] == cap.id and e["end_user_id"] == "user-9"
        assert e["event"] == f"capture_session.{e['status']}" and e["id"].startswith("evt-")
        assert e["timestamp"].endswith("Z")
    assert len({e["id"] for e in events}) == 4
    secret = webhook_secret(server).encode()
    for body, headers in hook.raw:
        # t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">: the time is signed with the body.
        parts = dict(item.split("=", 1) for item in headers["X-VideoDB-Signature"].split(","))
        # signed when sent: during this test (a window, not a speed bound)
        assert set(parts) == {"t", "v1"} and began <= int(parts["t"]) <= time.time()
        assert signed_by(secret, body, headers)
        assert headers["X-VideoDB-Event-Id"] == json.loads(body)["id"]


@pytest.mark.process  # reads the server's log
def test_unreachable_webhook_is_retried_then_given_up(server_factory):
    import videodb

    # Retries are logged at DEBUG (the give-up at WARNING): this server says everything.
    server = server_factory(webhook_backoff="0.2", webhook_max_attempts="3", log_level="debug", ingest_workers="0")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    dead = WebhookReceiver()
    url = dead.url
    dead.close()  # nothing listens there any more
    cap = conn.create_capture_session(end_user_id="u", callback_url=url)
    deadline = time.time() + 20
    while "given up after 3 attempts" not in server.log() and time.time() < deadline:
        time.sleep(0.2)
    log = server.log()
    assert f"webhook capture_session.created to {url} given up after 3 attempts" in log
    assert log.count(f"webhook to {url} failed") == 2  # two retries logged before giving up
    assert conn.get_capture_session(cap.id).status == "created"


def test_failing_receiver_gets_the_event_on_a_retry(server, conn, hook):
    hook.status = 503
    conn.create_capture_session(end_user_id="u", callback_url=hook.url)
    deadline = time.time() + 10
    while len(hook.raw) < 1 and time.time() < deadline:
        time.sleep(0.05)
    hook.status = 200
    events = hook.wait_for(lambda ev: len(ev) >= 1)
    assert events[0]["event"] == "capture_session.created"
    assert len(hook.raw) >= 2


def test_restart_between_create_and_get_keeps_session_and_pending_webhooks(server_factory):
    server = server_factory(webhook_backoff="1", webhook_max_attempts="20", ingest_workers="0")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    receiver = WebhookReceiver()
    port = receiver.port
    receiver.close()  # down while the events happen
    cap = conn.create_capture_session(end_user_id="u", callback_url=f"http://127.0.0.1:{port}/hook",
                                      metadata={"survives": True})
    rec = recorder(server, conn)
    rec.post("capture/session/start", data={"session_id": cap.id, "channels": CHANNELS})
    server.kill()  # SIGKILL: no chance to flush anything
    server.start()
    receiver = WebhookReceiver(port=port)
    try:
        conn = videodb.connect(api_key=server.api_key, base_url=server.url)
        got = conn.get_capture_session(cap.id)
        # The recorder's connection died with the server, so the session is stopped on start.
        assert (got.status, got.metadata) == ("stopped", {"survives": True})
        events = receiver.wait_for(lambda ev: len(ev) >= 4, timeout=30)
        assert sorted(e["event"] for e in events) == [
            "capture_session.created", "capture_session.starting", "capture_session.stopped",
            "capture_session.stopping"]
    finally:
        receiver.close()


def test_websocket_gets_connection_id_and_session_events(server, conn):
    async def scenario() -> list[dict]:
        ws = conn.connect_websocket()
        assert ws.url.startswith("ws://127.0.0.1:")
        await ws.connect()
        assert ws.connection_id.startswith("ws-")
        cap = await asyncio.to_thread(conn.create_capture_session, end_user_id="u", ws_connection_id=ws.connection_id)
        rec = recorder(server, conn)
        await asyncio.to_thread(rec.post, "capture/session/start", {"session_id": cap.id, "channels": CHANNELS})
        await asyncio.to_thread(rec.post, f"capture/session/{cap.id}/stop")
        got = []
        async def collect():
            async for message in ws.receive():
                got.append(message)
                if message.get("status") == "stopped":
                    return
        await asyncio.wait_for(collect(), 10)
        await ws.close()
        return got

    messages = asyncio.run(scenario())
    assert [m["event"] for m in messages] == ["capture_session.created", "capture_session.starting",
                                              "capture_session.stopping", "capture_session.stopped"]
    assert all(m["channel"] == "capture_session" for m in messages)


def test_websocket_is_open_to_client_tokens_and_refuses_forged_urls(server, conn):
    rec = recorder(server, conn)

    async def scenario() -> None:
        ws = rec.connect_websocket()
        await ws.connect()
        assert ws.connection_id.startswith("ws-")
        await ws.close()
        forged = videodb.websocket_client.WebSocketConnection(ws.url.split("token=")[0] + "token=forged.1.x")
        try:
            await forged.connect()
        except Exception as exc:
            assert "403" in str(exc)  # refused before the handshake completes
        else:
            raise AssertionError("a forged websocket token was accepted")

    asyncio.run(scenario())
