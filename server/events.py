"""Capture session events: a durable outbox, signed webhooks with retries, and websocket fan-out.

A status change and its event (plus one delivery row per webhook target) are written in the same
transaction, so an event is never lost between "status changed" and "webhook sent": after a crash the
dispatcher finds the delivery rows still pending and sends them. Websockets are best effort, as in
VideoDB: they get the event once, right after commit, if the connection is open.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx

from .database import Conn, Database, dumps, row, rows
from .ids import new_id
from .rows import CaptureSession
from .settings import Settings

if TYPE_CHECKING:  # the hub's sockets; this module also loads where no web server runs (a job's child)
    from litestar import WebSocket

log = logging.getLogger("reeldb.events")


#: The session statuses the log names at INFO, and how.
OPERATOR_STATUSES = {"active": "started", "stopped": "stopped", "exported": "exported", "failed": "failed"}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def sign_body(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-VideoDB-Signature`` value: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.

    Signing the time with the body (as Stripe does) lets a receiver refuse a delivery replayed
    later: it recomputes the HMAC and rejects a ``t`` too far from its clock (the README's
    verification allows 300 s). Every attempt is signed afresh, so a retry carries its own time.
    """
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class WebSocketHub:
    """Open websocket connections by ``connection_id``."""

    def __init__(self, max_per_owner: int = 64) -> None:
        self._sockets: dict[str, WebSocket] = {}
        self._owners: dict[str, str] = {}
        self.max_per_owner = max_per_owner

    def add(self, connection_id: str, socket: WebSocket, owner: str) -> bool:
        """Register a socket of ``owner`` (an API key id); False when it already holds its limit."""
        if sum(1 for o in self._owners.values() if o == owner) >= self.max_per_owner:
            return False
        self._sockets[connection_id] = socket
        self._owners[connection_id] = owner
        return True

    def remove(self, connection_id: str) -> None:
        self._sockets.pop(connection_id, None)
        self._owners.pop(connection_id, None)

    def owners(self) -> set[str]:
        return set(self._owners.values())

    async def close_owner(self, owner: str, code: int, reason: str) -> int:
        """Close every socket of ``owner`` (a revoked API key); how many were open."""
        closing = [(cid, self._sockets[cid]) for cid, o in list(self._owners.items()) if o == owner]
        for connection_id, socket in closing:
            self.remove(connection_id)
            try:
                await socket.close(code=code, reason=reason)
            except Exception as exc:  # already closed by the client
                log.debug("websocket %s close failed: %s", connection_id, exc)
        return len(closing)

    async def send(self, connection_id: str | None, message: dict[str, Any]) -> bool:
        socket = self._sockets.get(connection_id or "")
        if socket is None:
            return False
        try:
            await socket.send_json(message)
            return True
        except Exception as exc:  # a closed socket is normal here; it will be removed by its handler
            log.debug("websocket %s send failed: %s", connection_id, exc)
            self.remove(connection_id or "")
            return False


