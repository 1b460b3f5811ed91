"""Getting media into the library: upload slots, URLs and local files, imported as a job.

The SDK uploads a local file in two steps: it posts the bytes to an ``upload_url`` we hand out (with
no credentials, so the URL is signed), then asks ``collection/{id}/upload`` to import "that URL".
Remote URLs and ``file://`` paths go through the same job, which probes the file with PyAV before
anything is recorded: media that cannot be read is refused whole, never stored half. Owns the
``uploads`` table.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urljoin, urlparse, urlsplit

import av
import httpcore  # httpx's own transport layer: its network_backend seam is where addresses are checked
import httpx
from multipart import MultipartSegment, ParserError, PushMultipartParser

from reeldb.export import MediaError, MediaInfo, probe  # the export stage owns media inspection

from .collections import resolve
from .database import Conn, Database, row, rows
from .errors import BadRequest, Conflict, InsufficientStorage, JobFailed, NotFound, PayloadTooLarge
from .ids import new_id
from .jobs import AutoIndex, Compute, JobContext, JobKind, JobQueue
from .assets import prepare_asset
from .library import MediaLibrary
from .links import Links
from .netguard import (BlockedAddress, GuardedBackend, address_refusal, import_roots, importable_file,
                       literal_address, open_importable)
from .runtime import Runtime
from .settings import Settings
from .storage import MediaRoot, headroom

UPLOAD_PATH = re.compile(r"^/upload/(up-[0-9a-f-]+)$")
WRITE_BLOCK = 1 << 20  # bytes gathered before one write off the event loop
INVALID_LINK = "This upload URL is invalid or has expired"
FILE_IMPORTS_OFF = ("file:// imports are off on this server; to enable them, the operator lists the directories "
                    "they may read in REELDB_IMPORT_DIRS")
COPY_BLOCK = 1 << 20
MAX_REDIRECTS = 5
EMPTY_FOLDER_GRACE = 60.0  # an asset folder is empty for a moment while place() fills it


@dataclass(eq=False)
class Uploads:
    db: Database
    settings: Settings
    runtime: Runtime
    links: Links
    jobs: JobQueue
    library: MediaLibrary
    #: ``REELDB_AUTO_INDEX_UPLOADS``: called in the transaction that records an uploaded video or audio.
    index: AutoIndex | None = None
    #: Upload slots receiving a file right now: one writer per slot.
    _receiving: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.jobs.register(JobKind(IMPORT, commit=self._import_commit))

    def _file(self, stored: str) -> Path:
        """A slot's file (stored relative to the media root)."""
        return self.library.storage.path(stored)

    # -- upload slots ----------------------------------------------------------------------------
    async def create_slot(self, collection_id: str, name: str | None, base: str) -> str:
        await self.check_room(0)  # the SDK asks for a slot first: refuse there, in the envelope
        upload_id = new_id("upload")
        now = time.time()

        def write(conn: Conn) -> None:
            coll = resolve(conn, collection_id)
            conn["uploads"].insert({"id": upload_id, "secret": "", "collection_id": coll.id, "name": name,
                                    "path": self.library.storage.rel(self.settings.uploads_dir / upload_id), "size": None,
                                    "created_at": now, "expires_at": now + self.settings.upload_link_ttl})

        await self.db.execute_write_fn(write)
        return self.links.upload_url(base, upload_id)

    async def receive(self, upload_id: str, sig: str, content_type: str, body: AsyncIterator[bytes],
                      length: int | None = None) -> int:
        """Stream a multipart body's field ``file`` to the slot's path; returns its size. A body that
        would take the media root below its free-space floor is refused (507) before it is written."""
        if self.links.check("upload", sig) != upload_id:
            raise NotFound(INVALID_LINK)
        await self.check_room(length or 0)
        slot = await self.db.execute_fn(lambda conn: row(conn, "select * from uploads where id = ?", [upload_id]))
        if slot is None:
            raise NotFound(INVALID_LINK)
        if "boundary=" not in content_type:
            raise BadRequest("Send the file as multipart/form-data in a field named 'file'")
        if upload_id in self._receiving:  # check and mark with no await between: one writer per slot
            raise Conflict("This upload URL is already receiving a file")
        self._receiving.add(upload_id)
        try:
            fresh = await self.db.execute_fn(lambda conn: row(conn, "select size from uploads where id = ?",
                                                              [upload_id]))
            if fresh is None or fresh["size"] is not None:
                raise Conflict("This upload URL has already received its file; ask for a new upload_url")
            size = await self._write_part(slot, content_type, body)
            await self.db.execute_write_fn(lambda conn: conn["uploads"].update(upload_id, {"size": size}))
        finally:
            self._receiving.discard(upload_id)  # only once the slot says it is spent
        return size

    async def check_room(self, incoming: int) -> None:
        """507 when ``incoming`` more bytes would take the media root below ``REELDB_DISK_FLOOR_MB``."""
        room = await self.runtime.io(headroom, self.settings.uploads_dir, self.settings.disk_floor_mb)
        if room < incoming:
            need = "" if incoming <= 0 else f" for {incoming / 1e6:.1f} MB"
            raise InsufficientStorage(f"The server's disk has no room{need}: it keeps "
                                      f"{self.settings.disk_floor_mb:g} MB free (REELDB_DISK_FLOOR_MB) and has "
                                      f"{max(0, room) / 1e6:.1f} MB above that")

    async def _write_part(self, slot: dict[str, Any], content_type: str, body: AsyncIterator[bytes]) -> int:
        boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"')
        part_path = self._file(slot["path"] + ".part")
        limit = self.settings.max_upload_bytes
        room = await self.runtime.io(headroom, self.settings.uploads_dir, self.settings.disk_floor_mb)
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
                            if size > room:
                                raise InsufficientStorage("The server's disk filled up while receiving the file: "
                                                          f"it keeps {self.settings.disk_floor_mb:g} MB free "
                                                          "(REELDB_DISK_FLOOR_MB)")
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
        await self.runtime.io(part_path.replace, self._file(slot["path"]))
        return size

    async def uploaded(self, upload_url: str, limit: int) -> bytes:
        """What was uploaded to one of our upload URLs (the SDK's ``upload_bytes``, e.g. a large
        editor timeline), at most ``limit`` bytes."""
        parts = urlsplit(upload_url)
        upload_id = parts.path.rstrip("/").rsplit("/", 1)[-1]
        sig = parse_qs(parts.query).get("sig", [""])[0]
        if not parts.path.rstrip("/").endswith(f"/upload/{upload_id}") or self.links.check("upload", sig) != upload_id:
            raise NotFound(f"timeline_url: not an upload URL of this server (got {upload_url[:200]!r})")
        slot = await self.db.execute_fn(lambda conn: row(conn, "select * from uploads where id = ?", [upload_id]))
        if slot is None or slot["size"] is None:
            raise BadRequest("timeline_url: nothing has been uploaded there")
        if slot["size"] > limit:
            raise BadRequest(f"timeline_url: the upload is larger than {limit} bytes")
        return await self.runtime.io(self._file(slot["path"]).read_bytes)

    # -- imports ---------------------------------------------------------------------------------
    async def start_import(self, collection_id: str, url: str, name: str | None, description: str | None,
                           media_type: str | None) -> str:
        """Queue the import of ``url``; returns the job id. The media id is fixed now (idempotence)."""
        if media_type not in (None, "video", "audio", "image"):
            raise BadRequest("media_type must be one of video, audio, image")

        await self.check_room(0)

        def write(conn: Conn) -> dict[str, Any]:
            coll = resolve(conn, collection_id)
            source = self._classify(conn, url)
            filename = Path(source.get("path") or url.split("?")[0]).name
            if source["source"] == "slot":
                slot = row(conn, "select name from uploads where id = ?", [source["upload_id"]])
                filename = (slot or {}).get("name") or filename
            # A file already here (the SDK's upload) never waits behind a slow download from a URL.
            return self.jobs.enqueue(conn, "upload", {
                **source, "collection_id": coll.id, "name": name, "description": description,
                "media_type": media_type, "filename": filename, "media_id": new_id("video"),
            }, lane="uploads" if source["source"] == "slot" else None)

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
                if not self._file(slot["path"]).exists():
                    raise BadRequest("Nothing was uploaded to this upload_url")
                return {"source": "slot", "upload_id": slot["id"], "path": slot["path"]}
        if parsed.scheme == "file":
            self._file_source(url)
            return {"source": "file", "path": unquote(parsed.path), "url_given": url}
        if parsed.scheme in ("http", "https") and parsed.netloc:
            try:
                host = parsed.hostname
                parsed.port  # noqa: B018 - raises on a malformed port
            except ValueError:
                raise BadRequest("url is not a valid URL") from None
            ip = literal_address(host)
            reason = address_refusal(ip, self.settings.import_allow_private) if ip is not None else None
            if reason is not None:
                raise BadRequest(_blocked(url, BlockedAddress(host or "", reason)))
            return {"source": "http", "url": url}
        raise BadRequest("url must be an http(s):// or file:// URL")

    def _file_source(self, url: str, error: type[Exception] = BadRequest) -> Path:
        return file_source(self.settings, url, error)

    def _import_commit(self, ctx: JobContext, result: dict[str, Any]) -> dict[str, Any]:
        """The control node's part: the asset's row, and the upload slot spent."""
        record = result.pop("record")
        self.library.commit(record)
        if self.index is not None and record.get("kind") in ("video", "audio"):
            ctx.write(lambda conn: self.index(conn, record["id"], record["path"]))  # type: ignore[misc]
            self.jobs.wake()
        if ctx.params["source"] == "slot":
            ctx.write(lambda conn: conn["uploads"].delete_where("id = ?", [ctx.params["upload_id"]]))
        return result

    # -- housekeeping ----------------------------------------------------------------------------
    def sweep_expired(self, now: float | None = None) -> int:
        """Remove what no upload or import will use any more (blocking; also runs once at startup).

        Upload slots nobody used in time, with whatever bytes they received; ``.part`` files and slot
        files whose upload is not receiving now (left by a crash or a dropped client); downloads of
        imports that are no longer queued or running; empty asset folders under ``media/``.
        Returns the number of expired slots.
        """
        now = time.time() if now is None else now
        stale = self.db.read_sync(lambda conn: list(rows(conn, "select id, path from uploads where expires_at < ?",
                                                         [now])))
        for slot in stale:
            for path in (self._file(slot["path"]), self._file(slot["path"] + ".part")):
                path.unlink(missing_ok=True)
        if stale:
            ids = [s["id"] for s in stale]
            self.db.write_sync(lambda conn: conn.execute(
                f"delete from uploads where id in ({','.join('?' * len(ids))})", ids))
        leftovers = list(self.settings.uploads_dir.glob("up-*"))
        # read after listing: a slot's row exists before its file does, so a listed file's live slot is seen
        live = {s["id"] for s in self.db.read_sync(lambda conn: list(rows(conn, "select id from uploads")))}
        for leftover in leftovers:
            upload_id = leftover.name.split(".")[0]
            if leftover.name.endswith(".part"):
                if upload_id not in self._receiving:  # a receive that is not running will never finish it
                    leftover.unlink(missing_ok=True)
            elif upload_id not in live and leftover.is_file():
                leftover.unlink(missing_ok=True)
        for partial in self.settings.uploads_dir.glob("job-*.download"):  # left by a killed download
            job_id = partial.name.split(".")[0]
            job = self.db.read_sync(lambda conn, job_id=job_id: row(conn, "select status from jobs where id = ?",
                                                                      [job_id]))
            if job is None or job["status"] in ("done", "failed"):
                partial.unlink(missing_ok=True)
        self._sweep_empty_folders()
        return len(stale)

    def _sweep_empty_folders(self) -> None:
        """Asset folders a failed or killed import left empty (and then their empty collection folder)."""
        cutoff = time.time() - EMPTY_FOLDER_GRACE
        for coll in self.settings.media_dir.iterdir():
            if not coll.is_dir() or coll.is_symlink():
                continue
            coll_idle = coll.stat().st_mtime < cutoff  # before its own rmdirs below touch it
            for folder in coll.iterdir():
                try:
                    if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < cutoff:
                        folder.rmdir()  # only if empty: OSError otherwise
                except OSError:
                    pass
            try:
                if coll_idle:
                    coll.rmdir()
            except OSError:
                pass


