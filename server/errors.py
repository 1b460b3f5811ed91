"""Typed errors and the one mapping that turns any error into VideoDB's envelope.

Services and routes raise these, and the stages raise their own typed errors (each with a
``code`` and a message written for users); none of them builds an error response. The one
handler here maps every failure, litestar's own included (unknown route, bad JSON, validation),
to ``{"success": false, "message", "error_code"}`` with a 4xx status. Anything else is a bug:
a 500 whose body carries only an opaque id, and whose traceback goes to the log under that id.
"""

from __future__ import annotations

import errno
import logging
import math
import re
import uuid
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from reeldb.capture.ingest import IngestError, SessionClosedError
from reeldb.export import ExportError, MediaError
from reeldb.export.editor.model import AssetNotFound, CaptionsUnavailable
from reeldb.index.models import ModelError
from reeldb.index.search import SearchError
from reeldb.index.transcribe import TranscribeError

from . import text

log = logging.getLogger("reeldb.server")


class ApiError(Exception):
    status_code = 400
    error_code = "INVALID_REQUEST"

    def __init__(self, message: str, *, error_code: str | None = None, retry_after: float | None = None) -> None:
        """``retry_after``: seconds after which asking again may succeed (``Retry-After``, whole
        seconds, at least 1): a spent budget, or something that exists once work under way ends."""
        super().__init__(message)
        self.message = message
        if error_code:
            self.error_code = error_code
        self.headers = {"retry-after": str(max(1, math.ceil(retry_after)))} if retry_after is not None else {}


class BadRequest(ApiError):
    status_code = 400
    error_code = "VALIDATION_ERROR"


class Unauthorized(ApiError):
    status_code = 401
    error_code = "UNAUTHORIZED"


class Forbidden(ApiError):
    status_code = 403
    error_code = "FORBIDDEN"


class NotFound(ApiError):
    status_code = 404
    error_code = "NOT_FOUND"


class Conflict(ApiError):
    """A request that is well formed but not allowed in the current state (e.g. an illegal transition)."""

    status_code = 409
    error_code = "INVALID_STATE"


class InsufficientStorage(ApiError):
    """The media root is below its free-space floor (``REELDB_DISK_FLOOR_MB``): nothing is written."""

    status_code = 507
    error_code = "INSUFFICIENT_STORAGE"


class InternalError(ApiError):
    """A job crashed: the client learns that it did and where to look, not the exception's text."""

    status_code = 500
    error_code = "INTERNAL_ERROR"


class Unavailable(ApiError):
    """A call of VideoDB's API that ReelDB does not offer: the message names the feature and why."""

    status_code = 501
    error_code = "NOT_AVAILABLE"


#: (method, path regex, message): an SDK call ReelDB does not offer on a path that takes other
#: methods (``routes/unavailable.py`` lists them; the app keeps them in ``app.state.unoffered``).
#: Their 405 keeps its status and ``Allow`` (so the OpenAPI document stays true) and says what a 501
#: would say.
UnofferedMethod = tuple[str, "re.Pattern[str]", str]


class PayloadTooLarge(ApiError):
    status_code = 413
    error_code = "PAYLOAD_TOO_LARGE"


class JobFailed(Exception):
    """Raise from a job handler for an expected failure; its message is shown to the user as is."""

    code = "JOB_FAILED"


#: The stages' error roots, by the status they mean: their messages are safe to show.
STAGE_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (SessionClosedError, 409, "INVALID_STATE"),
    (IngestError, 400, "INVALID_OFFER"),
    (AssetNotFound, 404, "NOT_FOUND"),
    (CaptionsUnavailable, 409, "INVALID_STATE"),
    (ExportError, 400, "EXPORT_FAILED"),
    (MediaError, 400, "MEDIA_UNREADABLE"),
    (SearchError, 400, "SEARCH_FAILED"),
    (TranscribeError, 400, "TRANSCRIBE_FAILED"),
    (ModelError, 503, "MODEL_UNAVAILABLE"),
    (JobFailed, 400, "JOB_FAILED"),
)


def classify(exc: BaseException) -> tuple[int, str, str] | None:
    """(status, error_code, message) for an error users may see; None for a bug."""
    if isinstance(exc, RecursionError):  # the JSON decoder's depth limit, on a hostile body
        return 400, "VALIDATION_ERROR", "Request body is nested too deeply"
    cause: BaseException | None = exc
    while cause is not None:  # a file route asked for a name no file system holds (litestar wraps it)
        if isinstance(cause, OSError) and cause.errno == errno.ENAMETOOLONG:
            return 404, "NOT_FOUND", "No such file: the name is too long"
        cause = cause.__cause__
    if isinstance(exc, ApiError):
        return exc.status_code, exc.error_code, exc.message
    for root, status, code in STAGE_ERRORS:
        if isinstance(exc, root):
            own = getattr(exc, "code", None)
            return status, own if isinstance(own, str) else code, str(exc)
    return None


def safe_error(exc: BaseException) -> tuple[str, str]:
    """(message, code) to store for a failed job; ``INTERNAL_ERROR`` hides a bug's text."""
    known = classify(exc)
    return (known[2], known[1]) if known else ("Internal error", "INTERNAL_ERROR")


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
