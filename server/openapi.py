"""Make the OpenAPI document say what the server really sends when something goes wrong.

litestar documents its own ``{detail, status_code}`` error body, and only for validation; every
error ReelDB sends is the envelope ``{"success": false, "message", "error_code"}`` (server/errors.py),
with the statuses below. This rewrites each operation's error responses once, after litestar
has built the document, so clients and schema-driven testers see the truth.
"""

from __future__ import annotations

from typing import Any

from litestar.openapi.spec import OpenAPI, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Schema

from reeldb.export.editor.schema import EDITOR_BODY, LEGACY_BODY

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


def _fixed_tuples(schema: Any) -> None:
    """litestar writes ``tuple[float, float]`` as ``prefixItems`` alone, which JSON Schema reads as
    "up to two numbers, then anything"; msgspec accepts exactly two. Say so."""
    if isinstance(schema, Schema):
        if schema.prefix_items and schema.min_items is None:
            schema.min_items = schema.max_items = len(schema.prefix_items)
            schema.items = False  # type: ignore[assignment]
        for value in (schema.items, *(schema.prefix_items or ()), *(schema.properties or {}).values(),
                      *(schema.one_of or ()), *(schema.any_of or ()), *(schema.all_of or ())):
            _fixed_tuples(value)


def json_schema(value: Any) -> Any:
    """A JSON Schema written as a dict (the editor's bodies, ``reeldb.export.editor.schema``) as
    litestar's spec objects."""
    if isinstance(value, list):
        return [json_schema(v) for v in value]
    if not isinstance(value, dict):
        return value
    names = {"oneOf": "one_of", "anyOf": "any_of", "allOf": "all_of", "additionalProperties": "additional_properties",
             "minItems": "min_items", "maxItems": "max_items", "minLength": "min_length", "maxLength": "max_length",
             "exclusiveMinimum": "exclusive_minimum", "exclusiveMaximum": "exclusive_maximum"}
    out: dict[str, Any] = {}
    for key, v in value.items():
        if key == "type":
            out["type"] = [OpenAPIType(t) for t in v] if isinstance(v, list) else OpenAPIType(v)
        elif key == "properties":
            out["properties"] = {k: json_schema(s) for k, s in v.items()}
        elif key in ("items", "contains", "additionalProperties", "oneOf", "anyOf", "allOf"):
            out[names.get(key, key)] = json_schema(v)
        elif key in ("enum", "required"):
            out[key] = list(v)
        else:
            out[names.get(key, key)] = v
    return Schema(**out)


#: Request bodies the handlers take as plain JSON and parse themselves, documented exactly.
OWN_BODIES = {("/editor", "post"): EDITOR_BODY, ("/timeline", "post"): LEGACY_BODY}


def describe_bodies(document: OpenAPI) -> OpenAPI:
    """Constraints litestar leaves out of the document: fixed-length tuples, and a top-level list
    body's ``min_length`` (``POST /compile`` takes at least one part); and the bodies the editor
    parses itself (its timelines), as its parsers accept them."""
    for (path, method), body_schema in OWN_BODIES.items():
        operation = getattr((document.paths or {}).get(path), method, None)
        if operation is not None and operation.request_body is not None:
            operation.request_body.content["application/json"].schema = json_schema(body_schema)
    for schema in ((document.components.schemas or {}).values() if document.components else ()):
        _fixed_tuples(schema)
    compile_op = (document.paths or {}).get("/compile")
    if compile_op is not None and compile_op.post is not None and compile_op.post.request_body is not None:
        body = compile_op.post.request_body.content["application/json"].schema
        if isinstance(body, Schema):
            body.min_items, body.max_items = 1, 500
    return document


def describe_errors(document: OpenAPI) -> OpenAPI:
    for item in (document.paths or {}).values():
        for method in _METHODS:
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = {code: r for code, r in (operation.responses or {}).items() if not code.startswith(("4", "5"))}
            page = any("text/html" in (r.content or {}) for r in responses.values() if isinstance(r, OpenAPIResponse))
            for code, description in ERRORS.items():
                content = {"application/json": OpenAPIMediaType(schema=ENVELOPE)}
                if page and code == "404":  # pages answer a bad link with a page
                    content = {"text/html": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))}
                responses[code] = OpenAPIResponse(description=description, content=content)
            operation.responses = responses
    return document
