"""Long work over HTTP: answer a job's result when it ends within the sync wait, else VideoDB's
``processing`` pattern with an ``output_url`` the SDK polls."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post

from ..auth import Principal
from ..errors import Conflict, NotFound
from ..jobs import JobQueue
from ..links import Links
from ..views.jobs import Presenters, async_response


@get("/async-response/{job_id:str}")
async def get_async_response(job_id: str, request: Request, jobs: JobQueue, presenters: Presenters,
                             links: Links, key: Principal) -> dict[str, Any]:
    job = await jobs.get(job_id)
    if job is None:
        raise NotFound(f"Response not found: {job_id}")
    body = async_response(job)
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