def file_source(settings: Settings, url: str, error: type[Exception] = BadRequest) -> Path:
    """The real path of a ``file://`` URL an import may read; ``error`` (one message whatever the reason) if not.

    Decided on the URL's real path, without opening the file: whether it exists, is outside the
    import directories or inside the data directory (or the media root), the answer is the same.
    """
    roots = import_roots(settings.import_dirs)
    if not roots:
        raise error(FILE_IMPORTS_OFF)
    parsed = urlparse(url)
    real = importable_file(unquote(parsed.path), roots, settings.data_dir)
    if real is not None and real.is_relative_to(os.path.realpath(settings.media_root_dir)):
        real = None  # a media root of its own is as private as the data dir
    if parsed.netloc not in ("", "localhost") or real is None:
        raise error(_file_refused(url))
    return real


def import_compute(ctx: JobContext) -> dict[str, Any]:
    """The import job's compute part, files only (a job worker runs it): fetch or copy the source,
    probe it, prepare the asset; its row goes back in ``record`` for :meth:`Uploads._import_commit`.
    An upload slot's file is spent either way."""
    p = ctx.params
    storage = MediaRoot(ctx.settings.media_root_dir)
    media_id = p["media_id"]
    deadline = time.monotonic() + ctx.settings.import_timeout
    shown = p.get("filename") or "file"
    temp: Path | None = storage.path(p["path"]) if p["source"] == "slot" else None  # the slot is spent either way
    try:
        if p["source"] in ("http", "file"):
            temp = storage.uploads_dir / f"{ctx.id}.download"
            if p["source"] == "http":
                _fetch(ctx, p["url"], temp, deadline)
            else:  # a copy, read once: what is probed is what is stored, whatever happens to the original
                _copy_file(ctx, p, temp, deadline)
            src = temp
        else:
            src = storage.path(p["path"])
            if not src.is_file():
                raise JobFailed("The uploaded file is gone; upload it again")
        info = _inspect(src, shown)
        kind = info.kind
        wanted = p.get("media_type")
        if wanted and wanted != kind:
            if wanted == "audio" and info.audio_codec:
                kind = "audio"
            else:
                raise JobFailed(f"media_type is {wanted!r} but the file is {kind}")
        asset_id = _with_kind(media_id, kind)
        suffix = Path(p.get("filename") or "").suffix.lower()
        if suffix not in _MEDIA_SUFFIXES:  # never a suffix that makes FFmpeg guess another format
            suffix = _extension(info.format)
        record = prepare_asset(storage, asset_id, src, info, kind, p["collection_id"],
                               p.get("name") or Path(p.get("filename") or kind).stem, "upload",
                               move=True, suffix=suffix, description=p.get("description"),
                               source=p.get("url") or (p.get("path") if p["source"] == "file" else None))
        temp = None
        return {"media_id": asset_id, "record": record}
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)


