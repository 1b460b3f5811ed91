"""The pages for people as HTML (issue 22): sign in, the library, search results, confirmations.

Plain strings with every value escaped; no templating engine. Each page works as plain links and
forms; htmx (``player/static/htmx.min.js``) swaps the library's list and the search results in
place, and ``web.js`` adds drag-and-drop upload. Forms carry the session's CSRF token, htmx
requests send it as ``x-csrf-token`` (``hx-headers`` on ``<body>``).
"""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any
from urllib.parse import urlencode

from ..web import Shelf

#: What the library's notice names say (``/?notice=...``: the text never comes from the URL).
NOTICES = {
    "gone": "That video is no longer in the library: it was deleted, perhaps in another tab.",
    "deleted": "The video was deleted, with its recording files, renditions and index.",
    "renamed": "The title is saved.",
    "signed-out": "You are signed out.",
}
INDEX_STATES = {"indexed": "Searchable", "indexing": "Indexing…", "none": "Not indexed"}
STATIC = "/player/static"


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, *, csrf: str | None = None, signed_in: bool = True, heading: str | None = None,
         notice: str | None = None, data: dict[str, str] | None = None) -> str:
    """A whole page: the header (with sign-out when signed in), one ``<main>``, the scripts."""
    attrs = "".join(f' data-{k}="{esc(v)}"' for k, v in (data or {}).items())
    if csrf:
        attrs += f" hx-headers='{esc(json.dumps({'x-csrf-token': csrf}))}'"
    nav = ""
    if signed_in:
        nav = (f'<nav aria-label="Main"><a href="/">Library</a><a href="/schema">API docs</a>'
               f'<a href="/docs">Docs</a>'
               f'<form method="post" action="/signout" class="inline">{csrf_field(csrf)}'
               f'<button type="submit" class="link">Sign out</button></form></nav>')
    shown = f'<p class="notice" role="status">{esc(notice)}</p>' if notice else ""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="referrer" content="same-origin"><title>{esc(title)} · ReelDB</title>'
            f'<link rel="icon" href="/favicon.ico"><link rel="stylesheet" href="{STATIC}/web.css">'
            f'<script src="{STATIC}/htmx.min.js" defer></script><script src="{STATIC}/web.js" defer></script>'
            f'</head><body{attrs}><a class="skip" href="#main">Skip to the content</a>'
            f'<header class="top"><a class="brand" href="/">ReelDB</a>{nav}</header>'
            f'<main id="main"><h1>{esc(heading or title)}</h1>{shown}{body}</main></body></html>')


def csrf_field(csrf: str | None) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(csrf)}">' if csrf else ""


def sign_in(csrf: str, error: str | None = None, next_url: str = "/") -> str:
    problem = f'<p class="error" role="alert" id="signin-error">{esc(error)}</p>' if error else ""
    described = ' aria-describedby="signin-error" aria-invalid="true"' if error else ""
    body = (f'{problem}<form method="post" action="/signin" class="card">{csrf_field(csrf)}'
            f'<input type="hidden" name="next" value="{esc(next_url)}">'
            f'<label for="key">API key</label>'
            f'<input id="key" name="key" type="password" autocomplete="current-password" required '
            f'spellcheck="false"{described}>'
            f'<p class="hint">The key <code>reeldb serve</code> printed or saved in the data folder '
            f'(<code>api_key</code>), or one from <code>reeldb keys create</code>.</p>'
            f'<button type="submit" class="primary">Sign in</button></form>')
    return page("Sign in", body, signed_in=False, heading="Sign in to ReelDB")


def link_expired() -> str:
    body = ('<p>This sign-in link has expired or was already used: each link works once, for a short '
            'while.</p><p>Ask for a new one: restart <code>reeldb serve</code> (it prints a fresh link), '
            'or <a href="/signin">sign in with your API key</a>.</p>')
    return page("Sign-in link expired", body, signed_in=False)


def message(title: str, text: str, csrf: str | None, signed_in: bool = True) -> str:
    return page(title, f'<p>{esc(text)}</p><p><a href="/">Back to the library</a></p>', csrf=csrf,
                signed_in=signed_in)


# -- the library -----------------------------------------------------------------------------------
def length(seconds: float | None) -> str:
    if not seconds:
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def when(ts: float) -> str:
    t = time.localtime(ts)
    return f"{t.tm_mday} {time.strftime('%b %Y, %H:%M', t)}"


