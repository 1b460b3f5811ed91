"""Videos, audios and images: read, rename, delete, signed URLs; and the upload endpoints."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.response import File
from multipart import ParserError, PushMultipartParser, MultipartSegment

from reeldb.index import store

from .. import db as dbm
from .. import views
from ..auth import Principal
from ..errors import BadRequest, NotFound, PayloadTooLarge
from ..ids import new_id
from ..jobs import async_response
from ..services import Services
from ..signing import sign, verify
from ..uploads import classify_source
from .collections import resolve_collection
from .streams import stream_urls
URL_TTL = 24 * 3600


def signed_file_url(svc: Services, base: str, media_id: str) -> str:
    return f"{base}/files/{sign(svc.secret, media_id, URL_TTL)}"


def media_urls(svc: Services, row: dict[str, Any], base: str) -> dict[str, Any]:
    if row["kind"] == "image":
        return {"url": signed_file_url(svc, base, row["id"])}
    if row["kind"] == "video":
        return stream_urls(svc, row["id"], base)
    return {}


def present_media(svc: Services, row: dict[str, Any], base: str) -> dict[str, Any]:
    return views.media(row, media_urls(svc, row, base))


def present_upload(svc: Services, result: dict[str, Any], base: str) -> dict[str, Any]:
    row = dbm.row(svc.db, "select * from media where id = ?", [result["media_id"]])
    if row is None:
        raise NotFound("The uploaded media has since been deleted")
    return present_media(svc, row, base)


def find_media(svc: Services, kind: str, media_id: str, collection_id: str | None) -> dict[str, Any]:
    row = dbm.row(svc.db, "select * from media where id = ? and kind = ?", [media_id, kind])
    if row is not None and collection_id:
        if resolve_collection(svc.db, collection_id)["id"] != row["collection_id"]:
            row = None
    if row is None:
        raise NotFound(f"{kind.capitalize()} not found: {media_id}")
    return row


class MediaUpdate(msgspec.Struct):
    name: str | None = None
    description: str | None = None


class UploadRequest(msgspec.Struct):
    url: str | None = None
    name: str | None = None
    description: str | None = None
    callback_url: str | None = None
    media_type: str | None = None


def _media_handlers(kind: str) -> list[Any]:
    plural = kind + "s"

    @get(f"/{kind}", sync_to_thread=False, name=f"list_{plural}")
    def list_media(request: Request, svc: Services, key: Principal, collection_id: str = "default") -> dict[str, Any]:
        coll = resolve_collection(svc.db, collection_id)
        base = svc.base_url(request)
        rows = dbm.rows(svc.db, "select * from media where collection_id = ? and kind = ? order by created_at",
                        [coll["id"], kind])
        return {"success": True, "data": {plural: [present_media(svc, r, base) for r in rows]}}

    @get(f"/{kind}/{{media_id:str}}", sync_to_thread=False, name=f"get_{kind}")
    def get_media(media_id: str, request: Request, svc: Services, key: Principal,
                  collection_id: str | None = None) -> dict[str, Any]:
        row = find_media(svc, kind, media_id, collection_id)
        return {"success": True, "data": present_media(svc, row, svc.base_url(request))}

    @patch(f"/{kind}/{{media_id:str}}", sync_to_thread=False, name=f"update_{kind}")
    def update_media(media_id: str, data: MediaUpdate, request: Request, svc: Services, key: Principal,
                     collection_id: str | None = None) -> dict[str, Any]:
        row = find_media(svc, kind, media_id, collection_id)
        changes: dict[str, Any] = {k: v for k, v in (("name", data.name), ("description", data.description)) if v is not None}
        if "name" in changes and not changes["name"].strip():
            raise BadRequest("name must not be empty")
        if changes:
            changes["updated_at"] = time.time()
            svc.db["media"].update(media_id, changes)
        return {"success": True, "data": present_media(svc, {**row, **changes}, svc.base_url(request))}

    @delete(f"/{kind}/{{media_id:str}}", sync_to_thread=False, status_code=200, name=f"delete_{kind}")
    def delete_media(media_id: str, svc: Services, key: Principal, collection_id: str | None = None) -> dict[str, Any]:
        row = find_media(svc, kind, media_id, collection_id)
        with svc.db.atomic():
            store.delete_for(svc.db, media_id)  # its transcript and spoken-word index go with it
            svc.db["media"].delete(media_id)
        shutil.rmtree(Path(row["path"]).parent, ignore_errors=True)
        return {"success": True, "message": f"{kind.capitalize()} deleted"}

    handlers = [list_media, get_media, update_media, delete_media]
    if kind in ("audio", "image"):
        @post(f"/{kind}/{{media_id:str}}/generate_url", sync_to_thread=False, status_code=200, name=f"url_{kind}")
        def generate_url(media_id: str, request: Request, svc: Services, key: Principal,
                         collection_id: str | None = None) -> dict[str, Any]:
            find_media(svc, kind, media_id, collection_id)
            return {"success": True, "data": {"signed_url": signed_file_url(svc, svc.base_url(request), media_id)}}

        handlers.append(generate_url)
    return handlers


@get("/files/{token:str}", sync_to_thread=False)
def serve_file(token: str, svc: Services) -> File:
    media_id = verify(svc.secret, token)
    row = dbm.row(svc.db, "select path, name from media where id = ?", [media_id]) if media_id else None
    if row is None:
        raise NotFound("This link is invalid or has expired")
    path = Path(row["path"])
    return File(path=path, filename=f"{row['name']}{path.suffix}", content_disposition_type="inline")


@get("/collection/{collection_id:str}/upload_url", sync_to_thread=False)
def upload_url(collection_id: str, request: Request, svc: Services, key: Principal, name: str | None = None) -> dict[str, Any]:
    coll = resolve_collection(svc.db, collection_id)
    upload_id = new_id("upload")
    now = time.time()
    svc.db["uploads"].insert({"id": upload_id, "secret": "", "collection_id": coll["id"], "name": name,
                              "path": str(svc.settings.uploads_dir / upload_id), "size": None,
                              "created_at": now, "expires_at": now + URL_TTL})
    url = f"{svc.base_url(request)}/upload/{upload_id}?sig={sign(svc.secret, upload_id, URL_TTL)}"
    return {"success": True, "data": {"upload_url": url}}


@post("/upload/{upload_id:str}", request_max_body_size=None, status_code=200)
async def receive_upload(upload_id: str, request: Request, svc: Services, sig: str = "") -> dict[str, Any]:
    """The target of an ``upload_url``: a multipart body with the file in the field ``file``, streamed to disk."""
    if verify(svc.secret, sig) != upload_id:
        raise NotFound("This upload URL is invalid or has expired")
    slot = dbm.row(svc.db, "select * from uploads where id = ?", [upload_id])
    if slot is None:
        raise NotFound("This upload URL is invalid or has expired")
    content_type = request.headers.get("content-type", "")
    if "boundary=" not in content_type:
        raise BadRequest("Send the file as multipart/form-data in a field named 'file'")
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"')
    part_path = Path(slot["path"] + ".part")
    size = 0
    got_file = False
    writing = None
    try:
        with PushMultipartParser(boundary, max_segment_size=svc.settings.max_upload_bytes) as parser, \
                open(part_path, "wb") as out:
            async for chunk in request.stream():
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        writing = event.name == "file" and not got_file
                        got_file = got_file or writing
                    elif event is None:
                        writing = False
                    elif writing:
                        out.write(event)
                        size += len(event)
                        if size > svc.settings.max_upload_bytes:
                            raise PayloadTooLarge("The file is larger than the server accepts")
            for _ in parser.parse(b""):
                pass
    except ParserError as exc:
        part_path.unlink(missing_ok=True)
        raise BadRequest(f"Malformed multipart body: {exc}") from None
    except BaseException:
        part_path.unlink(missing_ok=True)
        raise
    if not got_file:
        part_path.unlink(missing_ok=True)
        raise BadRequest("The multipart body has no field named 'file'")
    part_path.replace(slot["path"])
    svc.db["uploads"].update(upload_id, {"size": size})
    return {"success": True, "data": {"upload_id": upload_id, "size": size}}


@post("/collection/{collection_id:str}/upload", status_code=200)
async def upload(collection_id: str, data: UploadRequest, request: Request, svc: Services, key: Principal) -> dict[str, Any]:
    coll = resolve_collection(svc.db, collection_id)
    if not data.url:
        raise BadRequest("url is required (or pass file_path to the SDK's upload)")
    if data.media_type not in (None, "video", "audio", "image"):
        raise BadRequest("media_type must be one of video, audio, image")
    try:
        source = classify_source(svc, data.url)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    filename = Path(source.get("path") or data.url.split("?")[0]).name
    if source["source"] == "slot":
        slot = dbm.row(svc.db, "select name from uploads where id = ?", [source["upload_id"]])
        filename = (slot or {}).get("name") or filename
    job = svc.jobs.submit("upload", {
        **source, "collection_id": coll["id"], "name": data.name, "description": data.description,
        "media_type": data.media_type, "filename": filename,
    })
    return await answer_job(svc, request, job["id"])


async def answer_job(svc: Services, request: Request, job_id: str) -> dict[str, Any]:
    """Wait briefly for a job; answer its result, its error (400), or VideoDB's ``processing`` pattern."""
    job = await svc.jobs.wait(job_id, svc.settings.sync_wait)
    base = svc.base_url(request)
    if job["status"] == "done":
        return {"success": True, "data": svc.presenters[job["kind"]](svc, dbm.loads(job["result"], {}), base)}
    if job["status"] == "failed":
        raise BadRequest(job["error"] or "The job failed")
    return {"success": True, "status": "processing", "request_type": "sync",
            "data": {"id": job_id, "output_url": f"{base}/async-response/{job_id}"}}


@get("/async-response/{job_id:str}", sync_to_thread=False)
def get_async_response(job_id: str, request: Request, svc: Services, actor: Principal) -> dict[str, Any]:
    job = svc.jobs.get(job_id)
    if job is None:
        raise NotFound(f"Response not found: {job_id}")
    body = async_response(job)
    if job["status"] == "done" and job["kind"] in svc.presenters:
        body["data"] = svc.presenters[job["kind"]](svc, body["data"], svc.base_url(request))
    return body


handlers = [*_media_handlers("video"), *_media_handlers("audio"), *_media_handlers("image"),
            serve_file, upload_url, receive_upload, upload, get_async_response]