def _copy_file(ctx: JobContext, p: dict[str, Any], dest: Path, deadline: float) -> None:
    """Copy a ``file://`` source, checked again now (settings or the file may have changed)."""
    url = p.get("url_given") or Path(p["path"]).as_uri()
    real = file_source(ctx.settings, url, JobFailed)
    try:
        fd = open_importable(real, ctx.settings.data_dir)
    except OSError:
        raise JobFailed(_file_refused(url)) from None
    limit = ctx.settings.max_upload_bytes
    with open(fd, "rb") as source, open(dest, "wb") as out:
        total = os.fstat(source.fileno()).st_size
        if total > limit:
            raise JobFailed("The file is larger than the server accepts")
        done = 0
        while chunk := source.read(COPY_BLOCK):
            out.write(chunk)
            done += len(chunk)
            if done > limit:
                raise JobFailed("The file is larger than the server accepts")
            if time.monotonic() > deadline:
                raise JobFailed(_too_slow(url, ctx.settings.import_timeout))
            ctx.progress(0.8 * done / total if total else 0.0)


def _discard(out: BinaryIO, path: Path) -> None:
    out.close()
    path.unlink(missing_ok=True)


def _with_kind(media_id: str, kind: str) -> str:
    """The id fixed at submit time, with the prefix of the kind the file turned out to be."""
    uuid_part = media_id.split("-z-", 1)[1]
    return {"video": "m-z-", "audio": "a-z-", "image": "img-z-"}[kind] + uuid_part


