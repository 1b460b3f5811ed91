"""Deadlines for a request's headers and body, at the connection (uvicorn's h11 protocol).

Why here: an ASGI app first hears of a request once its headers are complete, and hears of its
body only as the handler reads it, so a client that trickles its headers (slowloris) or announces
a large body and sends it a byte at a time holds a connection and its buffers for as long as it
likes; uvicorn itself has no such timeout (only keep-alive between requests). nginx's
``client_header_timeout`` / ``client_body_timeout`` are the model:

- **Headers**: from a connection's start, or from the first byte of a request on a kept-alive
  connection, the request line and headers must be complete within ``header_timeout`` seconds.
- **Body**: while a body is being received, ``body_timeout`` seconds may pass between two reads,
  and after the first ``body_timeout`` seconds it must have arrived at ``MIN_BODY_RATE`` on
  average, so a body trickled a byte at a time cannot stretch a request for hours.

Either expiry closes the connection (the app, if it was reading the body, sees the client leave).

What this relies on in uvicorn (0.30 to 0.55 checked): ``H11Protocol`` with ``conn`` (an
``h11.Connection``), ``transport``, ``loop``, ``connection_made``, ``data_received`` and
``connection_lost``; and that ``uvicorn.run(http=<protocol class>)`` takes a class. ``tests/server/
test_deadlines.py`` fails if a release changes that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("reeldb.deadlines")

#: Bytes per second a request body must average once it has taken ``body_timeout`` seconds.
MIN_BODY_RATE = 1024


def protocol(header_timeout: float, body_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the two deadlines (0 turns one off)."""

    class DeadlineProtocol(_Deadlines):
        HEADER_TIMEOUT = header_timeout
        BODY_TIMEOUT = body_timeout

    return DeadlineProtocol


class _Deadlines(H11Protocol):
    HEADER_TIMEOUT = 10.0
    BODY_TIMEOUT = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._body_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_headers()  # a connection that sends nothing at all is a slow header too

    def data_received(self, data: bytes) -> None:
        waiting = self.conn.their_state is h11.IDLE
        if waiting and self._header_timer is None:  # the first byte of a request on a kept-alive connection
            self._arm_headers()
        super().data_received(data)
        state = self.conn.their_state
        if state is not h11.IDLE:
            self._cancel_headers()
        if state is h11.SEND_BODY:
            if self._body_timer is None:
                self._body_started, self._body_bytes = time.monotonic(), 0
            elif not waiting:
                self._body_bytes += len(data)
            self._arm_body()
        else:
            self._cancel_body()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_headers()
        self._cancel_body()
        super().connection_lost(exc)

    # -- the two timers --------------------------------------------------------------------------
    def _arm_headers(self) -> None:
        if self.HEADER_TIMEOUT > 0 and self._header_timer is None:
            self._header_timer = self.loop.call_later(self.HEADER_TIMEOUT, self._headers_late)

    def _cancel_headers(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete):
            self._close("its request headers did not arrive within %.0f s" % self.HEADER_TIMEOUT)

    def _arm_body(self) -> None:
        if self.BODY_TIMEOUT <= 0:
            return
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self.loop.call_later(self.BODY_TIMEOUT, self._body_late)
        taken = time.monotonic() - self._body_started
        if taken > self.BODY_TIMEOUT and self._body_bytes < MIN_BODY_RATE * taken:
            self._close("its request body arrives at under %d bytes/s" % MIN_BODY_RATE)

    def _cancel_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_late(self) -> None:
        self._body_timer = None
        if self.conn.their_state is h11.SEND_BODY:
            self._close("its request body stalled for %.0f s" % self.BODY_TIMEOUT)

    def _close(self, why: str) -> None:
        if not self.transport.is_closing():
            client = "%s:%d" % self.client if self.client else "a client"
            log.info("closed the connection of %s: %s", client, why)
            self.transport.close()
