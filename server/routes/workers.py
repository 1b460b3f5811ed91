"""The control node's internal endpoints for ingest workers (heartbeats, events, the roster).

Not part of VideoDB's API and not in the OpenAPI document: only processes that show the worker
secret (``x-reeldb-worker-token``) get past the first line of each handler.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import logging

from litestar import Request, get, post

from ..capture_runtime import CaptureRuntime
from ..errors import Conflict, Forbidden, Unauthorized
from ..ingest.backend import WORKER_TOKEN_HEADER, token_matches
from ..ingest import wire
from ..ingest.remote import RemoteIngest

log = logging.getLogger("reeldb.ingest")


class WrongVersion(Conflict):
    error_code = wire.WRONG_VERSION


#: Workers already told (and logged) that they speak another version: one line each, not one a second.
_refused: set[tuple[str, int]] = set()


def _same_version(worker_id: str, version: int) -> None:
    if version != wire.VERSION:
        if (worker_id, version) not in _refused:
            _refused.add((worker_id, version))
            log.error("ingest worker %s refused: %s", worker_id, wire.version_refusal(version))
        raise WrongVersion(wire.version_refusal(version))


def _remote(request: Request[Any, Any, Any], capture: CaptureRuntime) -> RemoteIngest:
    backend = capture.backend
    if not isinstance(backend, RemoteIngest):
        raise Conflict("this server receives media in its own process (REELDB_INGEST_WORKERS=0); "
                       "it takes no ingest workers")
    if not token_matches(backend.token, request.headers.get(WORKER_TOKEN_HEADER)):
        raise Unauthorized("ingest workers must show the worker secret (x-reeldb-worker-token)")
    return backend


def own_address(url: str, client: str | None) -> bool:
    """A worker announces a URL on the address it calls from: whoever holds the worker secret can
    register a worker, but cannot point the control node (which sends offers and stops there) at
    another host. ``localhost`` counts as loopback."""
    try:
        parts = urlsplit(url)
        host = ipaddress.ip_address("127.0.0.1" if parts.hostname == "localhost" else (parts.hostname or ""))
        caller = ipaddress.ip_address(client or "")
    except ValueError:
        return False
    if parts.scheme not in ("http", "https"):
        return False
    return host == caller or (host.is_loopback and caller.is_loopback)


@post("/internal/ingest/heartbeat", status_code=200, include_in_schema=False)
async def heartbeat(data: wire.Heartbeat, request: Request[Any, Any, Any], capture: CaptureRuntime) -> dict[str, Any]:
    backend = _remote(request, capture)
    _same_version(data.worker_id, data.version)
    if not own_address(data.url, request.client.host if request.client else None):
        raise Forbidden("an ingest worker announces a URL on its own address (http://<the address it calls "
                        "from>:<port>)")
    return {"success": True, "data": wire.to_builtins(wire.Owned(backend.heartbeat(data)))}


@post("/internal/ingest/events", status_code=200, include_in_schema=False)
async def events(data: wire.Events, request: Request[Any, Any, Any], capture: CaptureRuntime) -> dict[str, Any]:
    backend = _remote(request, capture)
    _same_version(data.worker_id, data.version)
    await backend.deliver(data.worker_id, data.events)
    return {"success": True, "data": {}}


@get("/internal/ingest/workers", include_in_schema=False)
async def roster(request: Request[Any, Any, Any], capture: CaptureRuntime) -> dict[str, Any]:
    """Every worker the control node knows, with the sessions it hosts (doctor and tests read it)."""
    return {"success": True, "data": {"workers": _remote(request, capture).describe()}}


handlers = [heartbeat, events, roster]
