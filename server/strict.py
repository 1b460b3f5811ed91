"""Request bodies decoded strictly, as the OpenAPI document describes them.

litestar converts handler arguments with msgspec's lax mode, which turns ``0`` into ``false`` and
``"5"`` into ``5``: a body the schema calls invalid would be accepted. This ``before_request``
hook decodes the JSON body once more, strictly, against the handler's declared ``data`` type,
and refuses what does not match with the same 400 as any validation error.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException


async def strict_body(request: Request[Any, Any, Any]) -> None:
    handler = request.scope.get("route_handler")
    signature = getattr(handler, "parsed_fn_signature", None)
    parameter = signature.parameters.get("data") if signature is not None else None
    if parameter is None or "json" not in request.headers.get("content-type", "json"):
        return
    body = await request.body()
    if not body:
        return
    try:
        msgspec.json.decode(body, type=parameter.annotation, strict=True)
    except msgspec.ValidationError as exc:
        if str(exc).startswith("Expected `int`, got `float`"):
            return  # JSON Schema's integers include 280.0; the lax pass takes it, and refuses 280.5
        path = str(exc).rsplit(" - at `$.", 1)
        key = path[1].rstrip("`").split(".")[0].split("[")[0] if len(path) == 2 else None
        raise ValidationException(detail="Validation failed",
                                  extra=[{"key": key, "message": path[0]}]) from None
    except (msgspec.DecodeError, RecursionError):
        return  # not JSON, or too deep: the regular decoding answers that
