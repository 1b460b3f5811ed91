"""Collections, and the per-collection endpoints that hand out URLs (upload, websocket)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import sqlite_utils
from litestar import Request, delete, get, patch, post

from .. import db as dbm
from .. import views
from ..auth import Principal
from ..errors import BadRequest, Conflict, NotFound
from ..ids import new_id
from ..services import Services
from ..signing import sign

DEFAULT_NAME = "Default Collection"


def ensure_default_collection(db: sqlite_utils.Database) -> None:
    if dbm.row(db, "select id from collections where is_default = 1") is None:
        db["collections"].insert({
            "id": new_id("collection"), "name": DEFAULT_NAME,
            "description": "Created by ReelDB on first start", "is_public": 0, "is_default": 1,
            "created_at": time.time(),
        })


def resolve_collection(db: sqlite_utils.Database, collection_id: str) -> dict[str, Any]:
    """The collection row for an id or the alias ``default``; 404 if there is none."""
    if collection_id == "default":
        found = dbm.row(db, "select * from collections where is_default = 1")
    else:
        found = dbm.row(db, "select * from collections where id = ?", [collection_id])
    if found is None:
        raise NotFound(f"Collection not found: {collection_id}")
    return found


class CollectionCreate(msgspec.Struct):
    name: str
    description: str | None = None
    is_public: bool = False


class CollectionUpdate(msgspec.Struct):
    name: str | None = None
    description: str | None = None
    is_public: bool | None = None


@get("/collection", sync_to_thread=False)
def list_collections(svc: Services, key: Principal) -> dict[str, Any]:
    rows = dbm.rows(svc.db, "select * from collections order by is_default desc, created_at")
    items = [views.collection(r) for r in rows]
    default = next((c["id"] for c in items if c["is_default"]), "default")
    return {"success": True, "data": {"collections": items, "default_collection": default}}


@get("/collection/{collection_id:str}", sync_to_thread=False)
def get_collection(collection_id: str, svc: Services, key: Principal) -> dict[str, Any]:
    return {"success": True, "data": views.collection(resolve_collection(svc.db, collection_id))}


@post("/collection", sync_to_thread=False, status_code=200)
def create_collection(data: CollectionCreate, svc: Services, key: Principal) -> dict[str, Any]:
    if not data.name.strip():
        raise BadRequest("name must not be empty")
    row = {"id": new_id("collection"), "name": data.name.strip(), "description": data.description,
           "is_public": int(data.is_public), "is_default": 0, "created_at": time.time()}
    svc.db["collections"].insert(row)
    return {"success": True, "data": views.collection(row)}


@patch("/collection/{collection_id:str}", sync_to_thread=False)
def update_collection(collection_id: str, data: CollectionUpdate, svc: Services, key: Principal) -> dict[str, Any]:
    row = resolve_collection(svc.db, collection_id)
    changes: dict[str, Any] = {}
    if data.name is not None:
        if not data.name.strip():
            raise BadRequest("name must not be empty")
        changes["name"] = data.name.strip()
    if data.description is not None:
        changes["description"] = data.description
    if data.is_public is not None:
        changes["is_public"] = int(data.is_public)
    if changes:
        svc.db["collections"].update(row["id"], changes)
    return {"success": True, "data": views.collection({**row, **changes})}


@delete("/collection/{collection_id:str}", sync_to_thread=False, status_code=200)
def delete_collection(collection_id: str, svc: Services, key: Principal) -> dict[str, Any]:
    row = resolve_collection(svc.db, collection_id)
    if row["is_default"]:
        raise BadRequest("The default collection cannot be deleted")
    media_count = dbm.row(svc.db, "select count(*) as n from media where collection_id = ?", [row["id"]])["n"]
    sessions = dbm.row(svc.db, "select count(*) as n from capture_sessions where collection_id = ?", [row["id"]])["n"]
    if media_count or sessions:
        raise Conflict(
            f"Collection {row['id']} still holds {media_count} media and {sessions} capture sessions; "
            "delete them first"
        )
    svc.db["collections"].delete(row["id"])
    return {"success": True, "message": "Collection deleted"}


@get("/collection/{collection_id:str}/websocket", sync_to_thread=False)
def websocket_url(collection_id: str, request: Request, svc: Services, actor: Principal) -> dict[str, Any]:
    """A websocket URL that carries its own credentials: the SDK connects without headers."""
    resolve_collection(svc.db, collection_id)
    token = sign(svc.secret, actor.api_key_id, ttl=24 * 3600)
    base = svc.base_url(request).replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    url = f"{base}/ws?token={token}"
    return {"success": True, "data": {"websocket_url": url, "ws_url": url}}


handlers = [list_collections, get_collection, create_collection, update_collection, delete_collection,
            websocket_url]
