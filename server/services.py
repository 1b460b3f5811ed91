"""The long-lived parts of a running server, built once by :func:`reeldb.server.app.create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import sqlite_utils
from litestar import Request
from litestar.connection import ASGIConnection

from .auth import Principal, require_key, resolve
from .events import Events, WebSocketHub
from .jobs import Jobs
from .settings import Settings


@dataclass
class Services:
    settings: Settings
    db: sqlite_utils.Database
    hub: WebSocketHub
    events: Events
    jobs: Jobs
    secret: bytes
    #: Turn a finished job's stored result into the API's answer, by job kind (URLs depend on the caller).
    presenters: dict[str, Callable[["Services", dict[str, Any], str], Any]] = field(default_factory=dict)
    #: Live ingest (:class:`reeldb.server.capture_runtime.CaptureRuntime`), set by the app.
    capture: Any = None
    #: Session exports (:class:`reeldb.server.exports.Exports`), set by the app.
    exports: Any = None
    #: Transcripts, the spoken-word index and search (:class:`reeldb.server.spoken.Spoken`).
    spoken: Any = None
    #: Live transcripts of streaming rtstreams (:class:`reeldb.server.live.LiveTranscripts`).
    live: Any = None

    def default_base(self) -> str:
        """For URLs made outside a request (events): the public URL, else where we listen."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.settings.port}"

    def base_url(self, request: ASGIConnection) -> str:
        """Where the caller reached us: URLs we hand out must work from its side of the network."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")


def provide_services(request: Request) -> Services:
    return request.app.state.services


def provide_actor(request: Request) -> Principal:
    """An API key or a client token; handlers that take ``actor`` accept both."""
    svc: Services = request.app.state.services
    return resolve(svc.db, request.headers.get("x-access-token"))


def provide_key(request: Request) -> Principal:
    """An API key only: everything but capture refuses client tokens."""
    return require_key(provide_actor(request))
