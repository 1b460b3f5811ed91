"""Collections: owns the ``collections`` table. Other services resolve ids through :func:`resolve`."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from .database import Conn, Database, row, rows
from .errors import BadRequest, Conflict, NotFound
from .ids import new_id
from .rows import Collection
from .text import strip

DEFAULT_NAME = "Default Collection"


def ensure_default(conn: Conn) -> None:
    if row(conn, "select id from collections where is_default = 1") is None:
        conn["collections"].insert({
            "id": new_id("collection"), "name": DEFAULT_NAME,
            "description": "Created by ReelDB on first start", "is_public": 0, "is_default": 1,
            "created_at": time.time(),
        })


def resolve(conn: Conn, collection_id: str) -> Collection:
    """The collection row for an id or the alias ``default``; 404 if there is none."""
    if collection_id == "default":
        found = row(conn, "select * from collections where is_default = 1")
    else:
        found = row(conn, "select * from collections where id = ?", [collection_id])
    if found is None:
        raise NotFound(f"Collection not found: {collection_id}")
    return Collection.from_row(found)


class Collections:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, collection_id: str) -> Collection:
        return await self.db.execute_fn(lambda conn: resolve(conn, collection_id))

    async def list(self) -> list[Collection]:
        return await self.db.execute_fn(lambda conn: [Collection.from_row(r) for r in rows(
            conn, "select * from collections order by is_default desc, created_at")])

    async def create(self, name: str, description: str | None, is_public: bool) -> Collection:
        if not strip(name):
            raise BadRequest("name must not be empty")
        record = {"id": new_id("collection"), "name": strip(name), "description": description,
                  "is_public": int(is_public), "is_default": 0, "created_at": time.time()}
        await self.db.execute_write_fn(lambda conn: conn["collections"].insert(record))
        return Collection.from_row(record)

    async def update(self, collection_id: str, name: str | None, description: str | None,
                     is_public: bool | None) -> Collection:
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = strip(name)
        if description is not None:
            changes["description"] = description
        if is_public is not None:
            changes["is_public"] = int(is_public)

        def write(conn: Conn) -> Collection:
            current = resolve(conn, collection_id)  # 404 before judging the body
            if "name" in changes and not changes["name"]:
                raise BadRequest("name must not be empty")
            if changes:
                conn["collections"].update(current.id, changes)
            return replace(current, **{k: bool(v) if k == "is_public" else v for k, v in changes.items()})

        return await self.db.execute_write_fn(write)

    async def delete(self, collection_id: str) -> None:
        """Only an empty, non-default collection goes: deleting never loses media or sessions."""
        def write(conn: Conn) -> None:
            current = resolve(conn, collection_id)
            if current.is_default:
                raise BadRequest("The default collection cannot be deleted")
            media = row(conn, "select count(*) as n from media where collection_id = ?", [current.id])["n"]
            held = row(conn, "select count(*) as n from capture_sessions where collection_id = ?",
                       [current.id])["n"]
            if media or held:
                raise Conflict(f"Collection {current.id} still holds {media} media and {held} capture "
                               "sessions; delete them first")
            conn["collections"].delete(current.id)

        await self.db.execute_write_fn(write)
