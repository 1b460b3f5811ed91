"""HLS streams and the watch page: what ``stream_url`` and ``player_url`` point at.

Stream URLs carry a signed media id instead of credentials, as VideoDB's do, so hls.js, Safari and
PyAV can fetch them with plain GETs (and byte ranges) from any origin.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.response import File
from litestar.static_files import create_static_files_router

from reeldb.player import playlists
from reeldb.player.pages import STATIC_DIR, capture_page, watch_page

from .. import db as dbm
from ..errors import NotFound
from ..services import Services
from ..signing import sign, verify

STREAM_TTL = 10 * 365 * 86400  # stream links are meant to be kept, like VideoDB's
SEGMENT = re.compile(r"^(index\.m3u8|seg_\d{5}\.ts)$")
TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def stream_token(svc: Services, media_id: str) -> str:
    return sign(svc.secret, media_id, STREAM_TTL)


def stream_urls(svc: Services, media_id: str, base: str,
                spans: list[tuple[float, float]] | None = None) -> dict[str, Any]:
    """``stream_url``/``player_url`` of a video, or of spans of it (a timeline, a search hit)."""
    row = dbm.row(svc.db, "select hls_path from media where id = ?", [media_id])
    if row is None or not row["hls_path"]:
        return {"stream_url": None, "player_url": None}
    token = stream_token(svc, media_id)
    if not spans:
        return {"stream_url": f"{base}/stream/{token}/index.m3u8", "player_url": f"{base}/watch?v={token}"}
    text = playlists.format_spans(spans)
    return {"stream_url": f"{base}/stream/{token}/t/{text}.m3u8", "player_url": f"{base}/watch?v={token}&t={text}"}


def ranged(path: Path, request: Request, media_type: str) -> Response[bytes] | File:
    """The file, or the byte range asked for (206), or 416: players seek with ranges."""
    header = request.headers.get("range")
    size = path.stat().st_size
    match = RANGE.match(header.strip()) if header else None
    if not match or (not match.group(1) and not match.group(2)):
        return File(path=path, media_type=media_type, content_disposition_type="inline",
                    headers={"accept-ranges": "bytes"})
    if match.group(1):
        start = int(match.group(1))
        end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    else:  # suffix range: the last N bytes
        start, end = max(0, size - int(match.group(2))), size - 1
    if start >= size or start > end:
        return Response(b"", status_code=416, headers={"content-range": f"bytes */{size}"})
    with open(path, "rb") as f:
        f.seek(start)
        body = f.read(end - start + 1)
    return Response(body, status_code=206, media_type=media_type,
                    headers={"content-range": f"bytes {start}-{end}/{size}", "accept-ranges": "bytes"})


def _hls_dir(svc: Services, token: str) -> Path:
    media_id = verify(svc.secret, token)
    row = dbm.row(svc.db, "select hls_path from media where id = ?", [media_id]) if media_id else None
    if row is None or not row["hls_path"]:
        raise NotFound("No such stream")
    return Path(row["hls_path"]).parent


@get("/stream/{token:str}/{name:str}", sync_to_thread=False)
def stream_file(token: str, name: str, request: Request, svc: Services) -> Any:
    if not SEGMENT.match(name):
        raise NotFound("No such stream file")
    path = _hls_dir(svc, token) / name
    if not path.is_file():
        raise NotFound("No such stream file")
    return ranged(path, request, TYPES[path.suffix])


@get("/stream/{token:str}/t/{spans:str}", sync_to_thread=False)
def timeline(token: str, spans: str, svc: Services) -> Response[str]:
    """A playlist of spans of the rendition: ``/t/1.5-4,10-12.m3u8``."""
    folder = _hls_dir(svc, token)
    try:
        cuts = playlists.parse_spans(spans.removesuffix(".m3u8"))
        body = playlists.cut(playlists.parse((folder / "index.m3u8").read_text()), cuts, prefix="../")
    except ValueError as exc:
        raise NotFound(f"No such stream: {exc}") from None
    return Response(body, media_type=TYPES[".m3u8"])


def _page(svc: Services, request: Request, v: str, t: str | None) -> Response[str]:
    token = v
    _hls_dir(svc, token)  # 404 for unknown or forged ids
    base = f"{svc.base_url(request)}/stream/{token}"
    if t:
        try:
            src = f"{base}/t/{playlists.format_spans(playlists.parse_spans(t))}.m3u8"
        except ValueError as exc:
            raise NotFound(f"No such stream: {exc}") from None
    else:
        src = f"{base}/index.m3u8"
    return Response(watch_page(src), media_type="text/html")


@get("/watch", sync_to_thread=False)
def watch(request: Request, svc: Services, v: str, t: str | None = None) -> Response[str]:
    return _page(svc, request, v, t)


@get("/embed", sync_to_thread=False)
def embed(request: Request, svc: Services, v: str, t: str | None = None) -> Response[str]:
    return _page(svc, request, v, t)


@get("/capture", sync_to_thread=False)
def capture(request: Request, svc: Services) -> Response[str]:
    """The browser capture page; it reads ``session_id`` and ``token`` from its own URL."""
    return Response(capture_page(svc.base_url(request)), media_type="text/html")


static = create_static_files_router(path="/player/static", directories=[STATIC_DIR], name="player-static")

handlers = [stream_file, timeline, watch, embed, capture, static]
