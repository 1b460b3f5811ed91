"""Videos, audios and images: read, rename, delete, signed URLs, and the signed file links."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.response import File

from .. import views
from ..auth import Principal
from ..errors import NotFound
from ..errors import BadRequest
from ..library import MediaLibrary
from ..links import Links
from ..runtime import Runtime
from ..text import Description, Name


class ThumbnailRequest(msgspec.Struct):
    time: Annotated[float, msgspec.Meta(ge=0)]


class MediaUpdate(msgspec.Struct):
    name: Name | None = None
    description: Description | None = None


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


@get("/video/{media_id:str}/thumbnail")
async def video_thumbnail(media_id: str, request: Request, library: MediaLibrary, links: Links,
                          key: Principal) -> dict[str, Any]:
    """``generate_thumbnail()``: the video's poster (made with its HLS, or now for older videos)."""
    video = await library.ensure_previews(await library.find("video", media_id))
    url = links.media_urls(video, links.base_url(request)).get("thumbnail_url")
    if url is None:
        raise BadRequest(f"{media_id} has no stream to take a thumbnail from")
    return {"success": True, "data": {"thumbnail_url": url}}


@post("/video/{media_id:str}/thumbnail", status_code=200)
async def video_thumbnail_at(media_id: str, data: ThumbnailRequest, request: Request, library: MediaLibrary,
                             links: Links, runtime: Runtime, key: Principal) -> dict[str, Any]:
    """``generate_thumbnail(time=…)``: the frame at ``time`` as a new image asset."""
    video = await library.find("video", media_id)
    if video["length"] is not None and data.time > video["length"]:
        raise BadRequest(f"time {data.time:g} is after the video ends ({video['length']:.2f} s)")
    image = await runtime.io(library.thumbnail, video, data.time)
    return {"success": True, "data": views.media(image, links.media_urls(image, links.base_url(request)))}


@get("/video/{media_id:str}/thumbnails")
async def video_thumbnails(media_id: str, request: Request, library: MediaLibrary, links: Links,
                           key: Principal) -> dict[str, Any]:
    await library.find("video", media_id)
    base = links.base_url(request)
    return {"success": True, "data": [views.media(r, links.media_urls(r, base)) for r in await library.thumbnails(media_id)]}


@get("/files/{token:str}", opt={"head": True})  # HEAD answered as GET without a body (guard.py)
async def serve_file(token: str, library: MediaLibrary, links: Links) -> File:
    media_id = links.check("file", token)
    media = await library.get(media_id) if media_id else None
    if media is None:
        raise NotFound("This link is invalid or has expired")
    path = library.file(media)
    return File(path=path, filename=f"{media['name']}{path.suffix}", content_disposition_type="inline")


handlers = [*_media_handlers("video"), *_media_handlers("audio"), *_media_handlers("image"), video_thumbnail,
            video_thumbnail_at, video_thumbnails, serve_file]
