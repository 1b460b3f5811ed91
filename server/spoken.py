"""Spoken words: transcripts, the spoken-word index and search, on top of the index stage.

Transcription and indexing run as jobs (the SDK shows their progress through VideoDB's
``processing`` pattern); search runs on one dedicated thread with its own connection, because the
index stage's search is blocking (query embedding, a matrix product) and keeps its matrix in memory.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import numpy as np

from reeldb.index import embed, pipeline, segments, store
from reeldb.index.channels import ChannelSource
from reeldb.index.search import SearchIndex
from reeldb.index.segments import transcript_response
from reeldb.index.transcribe import Transcript, whisper_language
from reeldb.index.words import Word

from .database import Conn, Database, row, rows
from .errors import BadRequest, JobFailed
from .exports import SeedWrite, audio_channels
from .jobs import Compute, JobContext, JobKind, JobQueue
from .library import find
from .collections import resolve
from .runtime import Runtime
from .settings import Settings
from .storage import MediaRoot

log = logging.getLogger("reeldb.index")

NOT_INDEXED = "Spoken words are not indexed yet: call index_spoken_words() first"
#: The longest a search waits for the index that runs on its video: under the SDK's 30 s read timeout.
SEARCH_WAIT = 20.0
#: VideoDB's own words for a second ``index_spoken_words()``: client code matches on them.
ALREADY_INDEXED = "Spoken word index for video already exists"


def _pending_index(conn: Conn, asset_id: str) -> dict[str, Any] | None:
    """The asset's index job that is queued or running now, if any."""
    return row(conn, "select * from jobs where kind = 'index' and status in ('queued', 'running') "
                     "and json_extract(params, '$.asset_id') = ? order by created_at desc limit 1", [asset_id])


def _last_index(conn: Conn, asset_id: str) -> dict[str, Any] | None:
    return row(conn, "select * from jobs where kind = 'index' and status = 'done' "
                     "and json_extract(params, '$.asset_id') = ? order by created_at desc limit 1", [asset_id])


def _asked(conn: Conn, asset_id: str, job: dict[str, Any] | None) -> dict[str, Any] | None:
    """Record an explicit index call for ``asset_id`` (answered by ``job``) and hand ``job`` back."""
    conn["index_requests"].upsert({"asset_id": asset_id, "job_id": job["id"] if job else None,
                                   "requested_at": time.time()}, pk="asset_id")
    return job


def _language(code: str | None) -> str | None:
    try:
        return whisper_language(code) if code else None
    except ValueError as exc:
        raise JobFailed(str(exc)) from None


def _media_file(ctx: JobContext) -> str:
    """The job's media file: ``path`` is stored relative to the media root of where it runs."""
    return str(MediaRoot(ctx.settings.media_root_dir).path(ctx.params["path"]))


# Transcription and indexing: the index stage's one pipeline (``reeldb.index.pipeline``), split where
# the database is (see server/jobs/__init__.py). ``prepare`` reads a stored transcript on the control
# node, or else the capture channels to transcribe; the compute part (whisper, segmentation,
# embeddings) needs only media files, and ``commit`` writes the transcripts and the index rows. The
# rules are the stage's: a stored transcript is reused unless ``force``; rows are replaced per asset.
def _prepare(conn: Conn, params: dict[str, Any]) -> dict[str, Any]:
    """A stored transcript, else the capture's audio channels (each with its own stored
    transcript, if any). One stored channel is transcribed from the video's own track, as an
    upload is, and labelled with its channel; two or more each from its raw asset."""
    force = bool(params.get("force"))
    if not force:
        stored = store.get_transcript(conn, params["asset_id"])
        if stored is not None:
            return {"transcript": stored.to_dict()}
    channels = audio_channels(conn, params["asset_id"])
    if len(channels) == 1:
        channels = [{**channels[0], "asset_id": None, "path": params["path"], "offset": 0.0}]
    for channel in channels:
        own = store.get_transcript(conn, channel["asset_id"]) if channel["asset_id"] and not force else None
        if own is not None:
            channel["transcript"] = own.to_dict()
    return {"channels": channels}


