"""Make the OpenAPI document say what the server really sends when something goes wrong.

litestar documents its own ``{detail, status_code}`` error body, and only for validation; every
error ReelDB sends is the envelope ``{"success": false, "message", "error_code"}`` (server/errors.py),
with the statuses below. This rewrites each operation's error responses once, after litestar
has built the document, so clients and schema-driven testers see the truth.
"""

from __future__ import annotations

from litestar.openapi.spec import OpenAPI, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Schema

ENVELOPE = Schema(
    type=OpenAPIType.OBJECT,
    required=["success", "message"],
    properties={
        "success": Schema(type=OpenAPIType.BOOLEAN, const=False),
        "message": Schema(type=OpenAPIType.STRING),
        "error_code": Schema(type=OpenAPIType.STRING),
    },
)

#: Every status the error mapping and the request guard can answer with, for any operation.
ERRORS = {
    "400": "Bad request: the body, a parameter or the media is not acceptable",
    "401": "Missing, invalid, expired or revoked credentials",
    "403": "The credentials are valid but do not reach this resource (e.g. a client token)",
    "404": "No such id, route or link",
    "405": "Method not allowed on this route",
    "409": "Not allowed in the resource's current state",
    "413": "Payload too large",
    "414": "URL too long",
    "416": "Range not satisfiable",
    "431": "Request headers too large",
    "500": "A bug: the body names an incident id that the server log has",
    "503": "A model or resource the request needs is not available",
}

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def describe_errors(document: OpenAPI) -> OpenAPI:
    for item in (document.paths or {}).values():
        for method in _METHODS:
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = {code: r for code, r in (operation.responses or {}).items() if not code.startswith(("4", "5"))}
            for code, description in ERRORS.items():
                responses[code] = OpenAPIResponse(
                    description=description,
                    content={"application/json": OpenAPIMediaType(schema=ENVELOPE)})
            operation.responses = responses
    return document
