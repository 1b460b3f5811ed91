"""The control node's internal endpoints for ingest workers (heartbeats, events, the roster).

Not part of VideoDB's API and not in the OpenAPI document: only processes that show the worker
secret (``x-reeldb-worker-token``) get past the first line of each handler.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, get, post

from ..capture_runtime import CaptureRuntime
from ..errors import Conflict, Forbidden, Unauthorized
from ..ingest.backend import WORKER_TOKEN_HEADER, token_matches
from ..ingest import wire
from ..ingest.remote import RemoteIngest



class WrongVersion(Conflict):
    error_code = wire.WRONG_VERSION


def _same_version(backend: RemoteIngest, worker_id: str, version: int) -> None:
    refusal = backend.same_version(worker_id, version)
    if refusal is not None:
        raise WrongVersion(refusal)


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
    if not own_address(data.url, request.client.host if request.client else None):
        raise Forbidden("an ingest worker announces a URL on its own address (http://<the address it calls "
                        "from>:<port>)")
    _same_version(backend, data.worker_id, data.version)
    return {"success": True, "data": wire.to_builtins(wire.Owned(backend.heartbeat(data)))}


@post("/internal/ingest/events", status_code=200, include_in_schema=False)
async def events(data: wire.Events, request: Request[Any, Any, Any], capture: CaptureRuntime) -> dict[str, Any]:
    backend = _remote(request, capture)
    _same_version(backend, data.worker_id, data.version)
    await backend.deliver(data.worker_id, data.events)
    return {"success": True, "data": {}}


@get("/internal/ingest/workers", include_in_schema=False)
async def roster(request: Request[Any, Any, Any], capture: CaptureRuntime) -> dict[str, Any]:
    """Every worker the control node knows, with the sessions it hosts (doctor and tests read it)."""
    return {"success": True, "data": {"workers": _remote(request, capture).describe()}}


handlers = [heartbeat, events, roster]
