"""The one mapping that turns any error into VideoDB's envelope: the app's (and an ingest
worker's) exception handler.

Every failure, litestar's own included (unknown route, bad JSON, validation), becomes
``{"success": false, "message", "error_code"}`` with a 4xx status (:func:`errors.classify` says
which errors users may see). Anything else is a bug: a 500 whose body carries only an opaque id,
and whose traceback goes to the log under that id.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from . import text
from .errors import ApiError, Unavailable, classify

log = logging.getLogger("reeldb.server")


def envelope_error(message: str, status: int, error_code: str,
                   headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    return Response(
        {"success": False, "message": message, "error_code": error_code},
        status_code=status, headers=headers,
    )


#: How a field's schema violation reads to users, where a plainer sentence exists.
FIELD_HINTS = {
    "end_user_id": "end_user_id is required",
    "session_id": "session_id is required",
    "callback_url": "callback_url must be an http(s) URL",
    "expires_in": "expires_in must be between 1 and the server's token lifetime limit (REELDB_TOKEN_MAX_TTL) seconds",
    "status": "status must be one of created, starting, active, stopping, stopped, exported, failed",
    "index_type": "index_type is not supported; ReelDB indexes spoken_word",
    "type": "this workflow type is not supported; ReelDB runs add_subtitles",
}
#: How a pattern's violation reads (msgspec names the pattern, as its ``repr``, in its message).
PATTERN_HINTS = ((text.NAME_PATTERN, "must be one line of text, not blank, without control characters"),
                 (text.DESCRIPTION_PATTERN, "must be text without control characters (tabs and line breaks are fine)"),
                 (text.NON_BLANK_PATTERN, "must not be empty"), (text.WORDS_PATTERN, "must not be empty"))
_MISSING = re.compile(r"Object missing required field `([^`]+)`")


def _plain(key: str | None, msg: str) -> str:
    """One validation complaint from litestar/msgspec, phrased for a user of the API."""
    missing = _MISSING.search(msg)
    if missing:
        return f"{missing.group(1)} is required"
    field = (key or "").removeprefix("data.")
    if field in FIELD_HINTS:
        return FIELD_HINTS[field]
    hint = next((hint for pattern, hint in PATTERN_HINTS if f"matching regex {pattern!r}" in msg), None)
    if hint:
        return f"{field} {hint}"
    return f"{field}: {msg}" if field and field != "data" else msg


def _validation_message(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts = [_plain(item.get("key"), str(item.get("message", "invalid"))) for item in extra if isinstance(item, dict)]
    detail = exc.detail or "Invalid request body"
    if "JSON" in detail or "decode" in detail.lower():
        return "Request body is not valid JSON" + (": " + "; ".join(parts) if parts else "")
    return "; ".join(parts) if parts else detail


def handle_exception(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    known = classify(exc)
    if known is not None:
        status, code, message = known
        extra = exc.headers if isinstance(exc, ApiError) else None  # Retry-After, when it says one
        return envelope_error(message, status, code, extra or None)
    if isinstance(exc, ValidationException):
        return envelope_error(_validation_message(exc), 400, "VALIDATION_ERROR")
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        code = exc.status_code
        names = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        message = exc.detail or "Request failed"
        if code == 404 and message == "Not Found":
            message = f"No such endpoint: {request.method} {request.url.path}"
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() in ("allow", "www-authenticate")}
        if code == 405:  # litestar names only the methods of a path's first handler: the guard knows all
            unoffered = next((text for method, pattern, text in getattr(request.app.state, "unoffered", ())
                              if method == request.method and pattern.fullmatch(request.url.path.rstrip("/"))), None)
            if unoffered:
                message, names[405] = unoffered, Unavailable.error_code
            guard = getattr(request.app.state, "guard", None)
            learned = guard.allow(request.url.path) if guard is not None else None
            if learned:
                headers = {**{k: v for k, v in headers.items() if k.lower() != "allow"}, "allow": learned}
            elif "allow" not in {k.lower() for k in headers}:
                headers["allow"] = "GET, HEAD"  # the static files router does not say
        return envelope_error(message, code, names.get(code, "INVALID_REQUEST"), headers or None)
    incident = uuid.uuid4().hex[:12]
    log.error("unhandled error %s on %s %s", incident, request.method, request.url.path, exc_info=exc)
    return envelope_error(f"Internal server error (incident {incident})", 500, "INTERNAL_ERROR")