def _fetch(ctx: JobContext, url: str, dest: Path, deadline: float) -> None:
    """Download ``url`` to ``dest`` within ``deadline`` and ``max_upload_bytes``, following redirects.

    Every connection (each redirect hop opens its own) goes through :class:`GuardedBackend`, which
    refuses addresses the settings do not allow at the moment it connects. Failures to connect, time
    outs and broken transfers share one message: an import must not tell which ports are open.
    """
    settings = ctx.settings
    backend = GuardedBackend(settings.import_allow_private)
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), backend.abort)
    timer.daemon = True
    timer.start()
    step = 60.0  # per connect/read; a source silent for longer than the job lease gets the job reclaimed
    limit = settings.max_upload_bytes
    current = url
    try:
        with httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(),
                                     network_backend=backend, retries=0) as pool:
            for _ in range(MAX_REDIRECTS + 1):
                scheme = urlparse(current).scheme
                if scheme not in ("http", "https"):
                    raise JobFailed(f"Could not download {url}: it redirects to a URL that is not http(s)")
                timeouts = {"connect": min(step, max(0.1, deadline - time.monotonic())), "read": step,
                            "write": step, "pool": step}
                with pool.stream("GET", current, headers=[(b"Accept-Encoding", b"identity"),
                                                          (b"User-Agent", b"ReelDB")],
                                 extensions={"timeout": timeouts}) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        location = _header(response, b"location")
                        if not location:
                            raise JobFailed(f"Could not download {url}: HTTP {response.status}")
                        current = urljoin(current, location)
                        continue
                    if response.status >= 400:
                        raise JobFailed(f"Could not download {url}: HTTP {response.status}")
                    try:
                        total = int(_header(response, b"content-length") or 0)
                    except ValueError:
                        total = 0
                    if total > limit:
                        raise JobFailed("The file is larger than the server accepts")
                    done = 0
                    with open(dest, "wb") as out:
                        for chunk in response.iter_stream():  # as it arrives: each chunk is a heartbeat
                            out.write(chunk)
                            done += len(chunk)
                            if done > limit:
                                raise JobFailed("The file is larger than the server accepts")
                            if time.monotonic() > deadline:
                                raise JobFailed(_too_slow(url, settings.import_timeout))
                            ctx.progress(0.8 * done / total if total else 0.0)
                    if time.monotonic() > deadline:
                        raise JobFailed(_too_slow(url, settings.import_timeout))
                    return
            raise JobFailed(f"Could not download {url}: too many redirects")
    except BlockedAddress as exc:
        raise JobFailed(_blocked(url, exc)) from None
    except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
            httpcore.UnsupportedProtocol, ValueError):
        if time.monotonic() >= deadline:
            raise JobFailed(_too_slow(url, settings.import_timeout)) from None
        raise JobFailed(f"Could not download {url}: the server could not be reached or the transfer "
                        "broke off") from None
    finally:
        timer.cancel()


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _too_slow(url: str, timeout: float) -> str:
    return f"Could not import {url}: it did not arrive within {timeout:g} s (REELDB_IMPORT_TIMEOUT)"


