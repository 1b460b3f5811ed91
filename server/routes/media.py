"""Videos, audios and images: read, rename, delete, signed URLs, and the signed file links."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.response import File

from .. import views
from ..auth import Principal
from ..errors import NotFound
from ..library import MediaLibrary
from ..links import Links


class MediaUpdate(msgspec.Struct):
    name: str | None = None
    description: str | None = None


def _media_handlers(kind: str) -> list[Any]:
    plural = kind + "s"

    @get(f"/{kind}", name=f"list_{plural}")
    async def list_media(request: Request, library: MediaLibrary, links: Links, key: Principal,
                         collection_id: str = "default") -> dict[str, Any]:
        base = links.base_url(request)
        found = await library.list(kind, collection_id)
        return {"success": True, "data": {plural: [views.media(r, links.media_urls(r, base)) for r in found]}}

    @get(f"/{kind}/{{media_id:str}}", name=f"get_{kind}")
    async def get_media(media_id: str, request: Request, library: MediaLibrary, links: Links, key: Principal,
                        collection_id: str | None = None) -> dict[str, Any]:
        media = await library.find(kind, media_id, collection_id)
        return {"success": True, "data": views.media(media, links.media_urls(media, links.base_url(request)))}

    @patch(f"/{kind}/{{media_id:str}}", name=f"update_{kind}")
    async def update_media(media_id: str, data: MediaUpdate, request: Request, library: MediaLibrary,
                           links: Links, key: Principal, collection_id: str | None = None) -> dict[str, Any]:
        media = await library.update(kind, media_id, collection_id, data.name, data.description)
        return {"success": True, "data": views.media(media, links.media_urls(media, links.base_url(request)))}

    @delete(f"/{kind}/{{media_id:str}}", status_code=200, name=f"delete_{kind}")
    async def delete_media(media_id: str, library: MediaLibrary, key: Principal,
                           collection_id: str | None = None) -> dict[str, Any]:
        await library.delete(kind, media_id, collection_id)
        return {"success": True, "message": f"{kind.capitalize()} deleted"}

    handlers = [list_media, get_media, update_media, delete_media]
    if kind in ("audio", "image"):
        @post(f"/{kind}/{{media_id:str}}/generate_url", status_code=200, name=f"url_{kind}")
        async def generate_url(media_id: str, request: Request, library: MediaLibrary, links: Links,
                               key: Principal, collection_id: str | None = None) -> dict[str, Any]:
            await library.find(kind, media_id, collection_id)
            return {"success": True, "data": {"signed_url": links.file_url(links.base_url(request), media_id)}}

        handlers.append(generate_url)
    return handlers


@get("/files/{token:str}")
async def serve_file(token: str, library: MediaLibrary, links: Links) -> File:
    media_id = links.check("file", token)
    media = await library.get(media_id) if media_id else None
    if media is None:
        raise NotFound("This link is invalid or has expired")
    path = Path(media["path"])
    return File(path=path, filename=f"{media['name']}{path.suffix}", content_disposition_type="inline")


handlers = [*_media_handlers("video"), *_media_handlers("audio"), *_media_handlers("image"), serve_file]
