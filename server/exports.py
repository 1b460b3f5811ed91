"""Exports of capture sessions: the muxed recording, raw channel assets and their HLS renditions.

The export stage turns a session folder into files; this service runs it on the job runner's
exports lane, turns its outputs into library assets (``m-…`` videos, ``a-…`` audios), and moves
the session to ``exported`` with its event. Owns the ``exports`` table. One export per (session,
video channel): asking again is a cheap status check, and asking after a failure retries it.

Durable by construction: the ids of every asset an export job makes are chosen when it is queued,
so a job that runs twice replaces its own outputs; the job is queued in the same transaction as
the ``stopped`` event that causes it, and the index job of ``REELDB_AUTO_INDEX`` in the same
transaction as the ``exported`` event.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from reeldb.capture.manifest import category, kind_of
from reeldb.export import export_session
from reeldb.export.plan import load_manifest, make_plan

from .clip_budget import short
from .database import Conn, Database, dumps, loads, row, rows
from .errors import BadRequest, Conflict, NotFound
from .events import WebSocketHub
from .ids import new_id
from .jobs import AutoIndex, Compute, JobContext, JobKind, JobQueue
from .assets import prepare_asset
from .library import MediaLibrary
from .links import Links
from .rows import CaptureSession, RTStream
from .sessions import Sessions, in_collection, load, rtstreams_of, set_export_status, set_exported_asset
from .runtime import Runtime
from .settings import Settings
from .storage import MediaRoot
from .text import recording_title

log = logging.getLogger("reeldb.export")

#: A session's move inside a transaction: the updated session and the event to publish after commit.
Moved = tuple[CaptureSession, dict[str, Any]]

NOTHING_STORED = "Nothing to export: no channel of this session has store: true"
NOTHING_RECEIVED = "Nothing to export: no media was received before the session stopped"
NOT_ON_A_FULL_DISK = ("Not exported: the disk was below its free-space floor when the session stopped; the channel "
                      "files are kept, free some space and call export()")


def default_key(session: CaptureSession) -> str:
    """The export that makes the session ``exported``: its primary display if stored, else audio only ("")."""
    primary = session.primary_video_channel_id
    channels = session.channels
    return next((c["channel_id"] for c in channels if c["channel_id"] == primary and c["store"]), "")


#: Writes an early spoken-word index of a session's exported video, inside the transaction that
#: records the export (``Spoken.seed``), so a search right after ``exported`` finds its words.
SeedWrite = Callable[[Conn, str], None]
#: What the session's stored audio channels were heard saying and its display was read showing
#: live, as a :data:`SeedWrite` (None: nothing heard or read whole): (its rtstreams, the video's
#: t=0 and each raw asset's t=0 in unix seconds, the video's length, the display channel the
#: video shows or None) → server/live_seed.py.
Seed = Callable[[list[RTStream], float, dict[str, float], float, str | None], Awaitable[SeedWrite | None]]


@dataclass(eq=False)
class Exports:
    db: Database
    settings: Settings
    jobs: JobQueue
    sessions: Sessions
    library: MediaLibrary
    links: Links
    hub: WebSocketHub
    runtime: Runtime
    #: ``REELDB_AUTO_INDEX``: called in the transaction that records a session's export.
    index: AutoIndex | None = None
    #: ``REELDB_AUTO_INDEX``: called with every exported display's video (primary or not), to read
    #: its screen text (``Scenes.auto_index``).
    screen_index: AutoIndex | None = None
    #: ``REELDB_AUTO_INDEX``: the live transcripts' words as the exported video's first index (set
    #: once the live transcripts exist, which are made after this service: capture needs it first).
    seed: Seed | None = None

    def __post_init__(self) -> None:
        self.jobs.register(JobKind(EXPORT, commit=self._export_commit))
        self.jobs.on_finish("export", self._finished)

    # -- views -----------------------------------------------------------------------------------
    def view(self, export: dict[str, Any], base: str, has_stream: bool) -> dict[str, Any]:
        body = {"session_id": export["session_id"], "video_channel_id": export["video_channel_id"],
                "export_status": export["status"], "video_id": export["video_id"],
                "stream_url": None, "player_url": None}
        if export["video_id"]:
            body.update(self.links.stream_urls(export["video_id"], has_stream, base))
        if export["error"]:
            body["error"] = export["error"]
        return body

    async def session_urls(self, session: CaptureSession, base: str) -> dict[str, Any]:
        """``stream_url`` / ``player_url`` of the session's exported video (both None until it is
        exported, or when the export has no picture to stream)."""
        video_id = session.exported_video_id
        media = await self.library.get(video_id) if video_id else None
        if media is None:
            return {"stream_url": None, "player_url": None}
        return self.links.stream_urls(video_id, bool(media["hls_path"]), base)

    async def rtstream_clip(self, rtstream: RTStream, start: float, end: float, base: str) -> dict[str, Any]:
        """``stream_url``/``player_url`` of what one channel recorded between two unix times
        (``rtstream.generate_stream(start, end)``, the shots of its live-transcript search).

        A stored display or camera plays from its raw asset; a microphone or system audio from the
        session's export, where it is mixed under the primary display. Unix times map to the
        asset's clock through the capture-clock time of its t=0 that the export job recorded
        (exports made before it recorded one: the plan's origin, recomputed from the manifest)."""
        if not end > start:
            raise BadRequest("start and end are unix times with start < end")

        def read(conn: Conn) -> tuple[CaptureSession, dict[str, Any]]:
            session = load(conn, rtstream.session_id)
            if session.export_status != "exported" or not session.exported_video_id:
                raise Conflict(f"{rtstream.name} plays once its session is exported "
                               f"(the session is {session.status}, its export {session.export_status or 'not started'})")
            job = row(conn, "select jobs.result from exports join jobs on jobs.id = exports.job_id "
                      "where exports.video_id = ?", [session.exported_video_id])
            return session, loads(job["result"] if job else None, {})

        session, result = await self.db.execute_fn(read)
        name = rtstream.name
        own = rtstream.exported_asset_id if kind_of(name) == "video" else None
        media_id = own or session.exported_video_id
        zero = (result.get("asset_starts") or {}).get(name) if own else result.get("origin")
        if zero is None:
            zero = await self.runtime_origin(session, name if own else result.get("video_channel_id"), bool(own))
        media = await self.library.get(media_id)
        if media is None or not media["hls_path"]:
            raise Conflict(f"{name} has no stream to play")
        length = float(media["length"] or 0.0)
        span = (max(0.0, start - zero), min(length, end - zero))
        if not span[1] > span[0]:
            raise BadRequest(f"{name} recorded from {zero:.0f} to {zero + length:.0f} (unix seconds); "
                             f"{start:g}-{end:g} lies outside it")
        if short(*span, self.settings.clip_min_span):  # a sub-millisecond range has no frame: no dead link
            raise BadRequest(f"A range must last at least {self.settings.clip_min_span:g} s (REELDB_CLIP_MIN_SPAN) "
                             f"of what {name} recorded; {start:.3f}-{end:.3f} (unix seconds) is shorter",
                             error_code="CLIP_LIMIT")
        return self.links.stream_urls(media_id, True, base, [span])

    async def runtime_origin(self, session: CaptureSession, channel_id: str | None, raw: bool) -> float:
        """The capture-clock time of an asset's t=0, from the session's manifest (older exports)."""
        folder = self.settings.sessions_dir / session.id

        def compute() -> float:
            plan = make_plan(load_manifest(folder), channel_id)
            if raw and plan.video is not None:
                return plan.video.channel.start_time
            return plan.origin

        try:
            return await self.runtime.io(compute)
        except (OSError, ValueError) as exc:
            raise Conflict(f"The recording's timing is unreadable: {exc}") from exc

    async def present(self, export: dict[str, Any], base: str) -> dict[str, Any]:
        media = await self.library.get(export["video_id"]) if export["video_id"] else None
        return self.view(export, base, bool(media and media["hls_path"]))

    # -- requests --------------------------------------------------------------------------------
    def request_in(self, conn: Conn, session: CaptureSession, video_channel_id: str | None,
                   connection_id: str | None) -> dict[str, Any]:
        """Inside a write transaction: start the export of ``video_channel_id`` (default: the
        primary display) or report on it."""
        channels = session.channels
        if not any(c["store"] for c in channels):
            raise BadRequest(NOTHING_STORED)
        if video_channel_id is not None:
            match = next((c for c in channels if c["channel_id"] == video_channel_id), None)
            if match is None or match["type"] != "video":
                raise BadRequest(f"{video_channel_id} is not a video channel of this session")
            if not match["store"]:
                raise BadRequest(f"{video_channel_id} was not stored (store: false), so it cannot be exported")
        if session.status not in ("stopped", "exported", "failed"):
            raise Conflict(f"The session is {session.status}; export runs once it has stopped")
        if not rtstreams_of(conn, session.id):
            raise BadRequest(NOTHING_RECEIVED)
        key = video_channel_id or default_key(session)
        existing = row(conn, "select * from exports where session_id = ? and video_channel_id = ?",
                       [session.id, key])
        if existing and existing["status"] != "failed":
            if connection_id and existing["status"] == "exporting":
                conn["exports"].update(existing["id"], {"connection_id": connection_id})
            return existing
        first = row(conn, "select count(*) as n from exports where session_id = ? and status != 'failed'",
                    [session.id])["n"] == 0
        stored = [c for c in channels if c["store"]]
        job = self.jobs.enqueue(conn, "export", {
            "session_id": session.id, "collection_id": session.collection_id,
            "video_channel_id": key or None, "include_raw": first,
            # every id the job will create, fixed now: a rerun replaces, never duplicates
            "video_id": new_id("video"),
            "asset_ids": {c["channel_id"]: new_id("video" if c["type"] == "video" else "audio") for c in stored},
            "title": recording_title(session.started_at or session.created_at),
        })
        now = time.time()
        export = {"id": existing["id"] if existing else new_id("job"), "session_id": session.id,
                  "video_channel_id": key, "status": "exporting", "job_id": job["id"], "video_id": None,
                  "error": None, "connection_id": connection_id, "include_raw": int(first),
                  "created_at": now, "updated_at": now}
        conn["exports"].upsert(export, pk="id")
        if key == default_key(session):
            set_export_status(conn, session.id, "exporting")
        return export

    async def request(self, collection_id: str, session_id: str, video_channel_id: str | None,
                      connection_id: str | None) -> dict[str, Any]:
        """``cap.export()``: the first call starts the export, later calls report on it."""
        def write(conn: Conn) -> dict[str, Any]:
            session, _ = in_collection(conn, collection_id, session_id)
            return self.request_in(conn, session, video_channel_id, connection_id)

        export = await self.db.execute_write_fn(write)
        self.jobs.wake()
        return export

    async def for_rtstream(self, session_id: str) -> dict[str, Any]:
        """The session's default export, started if it has not run (``rtstream.export()``)."""
        def write(conn: Conn) -> dict[str, Any]:
            return self.request_in(conn, load(conn, session_id), None, None)

        export = await self.db.execute_write_fn(write)
        self.jobs.wake()
        return export

    async def exported_asset(self, rtstream_id: str, name: str | None) -> dict[str, Any] | None:
        """The channel's exported raw asset's row (renamed to ``name`` first when given), None until
        its export made it."""
        fresh = await self.sessions.rtstream(rtstream_id)
        asset_id = fresh.exported_asset_id
        if not asset_id:
            return None
        media = await self.library.get(asset_id)
        if media is None:
            raise NotFound(f"The exported asset {asset_id} has been deleted")
        if name and media["name"] != name:
            await self.library.rename(asset_id, name)
            media["name"] = name
        return media

    async def export_rtstream(self, stream: RTStream, name: str | None) -> dict[str, Any] | None:
        """``rtstream.export()``: the channel's raw asset; the first call runs the session's export
        if it has not run yet and waits for it up to ``REELDB_SYNC_WAIT`` (None: still running)."""
        if not stream.store:
            raise BadRequest(f"No recordings available: {stream.name} was not stored (store: false)")
        done = await self.exported_asset(stream.id, name)
        if done is not None:
            return done
        export = await self.for_rtstream(stream.session_id)
        if export["status"] == "failed":
            raise BadRequest(export["error"] or "The export failed")
        job = await self.jobs.wait(export["job_id"], self.settings.sync_wait)
        if job is not None and job["status"] == "failed":
            raise BadRequest(job["error"] or "The export failed")
        return await self.exported_asset(stream.id, name)

    async def failed_for(self, session_id: str) -> dict[str, Any] | None:
        return await self.db.execute_fn(lambda conn: row(
            conn, "select * from exports where session_id = ? and status = 'failed'", [session_id]))

    def after_stop(self, conn: Conn, session: CaptureSession) -> None:
        """Inside the ``stopped`` transaction: auto-export if something was stored (VideoDB's rule)."""
        reason = None
        if not any(c["store"] for c in session.channels):
            reason = NOTHING_STORED
        elif session.stop_reason:  # the server stopped it itself: its disk fell below the floor
            reason = NOT_ON_A_FULL_DISK  # an export would eat the headroom the database needs
        elif not rtstreams_of(conn, session.id):  # never became active
            reason = NOTHING_RECEIVED
        if reason:
            set_export_status(conn, session.id, "failed", reason)
            return
        if self.settings.auto_export:
            self.request_in(conn, session, None, None)
            self.jobs.wake()

    # -- the job ---------------------------------------------------------------------------------
    def _export_commit(self, ctx: JobContext, result: dict[str, Any]) -> dict[str, Any]:
        """The control node's part: the assets' rows, then each raw channel's rtstream pointing at
        its asset (upserts and updates keyed by ids fixed when queued: a second run replaces)."""
        for record in result.pop("records", []):
            self.library.commit(record)
        for channel_id, asset_id in result["assets"].items():
            ctx.write(lambda conn, a=asset_id, c=channel_id: set_exported_asset(conn, ctx.params["session_id"], c, a))
        return result

    async def _seed(self, job: dict[str, Any]) -> SeedWrite | None:
        """The early indexes of a done primary export, from what its live transcripts heard and
        its display's live reader read."""
        result = loads(job["result"], {})
        if self.seed is None or job["status"] != "done" or result.get("origin") is None:
            return None

        def read(conn: Conn) -> tuple[list[RTStream], float] | None:
            export = row(conn, "select * from exports where job_id = ?", [job["id"]])
            if export is None or export["video_channel_id"] != default_key(load(conn, export["session_id"])):
                return None
            media = row(conn, "select length from media where id = ?", [result.get("video_id")])
            return (rtstreams_of(conn, export["session_id"]), float(media["length"])) if media and media["length"] else None

        found = await self.db.execute_fn(read)
        if found is None:
            return None
        try:
            return await self.seed(found[0], float(result["origin"]), result.get("asset_starts") or {}, found[1],
                                   result.get("video_channel_id"))
        except Exception:  # an early index is a head start: the index job still makes the real one
            log.exception("export %s: the live transcripts' words were not indexed", job["id"])
            return None

    async def _finished(self, job: dict[str, Any]) -> None:
        seed = await self._seed(job)

        def write(conn: Conn) -> tuple[dict[str, Any], CaptureSession, Moved | None] | None:
            export = row(conn, "select * from exports where job_id = ?", [job["id"]])
            if export is None:
                return None
            session = load(conn, export["session_id"])
            is_primary = export["video_channel_id"] == default_key(session)
            if job["status"] == "done":
                moved = self._exported(conn, export, session, loads(job["result"], {}), is_primary, seed)
            else:
                moved = self._failed(conn, export, session, job["error"] or "Export failed", is_primary)
            fresh = row(conn, "select * from exports where id = ?", [export["id"]])
            return fresh, (moved[0] if moved else session), moved

        outcome = await self.db.execute_write_fn(write)
        if outcome is None:
            return
        export, session, moved = outcome
        self.jobs.wake()
        await self.sessions.publish(moved)
        if export["connection_id"]:
            await self.hub.send(export["connection_id"], {
                "channel": "capture_session", "event": "capture_session.export",
                "capture_session_id": session.id, "status": session.status,
                "data": await self.present(export, self.links.default_base())})

    def _exported(self, conn: Conn, export: dict[str, Any], session: CaptureSession, result: dict[str, Any],
                  is_primary: bool, seed: SeedWrite | None = None) -> Moved:
        """Record the asset and announce ``capture_session.exported``; one transaction, as every move."""
        video_id = result["video_id"]
        media = row(conn, "select path, hls_path from media where id = ?", [video_id])
        exported = {**session.exported_videos, export["video_channel_id"] or "audio": video_id}
        changes: dict[str, Any] = {"exported_videos": exported}
        data = {"exported_video_id": video_id if is_primary else (session.exported_video_id or video_id),
                "video_channel_id": result["video_channel_id"],
                **self.links.stream_urls(video_id, bool(media and media["hls_path"]), self.links.default_base())}
        if result.get("warnings"):  # what the export left out or worked around (a damaged channel, ...)
            data["warnings"] = result["warnings"]
        if is_primary:
            changes.update(export_status="exported", exported_video_id=video_id, export_error=None)
        else:
            data["video_id"] = video_id  # another display: the session's own export stays as it was
        conn["exports"].update(export["id"], {"status": "exported", "video_id": video_id, "updated_at": time.time()})
        moved = self.sessions.move(conn, session.id, "exported", data, **changes)
        if is_primary and self.index is not None and media is not None:
            self.index(conn, video_id, media["path"])  # first: the jobs that replace the early indexes
        if self.screen_index is not None and media is not None and result.get("video_channel_id"):
            self.screen_index(conn, video_id, media["path"])
        if is_primary and seed is not None and media is not None:
            seed(conn, video_id)
        return moved

    def _failed(self, conn: Conn, export: dict[str, Any], session: CaptureSession, error: str,
                is_primary: bool) -> Moved | None:
        log.error("export of %s (%s) failed: %s", session.id, export["video_channel_id"] or "audio", error)
        conn["exports"].update(export["id"], {"status": "failed", "error": error, "updated_at": time.time()})
        if not is_primary:
            return None
        if session.status == "failed":  # a retry failed again: nothing new to announce
            set_export_status(conn, session.id, "failed", error)
            return None
        return self.sessions.move(conn, session.id, "failed", {"error": {"code": "EXPORT_FAILED", "message": error}},
                                  export_status="failed", export_error=error, error=error)



def audio_channels(conn: Conn, video_id: str) -> list[dict[str, Any]]:
    """The stored audio channels behind a capture export, for transcribing each on its own:
    ``[{channel, channel_id, asset_id, path, offset}]`` (``channel`` the category, mic or
    system_audio; ``path`` the raw asset's, relative to the media root; ``offset`` where its t=0
    lies on the video, seconds: the asset's capture-clock start minus the export's origin, both
    recorded by the export job). Empty for an upload, an export that made no raw assets, or one
    whose timing was not recorded (exports from before ``asset_starts``): those keep the mix.
    Read on the control node (the index job's prepare part)."""
    media = row(conn, "select session_id from media where id = ?", [video_id])
    if media is None or not media["session_id"]:
        return []
    job = row(conn, "select jobs.result from exports join jobs on jobs.id = exports.job_id where exports.video_id = ?",
              [video_id])
    result = loads(job["result"] if job else None, {})
    origin, starts = result.get("origin"), result.get("asset_starts") or {}
    if origin is None:
        return []
    found = []
    for rts in rows(conn, "select rtstreams.name, media.id, media.path from rtstreams join media "
                          "on media.id = rtstreams.exported_asset_id where rtstreams.session_id = ? "
                          "order by rtstreams.name", [media["session_id"]]):
        if kind_of(rts["name"]) == "audio" and starts.get(rts["name"]) is not None:
            found.append({"channel": category(rts["name"]), "channel_id": rts["name"], "asset_id": rts["id"],
                          "path": rts["path"], "offset": round(float(starts[rts["name"]]) - float(origin), 6)})
    return found


def export_compute(ctx: JobContext) -> dict[str, Any]:
    """The export job's compute part, files only (a job worker runs it): the session folder into
    the muxed recording and raw channel files, each prepared as a library asset; the rows to write
    go back in ``records`` for :meth:`Exports._export_commit`."""
    p = ctx.params
    storage = MediaRoot(ctx.settings.media_root_dir)
    folder = storage.sessions_dir / p["session_id"]
    staging = storage.root / "exports" / ctx.id
    shutil.rmtree(staging, ignore_errors=True)  # a previous attempt of this job, killed midway
    try:
        result = export_session(folder, staging, p["video_channel_id"],
                                progress=lambda f: ctx.progress(f * 0.9), include_raw=p["include_raw"])
        label = p["video_channel_id"] or result.video_channel_id or "audio"
        title = p.get("title") or f"Capture {p['session_id']} ({label})"
        muxed = prepare_asset(storage, p["video_id"], result.muxed_path, result.muxed_info, "video",
                              p["collection_id"], title, "capture",
                              session_id=p["session_id"], channel_id=result.video_channel_id)
        ctx.progress(0.95)
        records = [muxed]
        assets: dict[str, str] = {}
        for channel_id, asset in result.channels.items():
            kind = "video" if asset.kind == "video" else "audio"
            asset_id = p["asset_ids"].get(channel_id) or new_id(kind)
            records.append(prepare_asset(storage, asset_id, asset.path, asset.info, kind, p["collection_id"],
                                         f"{title} · {channel_id}", "capture-channel",
                                         session_id=p["session_id"], channel_id=channel_id))
            assets[channel_id] = asset_id
        for warning in result.warnings:
            log.warning("export of %s: %s", p["session_id"], warning)
        return {"video_id": muxed["id"], "video_channel_id": result.video_channel_id, "assets": assets,
                "warnings": result.warnings, "duration": result.duration, "origin": result.origin,
                "asset_starts": {c: a.start_time for c, a in result.channels.items()}, "records": records}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


EXPORT = Compute("export", "exports", export_compute)
