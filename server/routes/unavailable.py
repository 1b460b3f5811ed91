"""VideoDB API calls that ReelDB does not offer, answered as a drop-in should: a 501 in the envelope
whose message names the feature and why, never a routing 404.

The table is data: one row per (method, path) the official SDK (``videodb==0.5.1``) can call and
ReelDB does not implement, with the feature's name and the reason. ``handlers`` turns it into
litestar handlers. Rules they follow:

- Credentials first: each handler takes the ``key`` dependency, so a call without an API key is a
  401 and a client token's a 403, exactly as on every implemented route; only then the 501. (A 501
  reveals nothing, but one rule for every route is simpler to reason about and to test.)
- They never shadow an implemented route: litestar prefers static segments to parameters, so the
  patterns here only add static tails or methods that no implemented route has at that path; path
  parameters use the names the implemented routes use at the same place (``media_id``,
  ``collection_id``, ``rtstream_id``). ``tests/server/test_dropin_unavailable.py`` checks both.
- One call is a method that an implemented path does not take (``ON_IMPLEMENTED_PATHS``: ``POST
  /rtstream``): a handler would add a method the OpenAPI document does not list, so it stays the 405
  the document implies, with ``Allow``, and the row's message and ``error_code: NOT_AVAILABLE``
  (``UNOFFERED_METHODS``, kept in ``app.state.unoffered``). The SDK raises either the same way.
- They are left out of the OpenAPI document (``include_in_schema=False``): the document describes
  what ReelDB does, and schemathesis (rightly) counts every 5xx it meets as a failure. The table
  below, and the README's table of the SDK's features, are where they are described.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import delete, get, patch, post, put
from litestar.handlers import HTTPRouteHandler

from ..auth import Principal
from ..errors import UnofferedMethod, Unavailable

@dataclass(frozen=True)
class Feature:
    """What a 501 names: the feature (its grammatical number matters: "Scene indexes are") and why
    ReelDB does not offer it, naming the real missing piece."""

    name: str
    reason: str
    plural: bool = True


GENERATIVE = Feature("generative media", "generative media needs a cloud model", plural=False)
LLM = Feature("asking questions of media", "answers and translations come from a language model; ReelDB bundles none",
              plural=False)
TYPED = Feature("typed indexes", ("semantic_search, query and aggregate run over typed indexes (video.index()), which "
                                  "ReelDB does not have yet; search() covers spoken words"))
#: Not 501s: what ``POST …/index/scene`` makes (routes/live_indexes.py); named here to tell the bodies apart.
LIVE_SCENES = Feature("live screen-text indexes", "made by routes/live_indexes.py")
LIVE_SPOKEN = Feature("live spoken-word indexes", "made by routes/live_indexes.py")
RT_SEARCH = Feature("searching a collection's rtstreams", (
    "search one rtstream as it streams (rts.search()), or the collection's exported recordings (coll.search())"),
    plural=False)
AUDIO_PROMPT = Feature("audio indexes", (
    "an audio index describes each transcript segment as its prompt asks, which needs a language model; ReelDB "
    "bundles none (index_spoken_words() indexes the transcript itself)"))
UNDERSTAND = Feature("video understanding", "understandings and typed indexes run VideoDB's cloud analyzers",
                     plural=False)
MEETINGS = Feature("meeting bots", "meeting bots join calls from VideoDB's cloud")
BILLING = Feature("billing", "billing has no meaning on a self-hosted server", plural=False)
SANDBOX = Feature("sandboxes", "sandboxes are VideoDB cloud compute")
VOICES = Feature("voice clones", "voice cloning needs a cloud voice model")
JOBS = Feature("generation jobs", "generation jobs belong to generative media, which needs a cloud model")
RTSP = Feature("RTSP streams", ("ReelDB records capture sessions over WebRTC; it does not pull RTSP or other URLs "
                                "as rtstreams"))
ALERTS = Feature("alerts on typed rtstream indexes", ("ReelDB's alerts fire on live spoken-word and screen-text "
                                                     "indexes (RTStreamSceneIndex.create_alert); typed indexes "
                                                     "(rts.index()) run VideoDB's cloud analyzers"))
WEB = Feature("web search", "searching YouTube goes through VideoDB's cloud", plural=False)
DOWNLOAD = Feature("stream downloads", ("POST /download is not implemented; use the editor's download_stream() or "
                                        "the stream_url's HLS"))
TRANSCODE = Feature("transcoding", "every upload is made playable (HLS) on arrival; there is no separate transcode job",
                    plural=False)
REFRAME = Feature("reframing", "smart reframing tracks subjects with a cloud vision model", plural=False)
CLIPS = Feature("prompted clips", "picking clips from a prompt needs a language model; ReelDB bundles none")
STORAGE = Feature("removing a video's storage", ("a ReelDB video's streams are made from its file; delete the video "
                                                 "instead"), plural=False)
TITLES = Feature("title search", "searching titles is not implemented; search spoken words, or list and filter",
                 plural=False)


@dataclass(frozen=True)
class Unoffered:
    method: str
    path: str
    feature: str
    reason: str
    plural: bool = True

    @property
    def message(self) -> str:
        return unavailable_message(Feature(self.feature, self.reason, self.plural))


def unavailable_message(feature: Feature) -> str:
    verb = "are" if feature.plural else "is"
    return f"{feature.name[0].upper()}{feature.name[1:]} {verb} not available in ReelDB: {feature.reason}"


def _rows(feature: Feature, *routes: str) -> list[Unoffered]:
    return [Unoffered(route.split(" ", 1)[0], route.split(" ", 1)[1], feature.name, feature.reason, feature.plural)
            for route in routes]


V = "/video/{media_id:str}"
C = "/collection/{collection_id:str}"
R = "/rtstream/{rtstream_id:str}"

#: (method, path, feature, reason): every SDK call ReelDB answers with a 501.
TABLE: list[Unoffered] = [
    *_rows(BILLING, "GET /billing/usage", "GET /billing/invoices"),
    *_rows(DOWNLOAD, "POST /download"),
    *_rows(WEB, f"POST {C}/search/web"),
    *_rows(TITLES, f"POST {C}/search/title"),
    *_rows(TRANSCODE, "POST /transcode", "GET /transcode/{job_id:str}"),
    *_rows(JOBS, "GET /job/{job_id:str}"),
    *_rows(SANDBOX, "POST /sandbox", "GET /sandbox", "GET /sandbox/{sandbox_id:str}",
           "POST /sandbox/{sandbox_id:str}/stop"),
    *_rows(VOICES, "POST /voice_clone", "GET /voice_clone", "GET /voice_clone/{voice_clone_id:str}",
           "DELETE /voice_clone/{voice_clone_id:str}"),
    *_rows(MEETINGS, f"POST {C}/meeting/record", f"GET {C}/meeting/{{meeting_id:str}}", f"GET {V}/meeting"),
    *_rows(LLM, f"POST {C}/ask", f"POST {V}/ask", f"POST {C}/video/{{media_id:str}}/translate"),
    *_rows(TYPED, f"POST {C}/semantic-search", f"POST {C}/query", f"POST {C}/aggregate",
           f"POST {V}/semantic-search", f"POST {V}/query", f"POST {V}/aggregate"),
    *_rows(GENERATIVE, f"POST {C}/generate/image", f"POST {C}/generate/audio", f"POST {C}/generate/video",
           f"POST {C}/generate/text", f"POST {C}/generate/video/dub"),
    *_rows(RTSP, "POST /rtstream"),
    # POST {R}/index/scene and the index, record and alert paths under {R}/index/ are routes/live_indexes.py
    # (live spoken-word and screen-text indexes); its POST answers this table's features for the bodies it does
    # not make.
    *_rows(RT_SEARCH, "POST /rtstream/collection/{collection_id:str}/search"),
    *_rows(ALERTS, f"POST {R}/indexes/{{index_id:str}}/alert", f"GET {R}/indexes/{{index_id:str}}/alert",
           f"PATCH {R}/indexes/{{index_id:str}}/alert/{{alert_id:str}}/status"),
    *_rows(UNDERSTAND, f"POST {V}/understand", f"GET {V}/understand", f"GET {V}/understand/{{understanding_id:str}}",
           f"DELETE {V}/understand/{{understanding_id:str}}",
           f"GET {V}/understand/{{understanding_id:str}}/analyzers/{{analyzer:str}}/output",
           f"POST {V}/indexes", f"GET {V}/indexes", f"GET {V}/indexes/{{index_id:str}}",
           f"DELETE {V}/indexes/{{index_id:str}}", f"GET {V}/indexes/{{index_id:str}}/records",
           f"POST {R}/understand", f"GET {R}/understand", f"GET {R}/understand/{{understanding_id:str}}",
           f"PATCH {R}/understand/{{understanding_id:str}}/status",
           f"GET {R}/understand/{{understanding_id:str}}/records",
           f"POST {R}/indexes", f"GET {R}/indexes", f"GET {R}/indexes/{{index_id:str}}",
           f"PATCH {R}/indexes/{{index_id:str}}/status", f"GET {R}/indexes/{{index_id:str}}/records"),
    *_rows(CLIPS, f"POST {V}/clip"),
    *_rows(REFRAME, f"POST {V}/reframe"),
    *_rows(STORAGE, f"DELETE {V}/storage"),
]

_DECORATORS: dict[str, Callable[..., Any]] = {"GET": get, "POST": post, "PATCH": patch, "PUT": put,
                                              "DELETE": delete}


def _answer(message: str) -> Callable[..., Any]:
    async def unavailable(key: Principal) -> None:
        raise Unavailable(message)

    return unavailable


def scene_index_feature(body: Any) -> Feature:
    """``POST …/index/scene`` is four SDK methods, told apart by the body: ``index_scenes`` and
    ``index_visuals`` (shot or time extraction: frames to read; of an rtstream, live), ``RTStream.index_spoken_words``
    (a transcript segmented by ``extraction_config``, no prompt) and ``index_audio`` (a transcript
    whose segments a prompt describes). Each names its own missing piece (a video's screen-text
    index is implemented: ``routes/scenes.py``)."""
    body = body if isinstance(body, dict) else {}
    if body.get("extraction_type") != "transcript":
        return LIVE_SCENES
    if body.get("extraction_config") and not body.get("prompt"):
        return LIVE_SPOKEN
    return AUDIO_PROMPT


def _handler(path: str, rows: list[Unoffered]) -> list[HTTPRouteHandler]:
    made = []
    for row in rows:
        unavailable = _answer(row.message)
        decorator = _DECORATORS[row.method]
        made.append(decorator(path, include_in_schema=False, status_code=501,
                              name=f"unavailable:{row.method}:{path}")(unavailable))
    return made


#: Rows whose path an implemented route takes with other methods (in the OpenAPI document): no handler
#: of their own, which would add a method the document does not list; the 405 says the row's message.
ON_IMPLEMENTED_PATHS = {("POST", "/rtstream")}


def _build() -> tuple[list[HTTPRouteHandler], list[UnofferedMethod]]:
    seen: set[tuple[str, str]] = set()
    by_path: dict[str, list[Unoffered]] = {}
    on_implemented: list[UnofferedMethod] = []
    for row in TABLE:
        assert (row.method, row.path) not in seen, row
        seen.add((row.method, row.path))
        if (row.method, row.path) in ON_IMPLEMENTED_PATHS:
            pattern = re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(row.path)))
            on_implemented.append((row.method, pattern, row.message))
            continue
        by_path.setdefault(row.path, []).append(row)
    return [handler for path, rows in by_path.items() for handler in _handler(path, rows)], on_implemented


#: The 501 handlers, and the rows on implemented paths whose 405 says what a 501 would
#: (``app.state.unoffered``, read by ``error_responses.handle_exception``).
handlers, UNOFFERED_METHODS = _build()

