"""Compilations: spans of several videos played as one stream (``POST /compile``, what the SDK's
``SearchResult.compile()`` and ``play()`` call). Owns the ``compilations`` table.

A compilation is stored once and handed out as a signed link; its playlist is cut from the
videos' existing renditions (whole segments, joined with discontinuities), so nothing is
re-encoded and a compilation costs a row.
"""

from __future__ import annotations

import time
from typing import Any

from reeldb.export import clip_playlist

from .database import Conn, Database, dumps, loads, row
from .errors import BadRequest, NotFound
from .ids import new_id
from .library import MediaLibrary, find
from .links import Links

MAX_PARTS = 500


class Compilations:
    def __init__(self, db: Database, library: MediaLibrary, links: Links) -> None:
        self.db = db
        self.library = library
        self.links = links

    async def create(self, parts: list[tuple[str, list[tuple[float, float]]]]) -> str:
        """Store ``[(video_id, [(start, end), …]), …]`` after checking every video; returns its id."""
        if not parts:
            raise BadRequest("Nothing to compile: pass at least one video with shots")
        if len(parts) > MAX_PARTS:
            raise BadRequest(f"At most {MAX_PARTS} videos per compilation")
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
            conn["compilations"].insert({"id": compilation_id, "parts": dumps(parts), "created_at": time.time()})

        await self.db.execute_write_fn(write)
        return compilation_id

    def urls(self, compilation_id: str, base: str) -> dict[str, str]:
        token = self.links.token("stream", compilation_id, self.links.settings.stream_link_ttl)
        return {"stream_url": f"{base}/compile/{token}.m3u8", "player_url": f"{base}/watch?v={token}"}

    async def playlist(self, token: str) -> str:
        compilation_id = self.links.check("stream", token.removesuffix(".m3u8"))
        if not compilation_id or not compilation_id.startswith("cmp-"):
            raise NotFound("No such stream")

        def read(conn: Conn) -> list[tuple[dict[str, Any], list[tuple[float, float]]]]:
            found = row(conn, "select parts from compilations where id = ?", [compilation_id])
            if found is None:
                raise NotFound("No such stream")
            out = []
            for video_id, spans in loads(found["parts"], []):
                media = row(conn, "select id, path, hls_path from media where id = ?", [video_id])
                if media and media["hls_path"]:
                    out.append((media, [(float(s), float(e)) for s, e in spans]))
            return out

        parts = await self.db.execute_fn(read)
        if not parts:
            raise NotFound("The videos of this compilation have been deleted")
        ttl = self.links.settings.stream_link_ttl
        try:
            return clip_playlist([
                (await self.library.clips(media, spans), f"../stream/{self.links.token('stream', media['id'], ttl)}/")
                for media, spans in parts])
        except ValueError as exc:
            raise NotFound(f"No such stream: {exc}") from None
