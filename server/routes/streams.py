"""HLS streams and the pages: what ``stream_url`` and ``player_url`` point at, and ``/capture``.

Stream URLs carry a signed media id instead of credentials, as VideoDB's do, so hls.js, Safari and
PyAV can fetch them with plain GETs (and byte ranges) from any origin. Files are read off the
event loop. A rendition, its segments and the pieces of clips are immutable (cached for good);
the playlists of exact clips and compilations are ``no-cache`` (the clip cache is bounded, so an
evicted clip is cut again when its playlist is asked for again), and so are what follows the index
(captions, transcript, search) and the pages. New spans cost a link without an API key its budget
(``server/clips.py``), and a client that leaves stops the cutting done for it. Every
handler here answers ``HEAD`` as its ``GET`` without a body (``opt=HEAD``, server/guard.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import CacheControlHeader
from litestar.response import File, Redirect
from litestar.static_files import create_static_files_router

from reeldb.export import playlists
from reeldb.export import clip_playlist, shift_timestamps
from reeldb.export.hls import first_pts
from reeldb.index.search import merge
from reeldb.player.captions import subtitled_master, subtitles_playlist, webvtt, with_timestamp_map
from reeldb.player.pages import STATIC_DIR, capture_page, watch_page

from ..auth import Auth, Principal, WebSessions
from ..clips import Clips
from ..compilations import Compilations
from ..disconnect import client_gone
from ..errors import ApiError, BadRequest, Conflict, NotFound, PayloadTooLarge
from ..exports import Exports
from ..library import MediaLibrary
from ..links import Links
from ..runtime import Runtime
from ..sessions import Sessions
from ..settings import Settings
from ..scenes import Scenes
from ..spoken import Spoken
from ..strict import strict_body
from ..text import strip
from .web import signed_in

START = re.compile(r"^(\d+(\.\d+)?|(\d+:)?\d{1,2}:\d{1,2}(\.\d+)?)$")
STREAM_PATH = re.compile(r"^/(stream/[^/]+/(index\.m3u8|t/[0-9.,\-]+\.m3u8)|compile/[^/]+\.m3u8)$")
SEGMENT = re.compile(r"^(index\.m3u8|seg_\d{5}\.ts|poster\.jpg|storyboard\.vtt|sprite(_\d+)?\.jpg)$")
TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".jpg": "image/jpeg", ".vtt": "text/vtt"}
RANGE = re.compile(r"^bytes=(\d{1,15})?-(\d{1,15})?$")


def _read(path: Path, start: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(length)


#: A VOD rendition never changes once made (a re-export makes a new asset): cache it for good.
IMMUTABLE = "public, max-age=31536000, immutable"
#: What changes under the same URL (captions once indexed, search hits, pages): ask each time.
REVALIDATE = "no-cache"
#: The player's own scripts and styles: an upgrade replaces them under the same names.
STATIC_CACHE = CacheControlHeader(public=True, max_age=600)
#: ``HEAD`` answered as ``GET`` without a body (server/guard.py) on every stream and page.
HEAD = {"head": True}


async def ranged(runtime: Runtime, path: Path, request: Request, media_type: str,
                 cache: str | None = None) -> Response[bytes] | File:
    """The file, or the byte range asked for (206), or 416: players seek with ranges."""
    header = request.headers.get("range")
    size = (await runtime.io(path.stat)).st_size
    match = RANGE.match(header.strip()) if header else None
    extra = {"cache-control": cache} if cache else {}
    if not match or (not match.group(1) and not match.group(2)):
        return File(path=path, media_type=media_type, content_disposition_type="inline",
                    headers={"accept-ranges": "bytes", **extra})
    if match.group(1):
        start = int(match.group(1))
        end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    else:  # suffix range: the last N bytes
        start, end = max(0, size - int(match.group(2))), size - 1
    if start >= size or start > end:
        return Response(b"", status_code=416, headers={"content-range": f"bytes */{size}"})
    body = await runtime.io(_read, path, start, end - start + 1)
    return Response(body, status_code=206, media_type=media_type,
                    headers={"content-range": f"bytes {start}-{end}/{size}", "accept-ranges": "bytes", **extra})


async def _hls_dir(library: MediaLibrary, links: Links, token: str) -> Path:
    hls_dir = library.hls_dir(await _stream_media(library, links, token))
    assert hls_dir is not None  # _stream_media answers 404 for a video without a rendition
    return hls_dir


async def _stream_media(library: MediaLibrary, links: Links, token: str) -> dict[str, Any]:
    media_id = links.check("stream", token)
    media = await library.get(media_id) if media_id else None
    if media is None or not media["hls_path"]:
        raise NotFound("No such stream")
    return media


async def _sentences(spoken: Spoken, media_id: str) -> list[dict[str, Any]]:
    body = await spoken.transcript(media_id, {"segmenter": "sentence"})
    if body is None:
        raise NotFound("This video's spoken words are not indexed yet")
    return [{k: s[k] for k in ("start", "end", "text", "channel") if k in s} for s in body["word_timestamps"]]


#: A video's previews: its ``previews`` job makes them after its stream; asked for first, made then.
PREVIEWS = ("poster.jpg", "storyboard.vtt", "sprite.jpg")
#: What the player reads beside a stream, with the stream's own signed link as its credential.
PLAYER_FILES = ("captions.vtt", "transcript.json", "info.json", "search", "subtitled.m3u8", "subtitles.m3u8",
                "subtitles.vtt", "scenes.json")
#: A scene's picture in the player's "Text on screen" list: ``scene-<number>.jpg``.
SCENE_THUMB = re.compile(r"^scene-(\d{1,5})\.jpg$")


async def _player_file(name: str, media: dict[str, Any], library: MediaLibrary, spoken: Spoken, scenes: Scenes,
                       settings: Settings, runtime: Runtime, q: str | None) -> Response[Any]:
    """The files the player reads beside a stream; they follow the video's index (captions appear
    once it is indexed), so caches ask again each time (``no-cache``)."""
    fresh = {"cache-control": REVALIDATE}
    if name == "info.json":
        captions = await spoken.transcript(media["id"], {"segmenter": "sentence"}) is not None
        indexing = None if captions else await spoken.indexing(media["id"])
        return Response({"title": media["name"], "length": media["length"], "captions": captions,
                         "indexing": None if indexing is None else {"progress": round(indexing, 3)},
                         "poster": "poster.jpg" if media.get("previews") else None,
                         "storyboard": "storyboard.vtt" if media.get("previews") else None}, headers=fresh)
    if name == "search":
        if not q or not strip(q):
            raise BadRequest("q is required")
        options: dict[str, Any] = dict(mode=settings.search_mode, score_threshold=0.2, result_threshold=10)
        hits = await spoken.search(q[:500], [media["id"]], **options)
        screen = await scenes.search(q[:500], await scenes.searchable([media["id"]], None), **options)
        hits = merge([hits, screen], 10)  # spoken words and screen text, best first (``index_type``: screen)
        return Response({"results": [{k: h[k] for k in ("start", "end", "text", "score", "channel", "index_type")
                                      if k in h} for h in hits]},
                        headers=fresh)
    if name == "scenes.json":  # the text on screen, scene by scene (the latest scene index)
        return Response({"scenes": [{"start": r["start"], "end": r["end"], "text": r["text"]}
                                    for r in await scenes.latest_records(media["id"])]}, headers=fresh)
    sentences = await _sentences(spoken, media["id"])
    if name == "captions.vtt":
        return Response(webvtt(sentences), media_type="text/vtt", headers=fresh)
    if name == "subtitled.m3u8":
        bandwidth = int(8 * (media["size"] or 0) / max(media["length"] or 1, 0.1))
        return Response(subtitled_master("index.m3u8", bandwidth, "subtitles.m3u8"), media_type=TYPES[".m3u8"],
                        headers=fresh)
    if name == "subtitles.m3u8":
        return Response(subtitles_playlist("subtitles.vtt", float(media["length"] or 0)), media_type=TYPES[".m3u8"],
                        headers=fresh)
    if name == "subtitles.vtt":
        first = await runtime.io(first_pts, library.hls_dir(media))
        return Response(with_timestamp_map(webvtt(sentences), first), media_type="text/vtt", headers=fresh)
    return Response({"segments": sentences}, headers=fresh)


@get("/stream/{token:str}/{name:str}", opt=HEAD)
async def stream_file(token: str, name: str, request: Request, library: MediaLibrary, links: Links,
                      runtime: Runtime, spoken: Spoken, scenes: Scenes, settings: Settings, q: str | None = None,
                      shift: int | None = None) -> Any:
    if name in PLAYER_FILES:
        return await _player_file(name, await _stream_media(library, links, token), library, spoken, scenes, settings,
                                  runtime, q)
    thumb = SCENE_THUMB.match(name)
    if thumb:
        picture = await scenes.thumbnail(await _stream_media(library, links, token), int(thumb.group(1)))
        if picture is None:
            raise NotFound("No such scene")
        return Response(picture, media_type="image/jpeg", headers={"cache-control": REVALIDATE})
    if not SEGMENT.match(name):
        raise NotFound("No such stream file")
    media = await _stream_media(library, links, token)
    path = library.hls_dir(media) / name  # type: ignore[operator]
    if not await runtime.io(path.is_file) and name in PREVIEWS:  # asked for before its job made it
        await library.ensure_previews(media)
    if not await runtime.io(path.is_file):
        raise NotFound("No such stream file")
    if shift is not None and path.suffix == ".ts":
        return await _maybe_shifted(runtime, path, request, shift)
    return await ranged(runtime, path, request, TYPES[path.suffix], IMMUTABLE)


async def _payer(request: Request, auth: Auth) -> str | None:
    """The client's address, which pays for new spans with its budget; None for a caller with an
    API key (``x-access-token``), whose spans are not limited. A wrong key is no key."""
    secret = request.headers.get("x-access-token")
    if secret:
        try:
            if (await auth.resolve(secret)).is_key:
                return None
        except ApiError:
            pass
    return request.client.host if request.client else "unknown"


@get("/stream/{token:str}/t/{spans:str}", opt=HEAD)
async def timeline(token: str, spans: str, request: Request, library: MediaLibrary, links: Links, clips: Clips,
                   auth: Auth, runtime: Runtime) -> Response[str]:
    """Exactly these spans of the video, in order: ``/t/1.5-4,10-12.m3u8`` (smart cut: whole GOPs
    reused as they are, only each edge's partial GOP re-encoded, cached). At most
    ``REELDB_CLIP_MAX_SPANS`` spans of at least ``REELDB_CLIP_MIN_SPAN`` (400); new spans within the
    link's and the client's budget (429), unless the caller sends an API key."""
    media = await _stream_media(library, links, token)
    try:
        cuts = playlists.parse_spans(spans.removesuffix(".m3u8"))
    except ValueError as exc:
        raise NotFound(f"No such stream: {exc}") from None
    clips.check(cuts, media["length"])
    client = await _payer(request, auth)
    async with client_gone(request, runtime) as gone:
        pieces = (await clips.cut([(media, cuts)], None if client is None else (media["id"], client), gone))[0]
    try:
        body = clip_playlist([(pieces, "../")])
    except ValueError as exc:
        raise NotFound(f"No such stream: {exc}") from None
    return Response(body, media_type=TYPES[".m3u8"], headers={"cache-control": REVALIDATE})


CLIP_KEY = re.compile(r"^[0-9a-f]{16,64}$")
CLIP_PIECE = re.compile(r"^\d{1,4}\.ts$")


@get("/stream/{token:str}/clips/{entry:str}/{name:str}", opt=HEAD)
async def clip_piece(token: str, entry: str, name: str, request: Request, library: MediaLibrary, links: Links,
                     runtime: Runtime, clips: Clips, shift: int | None = None) -> Any:
    """A piece of an exact clip (cached by content: immutable). Serving it marks its clip as in
    use, so the clip cache keeps what is being played."""
    if not CLIP_KEY.match(entry) or not CLIP_PIECE.match(name):
        raise NotFound("No such stream file")
    path = await _hls_dir(library, links, token) / "clips" / entry / name
    if not await runtime.io(path.is_file):
        raise NotFound("No such stream file")
    clips.touch(path.parent)
    return await _maybe_shifted(runtime, path, request, shift)


async def _maybe_shifted(runtime: Runtime, path: Path, request: Request, shift: int | None) -> Any:
    """The file, or (``?shift=`` from a compilation) its timestamps moved so that a later span of
    a compilation continues an earlier one without DTS going back."""
    if shift is None:
        return await ranged(runtime, path, request, TYPES[path.suffix], IMMUTABLE)
    if not 0 <= shift < 1 << 33:
        raise BadRequest("shift must be 0 ≤ shift < 2^33 ticks")
    data = await runtime.io(path.read_bytes)
    try:
        body = await runtime.io(shift_timestamps, data, shift)
    except ValueError:
        raise NotFound("No such stream file") from None
    return Response(body, media_type=TYPES[".ts"], headers={"cache-control": IMMUTABLE})


class CompilePart(msgspec.Struct):
    video_id: Annotated[str, msgspec.Meta(max_length=200)]
    shots: Annotated[list[tuple[float, float]], msgspec.Meta(min_length=1, max_length=1000)]
    collection_id: str | None = None


async def _compile_body(request: Request) -> None:
    """Before ``POST /compile`` reads its body: 413 beyond ``REELDB_COMPILE_MAX_BODY_KB`` (by its
    ``Content-Length`` before reading a byte, else once read), then the strict decoding every body
    gets (``strict.py``; a handler's own hook replaces the app's)."""
    limit = request.app.state.settings.compile_max_body_kb * 1024
    declared = request.headers.get("content-length", "")
    too_large = PayloadTooLarge(f"A compilation's body may hold at most {limit // 1024} KB "
                                f"(REELDB_COMPILE_MAX_BODY_KB)", error_code="CLIP_LIMIT")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    if len(await request.body()) > limit:
        raise too_large
    await strict_body(request)


@post("/compile", status_code=200, before_request=_compile_body)
async def compile_shots(data: Annotated[list[CompilePart], msgspec.Meta(min_length=1, max_length=500)],
                        request: Request, compilations: Compilations, links: Links, key: Principal) -> dict[str, Any]:
    """``SearchResult.compile()``: shots of several videos as one stream, in the order given."""
    compilation_id = await compilations.create([(p.video_id, [(s[0], s[1]) for s in p.shots]) for p in data])
    return {"success": True, "data": compilations.urls(compilation_id, links.base_url(request))}


@get("/compile/{token:str}", opt=HEAD)
async def compile_playlist(token: str, request: Request, compilations: Compilations, auth: Auth,
                           runtime: Runtime) -> Response[str]:
    """A compilation's spans are fixed when it is made, and its pieces are cached by content; its
    first playback cuts them (within the link's budget) and stops if the player leaves."""
    client = await _payer(request, auth)
    async with client_gone(request, runtime) as gone:
        body = await compilations.playlist(token, client, gone)
    return Response(body, media_type=TYPES[".m3u8"], headers={"cache-control": REVALIDATE})


BAD_LINK = "This link has expired or does not point at a video."


def _bad_link(embed: bool = False) -> Response[str]:
    """Pages answer people, not programs: a bad or expired link is a friendly HTML 404."""
    return Response(watch_page(None, error=BAD_LINK, embed=embed), media_type="text/html", status_code=404,
                    headers={"cache-control": REVALIDATE})


#: Seconds a "not exported yet" moment page waits before it reloads itself (the ``Refresh`` header).
MOMENT_REFRESH = 10


async def _moment(token: str, request: Request, sessions: Sessions, exports: Exports, links: Links) -> dict[str, Any]:
    """The exact clip an alert's moment link stands for; ``NotFound`` for a bad link, ``Conflict``
    while its session has not been exported."""
    payload = links.check("moment", token)
    moment = links.moment_of(payload) if payload else None
    if moment is None:
        raise NotFound(BAD_LINK)
    rtstream_id, start, end = moment
    return await exports.rtstream_clip(await sessions.rtstream(rtstream_id), start, end, links.base_url(request))


@get("/moment/{token:str}", media_type=MediaType.HTML, opt=HEAD, include_in_schema=False)
async def moment_page(token: str, request: Request, sessions: Sessions, exports: Exports,
                      links: Links) -> Response[str] | Redirect:
    """An alert's ``player_url``: the moment in the player once its session is exported; until
    then a page that says so and reloads itself every MOMENT_REFRESH seconds."""
    try:
        urls = await _moment(token, request, sessions, exports, links)
    except NotFound:
        return _bad_link()
    except Conflict as e:
        text = f"{e.message} This page reloads by itself until it plays."
        return Response(watch_page(None, error=text, assets=links.base_url(request)), media_type="text/html",
                        headers={"cache-control": "no-store", "refresh": str(MOMENT_REFRESH)})
    return Redirect(urls["player_url"], status_code=302)


@get("/moment/{token:str}/index.m3u8", opt=HEAD, include_in_schema=False)
async def moment_stream(token: str, request: Request, sessions: Sessions, exports: Exports,
                        links: Links) -> Redirect:
    """An alert's ``stream_url``: a redirect to the moment's exact clip once its session is
    exported; 409 (with ``Retry-After``) until then, 404 for a bad link."""
    try:
        urls = await _moment(token, request, sessions, exports, links)
    except Conflict as e:
        raise Conflict(e.message, retry_after=MOMENT_REFRESH) from None
    return Redirect(urls["stream_url"], status_code=302)


def _start(text: str) -> float:
    """``90``, ``1:30`` or ``1:02:03`` → seconds."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


async def _page(library: MediaLibrary, links: Links, request: Request, v: str | None, t: str | None,
                c: str | None = None, embed: bool = False) -> Response[str]:
    base_url = links.base_url(request)
    if c is None and v and (links.check("stream", v) or "").startswith("cmp-"):
        c = v  # compile()'s player_url is ?v=, as the SDK's get_embed_code() requires (?c= still works)
    if c is not None:  # a compilation: the page learns from its playlist whether it exists
        if links.check("stream", c) is None:
            return _bad_link(embed)
        return Response(watch_page(f"{base_url}/compile/{c}.m3u8", embed=embed), media_type="text/html",
                        headers={"cache-control": REVALIDATE})
    try:
        media = await _stream_media(library, links, v or "")
    except NotFound:
        return _bad_link(embed)
    base = f"{base_url}/stream/{v}"
    src, start, end = f"{base}/index.m3u8", None, None
    if t and START.match(t):  # a start time: the page seeks there
        start = _start(t)
    elif t:
        try:
            spans = playlists.parse_spans(t)
        except ValueError:
            return _bad_link(embed)
        if len(spans) == 1:  # one span: the whole video, started and stopped at the span
            start, end = spans[0]
        else:
            src = f"{base}/t/{playlists.format_spans(spans)}.m3u8"
    return Response(watch_page(src, start=start, end=end, title=media["name"], embed=embed), media_type="text/html",
                    headers={"cache-control": REVALIDATE})


@get("/watch", media_type=MediaType.HTML, opt=HEAD, include_in_schema=False)
async def watch(request: Request, library: MediaLibrary, links: Links, web_sessions: WebSessions,
                v: str | None = None, t: str | None = None, c: str | None = None) -> Response[str] | Redirect:
    """A signed link (``v=``/``c=``) plays for anyone who has it; without one, the library's
    sign-in (or, signed in, the library) is where to go."""
    if v is None and c is None:
        return await _no_link(request, web_sessions, "/watch")
    return await _page(library, links, request, v, t, c)


@get("/embed", media_type=MediaType.HTML, opt=HEAD, include_in_schema=False)
async def embed(request: Request, library: MediaLibrary, links: Links, web_sessions: WebSessions,
                v: str | None = None, t: str | None = None, c: str | None = None) -> Response[str] | Redirect:
    if v is None and c is None:
        return await _no_link(request, web_sessions, "/embed")
    return await _page(library, links, request, v, t, c, embed=True)


async def _no_link(request: Request, web_sessions: WebSessions, path: str) -> Redirect:
    if await signed_in(request, web_sessions) is None:
        return Redirect(f"/signin?{urlencode({'next': path})}", status_code=303)
    return Redirect("/", status_code=303)


@get("/player", media_type=MediaType.HTML, opt=HEAD, include_in_schema=False)
async def player(request: Request, links: Links, url: str = "") -> Response[str]:
    """What the SDK's ``play()`` opens (``PLAYER_URL?url=<stream_url>``, README): this server's
    own streams only. The host in ``url`` is ignored and only a stream or compilation path is
    kept, so the page can neither be pointed at another site nor carry anything else."""
    path = urlsplit(url).path
    if not STREAM_PATH.match(path):
        return _bad_link()
    query = urlsplit(url).query
    return Response(watch_page(f"{links.base_url(request)}{path}" + (f"?{query}" if query else "")),
                    media_type="text/html", headers={"cache-control": REVALIDATE})


@get("/favicon.ico", media_type="image/svg+xml", opt=HEAD, include_in_schema=False)
async def favicon(runtime: Runtime) -> Response[bytes]:
    body = await runtime.io((STATIC_DIR / "favicon.svg").read_bytes)
    return Response(body, media_type="image/svg+xml", headers={"cache-control": "public, max-age=86400"})


@get("/capture", media_type=MediaType.HTML, opt=HEAD, include_in_schema=False)
async def capture(request: Request, links: Links, web_sessions: WebSessions,
                  session_id: str | None = None) -> Response[str] | Redirect:
    """The browser capture page; it reads ``session_id`` and ``token`` from its own URL (the
    library's "New recording" mints both). Opened bare, it wants a signed-in browser."""
    if session_id is None and await signed_in(request, web_sessions) is None:
        return Redirect(f"/signin?{urlencode({'next': '/capture'})}", status_code=303)
    return Response(capture_page(links.base_url(request)), media_type="text/html",
                    headers={"cache-control": REVALIDATE})


static = create_static_files_router(path="/player/static", directories=[STATIC_DIR], name="player-static",
                                    cache_control=STATIC_CACHE, opt=HEAD, include_in_schema=False)

handlers = [stream_file, timeline, clip_piece, compile_shots, compile_playlist, watch, embed, moment_page, moment_stream,
            player, favicon, capture, static]
