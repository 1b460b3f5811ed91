"""The editor: ``POST /editor`` (``videodb.editor.Timeline.generate_stream``) and
``POST /editor/download`` (``Timeline.download_stream``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, post

from ..auth import Principal
from ..editor import Editor
from ..errors import BadRequest
from ..jobs import JobQueue
from ..links import Links
from ..settings import Settings
from ..views.jobs import Presenters, answer_job


@post("/editor", status_code=200)
async def editor_render(data: dict[str, Any], request: Request, editor: Editor, jobs: JobQueue,
                        presenters: Presenters, settings: Settings, links: Links, key: Principal) -> dict[str, Any]:
    """Render a timeline (``{"timeline": {...}}``): its ``stream_url`` and ``player_url`` when it is
    done within the sync wait, else ``processing`` with an ``output_url`` to poll. The same
    timeline again is answered from the first render."""
    job_id = await editor.request(data)
    return await answer_job(jobs, presenters, settings, links, request, job_id)


class LegacyBody(msgspec.Struct):
    timeline: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1, max_length=2000)]
    request_type: str = "compile"


@post("/timeline", status_code=200)
async def legacy_timeline(data: LegacyBody, request: Request, editor: Editor, jobs: JobQueue,
                          presenters: Presenters, settings: Settings, links: Links,
                          key: Principal) -> dict[str, Any]:
    """The deprecated ``videodb.timeline.Timeline``: inline videos and audio, image and text
    overlays, on the editor's renderer."""
    if data.request_type != "compile":
        raise BadRequest(f"request_type: only 'compile' is supported (got {data.request_type!r})")
    job_id = await editor.request_legacy(data.timeline)
    return await answer_job(jobs, presenters, settings, links, request, job_id)


class DownloadBody(msgspec.Struct):
    stream_url: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


@post("/editor/download", status_code=200)
async def editor_download(data: DownloadBody, request: Request, editor: Editor, key: Principal) -> dict[str, Any]:
    """An MP4 download URL for a stream the editor (or any video of this server) made."""
    return {"success": True, "data": await editor.download(data.stream_url, editor.links.base_url(request))}


handlers = [editor_render, editor_download, legacy_timeline]
