"""Every message between an ingest worker and its control node, typed (msgspec structs), in one
module both ends import.

Control node → worker: :class:`Offer` and :class:`Pause` bodies on the worker's internal API (stop
and the live transcript and screen reader calls carry no body). Worker → control node: :class:`Heartbeat` every second
(which registers the worker, and which the control node answers with :class:`Owned`) and
:class:`Events` batches of :data:`Event`. Each is validated on arrival by litestar (a body that is not
one is a 400 naming the field, never a ``KeyError`` in a handler).

A worker says its :data:`VERSION` in every heartbeat and events batch; a control node of another
version refuses it (409, ``WRONG_VERSION``) and logs one line naming both versions, and the worker
logs one line too and keeps asking (an upgrade of either side ends it), instead of hosting sessions
whose events the control node would read differently.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

from ..codec import plain

#: Bumped whenever a message's fields change meaning.
VERSION = 3
#: The error code of a refusal for another version.
WRONG_VERSION = "WRONG_VERSION"


def version_refusal(theirs: int) -> str:
    """The message both ends log (and the control node answers) for a version mismatch."""
    return (f"ingest wire version mismatch: the worker speaks {theirs}, the control node {VERSION}; "
            "run the same ReelDB version on every node")


# -- control node → worker ---------------------------------------------------------------------------

class Offer(msgspec.Struct, frozen=True):
    """Host this session's channels (manifest entries) and answer the client's WebRTC offer."""

    channels: list[dict[str, Any]]
    sdp: str
    #: WebRTC track id → channel id.
    tracks: dict[str, str]


class Pause(msgspec.Struct, frozen=True):
    channels: list[str]
    paused: bool


# -- worker → control node ---------------------------------------------------------------------------

class SessionReport(msgspec.Struct, frozen=True):
    """One hosted session, as a heartbeat reports it."""

    #: Seconds since a stored channel last received media (None: none yet).
    media_age: float | None = None
    #: Per-channel live stats (``capture.ingest.session_stats``), shown on ``/metrics``.
    channels: list[dict[str, Any]] = []


class Heartbeat(msgspec.Struct, frozen=True):
    worker_id: str
    url: str
    version: int = 0
    cpu: float = 0.0
    bitrate: float = 0.0
    sessions: dict[str, SessionReport] = {}


class Owned(msgspec.Struct, frozen=True):
    """The control node's answer to a heartbeat: the sessions this worker should host (it closes others)."""

    owned: list[str]


class MediaArrived(msgspec.Struct, frozen=True, tag_field="kind", tag="media"):
    session_id: str
    channel_id: str


class StateChanged(msgspec.Struct, frozen=True, tag_field="kind", tag="state"):
    session_id: str
    state: str


class TranscriptItem(msgspec.Struct, frozen=True, tag_field="kind", tag="transcript"):
    session_id: str
    channel_id: str
    item: dict[str, Any]


class ScreenItem(msgspec.Struct, frozen=True, tag_field="kind", tag="screen"):
    """A live screen-text record (``index/live_screen.py``) of a display channel."""

    session_id: str
    channel_id: str
    item: dict[str, Any]


Event = Union[MediaArrived, StateChanged, TranscriptItem, ScreenItem]

#: The worker's live readers by the path segment that starts and stops them, and the event their
#: results travel in.
LIVE_KINDS = {"transcripts": TranscriptItem, "screens": ScreenItem}


class Events(msgspec.Struct, frozen=True):
    worker_id: str
    events: list[Event]
    version: int = 0


def to_builtins(message: Any) -> Any:
    """A message as JSON-able builtins, numpy scalars included (:func:`plain`)."""
    return msgspec.to_builtins(message, enc_hook=plain)
