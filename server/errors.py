"""Typed errors, and which of them users may see: status, code and message (:func:`classify`).

Services and routes raise these, and the stages raise their own typed errors (each with a
``code`` and a message written for users); none of them builds an error response. The one
handler that turns any failure into VideoDB's envelope is ``error_responses.py``: this module
imports no web framework, so a job's child process (``jobs/child_main.py``) can name a failure
without importing litestar.
"""

from __future__ import annotations

import errno
import math
import re

from reeldb.capture.errors import IngestError, SessionClosedError
from reeldb.export import ExportError, MediaError
from reeldb.export.editor.model import AssetNotFound, CaptionsUnavailable
from reeldb.index.models import ModelError
from reeldb.index.search import SearchError
from reeldb.index.transcribe import TranscribeError


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
