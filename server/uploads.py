"""Getting media into the library: upload slots, URLs and local files, imported as a job.

The SDK uploads a local file in two steps: it posts the bytes to an ``upload_url`` we hand out (with
no credentials, so the URL is signed), then asks ``collection/{id}/upload`` to import "that URL".
Remote URLs and ``file://`` paths go through the same job, which probes the file with PyAV before
anything is recorded: media that cannot be read is refused whole, never stored half. Owns the
``uploads`` table.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, AsyncIterator, BinaryIO
from urllib.parse import unquote, urlparse

import httpx
from multipart import MultipartSegment, ParserError, PushMultipartParser

from reeldb.export import MediaError, probe  # the export stage owns media inspection

from .collections import resolve
from .database import Conn, Database, row, rows
from .errors import BadRequest, Conflict, JobFailed, NotFound, PayloadTooLarge
from .ids import new_id
from .jobs import JobContext, JobKind, JobQueue
from .library import MediaLibrary
from .links import UPLOAD_TTL, Links
from .runtime import Runtime
from .settings import Settings

UPLOAD_PATH = re.compile(r"^/upload/(up-[0-9a-f-]+)$")
WRITE_BLOCK = 1 << 20  # bytes gathered before one write off the event loop
INVALID_LINK = "This upload URL is invalid or has expired"


class Uploads:
    def __init__(self, db: Database, settings: Settings, runtime: Runtime, links: Links, jobs: JobQueue,
                 library: MediaLibrary) -> None:
        self.db = db
        self.settings = settings
        self.runtime = runtime
        self.links = links
        self.jobs = jobs
        self.library = library
        self._receiving: set[str] = set()
        jobs.register(JobKind("upload", "imports", self._import_job))

    # -- upload slots ----------------------------------------------------------------------------
    async def create_slot(self, collection_id: str, name: str | None, base: str) -> str:
        upload_id = new_id("upload")
        now = time.time()

        def write(conn: Conn) -> None:
            coll = resolve(conn, collection_id)
            conn["uploads"].insert({"id": upload_id, "secret": "", "collection_id": coll["id"], "name": name,
                                    "path": str(self.settings.uploads_dir / upload_id), "size": None,
                                    "created_at": now, "expires_at": now + UPLOAD_TTL})

        await self.db.execute_write_fn(write)
        return self.links.upload_url(base, upload_id)

    async def receive(self, upload_id: str, sig: str, content_type: str, body: AsyncIterator[bytes]) -> int:
        """Stream a multipart body's field ``file`` to the slot's path; returns its size."""
        if self.links.check("upload", sig) != upload_id:
            raise NotFound(INVALID_LINK)
        slot = await self.db.execute_fn(lambda conn: row(conn, "select * from uploads where id = ?", [upload_id]))
        if slot is None:
            raise NotFound(INVALID_LINK)
        if "boundary=" not in content_type:
            raise BadRequest("Send the file as multipart/form-data in a field named 'file'")
        if upload_id in self._receiving:
            raise Conflict("This upload URL is already receiving a file")
        self._receiving.add(upload_id)
        try:
            size = await self._write_part(slot, content_type, body)
        finally:
            self._receiving.discard(upload_id)
        await self.db.execute_write_fn(lambda conn: conn["uploads"].update(upload_id, {"size": size}))
        return size

    async def _write_part(self, slot: dict[str, Any], content_type: str, body: AsyncIterator[bytes]) -> int:
        boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"')
        part_path = Path(slot["path"] + ".part")
        limit = self.settings.max_upload_bytes
        size, got_file, writing = 0, False, False
        pending: list[bytes] = []
        out: BinaryIO = await self.runtime.io(open, part_path, "wb")
        try:
            with PushMultipartParser(boundary, max_segment_size=limit) as parser:
                async for chunk in body:
                    for event in parser.parse(chunk):
                        if isinstance(event, MultipartSegment):
                            writing = event.name == "file" and not got_file
                            got_file = got_file or writing
                        elif event is None:
                            writing = False
                        elif writing:
                            pending.append(bytes(event))
                            size += len(event)
                            if size > limit:
                                raise PayloadTooLarge("The file is larger than the server accepts")
                    if sum(map(len, pending)) >= WRITE_BLOCK:
                        await self.runtime.io(out.write, b"".join(pending))
                        pending.clear()
                for _ in parser.parse(b""):
                    pass
            await self.runtime.io(out.write, b"".join(pending))
            await self.runtime.io(out.close)
        except ParserError as exc:
            await self.runtime.io(_discard, out, part_path)
            raise BadRequest(f"Malformed multipart body: {exc}") from None
        except BaseException:
            await self.runtime.io(_discard, out, part_path)
            raise
        if not got_file:
            await self.runtime.io(_discard, out, part_path)
            raise BadRequest("The multipart body has no field named 'file'")
        await self.runtime.io(part_path.replace, slot["path"])
        return size

    # -- imports ---------------------------------------------------------------------------------
    async def start_import(self, collection_id: str, url: str, name: str | None, description: str | None,
                           media_type: str | None) -> str:
        """Queue the import of ``url``; returns the job id. The media id is fixed now (idempotence)."""
        if media_type not in (None, "video", "audio", "image"):
            raise BadRequest("media_type must be one of video, audio, image")

        def write(conn: Conn) -> dict[str, Any]:
            coll = resolve(conn, collection_id)
            source = self._classify(conn, url)
            filename = Path(source.get("path") or url.split("?")[0]).name
            if source["source"] == "slot":
                slot = row(conn, "select name from uploads where id = ?", [source["upload_id"]])
                filename = (slot or {}).get("name") or filename
            return self.jobs.enqueue(conn, "upload", {
                **source, "collection_id": coll["id"], "name": name, "description": description,
                "media_type": media_type, "filename": filename, "media_id": new_id("video"),
            })

        job = await self.db.execute_write_fn(write)
        self.jobs.wake()
        return job["id"]

    def _classify(self, conn: Conn, url: str) -> dict[str, Any]:
        """Which of our three sources ``url`` names; 400 with a user-facing reason otherwise."""
        parsed = urlparse(url)
        match = UPLOAD_PATH.match(parsed.path or "")
        if parsed.scheme in ("http", "https") and match:
            slot = row(conn, "select * from uploads where id = ?", [match.group(1)])
            if slot is not None:
                if not Path(slot["path"]).exists():
                    raise BadRequest("Nothing was uploaded to this upload_url")
                return {"source": "slot", "upload_id": slot["id"], "path": slot["path"]}
        if parsed.scheme == "file":
            path = Path(unquote(parsed.path))
            if not path.is_file():
                raise BadRequest(f"No such file: {path}")
            return {"source": "file", "path": str(path)}
        if parsed.scheme in ("http", "https") and parsed.netloc:
            return {"source": "http", "url": url}
        raise BadRequest("url must be an http(s):// or file:// URL")

    def _import_job(self, ctx: JobContext) -> dict[str, Any]:
        p = ctx.params
        media_id = p["media_id"]
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
            asset_id = _with_kind(media_id, kind)
            suffix = Path(p.get("filename") or "").suffix.lower() or _extension(info.format)
            self.library.place(asset_id, src, info, kind, p["collection_id"],
                               p.get("name") or Path(p.get("filename") or kind).stem, "upload",
                               move=p["source"] != "file", suffix=suffix, description=p.get("description"),
                               source=p.get("url") or p.get("path"))
            if p["source"] != "file":
                temp = None
            return {"media_id": asset_id}
        finally:
            if temp is not None and temp.exists():
                temp.unlink()
            if p["source"] == "slot":
                ctx.write(lambda conn: conn["uploads"].delete_where("id = ?", [p["upload_id"]]))

    # -- housekeeping ----------------------------------------------------------------------------
    def sweep_expired(self, now: float | None = None) -> int:
        """Forget upload slots nobody used in time, with whatever bytes they received (blocking)."""
        now = time.time() if now is None else now
        stale = self.db.read_sync(lambda conn: list(rows(conn, "select id, path from uploads where expires_at < ?",
                                                         [now])))
        for slot in stale:
            for path in (Path(slot["path"]), Path(slot["path"] + ".part")):
                path.unlink(missing_ok=True)
        if stale:
            ids = [s["id"] for s in stale]
            self.db.write_sync(lambda conn: conn.execute(
                f"delete from uploads where id in ({','.join('?' * len(ids))})", ids))
        for partial in self.settings.uploads_dir.glob("job-*.download"):  # left by a killed download
            job_id = partial.name.split(".")[0]
            job = self.db.read_sync(lambda conn: row(conn, "select status from jobs where id = ?", [job_id]))
            if job is None or job["status"] in ("done", "failed"):
                partial.unlink(missing_ok=True)
        return len(stale)


def _discard(out: BinaryIO, path: Path) -> None:
    out.close()
    path.unlink(missing_ok=True)


def _with_kind(media_id: str, kind: str) -> str:
    """The id fixed at submit time, with the prefix of the kind the file turned out to be."""
    uuid_part = media_id.split("-z-", 1)[1]
    return {"video": "m-z-", "audio": "a-z-", "image": "img-z-"}[kind] + uuid_part


def _fetch(ctx: JobContext, url: str, dest: Path) -> None:
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
            if response.status_code >= 400:
                raise JobFailed(f"Could not download {url}: HTTP {response.status_code}")
            total = int(response.headers.get("content-length") or 0)
            done = 0
            with open(dest, "wb") as out:
                for chunk in response.iter_bytes():  # as it arrives: each chunk is a heartbeat
                    out.write(chunk)
                    done += len(chunk)
                    if done > ctx.settings.max_upload_bytes:
                        raise JobFailed("The file is larger than the server accepts")
                    ctx.progress(0.8 * done / total if total else 0.0)
    except httpx.HTTPError as exc:
        raise JobFailed(f"Could not download {url}: {exc}") from None


_FORMAT_EXT = {"mov": ".mp4", "matroska": ".mkv", "webm": ".webm", "png_pipe": ".png", "jpeg_pipe": ".jpg",
               "webp_pipe": ".webp", "wav": ".wav", "mp3": ".mp3", "ogg": ".ogg", "flac": ".flac",
               "mpegts": ".ts", "aac": ".aac", "avi": ".avi", "gif": ".gif"}


def _extension(container_format: str) -> str:
    """A file suffix for a demuxer name such as ``mov,mp4,m4a,3gp,3g2,mj2``."""
    first = (container_format or "").split(",")[0]
    return _FORMAT_EXT.get(first, "." + first if first.isalnum() else ".bin")
