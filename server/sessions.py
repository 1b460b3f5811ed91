"""Capture sessions: creating them and moving them through their statuses, each move with its event."""

from __future__ import annotations

import time
from typing import Any

from . import db as dbm
from . import lifecycle
from .auth import Principal
from .errors import Conflict, Forbidden, NotFound
from .services import Services


def load(svc: Services, session_id: str) -> dict[str, Any]:
    found = dbm.row(svc.db, "select * from capture_sessions where id = ?", [session_id])
    if found is None:
        raise NotFound(f"Capture session not found: {session_id}")
    return found


def load_for(svc: Services, session_id: str, actor: Principal) -> dict[str, Any]:
    """The session if ``actor`` may act on it: a client token reaches only its own key's sessions."""
    found = load(svc, session_id)
    if not actor.is_key and found["api_key_id"] != actor.api_key_id:
        raise Forbidden(f"This client token cannot access capture session {session_id}")
    return found


def rtstreams(svc: Services, session_id: str) -> list[dict[str, Any]]:
    return list(dbm.rows(svc.db, "select * from rtstreams where session_id = ? order by created_at, id", [session_id]))


def create(svc: Services, record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    with svc.db.atomic():
        svc.db["capture_sessions"].insert(record)
        event = svc.events.record(record, "created")
    return record, event


def move(svc: Services, session_id: str, new: str, data: dict[str, Any] | None = None,
         **changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inside the caller's transaction: move a session to ``new`` and record its event; 409 if not allowed.

    Returns the updated row and the event, which the caller publishes after commit.
    """
    current = load(svc, session_id)  # read inside the transaction: two stops cannot both win
    if not lifecycle.can_move(current["status"], new):
        raise Conflict(lifecycle.refusal(current["status"], new))
    changes = {**changes, "status": new, "updated_at": time.time()}
    svc.db["capture_sessions"].update(session_id, changes)
    updated = {**current, **changes}
    return updated, svc.events.record(updated, new, data)


async def transition(svc: Services, session_id: str, new: str, data: dict[str, Any] | None = None,
                     **changes: Any) -> dict[str, Any]:
    """Move a session to ``new`` with its event, in one transaction, then publish the event."""
    with svc.db.atomic():
        updated, event = move(svc, session_id, new, data, **changes)
    await svc.events.published(event, updated.get("ws_connection_id"))
    return updated
