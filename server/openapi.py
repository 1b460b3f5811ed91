"""Make the OpenAPI document say what the server really sends when something goes wrong.

litestar documents its own ``{detail, status_code}`` error body, and only for validation; every
error ReelDB sends is the envelope ``{"success": false, "message", "error_code"}`` (server/errors.py),
with the statuses below. This rewrites each operation's error responses once, after litestar
has built the document, so clients and schema-driven testers see the truth.
"""

from __future__ import annotations

import json
from importlib.resources import files
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
    "501": "Not available in ReelDB: the message names the missing piece (an SDK call of a feature ReelDB does not offer)",
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


# -- what /schema shows: operations grouped, named, with the answers they really give -------------
#: The groups, in the order the page shows them, with what each is for.
TAGS = {
    "collections": "Collections: the folders media and capture sessions live in.",
    "media": "Videos, audios and images: list, read, rename, delete, thumbnails, files and uploads.",
    "capture": "Capture sessions: created by your backend with the API key, recorded by a client with a "
               "client token.",
    "search": "Transcripts, scenes, the spoken-word and screen-text indexes, and search.",
    "streams": "HLS streams of videos, spans, compilations and live rtstreams.",
    "editor": "Timelines rendered into new videos.",
    "jobs": "The progress and result of asynchronous work, and cancelling it.",
    "operations": "Health of the server.",
}

