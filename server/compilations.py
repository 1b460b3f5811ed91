"""Compilations: spans of several videos played as one stream (``POST /compile``, what the SDK's
``SearchResult.compile()`` and ``play()`` call). Owns the ``compilations`` table.

A compilation is stored once and handed out as a signed link; its playlist is cut from the
videos' existing renditions (exact clips: whole GOPs reused, only each shot's edges re-encoded,
``server/clips.py``). What one may hold is bounded when it is made (``REELDB_COMPILE_MAX_SHOTS``
shots in all, each at least ``REELDB_CLIP_MIN_SPAN``); its first playback cuts them, and stops
when the player that asked has gone.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from reeldb.export import clip_playlist

from .database import Conn, Database, dumps, loads, row
from .clip_budget import short
from .clips import Clips
from .errors import BadRequest, NotFound
from .ids import new_id
from .library import find
from .links import Links
from .settings import Settings

MAX_PARTS = 500


class Compilations:
    def __init__(self, db: Database, clips: Clips, links: Links, settings: Settings) -> None:
        self.db = db
        self.clips = clips
        self.links = links
        self.settings = settings

    async def create(self, parts: list[tuple[str, list[tuple[float, float]]]]) -> str:
        """Store ``[(video_id, [(start, end), …]), …]`` after checking every video; returns its id."""
        if not parts:
            raise BadRequest("Nothing to compile: pass at least one video with shots")
        if len(parts) > MAX_PARTS:
            raise BadRequest(f"At most {MAX_PARTS} videos per compilation")
        shots = sum(len(spans) for _, spans in parts)
        if shots > self.settings.compile_max_shots:
            raise BadRequest(f"At most {self.settings.compile_max_shots} shots per compilation "
                             f"(REELDB_COMPILE_MAX_SHOTS); got {shots}", error_code="CLIP_LIMIT")
        min_span = self.settings.clip_min_span
        compilation_id = new_id("compilation")
        def write(conn: Conn) -> None:
            nonlocal parts
            for video_id, _ in parts:
                find(conn, "video", video_id, None)
            # An empty shot (start == end) is nothing to play: video.insert_video() at 0 or at the
            # end sends one before or after the inserted video.
            parts = [(v, [(s, e) for s, e in spans if not (s == e and s >= 0)]) for v, spans in parts]
            parts = [(v, spans) for v, spans in parts if spans]
            if not parts:
                raise BadRequest("Nothing to compile: every shot is empty (start == end)")
            for video_id, spans in parts:
                video = find(conn, "video", video_id, None)
                if not video["hls_path"]:
                    raise BadRequest(f"{video_id} has no stream to compile from")
                for start, end in spans:
                    if not 0 <= start < end:
                        raise BadRequest(f"shots are [start, end] with 0 <= start < end, got [{start}, {end}]")
                    if video["length"] is not None and start >= video["length"]:
                        raise BadRequest(f"a shot of {video_id} starts after it ends ({video['length']:.2f} s)")
                    if short(start, end, min_span, video["length"]):
                        raise BadRequest(f"a shot must last at least {min_span:g} s (REELDB_CLIP_MIN_SPAN) of its "
                                         f"video; [{start:g}, {end:g}] of {video_id} is shorter",
                                         error_code="CLIP_LIMIT")
            conn["compilations"].insert({"id": compilation_id, "parts": dumps(parts), "created_at": time.time()})

        await self.db.execute_write_fn(write)
        return compilation_id

    def urls(self, compilation_id: str, base: str) -> dict[str, str]:
        token = self.links.token("stream", compilation_id, self.links.settings.stream_link_ttl)
        return {"stream_url": f"{base}/compile/{token}.m3u8", "player_url": f"{base}/watch?v={token}"}

    async def playlist(self, token: str, client: str | None = None, gone: threading.Event | None = None) -> str:
        """The compilation's playlist, its shots cut when new. ``client``: the address of a caller
        without an API key, who pays for new shots with the link's budget (429 when spent);
        ``gone``: set once the caller has disconnected (the cutting stops)."""
        compilation_id = self.links.check("stream", token.removesuffix(".m3u8"))
        if not compilation_id or not compilation_id.startswith("cmp-"):
            raise NotFound("No such stream")

        def read(conn: Conn) -> list[tuple[dict[str, Any], list[tuple[float, float]]]]:
            found = row(conn, "select parts from compilations where id = ?", [compilation_id])
            if found is None:
                raise NotFound("No such stream")
            out = []
            for video_id, spans in loads(found["parts"], []):
                media = row(conn, "select id, path, hls_path, length from media where id = ?", [video_id])
                if media and media["hls_path"]:
                    out.append((media, [(float(s), float(e)) for s, e in spans]))
            return out

        parts = await self.db.execute_fn(read)
        if not parts:
            raise NotFound("The videos of this compilation have been deleted")
        ttl = self.links.settings.stream_link_ttl
        cut = await self.clips.cut(parts, None if client is None else (compilation_id, client), gone)
        try:
            return clip_playlist([
                (pieces, f"../stream/{self.links.token('stream', media['id'], ttl)}/")
                for (media, _), pieces in zip(parts, cut)])
        except ValueError as exc:
            raise NotFound(f"No such stream: {exc}") from None
