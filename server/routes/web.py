"""The pages for people (issue 22): sign in, the library at ``/``, search, rename, delete, upload
and "New recording". Left out of the API's schema: they answer HTML (and a little JSON to the
upload script), never the SDK.

A browser is signed in by a cookie (``HttpOnly``, ``SameSite=Strict``) naming a row of
``web_sessions`` (``server/auth.py``); a page asked for without it redirects to ``/signin``. Every
form that changes something carries the session's CSRF token (a hidden ``csrf`` field, or the
``x-csrf-token`` header htmx and ``web.js`` send) and must come from this origin.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import date, datetime
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from ..auth import SignInLimited, WebSession, WebSessions
from ..errors import BadRequest, Forbidden, NotFound, Unauthorized
from ..links import Links
from ..settings import Settings
from ..views import web as views
from ..web import FrontDoor

#: The cookie that names a browser's sign-in, and the one that carries the sign-in form's token.
COOKIE = "reeldb_session"
FORM_COOKIE = "reeldb_signin"
NO_SCHEMA = {"include_in_schema": False}
#: A page: left out of the schema, and answering HEAD as its GET without a body (server/guard.py).
PAGE = {"include_in_schema": False, "opt": {"head": True}}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)
HTML = {"cache-control": "no-store"}


def _html(text: str, status: int = 200, cookies: list[Cookie] | None = None) -> Response[str]:
    return Response(text, media_type=MediaType.HTML, status_code=status, headers=HTML, cookies=cookies)


def _cookie(request: Request, name: str, value: str | None, max_age: int | None = None) -> Cookie:
    return Cookie(key=name, value=value or "", path="/", httponly=True, samesite="strict",
                  secure=request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https",
                  max_age=0 if value is None else max_age)


def _local_path(value: str | None, default: str = "/") -> str:
    """Only a path of this site (``/…``, never ``//host``): where to go after a form."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or urlsplit(value).netloc:
        return default
    return value


def same_origin(request: Request) -> None:
    """Refuse a form posted from another site (the cookie's SameSite=Strict keeps it out too)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden("This form was sent from another site and is refused.")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise Forbidden("This form was sent from another site and is refused.")


def checked(request: Request, viewer: WebSession, form: dict[str, Any] | None = None) -> None:
    """A change asked for by this site's own page: same origin and the session's CSRF token."""
    same_origin(request)
    sent = request.headers.get("x-csrf-token") or (form or {}).get("csrf") or ""
    if not hmac.compare_digest(str(sent).encode(), viewer.csrf.encode()):
        raise Forbidden("This form is out of date: reload the page and try again.")


async def signed_in(request: Request, web_sessions: WebSessions) -> WebSession | None:
    return await web_sessions.find(request.cookies.get(COOKIE))


def sign_in_redirect(request: Request, exc: Exception) -> Response[Any]:
    """Where a page asked for without a sign-in goes: the sign-in page, then back here."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/signin" + (f"?{urlencode({'next': target})}" if request.method == "GET" and target != "/" else "")
    if request.headers.get("hx-request"):
        return Response("", status_code=200, headers={"hx-redirect": location})
    if request.method != "GET" and request.url.path.startswith("/library/upload"):
        return Response({"success": False, "message": "You are signed out: sign in again."}, status_code=401)
    return Redirect(location, status_code=303)


# -- sign in / out ---------------------------------------------------------------------------------
@get("/signin", **PAGE)
async def sign_in_page(request: Request, next: str | None = None) -> Response[str]:
    token = secrets.token_urlsafe(24)
    return _html(views.sign_in(token, next_url=_local_path(next)), cookies=[_cookie(request, FORM_COOKIE, token)])


@post("/signin", status_code=200, **NO_SCHEMA)
async def sign_in(request: Request, web_sessions: WebSessions, data: dict[str, Any] = Form) -> Response[Any]:
    same_origin(request)
    token = secrets.token_urlsafe(24)
    again = [_cookie(request, FORM_COOKIE, token)]
    next_url = _local_path(data.get("next"))
    sent, expected = str(data.get("csrf") or ""), request.cookies.get(FORM_COOKIE) or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return _html(views.sign_in(token, "The sign-in form had expired: try again.", next_url), 400, again)
    client = request.client.host if request.client else "unknown"
    try:
        secret, _ = await web_sessions.sign_in(str(data.get("key") or ""), client)
    except SignInLimited as exc:
        return _html(views.sign_in(token, f"Too many attempts: wait {exc.retry_after} seconds, then try again.",
                                   next_url), 429, again)
    except Unauthorized:
        return _html(views.sign_in(token, "That key did not work. Check it and try again.", next_url), 401, again)
    return Redirect(next_url, status_code=303,
                    cookies=[_cookie(request, COOKIE, secret), _cookie(request, FORM_COOKIE, None)])


@get("/signin/link", **NO_SCHEMA)  # no HEAD: a HEAD must not spend the one-time link
async def sign_in_link(request: Request, web_sessions: WebSessions, token: str = "") -> Response[Any]:
    found = await web_sessions.redeem_link(token) if 0 < len(token) <= 128 else None
    if found is None:
        return _html(views.link_expired(), 410)
    return Redirect("/", status_code=303, cookies=[_cookie(request, COOKIE, found[0])])


@post("/signout", status_code=200, **NO_SCHEMA)
async def sign_out(request: Request, viewer: WebSession, web_sessions: WebSessions,
                   data: dict[str, Any] = Form) -> Response[Any]:
    checked(request, viewer, data)
    await web_sessions.sign_out(request.cookies.get(COOKIE, ""))
    return Redirect("/signin", status_code=303, cookies=[_cookie(request, COOKIE, None)])


# -- the library -----------------------------------------------------------------------------------
def _day(value: str | None, after: bool = False) -> float | None:
    """``YYYY-MM-DD`` as the local midnight that starts it (``after``: the one that ends it)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return datetime(day.year, day.month, day.day).timestamp() + (86400 if after else 0)


@get("/", **PAGE)
async def library(request: Request, front: FrontDoor, links: Links, settings: Settings, viewer: WebSession,
                  collection: str = "default", kind: str = "", since: str = "", until: str = "", page: int = 1,
                  notice: str | None = None) -> Response[str]:
    recordings = {"recordings": True, "uploads": False}.get(kind)
    try:
        shelf = await front.shelf(collection, recordings, _day(since), _day(until, after=True), page,
                                  links.base_url(request))
    except NotFound:
        return _html(views.message("No such collection", "That collection does not exist (any more).",
                                   viewer.csrf), 404)
    except BadRequest as exc:
        return _html(views.message("Library", exc.message, viewer.csrf), 400)
    filters = {"collection": collection if collection != "default" else "", "kind": kind if recordings is not None
               else "", "since": since, "until": until}
    return _html(views.library(shelf, filters, viewer.csrf, settings.max_upload_bytes, notice))


@get("/library/search", **PAGE)
async def search(request: Request, front: FrontDoor, links: Links, viewer: WebSession, q: str = "",
                 collection: str = "default") -> Response[str]:
    try:
        moments = await front.search(collection, q, links.base_url(request))
    except (BadRequest, NotFound) as exc:
        return _html(views.search_results(q, collection, [], viewer.csrf, exc.message))
    return _html(views.search_results(q, collection, moments, viewer.csrf))


@get("/library/open/{media_id:str}", **NO_SCHEMA)
async def open_video(media_id: str, request: Request, front: FrontDoor, links: Links, viewer: WebSession,
                     start: float | None = None, end: float | None = None) -> Response[Any]:
    try:
        return Redirect(await front.player_url(media_id, start, end, links.base_url(request)), status_code=303)
    except NotFound:
        return Redirect("/?notice=gone", status_code=303)
    except BadRequest as exc:
        return _html(views.message("Not ready yet", exc.message, viewer.csrf), 409)


@post("/library/media/{media_id:str}/rename", status_code=200, **NO_SCHEMA)
async def rename(media_id: str, request: Request, front: FrontDoor, viewer: WebSession,
                 data: dict[str, Any] = Form) -> Response[Any]:
    return await _change_video(request, viewer, data, lambda: front.rename(media_id, str(data.get("name") or "")),
                               "renamed", f"#m-{media_id}")


@get("/library/media/{media_id:str}/delete", **PAGE)
async def confirm_delete(media_id: str, front: FrontDoor, viewer: WebSession, back: str = "/") -> Response[Any]:
    try:
        video = await front.video(media_id)
    except NotFound:
        return Redirect(_with_notice(_local_path(back), "gone"), status_code=303)
    return _html(views.confirm_delete(video, viewer.csrf, _local_path(back)))


@post("/library/media/{media_id:str}/delete", status_code=200, **NO_SCHEMA)
async def delete(media_id: str, request: Request, front: FrontDoor, viewer: WebSession,
                 data: dict[str, Any] = Form) -> Response[Any]:
    return await _change_video(request, viewer, data, lambda: front.delete(media_id), "deleted")


async def _change_video(request: Request, viewer: WebSession, data: dict[str, Any],
                        change: Callable[[], Awaitable[Any]], notice: str, anchor: str = "") -> Response[Any]:
    """A change to one video from a library form: checked first, made, then back to the library
    saying so (or that the video is gone, deleted in another tab)."""
    checked(request, viewer, data)
    back = _local_path(data.get("back"))
    try:
        await change()
    except NotFound:
        return Redirect(_with_notice(back, "gone"), status_code=303)
    except BadRequest as exc:
        return _html(views.message("Not changed", exc.message, viewer.csrf), 400)
    return Redirect(_with_notice(back, notice) + anchor, status_code=303)


def _with_notice(back: str, notice: str) -> str:
    path, _, query = back.partition("?")
    kept = "&".join(p for p in query.split("&") if p and not p.startswith("notice="))
    return f"{path}?{kept + '&' if kept else ''}notice={notice}"


# -- record and upload -----------------------------------------------------------------------------
@post("/library/record", status_code=200, **NO_SCHEMA)
async def new_recording(request: Request, front: FrontDoor, viewer: WebSession,
                        data: dict[str, Any] = Form) -> Response[Any]:
    """A capture session and its client token, minted here for the signed-in user; the capture
    page gets the token in the URL's fragment (never sent to a server, kept for the tab)."""
    checked(request, viewer, data)
    session_id, token = await front.new_recording(viewer.principal, str(data.get("collection") or "default"))
    return Redirect(f"/capture?{urlencode({'session_id': session_id})}#{urlencode({'token': token})}",
                    status_code=303)


@post("/library/record/{session_id:str}/token", status_code=200, **NO_SCHEMA)
async def recording_token(request: Request, front: FrontDoor, viewer: WebSession, session_id: str) -> dict[str, Any]:
    """A client token for the capture page of a recording of the signed-in user's, opened in a tab
    that has none: it takes the recording over. Asked for by the page's script with a JSON body from
    this origin (a cross-site form can send neither, and the cookie is SameSite=Strict); the page
    has no form, so no CSRF token to carry."""
    same_origin(request)
    if (request.headers.get("content-type") or "").split(";")[0].strip() != "application/json":
        raise Forbidden("Ask for a recording's token from its capture page.")
    return {"success": True, "data": {"token": await front.recording_token(viewer.principal, session_id)}}


@post("/library/upload-slot", status_code=200, **NO_SCHEMA)
async def upload_slot(request: Request, front: FrontDoor, links: Links, viewer: WebSession,
                      collection: str = "default", name: str | None = None) -> dict[str, Any]:
    checked(request, viewer)
    url = await front.upload_slot(collection, (name or "")[:200] or None, links.base_url(request))
    return {"success": True, "data": {"upload_url": url}}


@post("/library/upload-add", status_code=200, **NO_SCHEMA)
async def upload_add(request: Request, front: FrontDoor, viewer: WebSession, url: str,
                     collection: str = "default", name: str | None = None) -> dict[str, Any]:
    checked(request, viewer)
    job_id = await front.import_upload(collection, url, (name or "")[:200] or None)
    return {"success": True, "data": {"job_id": job_id}}


@get("/library/upload/{job_id:str}", **NO_SCHEMA)
async def upload_state(job_id: str, front: FrontDoor, viewer: WebSession) -> dict[str, Any]:
    return {"success": True, "data": await front.upload_state(job_id)}


handlers = [sign_in_page, sign_in, sign_in_link, sign_out, library, search, open_video, rename, confirm_delete,
            delete, new_recording, recording_token, upload_slot, upload_add, upload_state]

