"""Jobs as answers: a finished job's result by kind, VideoDB's ``processing`` pattern, and the body
the SDK polls at ``output_url``."""

from __future__ import annotations

from typing import Any

from litestar import Request

from ..database import loads
from ..editor import RENDERS, Editor
from ..errors import BadRequest, InternalError, NotFound
from ..jobs import JobQueue
from ..library import MediaLibrary
from ..links import Links
from ..settings import Settings
from ..scenes import Scenes
from ..spoken import Spoken
from . import media
from .scenes import scene_collection

RENDER_KINDS = frozenset(part.name for part in RENDERS)


class Presenters:
    """A finished job's stored result as the API's answer, by job kind (URLs depend on the caller)."""

    def __init__(self, library: MediaLibrary, links: Links, spoken: Spoken, editor: Editor, scenes: Scenes) -> None:
        self.library = library
        self.links = links
        self.spoken = spoken
        self.editor = editor
        self.scenes = scenes

    async def present(self, kind: str, result: dict[str, Any], base: str) -> dict[str, Any]:
        if kind == "upload":
            found = await self.library.get(result["media_id"])
            if found is None:
                raise NotFound("The uploaded media has since been deleted")
            return media(found, self.links.media_urls(found, base))
        if kind == "transcribe":
            return await self.spoken.present_transcript(result)
        if kind == "index":
            return {"message": "Spoken words indexed", **result}
        if kind == "extract_scenes":
            found = await self.scenes.collection(result["asset_id"], result["collection_id"])
            return {"scene_collection": scene_collection(found, self.links, base)}
        if kind == "scene_index":
            return {"scene_index_id": result["scene_index_id"], "scenes": result.get("scenes")}
        if kind in RENDER_KINDS:
            return await self.editor.present(result, base)
        return result


async def answer_job(jobs: JobQueue, presenters: Presenters, settings: Settings, links: Links,
                     request: Request, job_id: str) -> dict[str, Any]:
    """Wait briefly for a job; answer its result, its error, or VideoDB's ``processing`` pattern."""
    job = await jobs.wait(job_id, settings.sync_wait)
    if job is None:
        raise NotFound(f"Job not found: {job_id}")
    base = links.base_url(request)
    if job["status"] == "done":
        return {"success": True, "data": await presenters.present(job["kind"], loads(job["result"], {}), base)}
    if job["status"] == "failed":
        if job.get("error_code") == "INTERNAL_ERROR":
            raise InternalError(job["error"] or "The job failed")
        raise BadRequest(job["error"] or "The job failed", error_code=job.get("error_code") or None)
    return {"success": True, "status": "processing", "request_type": "sync",
            "data": {"id": job_id, "output_url": f"{base}/async-response/{job_id}"}}


def async_response(job: dict[str, Any]) -> dict[str, Any]:
    """The body VideoDB's SDK polls at ``output_url``: processing, done or failed."""
    if job["status"] in ("queued", "running", "cancelling"):
        return {"success": True, "status": "processing", "data": {"percentage": round((job["progress"] or 0) * 100, 1)}}
    if job["status"] == "done":
        return {"success": True, "status": "done", "data": loads(job["result"], {})}
    return {"success": False, "status": "failed", "message": job["error"] or "Job failed"}