#: (method, path) → summary; the rest of each operation's text comes from its handler's docstring.
SUMMARIES = {
    ("GET", "/health"): "Is the server up",
    ("GET", "/collection"): "List collections",
    ("POST", "/collection"): "Create a collection",
    ("GET", "/collection/{collection_id}"): "Get a collection",
    ("PATCH", "/collection/{collection_id}"): "Rename or describe a collection",
    ("DELETE", "/collection/{collection_id}"): "Delete an empty collection",
    ("GET", "/collection/{collection_id}/websocket"): "Get a websocket URL for events",
    ("GET", "/files/{token}"): "Download a media file by its signed link",
    ("GET", "/collection/{collection_id}/upload_url"): "Get a signed upload URL",
    ("POST", "/upload/{upload_id}"): "Send a file to an upload URL",
    ("POST", "/collection/{collection_id}/upload"): "Import an uploaded file or a URL",
    ("GET", "/video/{media_id}/thumbnail"): "Get a video's poster",
    ("POST", "/video/{media_id}/thumbnail"): "Make an image of a video's frame",
    ("GET", "/video/{media_id}/thumbnails"): "List a video's frame images",
    ("GET", "/async-response/{job_id}"): "Get a job's progress or result",
    ("POST", "/job/{job_id}/cancel"): "Cancel a job",
    ("GET", "/collection/{collection_id}/capture/session"): "List capture sessions",
    ("POST", "/collection/{collection_id}/capture/session"): "Create a capture session",
    ("GET", "/collection/{collection_id}/capture/session/{session_id}"): "Get a capture session",
    ("POST", "/collection/{collection_id}/capture/session/{session_id}/export"): "Export a capture session",
    ("POST", "/capture/session/token"): "Mint a client token",
    ("POST", "/capture/session/start"): "Start a capture session (recorder)",
    ("GET", "/capture/session/{session_id}"): "Get a capture session (recorder)",
    ("POST", "/capture/session/{session_id}/stop"): "Stop a capture session (recorder)",
    ("POST", "/capture/session/{session_id}/offer"): "Send the recorder's WebRTC offer",
    ("POST", "/capture/session/{session_id}/pause"): "Pause channels (recorder)",
    ("POST", "/capture/session/{session_id}/resume"): "Resume channels (recorder)",
    ("GET", "/stream/{token}/{name}"): "Get a stream's playlist, segment or preview",
    ("GET", "/stream/{token}/t/{spans}"): "Get a playlist of spans of a video",
    ("GET", "/stream/{token}/clips/{entry}/{name}"): "Get a piece of an exact clip",
    ("POST", "/compile"): "Compile spans of videos into one stream",
    ("GET", "/compile/{token}"): "Get a compilation's playlist",
    ("GET", "/rtstream/{rtstream_id}/stream"): "Get a live or recorded rtstream's playlist",
    ("GET", "/rtstream"): "List rtstreams",
    ("GET", "/rtstream/{rtstream_id}"): "Get an rtstream",
    ("PATCH", "/rtstream/{rtstream_id}/status"): "Start or stop an rtstream",
    ("POST", "/rtstream/{rtstream_id}/export"): "Export an rtstream's channel",
    ("GET", "/rtstream/{rtstream_id}/export/status"): "Get an rtstream export's state",
    ("GET", "/rtstream/{rtstream_id}/transcription"): "Get an rtstream's live transcript",
    ("POST", "/rtstream/{rtstream_id}/transcription"): "Start or stop an rtstream's live transcript",
    ("GET", "/rtstream/{rtstream_id}/transcription/status"): "Get an rtstream's transcript state",
    ("POST", "/rtstream/{rtstream_id}/search"): "Search an rtstream's live transcript or one of its live indexes",
    ("GET", "/rtstream/{rtstream_id}/index/scene"): "List an rtstream's live indexes",
    ("POST", "/rtstream/{rtstream_id}/index/scene"): "Create a live index of an rtstream's transcript",
    ("GET", "/rtstream/{rtstream_id}/index/{index_id}"): "Get a live index",
    ("GET", "/rtstream/{rtstream_id}/index/scene/{index_id}"): "Get a live index's records",
    ("PATCH", "/rtstream/{rtstream_id}/index/scene/{index_id}/status"): "Start or stop a live index",
    ("POST", "/rtstream/{rtstream_id}/index/{index_id}/alert"): "Add an alert to a live index",
    ("GET", "/rtstream/{rtstream_id}/index/{index_id}/alert"): "List a live index's alerts",
    ("PATCH", "/rtstream/{rtstream_id}/index/{index_id}/alert/{alert_id}/status"): "Enable or disable an alert",
    ("POST", "/rtstream/event"): "Create an event for alerts",
    ("GET", "/rtstream/event"): "List events",
    ("POST", "/video/{media_id}/search/v2"): "Search a video (v2)",
    ("POST", "/video/{media_id}/search"): "Search a video",
    ("POST", "/collection/{collection_id}/search/v2"): "Search a collection (v2)",
    ("POST", "/collection/{collection_id}/search"): "Search a collection",
    ("POST", "/video/{media_id}/workflow"): "Run a workflow on a video (subtitles)",
    ("POST", "/video/{media_id}/stream"): "Get a stream of spans of a video",
    ("POST", "/editor"): "Render a timeline",
    ("POST", "/editor/download"): "Download a rendered timeline",
    ("POST", "/timeline"): "Render a timeline (legacy)",
    ("POST", "/video/{media_id}/scenes"): "Extract a video's scenes",
    ("GET", "/video/{media_id}/scenes"): "List a video's scene collections",
    ("GET", "/video/{media_id}/scenes/{scene_collection_id}"): "Get a scene collection",
    ("DELETE", "/video/{media_id}/scenes/{scene_collection_id}"): "Delete a scene collection",
    ("GET", "/video/{media_id}/index"): "Get a video's scenes (legacy)",
    ("POST", "/video/{media_id}/index/scene"): "Index a video's screen text",
    ("GET", "/video/{media_id}/index/scene"): "List a video's scene indexes",
    ("GET", "/video/{media_id}/index/scene/{scene_index_id}"): "Get a scene index's records",
    ("DELETE", "/video/{media_id}/index/scene/{scene_index_id}"): "Delete a scene index",
    ("POST", "/video/{media_id}/scene/{scene_id}/describe"): "Describe a scene (its screen text)",
    ("POST", "/video/{media_id}/frame/{frame_id}/describe"): "Describe a frame (its screen text)",
    ("GET", "/frames/{token}"): "Get a frame's image by its signed link",
}
for _kind, _word in (("video", "video"), ("audio", "audio"), ("image", "image")):
    SUMMARIES.update({
        ("GET", f"/{_kind}"): f"List {_word}s" if _kind != "audio" else "List audios",
        ("GET", f"/{_kind}/{{media_id}}"): f"Get an {_word}" if _kind != "video" else "Get a video",
        ("PATCH", f"/{_kind}/{{media_id}}"): f"Rename or describe an {_word}" if _kind != "video"
        else "Rename or describe a video",
        ("DELETE", f"/{_kind}/{{media_id}}"): f"Delete an {_word}" if _kind != "video" else "Delete a video",
        ("POST", f"/{_kind}/{{media_id}}/generate_url"): f"Get a signed link to an {_word} file",
        ("GET", f"/{_kind}/{{media_id}}/transcription"): f"Get a{'n' if _kind != 'video' else ''} {_word}'s transcript",
        ("POST", f"/{_kind}/{{media_id}}/transcription"): f"Transcribe a{'n' if _kind != 'video' else ''} {_word}",
        ("POST", f"/{_kind}/{{media_id}}/index"): f"Index a{'n' if _kind != 'video' else ''} {_word}'s spoken words",
    })

