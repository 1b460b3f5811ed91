"""Transcripts, spoken-word indexing, search, and timeline streams for videos and audios."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, get, post

from reeldb.index.search import merge

from ..auth import Principal
from ..clips import Clips
from ..editor import Editor
from ..errors import BadRequest
from ..jobs import JobQueue
from ..library import MediaLibrary
from ..links import Links
from ..settings import Settings
from ..scenes import NO_SCENE_INDEX, Scenes
from ..spoken import Spoken
from ..text import strip
from ..views.jobs import Presenters, answer_job
from ..views.search import search_legacy, search_results, search_v2

SEGMENTERS = ("word", "sentence", "time")


class TranscribeBody(msgspec.Struct):
    force: bool | None = False
    language_code: str | None = None


class IndexBody(msgspec.Struct):
    index_type: Literal["spoken_word"] | None = "spoken_word"
    language_code: str | None = None
    segmentation_type: str | None = "sentence"
    force: bool | None = False
    callback_url: str | None = None


class SearchBody(msgspec.Struct):
    query: str | None = None
    search_type: Literal["semantic", "keyword", "scene"] | None = None  # VideoDB's (its llm needs a model)
    index_type: Literal["spoken_word", "scene"] | None = None  # none: both, where they exist
    scene_index_id: str | None = None
    mode: Literal["semantic", "keyword", "hybrid"] | None = None  # ours
    top_k: int | None = None
    score_threshold: float | None = None
    result_threshold: int | None = None
    dynamic_score_percentage: float | None = None


class WorkflowBody(msgspec.Struct):
    type: Literal["add_subtitles"]
    subtitle_style: dict[str, Any] | None = None


class StreamBody(msgspec.Struct):
    timeline: list[list[float]] | None = None
    length: float | None = None


def _bool(value: str | None) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def _handlers(kind: str) -> list[Any]:
    @get(f"/{kind}/{{media_id:str}}/transcription", name=f"get_transcript_{kind}")
    async def get_transcript(media_id: str, request: Request, library: MediaLibrary, spoken: Spoken, jobs: JobQueue,
                             presenters: Presenters, settings: Settings, links: Links, key: Principal,
                             start: float | None = None, end: float | None = None, segmenter: str = "word",
                             length: float = 1, force: str | None = None) -> dict[str, Any]:
        media = await library.find(kind, media_id)
        if segmenter not in SEGMENTERS:
            raise BadRequest(f"segmenter must be one of {', '.join(SEGMENTERS)}")
        query = {"start": start, "end": end, "segmenter": segmenter, "length": length}
        if not _bool(force):
            body = await spoken.transcript(media_id, query)
            if body is not None:
                return {"success": True, "data": body}
        job_id = await spoken.start_transcription(media, _bool(force), None, query)
        return await answer_job(jobs, presenters, settings, links, request, job_id)

    @post(f"/{kind}/{{media_id:str}}/transcription", status_code=200, name=f"make_transcript_{kind}")
    async def make_transcript(media_id: str, data: TranscribeBody, request: Request, library: MediaLibrary,
                              spoken: Spoken, jobs: JobQueue, presenters: Presenters, settings: Settings,
                              links: Links, key: Principal) -> dict[str, Any]:
        media = await library.find(kind, media_id)
        if not data.force:
            body = await spoken.transcript(media_id, {})
            if body is not None:
                return {"success": True, "message": "transcription already exists", "data": body}
        job_id = await spoken.start_transcription(media, bool(data.force), data.language_code, {})
        return await answer_job(jobs, presenters, settings, links, request, job_id)

    @post(f"/{kind}/{{media_id:str}}/index", status_code=200, name=f"index_{kind}")
    async def index(media_id: str, data: IndexBody, request: Request, spoken: Spoken, jobs: JobQueue,
                    presenters: Presenters, settings: Settings, links: Links, key: Principal) -> dict[str, Any]:
        job_id = await spoken.start_index(kind, media_id, bool(data.force), data.language_code)
        if job_id is None:  # indexed unasked before any job row was kept: nothing to wait for
            return {"success": True, "data": {"asset_id": media_id}}
        return await answer_job(jobs, presenters, settings, links, request, job_id)

    return [get_transcript, make_transcript, index]


def _wanted(data: SearchBody) -> str:
    """Which index a search reads: ``scene`` (screen text), ``spoken_word``, or ``any`` (both where
    they exist: the v2 search, which names no index)."""
    if "scene" in (data.search_type, data.index_type) or data.scene_index_id:
        return "scene"
    return data.index_type or "any"


def _mode(data: SearchBody, default: str) -> str:
    return data.mode or ("keyword" if data.search_type == "keyword" else default)


async def _search(spoken: Spoken, scenes: Scenes, links: Links, settings: Settings, request: Request,
                  data: SearchBody, media_id: str | None = None, collection_id: str | None = None) -> list[dict[str, Any]]:
    """VideoDB's result shape: one entry per video, its matching spans as ``docs``, best first. Each
    doc says which index it matched (``index_type``: ``spoken_word`` or ``scene``, with its
    ``scene_index_id``), and names its ``channel`` when the transcript was made per capture channel."""
    wanted = _wanted(data)
    mode = _mode(data, settings.search_mode)
    scene_videos = await scenes.videos(media_id, collection_id) if wanted != "spoken_word" else []
    spoken_videos: list[dict[str, Any]] = []
    if wanted == "scene":
        if not scene_videos:
            raise BadRequest(NO_SCENE_INDEX if media_id else "No video in this collection has a scene index: "
                             "call index_scenes() first")
    else:
        indexed = spoken.indexed_video(media_id) if media_id else spoken.indexed_in_collection(collection_id or "")
        try:
            spoken_videos = await indexed
        except BadRequest:
            if wanted == "spoken_word" or not scene_videos:
                raise
    if not data.query or not strip(data.query):
        raise BadRequest("query is required")
    keyword = mode == "keyword"
    count = data.top_k or data.result_threshold or 5
    options: dict[str, Any] = dict(
        mode=mode, score_threshold=data.score_threshold if data.score_threshold is not None else (None if keyword else 0.2),
        result_threshold=count, dynamic_score_percentage=data.dynamic_score_percentage)
    spoken_hits: list[dict[str, Any]] = []
    scene_hits: list[dict[str, Any]] = []
    if spoken_videos:
        spoken_hits = [{**h, "index_type": "spoken_word"}
                       for h in await spoken.search(data.query, [v["id"] for v in spoken_videos], **options)]
    if scene_videos:
        indexes = await scenes.searchable([v["id"] for v in scene_videos], data.scene_index_id)
        scene_hits = await scenes.search(data.query, indexes, **options)
    hits = merge([spoken_hits, scene_hits], count)  # one list, best first
    videos = list({v["id"]: v for v in [*spoken_videos, *scene_videos]}.values())
    return search_results(videos, hits, links, links.base_url(request))


@post("/video/{media_id:str}/search/v2", status_code=200)
async def video_search_v2(media_id: str, data: SearchBody, request: Request, spoken: Spoken, scenes: Scenes,
                          links: Links, settings: Settings, key: Principal) -> dict[str, Any]:
    return search_v2(await _search(spoken, scenes, links, settings, request, data, media_id=media_id))


@post("/video/{media_id:str}/search", status_code=200)
async def video_search(media_id: str, data: SearchBody, request: Request, spoken: Spoken, scenes: Scenes,
                       links: Links, settings: Settings, key: Principal) -> dict[str, Any]:
    return search_legacy(await _search(spoken, scenes, links, settings, request, data, media_id=media_id))


@post("/collection/{collection_id:str}/search/v2", status_code=200)
async def collection_search_v2(collection_id: str, data: SearchBody, request: Request, spoken: Spoken,
                               scenes: Scenes, links: Links, settings: Settings, key: Principal) -> dict[str, Any]:
    return search_v2(await _search(spoken, scenes, links, settings, request, data, collection_id=collection_id))


@post("/collection/{collection_id:str}/search", status_code=200)
async def collection_search(collection_id: str, data: SearchBody, request: Request, spoken: Spoken, scenes: Scenes,
                            links: Links, settings: Settings, key: Principal) -> dict[str, Any]:
    """Semantic, keyword or hybrid across every indexed video of the collection (the SDK's own
    ``KeywordSearch`` refuses a collection client-side; the API answers it like v2 does)."""
    return search_legacy(await _search(spoken, scenes, links, settings, request, data, collection_id=collection_id))


@post("/video/{media_id:str}/workflow", status_code=200)
async def video_workflow(media_id: str, data: WorkflowBody, request: Request, spoken: Spoken, editor: Editor,
                         jobs: JobQueue, presenters: Presenters, settings: Settings, links: Links,
                         key: Principal) -> dict[str, Any]:
    """``add_subtitle(style)``: the video with its transcript burned in, styled as ``subtitle_style``
    says (SDK's SubtitleStyle), rendered by the editor. The soft-caption rendition (WebVTT, nothing
    re-encoded) stays beside every indexed video's stream as ``subtitled.m3u8``."""
    await spoken.indexed_video(media_id)  # 400 "not indexed yet" first
    job_id = await editor.subtitle(media_id, data.subtitle_style)
    return await answer_job(jobs, presenters, settings, links, request, job_id)


