"""Refuse malformed requests before routing: what no handler should ever have to see.

A NUL byte in a path reaches the file system as ``ValueError: embedded null byte`` (a 500 in the
static files router), and oversized headers cost memory on every request. This ASGI middleware
answers both in the envelope with a 4xx, before any route, dependency or body parsing runs.

It also answers plain ``OPTIONS`` (not CORS preflights, which the CORS middleware answers):
litestar builds a path's automatic OPTIONS handler when the path's first handler is registered,
so its ``Allow`` header lists only that handler's methods (``GET, OPTIONS`` for ``/collection``,
which also takes POST). The guard learns every route's full method set from the app instead.
"""

from __future__ import annotations

import json
import re
from typing import Any, Awaitable, Callable, Iterable, MutableMapping

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

MAX_HEADER_BYTES = 32 * 1024
MAX_PATH_BYTES = 8 * 1024


def _refusal(status: int, message: str, code: str) -> tuple[int, bytes]:
    return status, json.dumps({"success": False, "message": message, "error_code": code}).encode()


def check(scope: Scope) -> tuple[int, bytes] | None:
    """Why ``scope`` is refused, or None (pure: tested without a server)."""
    path: str = scope.get("path", "")
    raw_path: bytes = scope.get("raw_path") or path.encode("utf-8", "surrogateescape")
    query: bytes = scope.get("query_string", b"")
    if "\x00" in path or b"%00" in raw_path.lower():  # no resource is named so; files would 500
        return _refusal(404, "No such endpoint: the path contains a NUL byte", "NOT_FOUND")
    if len(raw_path) + len(query) > MAX_PATH_BYTES:
        return _refusal(414, "The request's URL is too long", "URI_TOO_LONG")
    size = sum(len(k) + len(v) for k, v in scope.get("headers", []))
    if size > MAX_HEADER_BYTES:
        return _refusal(431, "The request's headers are too large", "HEADERS_TOO_LARGE")
    return None


_PARAM = re.compile(r"\{(\w+):(\w+)\}")


def route_pattern(template: str) -> re.Pattern[str]:
    """``/video/{media_id:str}`` → a regex matching concrete paths (trailing slash optional)."""
    out, last = [], 0
    for match in _PARAM.finditer(template):
        out.append(re.escape(template[last:match.start()]))
        out.append(".*" if match.group(2) == "path" else "[^/]+")
        last = match.end()
    out.append(re.escape(template[last:]))
    return re.compile("^" + "".join(out).rstrip("/") + "/?$")


class Guard:
    """The middleware, plus the method sets it learns from the app once the app exists."""

    def __init__(self) -> None:
        self._allow: list[tuple[re.Pattern[str], str]] = []

    def learn(self, routes: Iterable[Any]) -> None:
        """``routes``: the app's routes (anything with ``path`` and ``methods``)."""
        self._allow = [(route_pattern(r.path), ", ".join(sorted(set(r.methods) | {"OPTIONS"})))
                       for r in routes if getattr(r, "methods", None)]

    def allow(self, path: str) -> str | None:
        return next((methods for pattern, methods in self._allow if pattern.match(path)), None)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Callable[[], Awaitable[Any]],
                             send: Callable[[Any], Awaitable[None]]) -> None:
            if scope["type"] in ("http", "websocket"):
                refused = check(scope)
                if refused is not None:
                    status, body = refused
                    if scope["type"] == "websocket":
                        await send({"type": "websocket.close", "code": 4400})
                        return
                    await send({"type": "http.response.start", "status": status,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
                if scope["type"] == "http" and scope["method"] == "OPTIONS" and not _preflight(scope):
                    allow = self.allow(scope["path"])
                    if allow is not None:
                        await send({"type": "http.response.start", "status": 204,
                                    "headers": [(b"allow", allow.encode())]})
                        await send({"type": "http.response.body", "body": b""})
                        return
            await app(scope, receive, send)

        return middleware


def _preflight(scope: Scope) -> bool:
    return any(k == b"access-control-request-method" for k, _ in scope.get("headers", []))
