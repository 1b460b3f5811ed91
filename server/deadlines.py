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
A connection upgraded to a websocket leaves both: uvicorn stops feeding h11 in the middle of the
upgrade request, which would otherwise look like a body that stalled (every SDK websocket was
closed 30 s after it opened).

A connection keeps one header timer, not one a request: each request's first byte only notes the
time, and the timer, when it fires, closes the connection if the headers it finds pending are
late, else waits for their deadline, or lets go when none are pending (the next request's first
byte arms it again). A kept-alive connection's requests then cost no timer each (arming and
cancelling one was a measurable share of a request's work on the loop).

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
        self._headers_since: float | None = None  # loop time of the pending request's first byte
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_started = self._body_last = 0.0
        self._body_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_begin()  # a connection that sends nothing at all is a slow header too

    def data_received(self, data: bytes) -> None:
        waiting = self.conn.their_state is h11.IDLE
        if waiting and self._headers_since is None:  # the first byte of a request on a kept-alive connection
            self._headers_begin()
        super().data_received(data)
        if self._upgraded():
            return
        state = self.conn.their_state
        if state is not h11.IDLE:
            self._headers_since = None  # complete: the timer, if it fires, finds nothing pending
        if state is h11.SEND_BODY:
            now = time.monotonic()
            if self._body_timer is None:  # one timer for the whole body: a chunk only notes the time
                self._body_started, self._body_bytes = now, 0
                if self.BODY_TIMEOUT > 0:
                    self._body_timer = self.loop.call_later(self.BODY_TIMEOUT, self._check_body)
            elif not waiting:
                self._body_bytes += len(data)
            self._body_last = now
        else:
            self._body_timer = _cancelled(self._body_timer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_timer = _cancelled(self._header_timer)
        self._body_timer = _cancelled(self._body_timer)
        super().connection_lost(exc)

    def _upgraded(self) -> bool:
        """Whether the connection now speaks another protocol (a websocket: uvicorn hands the
        transport to a websocket protocol, leaving h11 mid-request). Its deadlines end here: the
        request is over, and a socket open for hours is what a websocket is for."""
        if self.transport.get_protocol() is self:
            return False
        self._header_timer = _cancelled(self._header_timer)
        self._body_timer = _cancelled(self._body_timer)
        self._headers_since = None
        return True

    # -- the two deadlines -----------------------------------------------------------------------
    def _headers_begin(self) -> None:
        if self.HEADER_TIMEOUT <= 0:
            return
        self._headers_since = self.loop.time()
        if self._header_timer is None:
            self._header_timer = self.loop.call_at(self._headers_since + self.HEADER_TIMEOUT, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._headers_since is None:
            return  # no request's headers pending
        due = self._headers_since + self.HEADER_TIMEOUT
        if self.loop.time() < due:  # a later request's headers: their own deadline
            self._header_timer = self.loop.call_at(due, self._headers_late)
        elif self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete):
            self._close("its request headers did not arrive within %.0f s" % self.HEADER_TIMEOUT)

    def _check_body(self) -> None:
        """While a body arrives: closed once it stalls for ``BODY_TIMEOUT`` or, past that long, averages
        under ``MIN_BODY_RATE``; else asked again when the stall would reach the deadline."""
        self._body_timer = None
        if self.conn.their_state is not h11.SEND_BODY:
            return
        now = time.monotonic()
        idle, taken = now - self._body_last, now - self._body_started
        if idle >= self.BODY_TIMEOUT:
            self._close("its request body stalled for %.0f s" % self.BODY_TIMEOUT)
        elif taken > self.BODY_TIMEOUT and self._body_bytes < MIN_BODY_RATE * taken:
            self._close("its request body arrives at under %d bytes/s" % MIN_BODY_RATE)
        else:
            self._body_timer = self.loop.call_later(min(self.BODY_TIMEOUT - idle, 1.0), self._check_body)

    def _close(self, why: str) -> None:
        if not self.transport.is_closing():
            client = "%s:%d" % self.client if self.client else "a client"
            log.info("closed the connection of %s: %s", client, why)
            self.transport.close()


def _cancelled(timer: asyncio.TimerHandle | None) -> None:
    """Cancel ``timer`` if there is one; None, to store in its place."""
    if timer is not None:
        timer.cancel()
    return None