def _transcribed(ctx: JobContext, share: float) -> tuple[Transcript, dict[str, dict[str, Any]]]:
    """The params' stored transcript, else a fresh one (``pipeline.transcribe_asset``); and what is
    new to store, by asset id (the job's asset and, per channel, each raw channel asset's own)."""
    if ctx.params.get("transcript"):
        ctx.progress(share)
        return Transcript.from_dict(ctx.params["transcript"]), {}
    root = MediaRoot(ctx.settings.media_root_dir)
    channels = ctx.params.get("channels") or []
    sources = [ChannelSource(c["channel"], str(root.path(c["path"])), float(c["offset"]), c.get("channel_id"),
                             c.get("asset_id")) for c in channels]
    stored = {c["asset_id"]: Transcript.from_dict(c["transcript"]) for c in channels if c.get("transcript")}
    tr, new = pipeline.transcribe_asset(_media_file(ctx), lambda f: ctx.progress(f * share), sources=sources,
                                        stored=stored, language=_language(ctx.params.get("language_code")),
                                        whisper_model=ctx.settings.whisper_model)
    return tr, {asset_id: t.to_dict() for asset_id, t in {**new, ctx.params["asset_id"]: tr}.items()}


def _save_transcripts(ctx: JobContext, result: dict[str, Any]) -> None:
    made = {asset_id: Transcript.from_dict(data) for asset_id, data in result.pop("transcripts", {}).items()}
    if made:
        ctx.write(lambda conn: pipeline.save_transcripts(conn, made))


def transcribe_compute(ctx: JobContext) -> dict[str, Any]:
    tr, new = _transcribed(ctx, 1.0)
    return {"asset_id": ctx.params["asset_id"], "query": ctx.params.get("query", {}),
            **({"transcripts": new} if new else {})}


def _transcribe_commit(ctx: JobContext, result: dict[str, Any]) -> dict[str, Any]:
    _save_transcripts(ctx, result)
    return result


def index_compute(ctx: JobContext) -> dict[str, Any]:
    """The index stage's pipeline, files only: transcribe, then segment and embed."""
    tr, new = _transcribed(ctx, pipeline.TRANSCRIBE_SHARE)
    segs, vecs = pipeline.segment_and_embed(tr, ctx.settings.embed_model)
    ctx.progress(0.99)
    return {"asset_id": ctx.params["asset_id"], "segments": [list(seg) for seg in segs],
            "vectors": base64.b64encode(vecs.tobytes()).decode(), "dim": int(vecs.shape[1]) if vecs.ndim == 2 else 0,
            "model": embed.model_name(ctx.settings.embed_model), "words": len(tr.words),
            "duration": tr.duration, **({"transcripts": new} if new else {})}


def _index_commit(ctx: JobContext, result: dict[str, Any]) -> dict[str, Any]:
    asset_id = result["asset_id"]
    segs = [segments.Segment(float(s[0]), float(s[1]), str(s[2]), s[3] if len(s) > 3 else None)
            for s in result["segments"]]
    vecs = np.frombuffer(base64.b64decode(result["vectors"]), dtype=np.float32).reshape(len(segs), result["dim"])
    _save_transcripts(ctx, result)
    ctx.write(lambda conn: store.save_index(conn, asset_id, segs, vecs, embed_model=result["model"]))
    log.info("%s indexed: %d words, %d segments", asset_id, result["words"], len(segs))
    return {"asset_id": asset_id, "segments": len(segs), "words": result["words"], "duration": result["duration"]}


TRANSCRIBE = Compute("transcribe", "index", transcribe_compute)
INDEX = Compute("index", "index", index_compute)


def _transcript(conn: Conn, asset_id: str, query: dict[str, Any]) -> dict[str, Any] | None:
    transcript = store.get_transcript(conn, asset_id)
    if transcript is None:
        return None
    try:
        return transcript_response(transcript.words, query.get("start"), query.get("end"),
                                   query.get("segmenter") or "word", query.get("length") or 1)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


