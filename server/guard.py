"""Refuse malformed requests before routing: what no handler should ever have to see.

A NUL byte in a path reaches the file system as ``ValueError: embedded null byte`` (a 500 in the
static files router), and oversized headers cost memory on every request. This ASGI middleware
answers both in the envelope with a 4xx, before any route, dependency or body parsing runs.

It also answers plain ``OPTIONS`` (not CORS preflights, which the CORS middleware answers):
litestar builds a path's automatic OPTIONS handler when the path's first handler is registered,
so its ``Allow`` header lists only that handler's methods (``GET, OPTIONS`` for ``/collection``,
which also takes POST). The guard learns every route's full method set from the app instead
(``errors.py`` asks it for the ``Allow`` of a 405 too).

Its ``head`` wrapper (around the app's ASGI handler, ahead of routing) answers ``HEAD`` on the routes whose handlers are marked ``opt={"head": True}`` (streams,
pages, static and player files, the docs page: what browsers, players and caches probe): the
request runs as the ``GET`` it describes, without its ``Range``, and the client gets that
answer's status and headers (``Content-Type``, ``Content-Length``, ``Cache-Control``…) with no
body. Once the headers are out, the handler is told the client left, so a streamed file stops
being read. (litestar's own HEAD handlers leave out ``Content-Type``; the static files router's
HEAD is answered here too, so it says the same as its GET.)
"""

from __future__ import annotations

import asyncio
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
        self._allow: list[tuple[int, re.Pattern[str], str]] = []
        self._head: list[re.Pattern[str]] = []

    def learn(self, routes: Iterable[Any]) -> None:
        """``routes``: the app's routes (anything with ``path``, ``methods`` and ``route_handlers``)."""
        self._allow, self._head = [], []
        for route in routes:
            methods = set(getattr(route, "methods", None) or ())
            if not methods:
                continue
            pattern = route_pattern(route.path)
            if "GET" in methods and any((getattr(h, "opt", None) or {}).get("head")
                                        for h in getattr(route, "route_handlers", ())):
                methods.add("HEAD")
                self._head.append(pattern)
            self._allow.append((route.path.count("{"), pattern, ", ".join(sorted(methods | {"OPTIONS"}))))
        # as litestar routes: a path with static segments where another has parameters wins
        self._allow.sort(key=lambda entry: entry[0])

    def allow(self, path: str) -> str | None:
        return next((methods for _, pattern, methods in self._allow if pattern.match(path)), None)

    def answers_head(self, path: str) -> bool:
        return any(pattern.match(path) for pattern in self._head)

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


    def head(self, app: ASGIApp) -> ASGIApp:
        """Answer ``HEAD`` as ``GET`` on the learned routes. litestar routes before its middleware
        runs (a HEAD with no handler is a 405 by then), so this wraps the app's ASGI handler,
        ahead of routing: ``app.asgi_handler = guard.head(app.asgi_handler)``."""
        async def handler(scope: Scope, receive: Callable[[], Awaitable[Any]],
                          send: Callable[[Any], Awaitable[None]]) -> None:
            if scope["type"] == "http" and scope["method"] == "HEAD" and self.answers_head(scope["path"]):
                await _head_as_get(app, scope, receive, send)
            else:
                await app(scope, receive, send)

        return handler


def _preflight(scope: Scope) -> bool:
    return any(k == b"access-control-request-method" for k, _ in scope.get("headers", []))


async def _head_as_get(app: ASGIApp, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``HEAD`` as the ``GET`` it stands for; send its start (status, headers) and no body.

    The server keeps the original scope (method ``HEAD``), so it sends no body either way and
    keeps ``Content-Length`` as the GET's. ``Range`` is dropped: it is defined for GET only.
    """
    finished = asyncio.Event()
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"range"]

    async def send_head(message: dict[str, Any]) -> None:
        if finished.is_set():
            return
        if message["type"] == "http.response.start":
            await send(message)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        finished.set()

    async def receive_until_sent() -> Any:
        """The client's messages, then (once the answer is complete) a disconnect: a streamed
        response listens for one and stops reading its file."""
        if finished.is_set():
            return {"type": "http.disconnect"}
        message = asyncio.ensure_future(receive())
        done = asyncio.ensure_future(finished.wait())
        await asyncio.wait({message, done}, return_when=asyncio.FIRST_COMPLETED)
        done.cancel()
        if message.done():
            return message.result()
        message.cancel()
        return {"type": "http.disconnect"}

    await app({**scope, "method": "GET", "headers": headers}, receive_until_sent, send_head)

