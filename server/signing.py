"""Short signed tokens for URLs handed to clients that cannot send headers.

The SDK opens websocket URLs and posts to upload URLs with no ``x-access-token``, and players fetch
media with plain GETs; such URLs carry ``<payload>.<expiry>.<hmac>`` signed with the server's
secret. Every token is signed for one purpose (stream, file, upload, websocket) and is refused
for any other, so a long-lived stream link opens the stream and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Literal

Purpose = Literal["stream", "file", "upload", "ws", "frame", "moment"]


def _mac(secret: bytes, message: str) -> str:
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret: bytes, purpose: Purpose, payload: str, ttl: float) -> str:
    """``payload`` must not contain dots; it comes back from :func:`verify` unchanged.

    Long-lived links expire on a whole day (an hour for day-long ones), so the same resource
    gets the same URL all day: players and caches see one URL, and two answers a second apart
    agree (``video.stream_url`` equals what ``cap.export()`` returns a moment later)."""
    quantum = 86400 if ttl >= 30 * 86400 else 3600 if ttl >= 86400 else 1
    expires = -(-int(time.time() + ttl) // quantum) * quantum
    message = f"{payload}.{expires}"
    return f"{message}.{_mac(secret, f'{purpose}:{message}')}"


def verify(secret: bytes, purpose: Purpose, token: str) -> str | None:
    """The payload if ``token`` was signed for ``purpose`` and has not expired, else None.

    Stream links made before purposes existed (signed over the bare message) still open their
    stream, since users keep them for years; they open nothing else.
    """
    if len(token) > 256:
        return None
    try:
        payload, expires, mac = token.rsplit(".", 2)
    except ValueError:
        return None
    message = f"{payload}.{expires}"
    good = hmac.compare_digest(mac, _mac(secret, f"{purpose}:{message}"))
    if not good and purpose == "stream":
        good = hmac.compare_digest(mac, _mac(secret, message))
    if not good or not expires.isdigit() or int(expires) < time.time():
        return None
    return payload
