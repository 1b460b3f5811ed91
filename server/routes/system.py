"""Health, and the websocket that carries events to clients."""

from __future__ import annotations

from typing import Any

import hmac

from litestar import Request, Response, WebSocket, get, websocket

from ..auth import Auth, require_key
from ..errors import Unauthorized
from ..events import WebSocketHub
from ..ids import new_id
from ..links import Links
from ..metrics import CONTENT_TYPE, Metrics, is_loopback
from ..settings import Settings


@get("/health", sync_to_thread=False, opt={"head": True})  # HEAD too (server/guard.py): probes use it
def health() -> dict[str, Any]:
    return {"success": True, "data": {"status": "ok"}}


@get("/metrics", include_in_schema=False)
async def metrics(request: Request, metrics: Metrics, settings: Settings, auth: Auth) -> Response[bytes]:
    """Prometheus exposition. With REELDB_METRICS_TOKEN: that bearer token (or an API key);
    without: loopback clients freely, others with an API key (``x-access-token``)."""
    bearer = request.headers.get("authorization", "")
    token = settings.metrics_token
    allowed = bool(token) and hmac.compare_digest(bearer.encode(), f"Bearer {token}".encode())
    if not allowed and not token and is_loopback(request.client.host if request.client else None):
        allowed = True
    if not allowed:
        if not request.headers.get("x-access-token"):
            raise Unauthorized("/metrics needs REELDB_METRICS_TOKEN as a bearer token or an API key"
                               if token else "/metrics answers loopback clients; others need an API key")
        require_key(await auth.resolve(request.headers.get("x-access-token")))
    return Response(await metrics.scrape(), media_type=CONTENT_TYPE)


@websocket("/ws")
async def events_socket(socket: WebSocket, links: Links, hub: WebSocketHub, auth: Auth) -> None:
    """First message ``{"connection_id": …}`` (what both SDKs wait for), then events until close.
    A link of a revoked key opens nothing, and the server closes the open sockets of a key once it
    is revoked (``Server._close_revoked_sockets``)."""
    owner = links.check("ws", socket.query_params.get("token", ""))
    if owner is None or await auth.revoked({owner}):
        await socket.close(code=4401, reason="invalid or expired websocket token")
        return
    connection_id = new_id("ws")
    if not hub.add(connection_id, socket, owner):
        await socket.close(code=4429, reason="too many open websockets for this API key")
        return
    await socket.accept()
    try:
        await socket.send_json({"connection_id": connection_id})
        while True:
            message = await socket.receive_data(mode="text")
            if message.strip() in ('{"type":"ping"}', '{"type": "ping"}', "ping"):
                await socket.send_json({"type": "pong"})
    except Exception:  # disconnects surface as various exceptions; all end the same way
        pass
    finally:
        hub.remove(connection_id)


handlers = [health, metrics, events_socket]