def _file_refused(url: str) -> str:
    return (f"Cannot import {url}: file:// imports read only regular files inside the directories listed in "
            "REELDB_IMPORT_DIRS")


def _blocked(url: str, exc: BlockedAddress) -> str:
    hint = "" if exc.reason in ("an unspecified address", "a multicast address") else \
        " (the operator can allow such addresses with REELDB_IMPORT_ALLOW_PRIVATE=true)"
    return f"Refused to download {url}: {exc.host} is {exc.reason}{hint}"


#: FFmpeg demuxers of real audio, video and image containers. Anything else FFmpeg would open is
#: refused before it is read: text shown as video (tty, bintext), playlists and scripts that make
#: FFmpeg open other files or URLs (hls, concat, dash), subtitles and data streams.
_MEDIA_DEMUXERS = (
    "mov,matroska,avi,mpegts,mpeg,flv,asf,ogg,mxf,nut,ivf,dv,rm,m4v,h264,hevc,mpegvideo,obu,yuv4mpegpipe,"
    "wav,w64,mp3,aac,flac,ac3,eac3,aiff,caf,amr,amrnb,amrwb,ape,wv,dts,truehd,au,tak,loas,"
    "png_pipe,jpeg_pipe,webp_pipe,gif,gif_pipe,bmp_pipe,tiff_pipe,jpegxl_pipe,qoi_pipe"
)
_MEDIA_DEMUXER_NAMES = frozenset(_MEDIA_DEMUXERS.split(",")) | {"mp4", "webm"}
_MEDIA_SUFFIXES = frozenset((".mp4", ".m4v", ".mov", ".m4a", ".mkv", ".webm", ".mka", ".avi", ".ts", ".mpg",
                             ".flv", ".ogg", ".oga", ".ogv", ".opus", ".wav", ".mp3", ".aac", ".flac", ".png",
                             ".jpg", ".jpeg", ".webp", ".gif"))