def size_in_words(size: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def library(shelf: Shelf, filters: dict[str, str], csrf: str, max_upload: int, notice: str | None) -> str:
    coll = shelf.collection
    back = "/?" + urlencode({k: v for k, v in filters.items() if v})
    options = "".join(f'<option value="{esc(c.id)}"{" selected" if c.id == coll.id else ""}>'
                      f'{esc(c.name or c.id)}</option>' for c in shelf.collections)
    kinds = "".join(f'<option value="{v}"{" selected" if filters.get("kind", "") == v else ""}>{label}</option>'
                    for v, label in (("", "Recordings and videos"), ("recordings", "Recordings"),
                                     ("uploads", "Uploaded videos")))
    actions = (f'<div class="actions"><form method="post" action="/library/record">{csrf_field(csrf)}'
               f'<input type="hidden" name="collection" value="{esc(coll.id)}">'
               f'<button type="submit" class="primary">New recording</button></form>'
               f'<div id="drop" class="drop" data-collection="{esc(coll.id)}" data-max="{max_upload}" '
               f'data-max-words="{esc(size_in_words(max_upload))}">'
               f'<p>Drop a video here to upload it (up to {esc(size_in_words(max_upload))}), or '
               f'<label class="file">choose a file<input type="file" id="file" accept="video/*"></label>.</p>'
               f'<div id="upload" hidden><progress id="upload-progress" max="100" value="0" '
               f'aria-label="Upload progress"></progress> <span id="upload-state" role="status"></span> '
               f'<button type="button" id="upload-retry" hidden>Try again</button></div></div></div>')
    search = (f'<form role="search" action="/library/search" method="get" class="search" '
              f'hx-get="/library/search" hx-target="#results" hx-select="#results" hx-swap="outerHTML" '
              f'hx-push-url="true">'
              f'<input type="hidden" name="collection" value="{esc(coll.id)}">'
              f'<label for="q">Search what was said</label><input id="q" name="q" type="search" required>'
              f'<button type="submit">Search</button></form>')
    filters_form = (f'<form method="get" action="/" class="filters" hx-get="/" hx-target="#shelf" '
                    f'hx-select="#shelf" hx-swap="outerHTML" hx-push-url="true">'
                    f'<label>Collection <select name="collection">{options}</select></label>'
                    f'<label>Show <select name="kind">{kinds}</select></label>'
                    f'<label>From <input type="date" name="since" value="{esc(filters.get("since"))}"></label>'
                    f'<label>Until <input type="date" name="until" value="{esc(filters.get("until"))}"></label>'
                    f'<button type="submit">Apply</button></form>')
    items = "".join(_item(m, csrf, back) for m in shelf.items)
    empty = "" if items else '<p class="empty">Nothing here yet: record something or drop a video above.</p>'
    paging = _paging(shelf, filters)
    shelf_html = (f'<section id="shelf" aria-labelledby="shelf-title"><h2 id="shelf-title">'
                  f'{esc(coll.name or coll.id)}: {shelf.total} {"video" if shelf.total == 1 else "videos"}'
                  f'</h2><ul class="shelf">{items}</ul>{empty}{paging}</section>')
    body = actions + search + '<div id="results"></div>' + filters_form + shelf_html
    return page("Library", body, csrf=csrf, notice=NOTICES.get(notice or ""))


def _item(m: dict[str, Any], csrf: str, back: str) -> str:
    title = m["name"] or m["id"]
    poster = (f'<img src="{esc(m["thumbnail_url"])}" alt="" loading="lazy" width="160" height="90">'
              if m.get("thumbnail_url") else '<span class="noposter" aria-hidden="true"></span>')
    kind = "Recording" if m.get("origin") == "capture" else "Video"
    channels = f'<span>Channels: {esc(", ".join(m["channels"]))}</span>' if m.get("channels") else ""
    mid = esc(m["id"])
    return (f'<li class="item" id="m-{mid}">{poster}<div class="about">'
            f'<h3><a href="/library/open/{mid}">{esc(title)}</a></h3>'
            f'<p class="meta"><span>{kind}</span><span>{length(m.get("length"))}</span>'
            f'<span>{when(m["created_at"])}</span>{channels}'
            f'<span class="state-{esc(m["index_state"])}">{INDEX_STATES[m["index_state"]]}</span></p>'
            f'<div class="tools"><details><summary>Rename<span class="vh"> “{esc(title)}”</span></summary>'
            f'<form method="post" action="/library/media/{mid}/rename">{csrf_field(csrf)}'
            f'<input type="hidden" name="back" value="{esc(back)}">'
            f'<label for="name-{mid}">New title</label><input id="name-{mid}" name="name" value="{esc(title)}" '
            f'required maxlength="300"><button type="submit">Save</button></form></details>'
            f'<a href="/library/media/{mid}/delete?{urlencode({"back": back})}">Delete'
            f'<span class="vh"> “{esc(title)}”</span></a></div></div></li>')


def _paging(shelf: Shelf, filters: dict[str, str]) -> str:
    if shelf.pages <= 1:
        return ""

    def link(n: int, text: str, rel: str) -> str:
        query = urlencode({**{k: v for k, v in filters.items() if v}, "page": n})
        return f'<a href="/?{query}" rel="{rel}">{text}</a>'

    prev = link(shelf.page - 1, "Newer", "prev") if shelf.page > 1 else ""
    nxt = link(shelf.page + 1, "Older", "next") if shelf.page < shelf.pages else ""
    return f'<nav class="paging" aria-label="Pages">{prev}<span>Page {shelf.page} of {shelf.pages}</span>{nxt}</nav>'


def confirm_delete(video: dict[str, Any], csrf: str, back: str) -> str:
    title = video["name"] or video["id"]
    kind = "recording" if video.get("origin") == "capture" else "video"
    body = (f'<p>Delete the {kind} “{esc(title)}”? Its files, renditions, transcript and index go with it'
            f'{", and so do the raw files of each recorded channel" if kind == "recording" else ""}. '
            f'This cannot be undone.</p>'
            f'<form method="post" action="/library/media/{esc(video["id"])}/delete" class="actions">{csrf_field(csrf)}'
            f'<input type="hidden" name="back" value="{esc(back)}">'
            f'<button type="submit" class="danger">Delete “{esc(title)}”</button>'
            f'<a href="{esc(back)}">Keep it</a></form>')
    return page("Delete?", body, csrf=csrf, heading=f"Delete “{title}”?")


# -- search ----------------------------------------------------------------------------------------
def search_results(query: str, collection_id: str, moments: list[dict[str, Any]], csrf: str,
                   error: str | None = None) -> str:
    if error:
        listing = f'<p class="error" role="alert">{esc(error)}</p>'
    elif not moments:
        listing = (f'<p>Nothing said matches “{esc(query)}”. Recordings are searchable once they show '
                   f'“Searchable” in the library.</p>')
    else:
        listing = '<ol class="moments">' + "".join(_moment(m, query) for m in moments) + "</ol>"
    count = f"{len(moments)} {'moment' if len(moments) == 1 else 'moments'}" if moments else "No moments"
    section = (f'<section id="results" aria-labelledby="results-title"><h2 id="results-title">{count} for '
               f'“{esc(query)}”</h2>{listing}</section>')
    form = (f'<form role="search" action="/library/search" method="get" class="search">'
            f'<input type="hidden" name="collection" value="{esc(collection_id)}">'
            f'<label for="q">Search what was said</label>'
            f'<input id="q" name="q" type="search" required value="{esc(query)}">'
            f'<button type="submit">Search</button></form>')
    return page(f"Search: {query}", form + section, csrf=csrf, heading="Search")


def _moment(m: dict[str, Any], query: str) -> str:
    video = m["video"]
    span = urlencode({"start": f"{m['start']:.3f}", "end": f"{m['end']:.3f}"})
    href = f'/library/open/{esc(video["id"])}?{span}'
    thumb = (f'<span class="thumb" role="img" aria-label="The picture at {length(m["start"])}" '
             f'data-storyboard="{esc(m["storyboard_url"])}" data-time="{m["start"]:.3f}" '
             f'style="background-image:url(\'{esc(m["thumbnail_url"])}\')"></span>'
             if m.get("thumbnail_url") else '<span class="noposter" aria-hidden="true"></span>')
    said = f' <span class="channel">({esc(m["channel"])})</span>' if m.get("channel") else ""
    return (f'<li class="moment"><a href="{href}">{thumb}<span class="said">{highlight(m["text"], query)}</span>'
            f'<span class="where">{esc(video["name"])} · {length(m["start"])}–{length(m["end"])}</span></a>'
            f'{said}</li>')


def highlight(text: str, query: str) -> str:
    """``text`` escaped, each word of ``query`` in it (whole or as a word's start) in ``<mark>``."""
    words = sorted({w for w in re.findall(r"\w+", query.lower()) if len(w) > 1}, key=len, reverse=True)
    if not words:
        return esc(text)
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\w*", re.IGNORECASE)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(esc(text[last:match.start()]))
        out.append(f"<mark>{esc(match.group(0))}</mark>")
        last = match.end()
    out.append(esc(text[last:]))
    return "".join(out)
