"""Scenes: scene collections (``extract_scenes``), screen-text scene indexes (``index_scenes``,
``index_visuals``) and their search, on top of the index stage (``index/scenes.py``, ``ocr.py``,
``screen_text.py``, ``scene_store.py``).

A scene's description is the text read on its frames (Tesseract), never a vision model's words:
ReelDB bundles none. A ``prompt`` or ``model_name`` is accepted and recorded on the index, and the
index says ``source: screen_text``. Scenes given by the caller (``scenes=[...]``) are indexed as given.

Both kinds run as jobs on the index lane: the compute part reads only the media file (and writes a
collection's frame images under the asset's folder); ``commit`` writes the rows. Ids are fixed when a
job is queued, so a rerun replaces rather than duplicates. Search runs on a reader thread over the
same fused machinery as spoken words (:class:`reeldb.index.search.SearchIndex` over the scene tables).
"""

from __future__ import annotations

import base64
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from reeldb.index import embed, ocr, scene_store, scenes, screen_text
from reeldb.index.search import SearchIndex
from reeldb.index.segments import Segment

from .database import Conn, Database, loads, row, rows
from .exports import SeedWrite
from .errors import BadRequest, JobFailed, NotFound
from .ids import new_id
from .jobs import Compute, JobContext, JobKind, JobQueue
from .collections import resolve
from .library import find
from .runtime import Runtime
from .settings import Settings
from .storage import MediaRoot

log = logging.getLogger("reeldb.index")

#: What a record of a screen-text index says it is (README, docs/screen-text.md).
SOURCE_NOTE = "descriptions are the text read on screen (OCR); no vision model runs"
NO_SCENE_INDEX = "This video has no scene index: call index_scenes() first"
#: The source of a scene index made from a display's live screen text at export (``Scenes.seed``).
LIVE_SOURCE = "live_screen_text"
JPEG_QUALITY = 85


def ocr_langs(settings: Settings) -> list[str]:
    """``REELDB_OCR_LANGS``, checked: each language's data must be installed (else 400)."""
    try:
        langs = ocr.parse_langs(settings.ocr_langs)
        ocr.find_data(langs, settings.ocr_folders)
    except ocr.MissingLanguage as exc:
        raise BadRequest(str(exc)) from None
    return langs


def _config(extraction_type: str | None, config: dict[str, Any] | None) -> scenes.ShotBased | scenes.TimeBased:
    try:
        return scenes.config_from(extraction_type, config)
    except (ValueError, TypeError) as exc:
        raise BadRequest(str(exc)) from None


def _has_video(media: dict[str, Any]) -> None:
    if not media.get("video_codec") or not media.get("width"):
        raise BadRequest(f"{media['id']} has no video stream: there are no scenes to extract or read")


def _media_file(ctx: JobContext) -> str:
    return str(MediaRoot(ctx.settings.media_root_dir).path(ctx.params["path"]))


# -- compute parts (files only) -----------------------------------------------------------------

