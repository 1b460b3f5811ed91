"""Noticing that the client of a request has gone, so work done only for it can stop.

uvicorn does not cancel a handler whose client disconnects: it runs to its end and its answer is
dropped. Work that costs seconds of CPU for one request (cutting the spans of a compilation or a
timeline URL) watches the connection instead: :func:`client_gone` reads the request's ASGI
``receive`` channel, which yields ``http.disconnect`` once the client has closed its side, and sets
a ``threading.Event`` that the worker thread checks between two pieces of work.

Only for handlers that take no body (a GET): the watcher consumes the request's messages.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, AsyncIterator

from litestar import Request

from .runtime import Runtime


@contextlib.asynccontextmanager
async def client_gone(request: Request[Any, Any, Any], runtime: Runtime) -> AsyncIterator[threading.Event]:
    """An event set when the client of ``request`` disconnects, while the block runs."""
    gone = threading.Event()

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass  # the (empty) body of a GET
        gone.set()

    task = runtime.spawn(watch(), name="client-gone")
    try:
        yield gone
    finally:
        task.cancel()
