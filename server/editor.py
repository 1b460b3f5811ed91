"""The editor: VideoDB's Timeline JSON (``POST /editor``) rendered into a new stream.

Owns the ``renders`` table: one render per canonical timeline (the parsed timeline with its
defaults filled in, plus the caption lines it would draw), so the same timeline twice is a
lookup. The export stage's editor (``reeldb.export.editor``) parses, plans and renders; this
service resolves asset ids to library files and transcripts to caption lines, queues the render
on the ``renders`` lane (ids fixed when queued: a rerun replaces) and places the result in the
library as a video of origin ``editor`` (not listed with the collection's videos), whose HLS
rendition is the ``stream_url``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable
from urllib.parse import urlsplit

from reeldb.export import probe
from reeldb.export.editor import (
    SourceInfo,
    Timeline,
    canonical_key,
    check_sources,
    copy_timeline,
    map_captions,
    mix_audio,
    needs_captions,
    parse_timeline,
    plan_copy,
    render,
)
from reeldb.export.editor.budget import RenderLimits, check_budget, render_cost
from reeldb.export.editor.legacy import from_legacy, legacy_ids, subtitled
from reeldb.export.editor.model import Caption
from reeldb.index import store

from .database import Conn, Database, row
from .errors import BadRequest, NotFound
from .ids import new_id
from .jobs import Compute, JobContext, JobKind, JobQueue
from .assets import prepare_asset
from .library import MediaLibrary
from .links import Links
from .settings import Settings
from .storage import MediaRoot
from .uploads import Uploads

log = logging.getLogger("reeldb.editor")

STREAM_TOKEN = "/stream/"
#: The largest timeline accepted through ``timeline_url`` (the SDK uploads those over 100 KiB).
MAX_UPLOADED_TIMELINE = 20 * 1024 * 1024


def source_of(media: dict[str, Any]) -> SourceInfo:
    """A source as the job's params carry it: ``path`` and ``hls_dir`` as stored (relative to the
    media root), resolved by the job where it runs (:func:`render_compute`)."""
    kind = media["kind"]
    return SourceInfo(
        id=media["id"], kind=kind, path=media["path"], duration=float(media["length"] or 0.0),
        width=media["width"], height=media["height"], fps=media["fps"],
        has_audio=bool(media["audio_codec"]), has_video=kind == "video" and bool(media["video_codec"]),
        hls_dir=PurePosixPath(media["hls_path"]).parent.as_posix() if media.get("hls_path") else None)


def _source_dict(s: SourceInfo) -> dict[str, Any]:
    return dict(s.__dict__)


@dataclass(eq=False)
class Editor:
    db: Database
    settings: Settings
    jobs: JobQueue
    library: MediaLibrary
    links: Links
    uploads: Uploads

    def __post_init__(self) -> None:
        self.limits = RenderLimits(self.settings.render_max_pixels, self.settings.render_max_seconds,
                                   self.settings.render_max_pixel_frames, self.settings.render_memory_mb)
        for part in RENDERS:
            self.jobs.register(JobKind(part, commit=self._render_commit))

    async def request(self, body: dict[str, Any]) -> str:
        """Parse and check the timeline (inline, or uploaded: ``timeline_url``), then find its
        render or queue one; returns the job id."""
        if "timeline_url" in body and "timeline" not in body:
            url = body["timeline_url"]
            if not isinstance(url, str) or len(body) != 1 or len(url) > 4000:
                raise BadRequest(f"timeline_url: must be the only field, an upload URL (got {url!r})")
            try:
                body = json.loads(await self.uploads.uploaded(url, MAX_UPLOADED_TIMELINE))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise BadRequest("timeline_url: the uploaded file is not JSON") from None
            if not isinstance(body, dict):
                raise BadRequest("timeline_url: the uploaded JSON is not an object with a timeline")
        extra = sorted(set(body) - {"timeline"})
        if extra:
            raise BadRequest(f"{extra[0]}: is not a field the editor supports (got {extra[0]!r})")
        timeline = parse_timeline(body.get("timeline"))
        return await self.submit(timeline)

    async def request_legacy(self, items: Any) -> str:
        """``videodb.timeline.Timeline`` (``POST /timeline``): converted, then rendered as any timeline."""
        def convert(conn: Conn) -> Timeline:
            return from_legacy(items, _sources(conn, legacy_ids(items)))

        return await self.submit(await self.db.execute_fn(convert))

    async def subtitle(self, video_id: str, style: Any) -> str:
        """``video.add_subtitle(style)``: the video with its transcript burned in (a render)."""
        def convert(conn: Conn) -> Timeline:
            sources = _sources(conn, [video_id])
            if video_id not in sources or sources[video_id].kind != "video":
                raise NotFound(f"Video not found: {video_id}")
            return subtitled(sources[video_id], style)

        return await self.submit(await self.db.execute_fn(convert))

    async def submit(self, timeline: Timeline) -> str:
        def write(conn: Conn) -> str:
            sources = _sources(conn, timeline.media_ids())
            check_sources(timeline, sources)
            captions: list[Caption] = []
            if needs_captions(timeline):
                transcripts = {}
                for media_id, src in sources.items():
                    if src.kind == "video":
                        t = store.get_transcript(conn, media_id)
                        if t is not None:
                            transcripts[media_id] = [(w.start, w.end, w.text) for w in t.words]
                captions = map_captions(timeline, transcripts)
            key = canonical_key(timeline, {"captions": [c.__dict__ for c in captions]})
            found = row(conn, "select r.*, j.status as job_status from renders r left join jobs j on j.id = r.job_id "
                              "where r.key = ?", [key])
            if found is not None:
                media = row(conn, "select id from media where id = ?", [found["media_id"]])
                if found["job_status"] in ("queued", "running") or (found["job_status"] == "done" and media):
                    return found["job_id"]
            first = next(iter(sources.values()), None)
            collection_id = first_collection(conn, first)
            plan = plan_copy(timeline, sources)
            cost = render_cost(timeline, sources, composited=plan is None)
            check_budget(cost, self.limits)
            long = cost.pixel_frames >= self.settings.render_long_pixel_frames
            media_id = new_id("video")
            job = self.jobs.enqueue(conn, "render_long" if long else "render", {
                "timeline": _timeline_json(timeline), "sources": {k: _source_dict(v) for k, v in sources.items()},
                "captions": [[c.start, c.end, c.text, [list(w) for w in c.words]] for c in captions],
                "media_id": media_id, "collection_id": collection_id, "key": key})
            record = {"id": found["id"] if found else new_id("render"), "key": key, "job_id": job["id"],
                      "media_id": media_id, "collection_id": collection_id, "way": "copy" if plan else "render",
                      "created_at": time.time()}
            conn["renders"].upsert(record, pk="id")
            return job["id"]

        job_id = await self.db.execute_write_fn(write)
        self.jobs.wake()
        return job_id

    async def download(self, stream_url: str, base: str) -> dict[str, Any]:
        """``Timeline.download_stream``: the MP4 of a stream this server handed out."""
        path = urlsplit(stream_url).path
        if STREAM_TOKEN not in path:
            raise NotFound(f"stream_url: no stream of this server (got {stream_url[:200]!r})")
        token = path.split(STREAM_TOKEN, 1)[1].split("/", 1)[0]
        media_id = self.links.check("stream", token)
        media = await self.library.get(media_id) if media_id else None
        if media is None or media["kind"] != "video":
            raise NotFound("No such stream")
        return {"download_url": self.links.file_url(base, media["id"]), "stream_url": stream_url,
                "name": media["name"], "length": media["length"], "status": "done"}

    async def present(self, result: dict[str, Any], base: str) -> dict[str, Any]:
        media = await self.library.get(result["media_id"])
        if media is None:
            raise NotFound("The rendered stream has since been deleted; post the timeline again")
        return {**self.links.stream_urls(media["id"], bool(media["hls_path"]), base),
                "video_id": media["id"], "length": media["length"], "way": result.get("way")}

    # -- the job ---------------------------------------------------------------------------------
    def _render_commit(self, ctx: JobContext, result: dict[str, Any]) -> dict[str, Any]:
        """The control node's part: the rendered video's row."""
        self.library.commit(result.pop("record"))
        return result


def render_compute(ctx: JobContext) -> dict[str, Any]:
    """The render job's compute part, files only (a job worker runs it). Its kinds are
    ``own_process``: it runs in a child process with its own memory limit (``server/jobs/child.py``),
    so a render can fail but never take the server or the job worker with it."""
    return render_files(ctx.id, ctx.params, str(ctx.settings.media_root_dir), ctx.progress)


def render_files(job_id: str, p: dict[str, Any], media_root: str, progress: Callable[[float], None]) -> dict[str, Any]:
    """The timeline into an MP4, prepared as a library asset whose row goes back in ``record``
    (runs in the render's child process)."""
    timeline = parse_timeline(p["timeline"], internal=True)
    root = MediaRoot(Path(media_root))
    sources = {k: SourceInfo(**{**v, "path": str(root.path(v["path"])),
                                "hls_dir": str(root.path(v["hls_dir"])) if v.get("hls_dir") else None})
               for k, v in p["sources"].items()}
    captions = [Caption(s, e, text, tuple(tuple(w) for w in words)) for s, e, text, words in p["captions"]]
    staging = root.root / "renders" / job_id
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        out = staging / "render.mp4"
        hls = None
        plan = plan_copy(timeline, sources)
        mix = None
        if plan is None or plan.audio == "mix":
            mix = mix_audio(timeline, sources)
            progress(0.05)
        if plan is not None:
            copy_timeline(plan, sources, mix, out, lambda f: progress(0.05 + 0.75 * f))
        else:
            render(timeline, sources, out, captions, lambda f: progress(0.05 + 0.75 * f), mix=mix)
        info = probe(out)
        progress(0.85)
        record = prepare_asset(root, p["media_id"], out, info, "video", p["collection_id"], "Editor timeline",
                               "editor", suffix=".mp4", hls_made=hls)
        return {"media_id": p["media_id"], "way": "copy" if plan else "render", "record": record}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _sources(conn: Conn, ids: list[str]) -> dict[str, SourceInfo]:
    sources = {}
    for media_id in ids:
        media = row(conn, "select * from media where id = ?", [media_id])
        if media is not None:
            sources[media_id] = source_of(media)
    return sources


def first_collection(conn: Conn, first: SourceInfo | None) -> str:
    """Where a render lands: its first asset's collection, else the default one."""
    if first is not None:
        media = row(conn, "select collection_id from media where id = ?", [first.id])
        if media:
            return media["collection_id"]
    default = row(conn, "select id from collections where is_default = 1")
    return default["id"] if default else "default"


def _timeline_json(timeline: Timeline) -> dict[str, Any]:
    """The parsed timeline back as the editor's JSON (what the job parses again)."""
    from reeldb.export.editor.model import to_json

    return to_json(timeline)


#: The render job's kinds, one a lane: renders under ``REELDB_RENDER_LONG_PIXEL_FRAMES`` and the
#: rest, so a short render never waits behind a long one (one of each at a time).
RENDERS = (Compute("render", "renders", render_compute, own_process=True),
           Compute("render_long", "renders_long", render_compute, own_process=True))