#: Statuses past those every operation that takes credentials can answer (400, 401, 403).
_STATE = ("/capture/", "/export", "/index", "/transcription", "/status", "/editor", "/timeline", "/job/", "/search")
_MODELS = ("/search", "/index", "/transcription", "/workflow")


def _tag(method: str, path: str) -> str:
    if path == "/health":
        return "operations"
    if ("/search" in path or "/transcription" in path or path.endswith(("/index", "/workflow", "/describe"))
            or "/index/" in path or "/scenes" in path):
        return "search"
    if "/capture" in path:
        return "capture"
    if path.startswith(("/stream", "/compile", "/rtstream")) or path.endswith("/stream"):
        return "streams"
    if path.startswith(("/editor", "/timeline")):
        return "editor"
    if path.startswith(("/async-response", "/job")):
        return "jobs"
    if path.startswith("/collection") and "upload" not in path:
        return "collections"
    return "media"


def _statuses(method: str, path: str, wants: str | None, has_body: bool, has_query: bool) -> list[str]:
    """The error statuses this operation can answer (the error envelope's), from what it takes."""
    if path == "/health":
        return []
    codes = {"400"} if has_body or has_query or "{" in path else set()
    if wants:
        codes |= {"400", "401", "403"}
    if "{" in path or has_query:
        codes |= {"404", "414"}
    if has_body:
        codes |= {"404", "413"}  # ids inside the body (a session, an asset) may name nothing
    if any(part in path for part in _STATE) and method != "GET" or "/capture/" in path:
        codes.add("409")
    if (path.startswith(("/stream/", "/files/", "/compile/")) or path.endswith("/stream")) and method == "GET":
        codes |= {"404", "416"}  # byte ranges
    if path.startswith("/upload/"):
        codes.add("413")  # the file, over REELDB_MAX_UPLOAD_BYTES
    if any(part in path for part in _MODELS):
        codes.add("503")
    if method == "POST" and path.endswith("/index/scene"):
        codes.add("501")  # index_audio, and on rtstreams the live scene indexes
    return sorted(codes)


def examples() -> dict[str, dict[str, Any]]:
    """``"METHOD /path"`` → the request body and the answer of one real call (``api_examples.json``,
    recorded from a real server by ``tests/server/test_api_examples.py``, which keeps them true)."""
    return json.loads(files("reeldb.server").joinpath("api_examples.json").read_text())


def _show_example(operation: Any, example: dict[str, Any]) -> None:
    if example.get("request") is not None and operation.request_body is not None:
        for media in (operation.request_body.content or {}).values():
            media.example = example["request"]
    for code, response in (operation.responses or {}).items():
        if code.startswith("2") and isinstance(response, OpenAPIResponse):
            for media in (response.content or {}).values():
                media.example = example["response"]


def organize(document: OpenAPI, handlers: dict[tuple[str, str], tuple[str | None, str | None]]) -> OpenAPI:
    """Tags, summaries and descriptions, only the error statuses each operation gives, and the
    examples of real calls.

    ``handlers``: (method, path) → (what the handler wants of a credential: ``key``, ``actor`` or
    None; its docstring), read off the app's routes."""
    from litestar.openapi.spec import Tag

    document.tags = [Tag(name=name, description=text) for name, text in TAGS.items()]
    shown = examples()
    for path, item in (document.paths or {}).items():
        for method in _METHODS:
            operation = getattr(item, method, None)
            if operation is None:
                continue
            key = (method.upper(), path)
            wants, doc = handlers.get(key, (None, None))
            operation.tags = [_tag(key[0], path)]
            operation.summary = SUMMARIES.get(key, operation.summary)
            if doc and not operation.description:
                operation.description = " ".join(doc.split("\n\n")[0].split())
            has_query = any(getattr(p, "param_in", None) == "query" for p in operation.parameters or [])
            keep = set(_statuses(key[0], path, wants, operation.request_body is not None, has_query))
            operation.responses = {code: r for code, r in (operation.responses or {}).items()
                                   if not code.startswith(("4", "5")) or code in keep}
            if f"{key[0]} {path}" in shown:
                _show_example(operation, shown[f"{key[0]} {path}"])
    return document
