"""The media library: owns the ``media`` table and the ``media/`` folder.

Every file that becomes an asset goes through :meth:`MediaLibrary.place` (uploads, URL imports,
exports), so every video gets its stream. ``place`` takes the asset id from its caller, chosen
before the job ran, and replaces whatever an earlier, killed attempt left under that id: a job
that runs twice leaves one asset, not two.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from reeldb.export import ExportError, HlsError, MediaInfo, make_hls, probe
from reeldb.export.thumbnails import StoryboardMaker, poster, storyboard, thumbnail_at
from reeldb.index import store

from .collections import resolve
from .database import Conn, Database, row, rows
from .errors import BadRequest, NotFound
from .runtime import Runtime
from .ids import new_id
from .settings import Settings
from .storage import MediaRoot
from .text import strip

log = logging.getLogger("reeldb.library")


def find(conn: Conn, kind: str, media_id: str, collection_id: str | None) -> dict[str, Any]:
    found = row(conn, "select * from media where id = ? and kind = ?", [media_id, kind])
    if found is not None and collection_id and resolve(conn, collection_id)["id"] != found["collection_id"]:
        found = None
    if found is None:
        raise NotFound(f"{kind.capitalize()} not found: {media_id}")
    return found


class MediaLibrary:
    def __init__(self, db: Database, settings: Settings, runtime: Runtime, storage: MediaRoot) -> None:
        self.db = db
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
        """The row part of :meth:`place` (the control node's): upsert, so a rerun replaces."""
        self.db.write_sync(lambda conn: conn["media"].upsert(record, pk="id"))

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
        return await self.db.execute_fn(lambda conn: row(conn, "select * from media where id = ?", [media_id]))

    async def find(self, kind: str, media_id: str, collection_id: str | None = None) -> dict[str, Any]:
        return await self.db.execute_fn(lambda conn: find(conn, kind, media_id, collection_id))

    async def list(self, kind: str, collection_id: str) -> list[dict[str, Any]]:
        def read(conn: Conn) -> list[dict[str, Any]]:
            coll = resolve(conn, collection_id)
            # the editor's renders are streams, not videos of the collection
            return list(rows(conn, "select * from media where collection_id = ? and kind = ? "
                                   "and coalesce(origin, '') != 'editor' order by created_at", [coll["id"], kind]))

        return await self.db.execute_fn(read)

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
        done = await self.runtime.io(_previews, video["id"], self.file(video), hls_dir)
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
                conn["media"].delete(item["id"])
            return gone

        return sum(self.storage.remove_tree(self.file(item).parent) for item in self.db.write_sync(write))


def prepare_asset(storage: MediaRoot, asset_id: str, src: Path, info: MediaInfo, kind: str, collection_id: str,
                  name: str, origin: str, *, session_id: str | None = None, channel_id: str | None = None,
                  move: bool = True, suffix: str | None = None, description: str | None = None,
                  source: str | None = None, parent_id: str | None = None) -> dict[str, Any]:
    """The file part of :meth:`MediaLibrary.place`, touching only the media root (a job worker with
    no database runs it): the asset's folder, its HLS and previews; the row to write, returned
    (paths in it relative to the media root), for :meth:`MediaLibrary.commit`."""
    folder = storage.asset_dir(collection_id, asset_id)
    dest = folder / f"source{suffix or src.suffix}"
    created = src.resolve() != dest.resolve()
    if created:
        shutil.rmtree(folder, ignore_errors=True)  # what a killed attempt of the same job left
        folder.mkdir(parents=True)
    try:
        if created:
            if move:
                storage.replace(src, dest)
            else:
                shutil.copyfile(src, dest)
        hls_path, previews = None, False
        if kind == "video":
            board = StoryboardMaker()  # from the keyframes make_hls reads anyway
            try:
                hls_path = storage.rel(make_hls(dest, folder / "hls", watch=board))
            except HlsError as exc:
                log.warning("no HLS rendition for %s: %s", asset_id, exc)
            else:
                previews = _previews(asset_id, dest, folder / "hls", board)
        now = time.time()
        record = {
            "id": asset_id, "collection_id": collection_id, "kind": kind, "name": name,
            "description": description, "path": storage.rel(dest), "size": dest.stat().st_size,
            "length": info.duration, "format": info.format, "width": info.width if kind != "audio" else None,
            "height": info.height if kind != "audio" else None, "fps": info.fps if kind == "video" else None,
            "video_codec": info.video_codec if kind == "video" else None, "audio_codec": info.audio_codec,
            "sample_rate": info.sample_rate, "audio_channels": info.channels, "source": source,
            "origin": origin, "created_at": now, "updated_at": now, "hls_path": hls_path,
            "session_id": session_id, "channel_id": channel_id, "previews": int(previews),
            "parent_id": parent_id,
        }
        return record
    except BaseException:  # no asset folder without its row: give the source back, remove the rest
        if created:
            if move and dest.exists():
                storage.replace(dest, src)
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _previews(asset_id: str, video: Path, hls_dir: Path, board: StoryboardMaker | None = None) -> bool:
    """A poster and a keyframe storyboard (sprite + WebVTT) beside the HLS rendition, served with
    it. Keyframes only, so this costs a fraction of a decode; a failure costs the previews only.
    ``board``: the storyboard made while the rendition was segmented (else the file is read)."""
    try:
        poster(video, hls_dir / "poster.jpg", width=640)
        if board is not None:
            board.finish(hls_dir)
        else:
            storyboard(video, hls_dir)
        return True
    except ExportError as exc:
        log.warning("no previews for %s: %s", asset_id, exc)
        return False
