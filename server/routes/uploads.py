"""The upload endpoints: a signed ``upload_url``, its multipart target, and the import request."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.params import Parameter

from ..auth import Principal
from ..collections import Collections
from ..errors import BadRequest
from ..jobs import JobQueue
from ..links import Links
from ..settings import Settings
from ..text import MAX_NAME, NAME_PATTERN, Description, Name
from ..uploads import Uploads
from ..views.jobs import Presenters, answer_job


class UploadRequest(msgspec.Struct):
    url: str | None = None
    name: Name | None = None
    description: Description | None = None
    callback_url: str | None = None
    media_type: str | None = None


@get("/collection/{collection_id:str}/upload_url")
async def upload_url(collection_id: str, request: Request, uploads: Uploads, links: Links, key: Principal,
                     name: Annotated[str | None, Parameter(pattern=NAME_PATTERN, max_length=MAX_NAME)] = None,
                     ) -> dict[str, Any]:
    url = await uploads.create_slot(collection_id, name, links.base_url(request))
    return {"success": True, "data": {"upload_url": url}}


@post("/upload/{upload_id:str}", request_max_body_size=None, status_code=200)
async def receive_upload(upload_id: str, request: Request, uploads: Uploads, sig: str = "") -> dict[str, Any]:
    """The target of an ``upload_url``: a multipart body with the file in the field ``file``, streamed to disk."""
    announced = request.headers.get("content-length", "")
    size = await uploads.receive(upload_id, sig, request.headers.get("content-type", ""), request.stream(),
                                 int(announced) if announced.isdigit() else None)
    return {"success": True, "data": {"upload_id": upload_id, "size": size}}


@post("/collection/{collection_id:str}/upload", status_code=200)
async def upload(collection_id: str, data: UploadRequest, request: Request, uploads: Uploads, jobs: JobQueue,
                 presenters: Presenters, settings: Settings, links: Links, collections: Collections,
                 key: Principal) -> dict[str, Any]:
    await collections.get(collection_id)  # 404 before judging the body
    if not data.url:
        raise BadRequest("url is required (or pass file_path to the SDK's upload)")
    job_id = await uploads.start_import(collection_id, data.url, data.name, data.description, data.media_type)
    return await answer_job(jobs, presenters, settings, links, request, job_id)


handlers = [upload_url, receive_upload, upload]