@post("/video/{media_id:str}/stream", status_code=200)
async def video_stream(media_id: str, data: StreamBody, request: Request, library: MediaLibrary, links: Links,
                       clips: Clips, key: Principal) -> dict[str, Any]:
    """``generate_stream(timeline)``: a playlist of spans of the video's rendition, no re-encode."""
    media = await library.find("video", media_id)
    spans = None
    if data.timeline:
        spans = []
        for item in data.timeline:
            if len(item) != 2 or not 0 <= item[0] < item[1]:
                raise BadRequest(f"timeline entries are [start, end] with 0 <= start < end, got {item}")
            if media["length"] is not None and item[0] >= media["length"]:
                raise BadRequest(f"timeline entry {item} starts after the video ends ({media['length']:.2f} s)")
            spans.append((float(item[0]), float(item[1])))
        clips.check(spans, media["length"], "timeline entry")  # a link that plays, within the clip budget
    urls = links.stream_urls(media_id, bool(media["hls_path"]), links.base_url(request), spans)
    if urls["stream_url"] is None:
        raise BadRequest(f"{media_id} has no stream (its codecs cannot be streamed without re-encoding)")
    return {"success": True, "data": urls}


handlers = [*_handlers("video"), *_handlers("audio"), video_search_v2, video_search, collection_search_v2,
            collection_search, video_workflow, video_stream]
