"""Capture sessions: owns ``capture_sessions`` and ``rtstreams``, and every status move.

Each move writes the new status, its event (the outbox, ``Events.record``) and whatever the move
causes (``also``: e.g. the export job a stop queues) in one transaction on the writer thread;
the event is published only after commit. The rules of which moves are legal are data, in
``lifecycle``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable

from . import lifecycle
from .auth import Principal
from .channels import category
from .collections import resolve
from .database import Conn, Database, dumps, loads, row, rows
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .events import Events
from .ids import new_id
from .rows import CaptureSession, RTStream

#: Work done inside a move's transaction, given the connection and the updated session row.
Also = Callable[[Conn, CaptureSession], None]
Session = tuple[CaptureSession, list[RTStream]]
#: The columns that hold JSON, and what their rows' fields hold decoded.
JSON_COLUMNS = ("metadata", "channels", "exported_videos")


def load(conn: Conn, session_id: str) -> CaptureSession:
    found = row(conn, "select * from capture_sessions where id = ?", [session_id])
    if found is None:
        raise NotFound(f"Capture session not found: {session_id}")
    return CaptureSession.from_row(found)


def load_for(conn: Conn, session_id: str, actor: Principal) -> CaptureSession:
    """The session if ``actor`` may act on it. An API key reaches every session; a client token
    reaches a session it started, and a not yet started one of its own key (which it could start:
    VideoDB's tokens are per key, not per end user); once started, the session is its starter's."""
    found = load(conn, session_id)
    if actor.is_key:
        return found
    own_key = found.api_key_id == actor.api_key_id
    if own_key and found.started_by == actor.token_id:
        return found
    if own_key and found.status == "created" and not found.started_by:
        return found
    raise Forbidden(f"This client token cannot access capture session {session_id}: a client token "
                    "reaches only the session it started")


def rtstreams_of(conn: Conn, session_id: str) -> list[RTStream]:
    """A session's rtstreams in a stable order: by name within the moment they were made, so the
    seed's ``cap.get_rtstream("display")[0]`` is ``display:1`` (their ids are random within a
    millisecond, which made it ``display:2`` now and then)."""
    return [RTStream.from_row(r) for r in
            rows(conn, "select * from rtstreams where session_id = ? order by created_at, name, id", [session_id])]


def in_collection(conn: Conn, collection_id: str, session_id: str) -> Session:
    coll = resolve(conn, collection_id)
    found = load(conn, session_id)
    if found.collection_id != coll.id:
        raise NotFound(f"Capture session not found in collection {collection_id}: {session_id}")
    return found, rtstreams_of(conn, session_id)


def set_export_status(conn: Conn, session_id: str, status: str, error: str | None = None) -> None:
    """The session's default export's state, as ``capture_session`` shows it (the exports service calls it)."""
    conn["capture_sessions"].update(session_id, {"export_status": status, "export_error": error})


def set_exported_asset(conn: Conn, session_id: str, channel_id: str, asset_id: str) -> None:
    """A channel's rtstream points at the raw asset its export made."""
    conn.execute("update rtstreams set exported_asset_id = ? where session_id = ? and name = ?",
                 [asset_id, session_id, channel_id])


def rtstreams_stopped(conn: Conn, session_id: str) -> None:
    conn.execute("update rtstreams set status = 'stopped' where session_id = ?", [session_id])


