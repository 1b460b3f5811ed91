"""The media library: owns the ``media`` table and the ``media/`` folder.

Every file that becomes an asset goes through :meth:`MediaLibrary.place` (uploads, URL imports,
exports, renders), so every video gets its stream. A video plays as soon as its stream exists:
its poster and seek storyboard follow as a ``previews`` job of their own, queued in the
transaction that records the video (on an upload of a plain stream copy they cost three times
the segmenting: keyframe decodes). ``place`` takes the asset id from its caller, chosen
before the job ran, and replaces whatever an earlier, killed attempt left under that id: a job
that runs twice leaves one asset, not two.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

from reeldb.export import ExportError, MediaInfo, probe
from reeldb.export.thumbnails import thumbnail_at
from reeldb.index import scene_store, store

from .assets import make_previews, prepare_asset
from .collections import resolve
from .jobs import Compute, JobContext, JobKind, JobQueue
from .database import Conn, Database, row, rows
from .errors import BadRequest, NotFound
from .runtime import Runtime
from .ids import new_id
from .settings import Settings
from .storage import MediaRoot
from .text import strip



def find(conn: Conn, kind: str, media_id: str, collection_id: str | None) -> dict[str, Any]:
    found = row(conn, "select * from media where id = ? and kind = ?", [media_id, kind])
    if found is not None and collection_id and resolve(conn, collection_id).id != found["collection_id"]:
        found = None
    if found is None:
        raise NotFound(f"{kind.capitalize()} not found: {media_id}")
    return found


#: What the library page does not list as videos of their own (parts of a recording, renders).
NOT_LISTED = "('editor', 'capture-channel', 'thumbnail')"

#: Where previews are made: one at a time, so a storyboard's decodes never take more than a core
#: from the uploads and exports whose streams come first.
PREVIEWS_LANE = "previews"


class MediaLibrary:
    def __init__(self, db: Database, settings: Settings, runtime: Runtime, storage: MediaRoot,
                 jobs: JobQueue | None = None) -> None:
        self.db = db
        self.jobs = jobs
        if jobs is not None:
            jobs.register(JobKind(PREVIEWS, commit=self._previews_commit))
        self.settings = settings
        self.runtime = runtime
        #: Rows hold paths relative to the media root; these resolve them (see server/storage.py).
        self.storage = storage

    # -- files of a row --------------------------------------------------------------------------
    def file(self, media: dict[str, Any]) -> Path:
        """The asset's source file."""
        return self.storage.path(media["path"])

    def hls_dir(self, media: dict[str, Any]) -> Path | None:
        """The folder of the asset's HLS rendition (and its previews and clips), if it has one."""
        playlist = self.storage.maybe(media.get("hls_path"))
        return playlist.parent if playlist is not None else None

    # -- for job handlers (blocking, on a worker thread) -----------------------------------------
    def place(self, asset_id: str, src: Path, info: MediaInfo, kind: str, collection_id: str, name: str,
              origin: str, *, session_id: str | None = None, channel_id: str | None = None,
              move: bool = True, suffix: str | None = None, description: str | None = None,
              source: str | None = None, parent_id: str | None = None) -> dict[str, Any]:
        """Put a media file into the library under ``asset_id`` (plus HLS for videos) and record it."""
        record = self.prepare(asset_id, src, info, kind, collection_id, name, origin, session_id=session_id,
                              channel_id=channel_id, move=move, suffix=suffix, description=description,
                              source=source, parent_id=parent_id)
        try:
            self.commit(record)
        except BaseException:
            self.storage.remove_tree(self.storage.path(record["path"]).parent)
            raise
        return record

    def prepare(self, asset_id: str, src: Path, info: MediaInfo, kind: str, collection_id: str, name: str,
                origin: str, **extra: Any) -> dict[str, Any]:
        """The file part of :meth:`place` (see :func:`prepare_asset`)."""
        return prepare_asset(self.storage, asset_id, src, info, kind, collection_id, name, origin, **extra)

    def commit(self, record: dict[str, Any]) -> None:
        """The row part of :meth:`place` (the control node's): upsert, so a rerun replaces. A
        video with a stream and no previews gets its ``previews`` job in the same transaction."""
        follow = (self.jobs is not None and record.get("kind") == "video" and record.get("hls_path")
                  and not record.get("previews"))

        def write(conn: Conn) -> None:
            conn["media"].upsert(record, pk="id")
            if follow:
                self.jobs.enqueue(conn, "previews", {  # type: ignore[union-attr]
                    "media_id": record["id"], "path": record["path"], "hls_path": record["hls_path"]})

        self.db.write_sync(write)
        if follow:
            self.jobs.wake()  # type: ignore[union-attr]

    def _previews_commit(self, ctx: JobContext, result: dict[str, Any]) -> dict[str, Any]:
        if result.get("previews"):  # (an asset deleted meanwhile updates nothing)
            ctx.write(lambda conn: conn.execute("update media set previews = 1 where id = ?", [result["media_id"]]))
        return result

    def thumbnail(self, video: dict[str, Any], t: float) -> dict[str, Any]:
        """The frame at ``t`` as a new image asset of the video's collection (blocking)."""
        image_id = new_id("image")
        staging = self.settings.uploads_dir / f"{image_id}.jpg"
        try:
            thumbnail_at(self.file(video), t, staging, width=None)
            info = probe(staging)
        except ExportError:
            staging.unlink(missing_ok=True)
            raise
        return self.place(image_id, staging, info, "image", video["collection_id"],
                          f"{video['name']} at {t:g}s", "thumbnail", suffix=".jpg", parent_id=video["id"])

    # -- for routes ------------------------------------------------------------------------------
    async def get(self, media_id: str) -> dict[str, Any] | None:
        """A media row (or None); a player asks for one per segment it fetches, so it is answered
        from memory until the database changes (``Database.execute_cached``)."""
        return await self.db.execute_cached(("media", media_id), lambda conn: row(
            conn, "select * from media where id = ?", [media_id]))

    async def find(self, kind: str, media_id: str, collection_id: str | None = None) -> dict[str, Any]:
        return await self.db.execute_fn(lambda conn: find(conn, kind, media_id, collection_id))

    async def list(self, kind: str, collection_id: str) -> list[dict[str, Any]]:
        def read(conn: Conn) -> list[dict[str, Any]]:
            coll = resolve(conn, collection_id)
            # the editor's renders are streams, not videos of the collection
            return list(rows(conn, "select * from media where collection_id = ? and kind = ? "
                                   "and coalesce(origin, '') != 'editor' order by created_at", [coll.id, kind]))

        return await self.db.execute_fn(read)

    async def browse(self, collection_id: str, recordings: bool | None, since: float | None, until: float | None,
                     limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """The videos of a collection as the library page lists them, newest first: recordings
        (``recordings=True``), other videos (False) or both (None), made in ``[since, until)``;
        a page of them and how many there are. A recording's raw channel files, thumbnails and
        the editor's renders are parts of something else, not listed; each recording carries
        the ``channels`` it was recorded from."""
        where = ["collection_id = ?", "kind = 'video'", f"coalesce(origin, '') not in {NOT_LISTED}"]

        def read(conn: Conn) -> tuple[list[dict[str, Any]], int]:
            args: list[Any] = [resolve(conn, collection_id).id]
            if recordings is not None:
                where.append("coalesce(origin, '') " + ("= 'capture'" if recordings else "!= 'capture'"))
            for clause, value in (("created_at >= ?", since), ("created_at < ?", until)):
                if value is not None:
                    where.append(clause)
                    args.append(value)
            sql = " and ".join(where)
            total = conn.execute(f"select count(*) from media where {sql}", args).fetchone()[0]
            found = list(rows(conn, f"select * from media where {sql} order by created_at desc, id desc "
                                    "limit ? offset ?", [*args, limit, offset]))
            for item in found:
                item["channels"] = [r["channel_id"] for r in rows(
                    conn, "select channel_id from media where session_id = ? and origin = 'capture-channel' "
                          "order by channel_id", [item["session_id"]])] if item.get("session_id") else []
            return found, total

        return await self.db.execute_fn(read)

    async def delete_video(self, media_id: str, collection_id: str | None) -> None:
        """A video of the library with what was made of it: its thumbnails and, for the last
        export of a recording, the recording's raw channel files; rows, transcripts, index rows,
        then their folders (the renditions are in them), off the loop."""
        def write(conn: Conn) -> list[dict[str, Any]]:
            current = find(conn, "video", media_id, collection_id)
            parts = ["id = ?", "parent_id = ?"]
            args = [media_id, media_id]
            session = current.get("session_id")
            if session and not row(conn, "select 1 from media where session_id = ? and origin = 'capture' "
                                         "and id != ?", [session, media_id]):
                parts.append("(session_id = ? and origin = 'capture-channel')")
                args.append(session)
            gone = list(rows(conn, f"select * from media where {' or '.join(parts)}", args))
            for item in gone:
                store.delete_for(conn, item["id"])
                scene_store.delete_for(conn, item["id"])
                conn["media"].delete(item["id"])
            return gone

        for item in await self.db.execute_write_fn(write):
            await self.runtime.io(shutil.rmtree, self.file(item).parent, True)

    async def update(self, kind: str, media_id: str, collection_id: str | None, name: str | None,
                     description: str | None) -> dict[str, Any]:
        changes: dict[str, Any] = {k: v for k, v in (("name", name), ("description", description)) if v is not None}

        def write(conn: Conn) -> dict[str, Any]:
            current = find(conn, kind, media_id, collection_id)  # 404 before judging the body
            if "name" in changes and not strip(changes["name"]):
                raise BadRequest("name must not be empty")
            if changes:
                changes["updated_at"] = time.time()
                conn["media"].update(media_id, changes)
            return {**current, **changes}

        return await self.db.execute_write_fn(write)

    async def thumbnails(self, video_id: str) -> list[dict[str, Any]]:
        return await self.db.execute_fn(lambda conn: list(rows(
            conn, "select * from media where parent_id = ? and kind = 'image' order by created_at", [video_id])))

    async def ensure_previews(self, video: dict[str, Any]) -> dict[str, Any]:
        """A poster and storyboard for a video made before they existed (off the loop, once)."""
        hls_dir = self.hls_dir(video)
        if video.get("previews") or hls_dir is None:
            return video
        done = await self.runtime.io(make_previews, video["id"], self.file(video), hls_dir)
        if done:
            await self.db.execute_write_fn(lambda conn: conn["media"].update(video["id"], {"previews": 1}))
        return {**video, "previews": int(done)}

    async def rename(self, media_id: str, name: str) -> None:
        await self.db.execute_write_fn(lambda conn: conn["media"].update(media_id, {"name": name}))

    async def delete(self, kind: str, media_id: str, collection_id: str | None) -> None:
        """The row, its transcript and index in one transaction; then its folder, off the loop."""
        def write(conn: Conn) -> dict[str, Any]:
            current = find(conn, kind, media_id, collection_id)
            store.delete_for(conn, media_id)
            scene_store.delete_for(conn, media_id)
            conn["media"].delete(media_id)
            return current

        gone = await self.db.execute_write_fn(write)
        await self.runtime.io(shutil.rmtree, self.file(gone).parent, True)


    def remove_sync(self, media_id: str) -> int:
        """From a job thread: an asset's row, transcript and index, then its folder (and its
        thumbnails'); the bytes freed. Nothing to remove: 0."""
        def write(conn: Conn) -> list[dict[str, Any]]:
            gone = list(rows(conn, "select id, path from media where id = ? or parent_id = ?", [media_id, media_id]))
            for item in gone:
                store.delete_for(conn, item["id"])
                scene_store.delete_for(conn, item["id"])
                conn["media"].delete(item["id"])
            return gone

        return sum(self.storage.remove_tree(self.file(item).parent) for item in self.db.write_sync(write))


def rebase_paths(conn: "sqlite3.Connection", moved: Callable[[str | None, str, str], str | None]) -> None:
    """Rewrite every asset's file and HLS paths (a restored backup: ``moved(path, collection_id,
    asset_id)``), on a plain sqlite3 connection to a database no server has open."""
    for asset_id, collection_id, path, hls in conn.execute(
            "select id, collection_id, path, hls_path from media").fetchall():
        conn.execute("update media set path = ?, hls_path = ? where id = ?",
                     [moved(path, collection_id, asset_id), moved(hls, collection_id, asset_id), asset_id])


def previews_compute(ctx: JobContext) -> dict[str, Any]:
    """The ``previews`` job, files only (a job worker runs it): the poster and storyboard of a
    video recorded with its stream; :meth:`MediaLibrary._previews_commit` marks the row."""
    p = ctx.params
    storage = MediaRoot(ctx.settings.media_root_dir)
    hls = storage.path(p["hls_path"])
    done = hls.exists() and make_previews(p["media_id"], storage.path(p["path"]), hls.parent)
    return {"media_id": p["media_id"], "previews": bool(done)}


PREVIEWS = Compute("previews", PREVIEWS_LANE, previews_compute)
