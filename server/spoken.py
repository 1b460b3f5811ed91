"""Spoken words: transcripts, the spoken-word index and search, on top of the index stage.

Transcription and indexing run as jobs (the SDK shows their progress through VideoDB's
``processing`` pattern); search runs on one dedicated thread with its own connection, because the
index stage's search is blocking (query embedding, a matrix product) and keeps its matrix in memory.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reeldb.index import pipeline, store
from reeldb.index.models import ModelError
from reeldb.index.search import SearchError, SearchIndex
from reeldb.index.transcribe import TranscribeError, whisper_language

from . import db as dbm
from .errors import BadRequest
from .jobs import JobContext, JobFailed
from .services import Services


def _language(code: str | None) -> str | None:
    try:
        return whisper_language(code) if code else None
    except ValueError as exc:
        raise JobFailed(str(exc)) from None


def transcribe_job(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    try:
        pipeline.ensure_transcript(ctx.db, p["asset_id"], p["path"], lambda f: ctx.progress(f * 100),
                                   force=p.get("force", False), language=_language(p.get("language_code")),
                                   whisper_model=ctx.settings.whisper_model)
    except (TranscribeError, ModelError) as exc:
        raise JobFailed(str(exc)) from None
    return {"asset_id": p["asset_id"], "query": p.get("query", {})}


def index_job(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    try:
        result = pipeline.index_asset(ctx.db, p["asset_id"], p["path"], lambda f: ctx.progress(f * 100),
                                      force=p.get("force", False), language=_language(p.get("language_code")),
                                      whisper_model=ctx.settings.whisper_model,
                                      embed_model=ctx.settings.embed_model)
    except (TranscribeError, ModelError) as exc:
        raise JobFailed(str(exc)) from None
    return {"asset_id": result.asset_id, "segments": result.segments, "words": result.words,
            "duration": result.duration}


class Spoken:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.index = SearchIndex(embed_model=svc.settings.embed_model)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search")
        self._local = threading.local()
        svc.jobs.register("transcribe", transcribe_job)
        svc.jobs.register("index", index_job)
        svc.presenters["transcribe"] = self._present_transcript
        svc.presenters["index"] = lambda _svc, result, _base: {"message": "Spoken words indexed", **result}

    # -- transcripts -----------------------------------------------------------------------------
    def transcript_body(self, asset_id: str, query: dict[str, Any]) -> dict[str, Any] | None:
        transcript = store.get_transcript(self.svc.db, asset_id)
        if transcript is None:
            return None
        from reeldb.index.segments import transcript_response

        try:
            return transcript_response(transcript.words, query.get("start"), query.get("end"),
                                       query.get("segmenter") or "word", query.get("length") or 1)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    def _present_transcript(self, svc: Services, result: dict[str, Any], base: str) -> dict[str, Any]:
        body = self.transcript_body(result["asset_id"], result.get("query", {}))
        return body if body is not None else {"word_timestamps": [], "text": ""}

    # -- search ----------------------------------------------------------------------------------
    def _db(self):
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = dbm.open_db(self.svc.settings.db_path)
        return db

    async def search(self, query: str, asset_ids: list[str], *, mode: str, score_threshold: float | None,
                     result_threshold: int | None, dynamic_score_percentage: float | None = None) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            return self.index.search(self._db(), query, mode=mode, asset_ids=asset_ids,  # type: ignore[arg-type]
                                     score_threshold=score_threshold, result_threshold=result_threshold,
                                     dynamic_score_percentage=dynamic_score_percentage)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, run)
        except SearchError as exc:
            raise BadRequest(str(exc)) from None
        except ModelError as exc:
            raise BadRequest(str(exc)) from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
