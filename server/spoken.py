"""Spoken words: transcripts, the spoken-word index and search, on top of the index stage.

Transcription and indexing run as jobs (the SDK shows their progress through VideoDB's
``processing`` pattern); search runs on one dedicated thread with its own connection, because the
index stage's search is blocking (query embedding, a matrix product) and keeps its matrix in memory.
"""

from __future__ import annotations

from typing import Any

from reeldb.index import pipeline, store
from reeldb.index.search import SearchIndex
from reeldb.index.segments import transcript_response
from reeldb.index.transcribe import whisper_language

from .database import Conn, Database, rows
from .errors import BadRequest, JobFailed
from .jobs import JobContext, JobKind, JobQueue
from .library import find
from .collections import resolve
from .settings import Settings
from .storage import MediaRoot

NOT_INDEXED = "Spoken words are not indexed yet: call index_spoken_words() first"


def _language(code: str | None) -> str | None:
    try:
        return whisper_language(code) if code else None
    except ValueError as exc:
        raise JobFailed(str(exc)) from None


def _media_file(ctx: JobContext) -> str:
    """The job's media file: ``path`` is stored relative to the media root of where it runs."""
    return str(MediaRoot(ctx.settings.media_root_dir).path(ctx.params["path"]))


def _transcribe_job(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    pipeline.ensure_transcript(ctx.db, p["asset_id"], _media_file(ctx), ctx.progress, force=p.get("force", False),
                               language=_language(p.get("language_code")), whisper_model=ctx.settings.whisper_model)
    return {"asset_id": p["asset_id"], "query": p.get("query", {})}


def _index_job(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    result = pipeline.index_asset(ctx.db, p["asset_id"], _media_file(ctx), ctx.progress, force=p.get("force", False),
                                  language=_language(p.get("language_code")),
                                  whisper_model=ctx.settings.whisper_model, embed_model=ctx.settings.embed_model)
    return {"asset_id": result.asset_id, "segments": result.segments, "words": result.words,
            "duration": result.duration}


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

    def __init__(self, db: Database, settings: Settings, jobs: JobQueue) -> None:
        self.db = db
        self.settings = settings
        self.jobs = jobs
        self.index = SearchIndex(embed_model=settings.embed_model)
        jobs.register(JobKind("transcribe", "index", _transcribe_job))
        jobs.register(JobKind("index", "index", _index_job))

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

    async def start_index(self, kind: str, media_id: str, force: bool, language_code: str | None) -> str:
        def write(conn: Conn) -> dict[str, Any]:
            media = find(conn, kind, media_id, None)
            if store.has_index(conn, media_id) and not force:
                raise BadRequest(f"Spoken words of {media_id} are already indexed; pass force=True to index again")
            return self.jobs.enqueue(conn, "index", {"asset_id": media_id, "path": media["path"], "force": force,
                                                     "language_code": language_code})

        job = await self.db.execute_write_fn(write)
        self.jobs.wake()
        return job["id"]

    # -- search ----------------------------------------------------------------------------------
    async def indexed_video(self, media_id: str) -> list[dict[str, Any]]:
        def read(conn: Conn) -> list[dict[str, Any]]:
            media = find(conn, "video", media_id, None)
            if not store.has_index(conn, media_id):
                raise BadRequest(NOT_INDEXED)
            return [media]

        return await self.db.execute_fn(read)

    async def indexed_in_collection(self, collection_id: str) -> list[dict[str, Any]]:
        def read(conn: Conn) -> list[dict[str, Any]]:
            coll = resolve(conn, collection_id)
            found = [r for r in rows(conn, "select * from media where collection_id = ? and kind = 'video'",
                                     [coll["id"]]) if store.has_index(conn, r["id"])]
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