class Events:
    """Owns the ``events`` and ``deliveries`` tables: the outbox and its webhook dispatcher."""

    def __init__(self, db: Database, settings: Settings, hub: WebSocketHub) -> None:
        self.db = db
        self.settings = settings
        self.hub = hub
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    # -- writing (inside the caller's transaction) ------------------------------------------------
    def record(self, conn: Conn, session: CaptureSession, status: str,
               data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the event for ``session`` reaching ``status`` and its webhook delivery rows.

        Call inside the write transaction that changes the status, then :meth:`published`.
        """
        now = time.time()
        event = {
            "id": new_id("event"),
            "version": "2",
            "event": f"capture_session.{status}",
            "timestamp": iso(now),
            "capture_session_id": session.id,
            "end_user_id": session.end_user_id,
            "status": status,
            "data": data or {},
        }
        conn["events"].insert(
            {"id": event["id"], "session_id": session.id, "event": event["event"],
             "payload": dumps(event), "ws_connection_id": session.ws_connection_id,
             "created_at": now}
        )
        if session.callback_url:
            conn["deliveries"].insert(
                {"event_id": event["id"], "url": session.callback_url,
                 "api_key_id": session.api_key_id, "status": "pending", "attempts": 0,
                 "next_attempt_at": now, "last_error": None, "delivered_at": None}
            )
        return event

    async def published(self, event: dict[str, Any], ws_connection_id: str | None) -> None:
        """After commit: push to the websocket and wake the webhook dispatcher."""
        if event["status"] in OPERATOR_STATUSES:  # what an operator reads at INFO (server/logs.py)
            detail = event["data"].get("exported_video_id") or event["data"].get("reason") or ""
            log.info("session %s %s%s", event["capture_session_id"], OPERATOR_STATUSES[event["status"]],
                     f": {detail}" if detail else "")
        self._wake.set()
        if ws_connection_id:
            await self.hub.send(ws_connection_id, {"channel": "capture_session", **event})

    # -- live alerts (server/live_indexes.py) -----------------------------------------------------
    async def alert(self, session_id: str, payload: dict[str, Any], url: str, api_key_id: str) -> None:
        """A stored channel's alert webhook, through the outbox like a session's (durable, retried)."""
        now = time.time()
        event_id = new_id("event")

        def write(conn: Conn) -> None:
            conn["events"].insert({"id": event_id, "session_id": session_id, "event": "alert",
                                   "payload": dumps(payload), "ws_connection_id": None, "created_at": now})
            conn["deliveries"].insert({"event_id": event_id, "url": url, "api_key_id": api_key_id,
                                       "status": "pending", "attempts": 0, "next_attempt_at": now,
                                       "last_error": None, "delivered_at": None})

        await self.db.execute_write_fn(write)
        self._wake.set()

    async def alert_from_memory(self, payload: dict[str, Any], url: str, api_key_id: str) -> bool:
        """An ephemeral channel's alert webhook, sent from memory and never written: its text is
        what the channel said, and nothing of an ephemeral channel touches the disk. Bounded:
        ``webhook_max_attempts`` tries (at most 5) with the outbox's backoff capped at 5 s; lost if
        the server stops meanwhile (the websocket's at-most-once, said in docs/live.md)."""
        secret = await self.db.execute_fn(lambda conn: row(
            conn, "select webhook_secret from api_keys where id = ?", [api_key_id]))
        body = json.dumps(payload).encode()
        delivery_id = new_id("event")
        async with httpx.AsyncClient(timeout=self.settings.webhook_timeout) as client:
            for attempt in range(1, min(self.settings.webhook_max_attempts, 5) + 1):
                headers = {"Content-Type": "application/json", "User-Agent": "ReelDB-Webhooks/1",
                           "X-VideoDB-Event-Id": delivery_id}
                if secret and secret["webhook_secret"]:
                    headers["X-VideoDB-Signature"] = sign_body(secret["webhook_secret"], body)
                try:
                    response = await client.post(url, content=body, headers=headers)
                    if 200 <= response.status_code < 300:
                        return True
                    error = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                log.debug("alert webhook to %s failed (%s), attempt %d", url, error, attempt)
                await asyncio.sleep(min(self.settings.webhook_backoff * 2 ** (attempt - 1), 5.0))
        log.warning("alert webhook to %s given up (ephemeral channel: not kept for retry)", url)
        return False

    # -- webhook delivery ------------------------------------------------------------------------
    async def run(self) -> None:
        """Deliver due webhooks until cancelled."""
        self._client = httpx.AsyncClient(timeout=self.settings.webhook_timeout)
        try:
            while True:
                self._wake.clear()
                now = time.time()
                due = await self.db.execute_fn(lambda conn: list(rows(
                    conn,
                    "select d.*, e.payload, k.webhook_secret from deliveries d join events e on e.id = d.event_id "
                    "left join api_keys k on k.id = d.api_key_id "
                    "where d.status = 'pending' and d.next_attempt_at <= ? order by d.id limit 32",
                    [now],
                )))
                if due:
                    # In order per receiver (events of a session arrive as they happened, unless a
                    # retry intervenes); receivers are served concurrently.
                    by_url: dict[str, list[dict[str, Any]]] = {}
                    for delivery in due:
                        by_url.setdefault(delivery["url"], []).append(delivery)
                    await asyncio.gather(*(self._deliver_in_order(batch) for batch in by_url.values()))
                    continue
                nxt = await self.db.execute_fn(lambda conn: row(
                    conn, "select min(next_attempt_at) as t from deliveries where status = 'pending'"))
                delay = 3600.0 if not nxt or nxt["t"] is None else max(0.0, nxt["t"] - time.time())
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=min(delay, 3600.0))
                except asyncio.TimeoutError:
                    pass
        finally:
            await self._client.aclose()

    async def _deliver_in_order(self, batch: list[dict[str, Any]]) -> None:
        for delivery in batch:
            await self._deliver(delivery)

    async def _deliver(self, delivery: dict[str, Any]) -> None:
        body = delivery["payload"].encode()
        payload = json.loads(body)
        headers = {"Content-Type": "application/json", "User-Agent": "ReelDB-Webhooks/1",
                   "X-VideoDB-Event-Id": payload.get("id") or delivery["event_id"]}
        secret = delivery.get("webhook_secret")
        if secret:
            headers["X-VideoDB-Signature"] = sign_body(secret, body)
        attempts = delivery["attempts"] + 1
        error = None
        try:
            assert self._client is not None
            response = await self._client.post(delivery["url"], content=body, headers=headers)
            if 200 <= response.status_code < 300:
                await self._update(delivery["id"], {"status": "delivered", "attempts": attempts,
                                                    "delivered_at": time.time()})
                return
            error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if attempts >= self.settings.webhook_max_attempts:
            await self._update(delivery["id"], {"status": "failed", "attempts": attempts, "last_error": error})
            log.warning(
                "webhook %s to %s given up after %d attempts: %s",
                payload.get("event") or "alert", delivery["url"], attempts, error,
            )
            return
        delay = min(self.settings.webhook_backoff * 2 ** (attempts - 1), self.settings.webhook_backoff_max)
        delay *= 1 + random.random() * 0.1
        await self._update(delivery["id"], {"attempts": attempts, "last_error": error,
                                            "next_attempt_at": time.time() + delay})
        log.debug("webhook to %s failed (%s); retry %d in %.1fs", delivery["url"], error, attempts, delay)

    async def _update(self, delivery_id: int, changes: dict[str, Any]) -> None:
        await self.db.execute_write_fn(lambda conn: conn["deliveries"].update(delivery_id, changes))
