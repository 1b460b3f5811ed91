"""Health, and the websocket that carries events to clients."""

from __future__ import annotations

from typing import Any

from litestar import WebSocket, get, websocket

from ..events import WebSocketHub
from ..ids import new_id
from ..links import Links


@get("/health", sync_to_thread=False, opt={"head": True})  # HEAD too (server/guard.py): probes use it
def health() -> dict[str, Any]:
    return {"success": True, "data": {"status": "ok"}}


@websocket("/ws")
async def events_socket(socket: WebSocket, links: Links, hub: WebSocketHub) -> None:
    """First message ``{"connection_id": …}`` (what both SDKs wait for), then events until close."""
    owner = links.check("ws", socket.query_params.get("token", ""))
    if owner is None:
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


handlers = [health, events_socket]
