"""Getting media into the library: upload slots, URLs and local files, ingested as a job.

The SDK uploads a local file in two steps: it posts the bytes to an ``upload_url`` we hand out (with
no credentials, so the URL is signed), then asks ``collection/{id}/upload`` to ingest "that URL".
Remote URLs and ``file://`` paths go through the same job, which probes the file with PyAV before
anything is recorded: media that cannot be read is refused whole, never stored half.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
from reeldb.export import MediaError, probe  # the export stage owns media inspection

from . import db as dbm
from .library import add_asset
from .jobs import JobContext, JobFailed
from .services import Services

UPLOAD_PATH = re.compile(r"^/upload/(up-[0-9a-f-]+)$")


def classify_source(svc: Services, url: str) -> dict[str, Any]:
    """Which of our three sources ``url`` names; raises ``ValueError`` with a user-facing reason."""
    parsed = urlparse(url)
    match = UPLOAD_PATH.match(parsed.path or "")
    if parsed.scheme in ("http", "https") and match:
        slot = dbm.row(svc.db, "select * from uploads where id = ?", [match.group(1)])
        if slot is not None:
            if not Path(slot["path"]).exists():
                raise ValueError("Nothing was uploaded to this upload_url")
            return {"source": "slot", "upload_id": slot["id"], "path": slot["path"]}
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
        if not path.is_file():
            raise ValueError(f"No such file: {path}")
        return {"source": "file", "path": str(path)}
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return {"source": "http", "url": url}
    raise ValueError("url must be an http(s):// or file:// URL")


def _fetch(ctx: JobContext, url: str, dest: Path) -> None:
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
            if response.status_code >= 400:
                raise JobFailed(f"Could not download {url}: HTTP {response.status_code}")
            total = int(response.headers.get("content-length") or 0)
            done = 0
            with open(dest, "wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    if done > ctx.settings.max_upload_bytes:
                        raise JobFailed("The file is larger than the server accepts")
                    if total:
                        ctx.progress(80.0 * done / total)
    except httpx.HTTPError as exc:
        raise JobFailed(f"Could not download {url}: {exc}") from None


def ingest_job(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    temp: Path | None = Path(p["path"]) if p["source"] == "slot" else None  # the slot is spent either way
    if p["source"] == "http":
        temp = ctx.settings.uploads_dir / f"{ctx.id}.download"
        _fetch(ctx, p["url"], temp)
        src = temp
    else:
        src = Path(p["path"])
        if not src.is_file():
            raise JobFailed("The uploaded file is gone; upload it again")
    try:
        try:
            info = probe(src)
        except MediaError as exc:
            raise JobFailed(f"Unsupported or unreadable media: {exc}") from None
        kind = info.kind
        wanted = p.get("media_type")
        if wanted and wanted != kind:
            if wanted == "audio" and info.audio_codec:
                kind = "audio"
            else:
                raise JobFailed(f"media_type is {wanted!r} but the file is {kind}")
        suffix = Path(p.get("filename") or "").suffix.lower() or _extension(info.format)
        row = add_asset(ctx.db, ctx.settings, src, info, kind, p["collection_id"],
                        p.get("name") or Path(p.get("filename") or kind).stem, "upload",
                        move=p["source"] != "file", suffix=suffix, description=p.get("description"),
                        source=p.get("url") or p.get("path"))
        if p["source"] != "file":
            temp = None
        return {"media_id": row["id"]}
    finally:
        if temp is not None and temp.exists():
            temp.unlink()
        if p["source"] == "slot":
            ctx.db["uploads"].delete_where("id = ?", [p["upload_id"]])


_FORMAT_EXT = {"mov": ".mp4", "matroska": ".mkv", "webm": ".webm", "png_pipe": ".png", "jpeg_pipe": ".jpg",
               "webp_pipe": ".webp", "wav": ".wav", "mp3": ".mp3", "ogg": ".ogg", "flac": ".flac",
               "mpegts": ".ts", "aac": ".aac", "avi": ".avi", "gif": ".gif"}


def _extension(container_format: str) -> str:
    """A file suffix for a demuxer name such as ``mov,mp4,m4a,3gp,3g2,mj2``."""
    first = (container_format or "").split(",")[0]
    return _FORMAT_EXT.get(first, "." + first if first.isalnum() else ".bin")


def sweep_expired(db: Any, uploads_dir: Path, now: float | None = None) -> int:
    """Forget upload slots nobody used in time, with whatever bytes they received."""
    now = time.time() if now is None else now
    stale = list(dbm.rows(db, "select id, path from uploads where expires_at < ?", [now]))
    for slot in stale:
        for path in (Path(slot["path"]), Path(slot["path"] + ".part")):
            path.unlink(missing_ok=True)
        db["uploads"].delete(slot["id"])
    for partial in uploads_dir.glob("job-*.download"):  # left by a download the server was killed in
        job = dbm.row(db, "select status from jobs where id = ?", [partial.name.split(".")[0]])
        if job is None or job["status"] in ("done", "failed"):
            partial.unlink(missing_ok=True)
    return len(stale)


def register_upload_jobs(svc: Services) -> None:
    svc.jobs.register("upload", ingest_job)