def _inspect(src: Path, shown: str) -> MediaInfo:
    """Probe ``src`` (named ``shown`` in messages) if FFmpeg reads it with a media demuxer; JobFailed if not."""
    refused = f"Unsupported or unreadable media: {shown}: not an audio, video or image file"
    try:  # detection only, limited to media demuxers and local reads: nothing else is opened
        container = av.open(str(src), options={"format_whitelist": _MEDIA_DEMUXERS, "protocol_whitelist": "file"})
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise JobFailed(refused) from None
    container.close()
    try:
        info = probe(src)
    except MediaError as exc:
        raise JobFailed(f"Unsupported or unreadable media: {str(exc).replace(src.name, shown)}") from None
    if not set(info.format.split(",")) & _MEDIA_DEMUXER_NAMES:
        raise JobFailed(refused)
    return info


_FORMAT_EXT = {"mov": ".mp4", "matroska": ".mkv", "webm": ".webm", "png_pipe": ".png", "jpeg_pipe": ".jpg",
               "webp_pipe": ".webp", "wav": ".wav", "mp3": ".mp3", "ogg": ".ogg", "flac": ".flac",
               "mpegts": ".ts", "aac": ".aac", "avi": ".avi", "gif": ".gif"}


def _extension(container_format: str) -> str:
    """A file suffix for a demuxer name such as ``mov,mp4,m4a,3gp,3g2,mj2``."""
    first = (container_format or "").split(",")[0]
    return _FORMAT_EXT.get(first, "." + first if first.isalnum() else ".bin")


#: Liveness by progress alone: an import's step is a network read (see server/jobs/__init__.py).
IMPORT = Compute("upload", "imports", import_compute, heartbeat=False)
