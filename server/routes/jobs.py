"""Long work over HTTP: answer a job's result when it ends within the sync wait, else VideoDB's
``processing`` pattern with an ``output_url`` the SDK polls."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post

from .. import views
from ..auth import Principal
from ..database import loads
from ..editor import RENDERS, Editor
from ..errors import BadRequest, Conflict, InternalError, NotFound
from ..jobs import JobQueue
from ..library import MediaLibrary
from ..links import Links
from ..settings import Settings
from ..spoken import Spoken


class Presenters:
    """A finished job's stored result as the API's answer, by job kind (URLs depend on the caller)."""

    def __init__(self, library: MediaLibrary, links: Links, spoken: Spoken, editor: Editor) -> None:
        self.library = library
        self.links = links
        self.spoken = spoken
        self.editor = editor

    async def present(self, kind: str, result: dict[str, Any], base: str) -> dict[str, Any]:
        if kind == "upload":
            media = await self.library.get(result["media_id"])
            if media is None:
                raise NotFound("The uploaded media has since been deleted")
            return views.media(media, self.links.media_urls(media, base))
        if kind == "transcribe":
            return await self.spoken.present_transcript(result)
        if kind == "index":
            return {"message": "Spoken words indexed", **result}
        if kind in {part.name for part in RENDERS}:
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


@get("/async-response/{job_id:str}")
async def get_async_response(job_id: str, request: Request, jobs: JobQueue, presenters: Presenters,
                             links: Links, key: Principal) -> dict[str, Any]:
    job = await jobs.get(job_id)
    if job is None:
        raise NotFound(f"Response not found: {job_id}")
    body = views.async_response(job)
    if job["status"] == "done":
        body["data"] = await presenters.present(job["kind"], body["data"], links.base_url(request))
    return body


@post("/job/{job_id:str}/cancel", status_code=200)
async def cancel_job(job_id: str, jobs: JobQueue, key: Principal) -> dict[str, Any]:
    """Cancel a queued or running job (an import, export, index, transcription or render): ReelDB's
    own call, the SDK has none (``reeldb jobs cancel`` does the same from a shell). A running job
    stops at its next step and its work is discarded; a cancelled export fails its session's export,
    which ``cap.export()`` can ask for again. Cancelling a cancelled job answers it again."""
    job = await jobs.cancel(job_id)
    if job is None:
        raise NotFound(f"Job not found: {job_id}")
    if job["status"] in ("done", "failed") and job.get("error_code") != "CANCELLED":
        raise Conflict(f"Job {job_id} has already ended ({job['status']}); there is nothing to cancel")
    return {"success": True, "data": {"id": job["id"], "kind": job["kind"], "status": job["status"],
                                      "error": job["error"], "error_code": job.get("error_code")}}


handlers = [get_async_response, cancel_job]
