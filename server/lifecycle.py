"""The capture session status machine, as data.

``created → starting → active → stopping → stopped → exported``, and ``failed`` from anywhere
but the end (and back to ``exported`` when a failed export is retried). A reconnecting recorder may call start again on a session that is already starting
or active; that is not a transition and the caller handles it.
"""

from __future__ import annotations

from typing import Final

STATUSES: Final = ("created", "starting", "active", "stopping", "stopped", "exported", "failed")

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "created": frozenset({"starting", "failed"}),
    "starting": frozenset({"active", "stopping", "failed"}),
    "active": frozenset({"stopping", "failed"}),
    "stopping": frozenset({"stopped", "failed"}),
    "stopped": frozenset({"exported", "failed"}),
    "exported": frozenset({"exported"}),  # a later export of another display is announced again
    "failed": frozenset({"exported"}),  # a retried export succeeded
}

_WHY: Final[dict[tuple[str, str], str]] = {
    ("created", "stopping"): "the session was never started",
    ("stopping", "stopping"): "the session is already stopping",
    ("stopped", "stopping"): "the session is already stopped",
    ("exported", "stopping"): "the session is already stopped and exported",
    ("failed", "stopping"): "the session has failed",
    ("stopped", "starting"): "a stopped session cannot be restarted; create a new session",
    ("exported", "starting"): "a stopped session cannot be restarted; create a new session",
    ("failed", "starting"): "the session has failed; create a new session",
    ("stopping", "starting"): "the session is stopping",
}


def can_move(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def refusal(current: str, new: str) -> str:
    """A message saying why ``current → new`` is not allowed, phrased for the API's user."""
    reason = _WHY.get((current, new))
    base = f"Cannot move capture session from '{current}' to '{new}'"
    return f"{base}: {reason}" if reason else base


def is_live(status: str) -> bool:
    return status in ("starting", "active")
