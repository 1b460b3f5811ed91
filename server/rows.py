"""Rows as types: what a service hands to routes, views and other services.

SQLite gives dicts whose keys a typo turns into a ``KeyError`` at run time, and whose JSON columns
(a session's ``channels``, an rtstream's ``media_types``) every reader decoded for itself. These
frozen dataclasses are read once where a service loads a row (``from_row``), with JSON decoded and
flags as ``bool``; a misspelt field fails the type check instead of a request. Writes stay with the
owning service (``tests/architecture/test_table_owners.py``), which changes a row with
``dataclasses.replace`` and writes the columns it changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .database import loads


@dataclass(frozen=True, slots=True)
class Collection:
    id: str
    name: str
    description: str | None
    is_public: bool
    is_default: bool
    created_at: float

    @classmethod
    def from_row(cls, found: Mapping[str, Any]) -> "Collection":
        return cls(found["id"], found["name"], found["description"], bool(found["is_public"]),
                   bool(found["is_default"]), found["created_at"])


@dataclass(frozen=True, slots=True)
class RTStream:
    """A channel of a capture session, as VideoDB's ``rtstream``."""

    id: str
    session_id: str
    collection_id: str
    name: str
    channel_id: str
    media_types: list[str]
    sample_rate: int | None
    status: str
    store: bool
    created_at: float
    exported_asset_id: str | None = None

    @classmethod
    def from_row(cls, found: Mapping[str, Any]) -> "RTStream":
        return cls(found["id"], found["session_id"], found["collection_id"], found["name"], found["channel_id"],
                   loads(found["media_types"], []), found["sample_rate"], found["status"], bool(found["store"]),
                   found["created_at"], found.get("exported_asset_id"))


@dataclass(frozen=True, slots=True)
class CaptureSession:
    """A capture session's row, its JSON columns decoded."""

    id: str
    collection_id: str
    api_key_id: str
    end_user_id: str | None
    client_id: str | None
    status: str
    callback_url: str | None
    ws_connection_id: str | None
    metadata: dict[str, Any]
    channels: list[dict[str, Any]]
    primary_video_channel_id: str | None
    export_status: str | None
    export_error: str | None
    exported_video_id: str | None
    exported_videos: dict[str, str]
    error: str | None
    created_at: float
    updated_at: float
    started_at: float | None = None
    stopped_at: float | None = None
    #: The client token (its fingerprint) that started it: the session is its starter's.
    started_by: str | None = None
    #: Why the server stopped the session itself (its disk fell below the floor), if it did.
    stop_reason: str | None = None

    @classmethod
    def from_row(cls, found: Mapping[str, Any]) -> "CaptureSession":
        return cls(
            id=found["id"], collection_id=found["collection_id"], api_key_id=found["api_key_id"],
            end_user_id=found["end_user_id"], client_id=found["client_id"], status=found["status"],
            callback_url=found["callback_url"], ws_connection_id=found["ws_connection_id"],
            metadata=loads(found["metadata"], {}), channels=loads(found["channels"], []),
            primary_video_channel_id=found["primary_video_channel_id"], export_status=found["export_status"],
            export_error=found["export_error"], exported_video_id=found["exported_video_id"],
            exported_videos=loads(found["exported_videos"], {}), error=found["error"],
            created_at=found["created_at"], updated_at=found["updated_at"], started_at=found.get("started_at"),
            stopped_at=found.get("stopped_at"), started_by=found.get("started_by"),
            stop_reason=found.get("stop_reason"))
