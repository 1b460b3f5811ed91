"""Typed errors and the one handler that turns any error into VideoDB's envelope.

Route code raises these; it never builds an error response itself, so every failure, including
litestar's own (unknown route, bad JSON, validation), reaches the client as
``{"success": false, "message": ...}`` with a 4xx status, and nothing unexpected leaks as a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

log = logging.getLogger("reeldb.server")


class ApiError(Exception):
    status_code = 400
    error_code = "INVALID_REQUEST"

    def __init__(self, message: str, *, error_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error_code:
            self.error_code = error_code


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


class PayloadTooLarge(ApiError):
    status_code = 413
    error_code = "PAYLOAD_TOO_LARGE"


def envelope_error(message: str, status: int, error_code: str) -> Response[dict[str, Any]]:
    return Response(
        {"success": False, "message": message, "error_code": error_code},
        status_code=status,
    )


def _validation_message(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        key = item.get("key")
        msg = item.get("message", "invalid")
        parts.append(f"{key}: {msg}" if key else str(msg))
    detail = exc.detail or "Invalid request body"
    if "JSON" in detail or "decode" in detail.lower():
        detail = "Request body is not valid JSON"
    return detail + (": " + "; ".join(parts) if parts else "")


def handle_exception(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    if isinstance(exc, ApiError):
        return envelope_error(exc.message, exc.status_code, exc.error_code)
    if isinstance(exc, ValidationException):
        return envelope_error(_validation_message(exc), 400, "VALIDATION_ERROR")
    if isinstance(exc, HTTPException):
        code = exc.status_code
        names = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        message = exc.detail or "Request failed"
        if code == 404 and message == "Not Found":
            message = f"No such endpoint: {request.method} {request.url.path}"
        return envelope_error(message, code, names.get(code, "INVALID_REQUEST"))
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return envelope_error("Internal server error", 500, "INTERNAL_ERROR")