class Sessions:
    def __init__(self, db: Database, events: Events) -> None:
        self.db = db
        self.events = events

    # -- moves -----------------------------------------------------------------------------------
    def move(self, conn: Conn, session_id: str, new: str, data: dict[str, Any] | None = None,
             **changes: Any) -> tuple[CaptureSession, dict[str, Any]]:
        """Inside a write transaction: move to ``new`` and record its event; 409 if not allowed.
        ``changes``: other fields of the row, as :class:`CaptureSession` holds them (JSON decoded)."""
        current = load(conn, session_id)  # read inside the transaction: two stops cannot both win
        if not lifecycle.can_move(current.status, new):
            raise Conflict(lifecycle.refusal(current.status, new))
        changes = {**changes, "status": new, "updated_at": time.time()}
        conn["capture_sessions"].update(session_id, {k: dumps(v) if k in JSON_COLUMNS else v
                                                     for k, v in changes.items()})
        updated = replace(current, **changes)
        return updated, self.events.record(conn, updated, new, data)

    async def transition(self, session_id: str, new: str, data: dict[str, Any] | None = None,
                         also: Also | None = None, **changes: Any) -> CaptureSession:
        """Move a session to ``new`` with its event (and ``also``) in one transaction, then publish."""
        def write(conn: Conn) -> tuple[CaptureSession, dict[str, Any]]:
            updated, event = self.move(conn, session_id, new, data, **changes)
            if also is not None:
                also(conn, updated)
            return updated, event

        updated, event = await self.db.execute_write_fn(write)
        await self.events.published(event, updated.ws_connection_id)
        return updated

    async def publish(self, moved: tuple[CaptureSession, dict[str, Any]] | None) -> None:
        """Publish the event of a move made inside another service's transaction."""
        if moved is not None:
            await self.events.published(moved[1], moved[0].ws_connection_id)

    # -- the backend's calls ---------------------------------------------------------------------
    async def create(self, collection_id: str, api_key_id: str, end_user_id: str, client_id: str | None,
                     callback_url: str | None, ws_connection_id: str | None,
                     metadata: dict[str, Any] | None) -> CaptureSession:
        now = time.time()

        def write(conn: Conn) -> tuple[CaptureSession, dict[str, Any]]:
            coll = resolve(conn, collection_id)
            record = {
                "id": new_id("capture_session"), "collection_id": coll.id, "api_key_id": api_key_id,
                "end_user_id": end_user_id, "client_id": client_id, "status": "created",
                "callback_url": callback_url, "ws_connection_id": ws_connection_id,
                "metadata": dumps(metadata or {}), "channels": "[]", "primary_video_channel_id": None,
                "export_status": None, "export_error": None, "exported_video_id": None, "exported_videos": "{}",
                "error": None, "created_at": now, "updated_at": now, "started_at": None, "stopped_at": None,
            }
            conn["capture_sessions"].insert(record)
            created = CaptureSession.from_row(record)
            return created, self.events.record(conn, created, "created")

        record, event = await self.db.execute_write_fn(write)
        await self.events.published(event, ws_connection_id)
        return record

    async def list(self, collection_id: str, status: str | None) -> list[Session]:
        if status is not None and status not in lifecycle.STATUSES:
            raise BadRequest(f"status must be one of {', '.join(lifecycle.STATUSES)}")

        def read(conn: Conn) -> list[Session]:
            coll = resolve(conn, collection_id)
            sql, params = "select * from capture_sessions where collection_id = ?", [coll.id]
            if status:
                sql += " and status = ?"
                params.append(status)
            found = [CaptureSession.from_row(r) for r in rows(conn, sql + " order by created_at desc", params)]
            streams: dict[str, list[RTStream]] = {r.id: [] for r in found}
            if found:
                marks = ",".join("?" * len(found))
                for stream in rows(conn, f"select * from rtstreams where session_id in ({marks}) "
                                         "order by created_at, name, id", list(streams)):
                    streams[stream["session_id"]].append(RTStream.from_row(stream))
            return [(r, streams[r.id]) for r in found]

        return await self.db.execute_fn(read)

    async def get_in_collection(self, collection_id: str, session_id: str) -> Session:
        """What ``get_capture_session`` reads: SDKs poll it (waiting for ``exported``), so it is
        answered from memory until the database changes (``Database.execute_cached``)."""
        return await self.db.execute_cached(("capture_session", collection_id, session_id),
                                            lambda conn: in_collection(conn, collection_id, session_id))

    # -- the recorder's calls --------------------------------------------------------------------
    async def get_for(self, session_id: str, actor: Principal) -> Session:
        return await self.db.execute_fn(lambda conn: (load_for(conn, session_id, actor),
                                                      rtstreams_of(conn, session_id)))

    async def load_for(self, session_id: str, actor: Principal) -> CaptureSession:
        return await self.db.execute_fn(lambda conn: load_for(conn, session_id, actor))

    async def load(self, session_id: str) -> CaptureSession:
        return await self.db.execute_fn(lambda conn: load(conn, session_id))

    async def hand_over(self, session_id: str, token_id: str) -> CaptureSession:
        """The session's recorder becomes the client token ``token_id``: its key's signed-in page,
        opened again in another tab (no token of its own), takes the recording over; the token that
        started it loses it (one recorder at a time). A session not yet started needs no hand-over."""
        def write(conn: Conn) -> CaptureSession:
            current = load(conn, session_id)
            if current.started_by:
                conn["capture_sessions"].update(session_id, {"started_by": token_id})
                return replace(current, started_by=token_id)
            return current

        return await self.db.execute_write_fn(write)

    async def start(self, session_id: str, actor: Principal, channels: list[dict[str, Any]], primary: str | None,
                    ws_connection_id: str | None, callback_url: str | None) -> CaptureSession:
        if not actor.is_key and (callback_url or ws_connection_id):
            raise Forbidden("A client token cannot set callback_url or ws_connection_id: the backend sets "
                            "them when it creates the session")
        changes: dict[str, Any] = {"channels": channels, "primary_video_channel_id": primary,
                                   "started_at": time.time(), "started_by": actor.token_id}
        if ws_connection_id:
            changes["ws_connection_id"] = ws_connection_id
        if callback_url:
            changes["callback_url"] = callback_url

        def write(conn: Conn) -> tuple[CaptureSession, dict[str, Any]]:
            current = load_for(conn, session_id, actor)
            if lifecycle.is_live(current.status):
                raise Conflict(f"Capture session {session_id} is already {current.status}: "
                               "another recorder is using it")
            if current.status != "created":
                raise Conflict(lifecycle.refusal(current.status, "starting"))
            return self.move(conn, session_id, "starting", **changes)

        updated, event = await self.db.execute_write_fn(write)
        await self.events.published(event, updated.ws_connection_id)
        return updated

    async def activate(self, session_id: str) -> None:
        """First media: ``starting → active`` with one rtstream per channel (VideoDB's shape)."""
        def write(conn: Conn) -> tuple[CaptureSession, dict[str, Any]] | None:
            current = load(conn, session_id)
            if current.status != "starting":
                return None
            now = time.time()
            streams = [{
                "id": new_id("rtstream"), "session_id": session_id, "collection_id": current.collection_id,
                "name": ch["channel_id"], "channel_id": category(ch["channel_id"]),
                "media_types": dumps([ch["type"]]), "sample_rate": 30 if ch["type"] == "video" else 48000,
                "status": "connected", "store": int(ch["store"]), "exported_asset_id": None, "created_at": now,
            } for ch in current.channels]
            data = {"rtstreams": [{"rtstream_id": s["id"], "name": s["name"], "channel_id": s["channel_id"],
                                   "media_types": loads(s["media_types"]), "store": bool(s["store"])}
                                  for s in streams]}
            conn["rtstreams"].insert_all(streams)
            return self.move(conn, session_id, "active", data)

        await self.publish(await self.db.execute_write_fn(write))

    async def live_ids(self) -> list[str]:
        return await self.db.execute_fn(lambda conn: [r["id"] for r in rows(
            conn, "select id from capture_sessions where status in ('starting', 'active', 'stopping')")])

    # -- rtstreams -------------------------------------------------------------------------------
    async def rtstream(self, rtstream_id: str) -> RTStream:
        def read(conn: Conn) -> RTStream:
            found = row(conn, "select * from rtstreams where id = ?", [rtstream_id])
            if found is None:
                raise NotFound(f"Stream not found: {rtstream_id}")
            return RTStream.from_row(found)

        return await self.db.execute_fn(read)

    async def list_rtstreams(self, collection_id: str, limit: int, offset: int, status: str | None,
                             name: str | None) -> tuple[list[RTStream], int]:
        if not 1 <= limit <= 1000 or offset < 0:
            raise BadRequest("limit must be 1..1000 and offset at least 0")

        def read(conn: Conn) -> tuple[list[RTStream], int]:
            coll = resolve(conn, collection_id)
            where, params = ["collection_id = ?"], [coll.id]
            if status:
                where.append("status = ?")
                params.append(status)
            if name:
                where.append("name = ?")
                params.append(name)
            sql = f"from rtstreams where {' and '.join(where)}"
            total = row(conn, f"select count(*) as n {sql}", params)["n"]
            found = [RTStream.from_row(r) for r in rows(conn, f"select * {sql} order by created_at desc, id "
                                                                  "limit ? offset ?", [*params, limit, offset])]
            return found, total

        return await self.db.execute_fn(read)
