"""Litestar resolves a handler's dependencies one at a time here, not in an anyio task group.

Why: litestar (2.x, ``litestar/_kwargs/kwargs_model.py``) resolves each batch of independent
dependencies concurrently, in an anyio task group: a task per dependency, per request. Ours are
the services, handed over as constants, and the credential check, which awaits one cached lookup;
running them concurrently gains nothing, and the task group was a fifth of the event loop's work
on a ``get_capture_session`` (py-spy on ``tests/bench/api_roundtrip.py``). Resolved in order, the
result is the same: the same kwargs, the same cleanup group, the first error raised as is (the
task group raised the first of its exception group).

Process-wide, so applied once by the entry point that owns the process (``reeldb serve``), never by
``create_app``; an app built without it (tests through a TestClient) only runs slower. If litestar
changes the method this replaces, :func:`resolve_dependencies_in_order` leaves it alone and says so.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from litestar._kwargs import kwargs_model
from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar.connection import ASGIConnection

log = logging.getLogger("reeldb.server")

_EXPECTED = ["self", "connection", "kwargs"]


async def _in_order(self: kwargs_model.KwargsModel, connection: ASGIConnection, kwargs: dict[str, Any],
                    ) -> DependencyCleanupGroup:
    cleanup_group = DependencyCleanupGroup()
    for batch in self.dependency_batches:
        for dependency in batch:
            await resolve_dependency(dependency, connection, kwargs, cleanup_group)
    return cleanup_group


def resolve_dependencies_in_order() -> bool:
    """Install the in-order resolution; True if installed (or already)."""
    cls = kwargs_model.KwargsModel
    current = cls.resolve_dependencies
    if current is _in_order:
        return True
    if list(inspect.signature(current).parameters) != _EXPECTED \
            or "dependency_batches" not in getattr(cls, "__slots__", ()):
        log.warning("litestar's KwargsModel.resolve_dependencies changed; dependencies stay concurrent")
        return False
    cls.resolve_dependencies = _in_order  # type: ignore[method-assign]
    return True
