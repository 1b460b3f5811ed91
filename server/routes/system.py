"""Health, and the websocket that carries events to clients."""

from __future__ import annotations

import logging
from typing import Any

from litestar import WebSocket, get, websocket

from ..ids import new_id
from ..services import Services
from ..signing import verify

log = logging.getLogger("reeldb.ws")


@get("/health", sync_to_thread=False)
def health() -> dict[str, Any]:
    return {"success": True, "data": {"status": "ok"}}


@websocket("/ws")
async def events_socket(socket: WebSocket) -> None:
    """First message ``{"connection_id": …}`` (what both SDKs wait for), then events until close."""
    svc: Services = socket.app.state.services
    if verify(svc.secret, socket.query_params.get("token", "")) is None:
        await socket.close(code=4401, reason="invalid or expired websocket token")
        return
    await socket.accept()
    connection_id = new_id("ws")
    svc.hub.add(connection_id, socket)
    try:
        await socket.send_json({"connection_id": connection_id})
        while True:
            message = await socket.receive_data(mode="text")
            if message.strip() in ('{"type":"ping"}', '{"type": "ping"}', "ping"):
                await socket.send_json({"type": "pong"})
    except Exception:  # disconnects surface as various exceptions; all end the same way
        pass
    finally:
        svc.hub.remove(connection_id)


handlers = [health, events_socket]
