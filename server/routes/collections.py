"""Collections, and the per-collection endpoint that hands out a websocket URL."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post

from .. import views
from ..auth import Principal
from ..collections import Collections
from ..links import Links
from ..text import Description, Name


class CollectionCreate(msgspec.Struct):
    name: Name
    description: Description | None = None
    is_public: bool = False


class CollectionUpdate(msgspec.Struct):
    name: Name | None = None
    description: Description | None = None
    is_public: bool | None = None


@get("/collection")
async def list_collections(collections: Collections, key: Principal) -> dict[str, Any]:
    items = [views.collection(r) for r in await collections.list()]
    default = next((c["id"] for c in items if c["is_default"]), "default")
    return {"success": True, "data": {"collections": items, "default_collection": default}}


@get("/collection/{collection_id:str}")
async def get_collection(collection_id: str, collections: Collections, key: Principal) -> dict[str, Any]:
    return {"success": True, "data": views.collection(await collections.get(collection_id))}


@post("/collection", status_code=200)
async def create_collection(data: CollectionCreate, collections: Collections, key: Principal) -> dict[str, Any]:
    record = await collections.create(data.name, data.description, data.is_public)
    return {"success": True, "data": views.collection(record)}


@patch("/collection/{collection_id:str}")
async def update_collection(collection_id: str, data: CollectionUpdate, collections: Collections,
                            key: Principal) -> dict[str, Any]:
    record = await collections.update(collection_id, data.name, data.description, data.is_public)
    return {"success": True, "data": views.collection(record)}


@delete("/collection/{collection_id:str}", status_code=200)
async def delete_collection(collection_id: str, collections: Collections, key: Principal) -> dict[str, Any]:
    await collections.delete(collection_id)
    return {"success": True, "message": "Collection deleted"}


@get("/collection/{collection_id:str}/websocket")
async def websocket_url(collection_id: str, request: Request, collections: Collections, links: Links,
                        actor: Principal) -> dict[str, Any]:
    """A websocket URL that carries its own credentials: the SDK connects without headers."""
    await collections.get(collection_id)
    url = links.websocket_url(links.base_url(request), actor.api_key_id)
    return {"success": True, "data": {"websocket_url": url, "ws_url": url}}


handlers = [list_collections, get_collection, create_collection, update_collection, delete_collection,
            websocket_url]