def extract_compute(ctx: JobContext) -> dict[str, Any]:
    """Cut the video into scenes and write each kept frame as a JPEG under the asset's folder."""
    p = ctx.params
    root = MediaRoot(ctx.settings.media_root_dir)
    folder = root.path(p["frames_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    frames: dict[int, list[dict[str, Any]]] = {}

    def keep(index: int, t: float, image: Any) -> None:
        name = f"{index:05d}-{len(frames.get(index, [])):02d}.jpg"
        image.convert("RGB").save(folder / name, quality=JPEG_QUALITY)
        frames.setdefault(index, []).append({"id": new_id("frame"), "frame_time": round(t, 3),
                                             "path": f"{p['frames_dir']}/{name}"})

    try:
        spans = scenes.extract(_media_file(ctx), _config(p["extraction_type"], p["config"]), keep,
                               progress=lambda f: ctx.progress(f * 0.99))
    except scenes.NoVideo as exc:
        raise JobFailed(str(exc)) from None
    return {"asset_id": p["asset_id"], "collection_id": p["collection_id"], "extraction_type": p["extraction_type"],
            "config": p["config"],
            "scenes": [{"id": new_id("scene"), "start": s.start, "end": s.end, "frames": frames.get(i, [])}
                       for i, s in enumerate(spans)]}


def _extract_commit(ctx: JobContext, result: dict[str, Any]) -> dict[str, Any]:
    ctx.write(lambda conn: scene_store.save_collection(conn, result["collection_id"], result["asset_id"],
                                                       result["extraction_type"], result["config"], result["scenes"]))
    return {"asset_id": result["asset_id"], "collection_id": result["collection_id"]}


def index_compute(ctx: JobContext) -> dict[str, Any]:
    """Read the screen text of each scene (or take the caller's scenes), then embed the descriptions."""
    p = ctx.params
    if p.get("scenes") is not None:
        read = [screen_text.SceneText(float(s["start"]), float(s["end"]), str(s.get("description") or ""), [])
                for s in p["scenes"]]
    else:
        try:
            read = screen_text.read_scenes(_media_file(ctx), _config(p["extraction_type"], p["config"]),
                                           langs=p["langs"], data=ctx.settings.ocr_folders,
                                           progress=lambda f: ctx.progress(f * 0.95))
        except (scenes.NoVideo, ocr.MissingLanguage) as exc:
            raise JobFailed(str(exc)) from None
    vecs = screen_text.embed_scenes([s.description for s in read], ctx.settings.embed_model)
    ctx.progress(0.99)
    return {"asset_id": p["asset_id"], "index_id": p["index_id"],
            "records": [[s.start, s.end, s.description] for s in read],
            "vectors": base64.b64encode(vecs.tobytes()).decode(), "dim": int(vecs.shape[1]),
            "model": embed.model_name(ctx.settings.embed_model)}


def _index_commit(ctx: JobContext, result: dict[str, Any]) -> dict[str, Any]:
    p = ctx.params
    records = [Segment(float(r[0]), float(r[1]), str(r[2])) for r in result["records"]]
    vecs = np.frombuffer(base64.b64decode(result["vectors"]), dtype=np.float32).reshape(len(records), result["dim"])
    meta = {"name": p.get("name"), "extraction_type": p.get("extraction_type"), "config": p.get("config"),
            "source": "given" if p.get("scenes") is not None else "screen_text", "prompt": p.get("prompt"),
            "model_name": p.get("model_name"), "langs": "+".join(p.get("langs") or [])}
    def write(conn: Conn) -> None:
        scene_store.save_index(conn, result["index_id"], result["asset_id"], meta, records, vecs,
                               embed_model=result["model"])
        if p.get("auto"):  # the recording read whole replaces what was read live (Scenes.seed)
            for made in scene_store.list_indexes(conn, result["asset_id"]):
                if made["source"] == LIVE_SOURCE:
                    scene_store.delete_index(conn, made["index_id"])

    ctx.write(write)
    log.info("%s: scene index %s made, %d scenes", result["asset_id"], result["index_id"], len(records))
    return {"scene_index_id": result["index_id"], "asset_id": result["asset_id"], "scenes": len(records)}


EXTRACT = Compute("extract_scenes", "index", extract_compute)
SCENE_INDEX = Compute("scene_index", "index", index_compute)


def _pending(conn: Conn, kind: str, asset_id: str) -> dict[str, Any] | None:
    return row(conn, "select * from jobs where kind = ? and status in ('queued', 'running') "
                     "and json_extract(params, '$.asset_id') = ? order by created_at desc limit 1", [kind, asset_id])


def _pending_indexes(conn: Conn, asset_id: str) -> list[dict[str, Any]]:
    return list(rows(conn, "select * from jobs where kind = 'scene_index' and status in ('queued', 'running') "
                           "and json_extract(params, '$.asset_id') = ? order by created_at", [asset_id]))


class Scenes:
    """Scene collections, screen-text scene indexes and their search. The index stage owns the
    tables' SQL (``scene_store``); this service calls it on the database's threads."""

    def __init__(self, db: Database, settings: Settings, jobs: JobQueue, runtime: Runtime) -> None:
        self.db = db
        self.settings = settings
        self.jobs = jobs
        self.runtime = runtime
        self.storage = MediaRoot(settings.media_root_dir)
        self.index = SearchIndex(embed_model=settings.embed_model, tables=scene_store.TABLES)
        jobs.register(JobKind(EXTRACT, commit=_extract_commit))
        jobs.register(JobKind(SCENE_INDEX, commit=self._index_commit))
        self._seeding = runtime.pool("seed-index", 1)

    def _index_commit(self, ctx: JobContext, result: dict[str, Any]) -> dict[str, Any]:
        """Commit a scene index, and have the query embedder loaded in the background (once), as
        ``Spoken`` does for its indexes: one made on a job worker left it unloaded here."""
        done = _index_commit(ctx, result)
        self.runtime.once("warm-embedder", self.index.load_embedder)
        return done

    async def seed(self, read: list[Segment]) -> SeedWrite | None:
        """A screen-text index of what a display's live reader read (server/live_seed.py), embedded
        now and written by the caller in the transaction that makes the video ``exported``, after
        the automatic index job is queued: searchable from that moment; the job, reading the
        recording whole, replaces it when it commits."""
        if not read:
            return None
        vecs = await self.runtime.run_in(self._seeding, lambda: screen_text.embed_scenes(
            [r.text for r in read], self.settings.embed_model))
        meta = {"name": "screen text (live)", "extraction_type": "shot_based", "config": {}, "source": LIVE_SOURCE,
                "langs": "+".join(ocr.parse_langs(self.settings.ocr_langs))}

        def write(conn: Conn, video_id: str) -> None:
            if not any(m["source"] != LIVE_SOURCE for m in scene_store.list_indexes(conn, video_id)):
                scene_store.save_index(conn, new_id("scene_index"), video_id, meta, read, vecs,
                                       embed_model=embed.model_name(self.settings.embed_model))
                log.info("%s: screen text indexed from its live reader: %d scenes", video_id, len(read))

        return write

    # -- scene collections ------------------------------------------------------------------------
    async def extract(self, media_id: str, extraction_type: str | None, config: dict[str, Any] | None) -> str:
        """The job that extracts a new scene collection (its id is in the job's result)."""
        _config(extraction_type, config)  # 400 before anything is queued

        def write(conn: Conn) -> dict[str, Any]:
            media = find(conn, "video", media_id, None)
            _has_video(media)
            collection_id = new_id("scene_collection")
            frames_dir = f"{Path(media['path']).parent.as_posix()}/scenes/{collection_id}"
            return self.jobs.enqueue(conn, "extract_scenes", {
                "asset_id": media_id, "path": media["path"], "collection_id": collection_id,
                "extraction_type": scenes.extraction_name(extraction_type), "config": config or {},
                "frames_dir": frames_dir})

        job = await self.db.execute_write_fn(write)
        self.jobs.wake()
        return job["id"]

    async def collection(self, media_id: str, collection_id: str) -> dict[str, Any]:
        def read(conn: Conn) -> dict[str, Any]:
            find(conn, "video", media_id, None)
            found = scene_store.get_collection(conn, collection_id)
            if found is None or found["asset_id"] != media_id:
                raise NotFound(f"Scene collection not found: {collection_id}")
            return found

        return await self.db.execute_fn(read)

    async def collections(self, media_id: str) -> list[dict[str, Any]]:
        def read(conn: Conn) -> list[dict[str, Any]]:
            find(conn, "video", media_id, None)
            return scene_store.list_collections(conn, media_id)

        return await self.db.execute_fn(read)

    async def delete_collection(self, media_id: str, collection_id: str) -> None:
        found = await self.collection(media_id, collection_id)
        await self.db.execute_write_fn(lambda conn: scene_store.delete_collection(conn, collection_id))
        frames = [f["path"] for s in found["scenes"] for f in s["frames"] if f["path"]]
        if frames:
            await self.runtime.io(shutil.rmtree, self.storage.path(frames[0]).parent, True)

    async def frame_file(self, frame_id: str) -> Path | None:
        """A frame's image (for its signed link), if the frame and its file exist."""
        frame = await self.db.execute_fn(lambda conn: scene_store.get_frame(conn, frame_id))
        if frame is None or not frame["path"]:
            return None
        path = self.storage.path(frame["path"])
        return path if path.is_file() else None

    async def describe(self, media_id: str, scene_id: str | None, frame_id: str | None) -> dict[str, Any]:
        """``Scene.describe()`` / ``Frame.describe()``: the text on the frame(s), read now and kept."""
        langs = ocr_langs(self.settings)

        def read(conn: Conn) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
            find(conn, "video", media_id, None)
            if scene_id is not None:
                scene = scene_store.get_scene(conn, scene_id)
                if scene is None or scene["asset_id"] != media_id:
                    raise NotFound(f"Scene not found: {scene_id}")
                return scene, scene["frames"]
            frame = scene_store.get_frame(conn, frame_id or "")
            if frame is None or frame["asset_id"] != media_id:
                raise NotFound(f"Frame not found: {frame_id}")
            return None, [frame]

        scene, frames = await self.db.execute_fn(read)
        paths = {f["id"]: self.storage.path(f["path"]) for f in frames if f["path"]}
        texts = await self.runtime.io(_read_frames, paths, langs, self.settings.ocr_folders)
        description = ocr.describe(ocr.merge(*texts.values())) if scene is not None else None
        await self.db.execute_write_fn(lambda conn: scene_store.describe_frames(
            conn, {k: ocr.describe(v) for k, v in texts.items()}, scene_id, description))
        if scene is not None:
            return {"description": description}
        return {"description": ocr.describe(next(iter(texts.values()), []))}

    # -- scene indexes ----------------------------------------------------------------------------
    async def start_index(self, media_id: str, body: dict[str, Any]) -> str:
        """The job that answers ``index_scenes()``: the one that reads this video the same way now
        (an automatic index, or this request sent twice), else a new one. Scenes given as text are
        always a new index of their own."""
        given = body.get("scenes")
        if given is not None:
            if not isinstance(given, list) or not all(isinstance(s, dict) and "start" in s and "end" in s
                                                      for s in given):
                raise BadRequest("scenes must be a list of {start, end, description}")
            langs: list[str] = []
        else:
            _config(body.get("extraction_type"), body.get("extraction_config"))
            langs = ocr_langs(self.settings)

        def write(conn: Conn) -> dict[str, Any]:
            media = find(conn, "video", media_id, None)
            if given is None:
                _has_video(media)
            kind = scenes.extraction_name(body.get("extraction_type"))
            config = body.get("extraction_config") or {}
            for pending in _pending_indexes(conn, media_id) if given is None else ():
                params = loads(pending["params"], {})
                if params.get("scenes") is None and (params.get("extraction_type"), params.get("config")) == (
                        kind, config):
                    return pending  # the same reading runs: it answers (its progress, then its index)
            return self.jobs.enqueue(conn, "scene_index", {
                "asset_id": media_id, "path": media["path"], "index_id": new_id("scene_index"),
                "name": body.get("name"), "extraction_type": kind, "config": config, "prompt": body.get("prompt"),
                "model_name": body.get("model_name"), "langs": langs,
                "scenes": [{"start": s["start"], "end": s["end"], "description": s.get("description") or ""}
                           for s in given] if given is not None else None})

        job = await self.db.execute_write_fn(write)
        self.jobs.wake()
        return job["id"]

    def auto_index(self, conn: Conn, media_id: str, path: str) -> None:
        """Inside the transaction that records a stored display's video: read its screen text, unasked."""
        media = row(conn, "select * from media where id = ?", [media_id])
        if media is None or not media.get("video_codec") or _pending(conn, "scene_index", media_id) is not None:
            return
        if scene_store.list_indexes(conn, media_id):
            return
        try:
            langs = ocr.parse_langs(self.settings.ocr_langs)
            ocr.find_data(langs, self.settings.ocr_folders)
        except ocr.MissingLanguage as exc:
            log.warning("%s: no screen-text index: %s", media_id, exc)
            return
        self.jobs.enqueue(conn, "scene_index", {
            "asset_id": media_id, "path": path, "index_id": new_id("scene_index"), "name": "screen text",
            "extraction_type": "shot_based", "config": {}, "langs": langs, "auto": True})

    async def indexes(self, media_id: str) -> list[dict[str, Any]]:
        """The video's scene indexes: made ones, then those being made (``status: processing``)."""
        def read(conn: Conn) -> list[dict[str, Any]]:
            find(conn, "video", media_id, None)
            made = [_index_view(r) for r in scene_store.list_indexes(conn, media_id)]
            for job in _pending_indexes(conn, media_id):
                params = loads(job["params"], {})
                made.append({"scene_index_id": params["index_id"], "name": params.get("name"),
                             "status": "processing", "progress": round((job["progress"] or 0) * 100, 1)})
            return made

        return await self.db.execute_fn(read)

    async def records(self, media_id: str, index_id: str) -> dict[str, Any]:
        def read(conn: Conn) -> dict[str, Any]:
            find(conn, "video", media_id, None)
            found = scene_store.get_index(conn, index_id)
            if found is None or found["asset_id"] != media_id:
                if any(loads(j["params"], {}).get("index_id") == index_id for j in _pending_indexes(conn, media_id)):
                    return {"scene_index_id": index_id, "status": "processing", "scene_index_records": []}
                raise NotFound(f"Scene index not found: {index_id}")
            return {**_index_view(found), "scene_index_records": [
                {"start": r["start"], "end": r["end"], "description": r["text"]}
                for r in scene_store.index_records(conn, index_id)]}

        return await self.db.execute_fn(read)

    async def delete_index(self, media_id: str, index_id: str) -> None:
        def write(conn: Conn) -> None:
            find(conn, "video", media_id, None)
            found = scene_store.get_index(conn, index_id)
            if found is None or found["asset_id"] != media_id:
                raise NotFound(f"Scene index not found: {index_id}")
            scene_store.delete_index(conn, index_id)

        await self.db.execute_write_fn(write)

    async def latest_records(self, media_id: str) -> list[dict[str, Any]]:
        """The records of the video's latest scene index (none: empty), for the player."""
        def read(conn: Conn) -> list[dict[str, Any]]:
            made = scene_store.list_indexes(conn, media_id)
            return scene_store.index_records(conn, made[-1]["index_id"]) if made else []

        return await self.db.execute_fn(read)

    async def thumbnail(self, media: dict[str, Any], number: int) -> bytes | None:
        """A small JPEG of scene ``number``'s picture (of the latest index), a moment after its
        start; None if there is no such scene. Made when asked (one GOP decoded), for the player."""
        records = await self.latest_records(media["id"])
        if not 0 <= number < len(records):
            return None
        start, end = float(records[number]["start"]), float(records[number]["end"])
        return await self.runtime.io(_thumbnail, self.storage.path(media["path"]), min(start + 0.5, (start + end) / 2))

    # -- search -----------------------------------------------------------------------------------
    async def searchable(self, asset_ids: list[str], index_id: str | None) -> dict[str, str]:
        """index id → asset id of the scene indexes a search reads (``index_id``: that one only)."""
        def read(conn: Conn) -> dict[str, str]:
            found = scene_store.indexes_of(conn, asset_ids)
            if index_id is not None:
                if index_id not in found:
                    raise NotFound(f"Scene index not found: {index_id}")
                return {index_id: found[index_id]}
            return found

        return await self.db.execute_fn(read)

    async def search(self, query: str, indexes: dict[str, str], *, mode: str, score_threshold: float | None,
                     result_threshold: int | None, dynamic_score_percentage: float | None = None) -> list[dict[str, Any]]:
        """Hits over the chosen scene indexes, each with its video (``asset_id``) and index."""
        if not indexes:
            return []
        hits = await self.db.execute_fn(lambda conn: self.index.search(
            conn, query, mode=mode, asset_ids=list(indexes),  # type: ignore[arg-type]
            score_threshold=score_threshold, result_threshold=result_threshold,
            dynamic_score_percentage=dynamic_score_percentage))
        return [{**h, "asset_id": indexes[h["asset_id"]], "scene_index_id": h["asset_id"], "index_type": "scene"}
                for h in hits]

    async def videos(self, media_id: str | None, collection_id: str | None) -> list[dict[str, Any]]:
        """The video (404 if none), or the collection's videos, that have a scene index."""
        def read(conn: Conn) -> list[dict[str, Any]]:
            if media_id is not None:
                found = [find(conn, "video", media_id, None)]
            else:
                coll = resolve(conn, collection_id or "")
                found = list(rows(conn, "select * from media where collection_id = ? and kind = 'video'", [coll.id]))
            indexed = scene_store.indexes_of(conn, [m["id"] for m in found])
            return [m for m in found if m["id"] in indexed.values()]

        return await self.db.execute_fn(read)


def _index_view(r: dict[str, Any]) -> dict[str, Any]:
    return {"scene_index_id": r["index_id"], "name": r["name"], "status": "done", "source": r["source"],
            "extraction_type": r["extraction_type"], "extraction_config": r["config"], "prompt": r["prompt"],
            "model_name": r["model_name"], "ocr_langs": r["langs"], "scene_count": r["record_count"],
            "note": SOURCE_NOTE if r["source"] in ("screen_text", LIVE_SOURCE) else "descriptions as given"}


def _thumbnail(path: Path, t: float, width: int = 240) -> bytes:
    import io

    image = scenes.frame_at(str(path), t)
    image.thumbnail((width, width))
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue()


def _read_frames(paths: dict[str, Path], langs: list[str], data: list[str]) -> dict[str, list[ocr.Line]]:
    from PIL import Image

    with ocr.Reader(langs, data) as reader:
        out = {}
        for frame_id, path in paths.items():
            with Image.open(path) as image:
                out[frame_id] = reader.read(image)
        return out