class Spoken:
    """Transcripts, the spoken-word index and search. The index stage owns its tables' SQL; this
    service calls it on the database's threads. Search runs on a reader thread: it is blocking
    (query embedding, a matrix product), and the index keeps its matrix in memory across calls."""

    def __init__(self, db: Database, settings: Settings, jobs: JobQueue, runtime: Runtime) -> None:
        self.db = db
        self.settings = settings
        self.jobs = jobs
        self.runtime = runtime
        self._seeding = runtime.pool("seed-index", 1)
        self.index = SearchIndex(embed_model=settings.embed_model)
        jobs.register(JobKind(TRANSCRIBE, commit=_transcribe_commit, prepare=_prepare))
        jobs.register(JobKind(INDEX, commit=self._index_commit, prepare=self._index_prepare))

    def _index_prepare(self, conn: Conn, params: dict[str, Any]) -> dict[str, Any]:
        """Prepare an index, and have the query embedder loaded in the background (once) while it
        is made.

        Why: an index computed on a job worker (Celery) never loads the model in this process, so
        the first search loaded it inside its request, and on a starved machine that took longer
        than the SDK's 30 s read timeout. Loading it when the index was committed was not always
        early enough (the import alone is 5 CPU-s: a search right after three indexes, with both
        cores kept busy by other processes, still timed out); from the claim on, it has the whole
        index to load in. Where the index is computed here, this is the load it needs anyway."""
        self.runtime.once("warm-embedder", self.index.load_embedder)
        return _prepare(conn, params)

    def _index_commit(self, ctx: JobContext, result: dict[str, Any]) -> dict[str, Any]:
        """Commit an index (the embedder is loading since its prepare: :meth:`_index_prepare`)."""
        done = _index_commit(ctx, result)
        self.runtime.once("warm-embedder", self.index.load_embedder)  # prepared before this process started
        return done

    # -- transcripts -----------------------------------------------------------------------------
    async def transcript(self, asset_id: str, query: dict[str, Any]) -> dict[str, Any] | None:
        return await self.db.execute_fn(lambda conn: _transcript(conn, asset_id, query))

    async def present_transcript(self, result: dict[str, Any]) -> dict[str, Any]:
        body = await self.transcript(result["asset_id"], result.get("query", {}))
        return body if body is not None else {"word_timestamps": [], "text": ""}

    async def start_transcription(self, media: dict[str, Any], force: bool, language_code: str | None,
                                  query: dict[str, Any]) -> str:
        job = await self.jobs.submit("transcribe", {"asset_id": media["id"], "path": media["path"], "force": force,
                                                    "language_code": language_code, "query": query})
        return job["id"]

    async def start_index(self, kind: str, media_id: str, force: bool, language_code: str | None) -> str | None:
        """The job that answers an ``index_spoken_words()`` call (None: indexed already, nothing to wait for).

        Recordings are indexed without asking (``REELDB_AUTO_INDEX``), and code written for VideoDB
        calls ``index_spoken_words()`` anyway: its first call joins the automatic index (waits for it
        if it runs, succeeds if it is done). A second call, or one on a video indexed on request
        before, answers VideoDB's own "already exists"; ``force`` indexes again.
        """
        def write(conn: Conn) -> dict[str, Any] | None:
            media = find(conn, kind, media_id, None)
            pending = _pending_index(conn, media_id)
            asked = row(conn, "select * from index_requests where asset_id = ?", [media_id])
            if not force:
                if pending is not None:  # running already (automatic, or this same request again): wait for it
                    return pending if asked is not None else _asked(conn, media_id, pending)
                if store.has_index(conn, media_id):
                    if asked is not None:
                        raise BadRequest(ALREADY_INDEXED)
                    return _asked(conn, media_id, _last_index(conn, media_id))
            job = self.jobs.enqueue(conn, "index", {"asset_id": media_id, "path": media["path"], "force": force,
                                                    "language_code": language_code})
            return _asked(conn, media_id, job)

        job = await self.db.execute_write_fn(write)
        self.jobs.wake()
        return job["id"] if job else None

    def auto_index(self, conn: Conn, media_id: str, path: str) -> None:
        """Inside the transaction that makes ``media_id`` exist: index its spoken words, unasked."""
        if _pending_index(conn, media_id) is None and not store.has_index(conn, media_id):
            self.jobs.enqueue(conn, "index", {"asset_id": media_id, "path": path, "auto": True})

    async def seed(self, words: list[Word], duration: float) -> SeedWrite | None:
        """An index of words heard live (server/live_seed.py), segmented and embedded now, written
        by the caller in the transaction that makes the video ``exported``: searchable from that
        moment. Only the index is written, not a transcript, so the index job queued in the same
        transaction still transcribes the recording whole and then replaces it."""
        if not words:
            return None
        tr = Transcript(words=words, duration=duration, model="live")
        segs, vecs = await self.runtime.run_in(self._seeding,
                                               lambda: pipeline.segment_and_embed(tr, self.settings.embed_model))
        def write(conn: Conn, video_id: str) -> None:
            if not store.has_index(conn, video_id):
                store.save_index(conn, video_id, segs, vecs, embed_model=embed.model_name(self.settings.embed_model))
                log.info("%s indexed from its live transcripts: %d words, %d segments", video_id, len(words), len(segs))

        return write

    async def indexing(self, media_id: str) -> float | None:
        """Progress (0..1) of the media's spoken-word index while one is queued or running, else None."""
        job = await self.db.execute_fn(lambda conn: _pending_index(conn, media_id))
        return float(job["progress"] or 0.0) if job is not None else None

    async def index_states(self, media_ids: list[str]) -> dict[str, str]:
        """Each asset's spoken-word index as the library shows it: ``indexed``, ``indexing`` or ``none``."""
        def read(conn: Conn) -> dict[str, str]:
            return {m: "indexed" if store.has_index(conn, m) else "indexing" if _pending_index(conn, m) else "none"
                    for m in media_ids}

        return await self.db.execute_fn(read)

    # -- search ----------------------------------------------------------------------------------
    async def indexed_video(self, media_id: str) -> list[dict[str, Any]]:
        """The video, once its spoken words are indexed. A search that arrives while its index runs
        (a recording searched right after its export) waits for it up to ``sync_wait`` (at most
        :data:`SEARCH_WAIT`)."""
        def read(conn: Conn) -> tuple[dict[str, Any], dict[str, Any] | None]:
            media = find(conn, "video", media_id, None)
            if store.has_index(conn, media_id):
                return media, None
            pending = _pending_index(conn, media_id)
            if pending is None:
                raise BadRequest(NOT_INDEXED)
            return media, pending

        media, pending = await self.db.execute_fn(read)
        if pending is not None:
            # At most SEARCH_WAIT: the SDK gives up reading an answer after 30 s.
            job = await self.jobs.wait(pending["id"], min(self.settings.sync_wait, SEARCH_WAIT))
            if job is None or job["status"] != "done":
                if job is not None and job["status"] in ("queued", "running"):
                    raise BadRequest(f"Spoken words of this video are being indexed ({round((job['progress'] or 0) * 100)} %"
                                     " done): search again in a moment")
                raise BadRequest(NOT_INDEXED)
        return [media]

    async def indexed_in_collection(self, collection_id: str) -> list[dict[str, Any]]:
        def read(conn: Conn) -> list[dict[str, Any]]:
            coll = resolve(conn, collection_id)
            found = [r for r in rows(conn, "select * from media where collection_id = ? and kind = 'video'",
                                     [coll.id]) if store.has_index(conn, r["id"])]
            if not found:
                raise BadRequest("No video in this collection has its spoken words indexed: "
                                 "call index_spoken_words() first")
            return found

        return await self.db.execute_fn(read)

    async def search(self, query: str, asset_ids: list[str], *, mode: str, score_threshold: float | None,
                     result_threshold: int | None, dynamic_score_percentage: float | None = None) -> list[dict[str, Any]]:
        return await self.db.execute_fn(lambda conn: self.index.search(
            conn, query, mode=mode, asset_ids=asset_ids,  # type: ignore[arg-type]
            score_threshold=score_threshold, result_threshold=result_threshold,
            dynamic_score_percentage=dynamic_score_percentage))
