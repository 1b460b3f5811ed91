"""What each job kind carries: its params, typed (msgspec structs), in one module.

A service enqueues plain JSON (it is stored in ``jobs.params`` and travels in a Celery message or a
child process's request); this module says what that JSON must hold for the kind's compute part,
and the runner checks it twice: when the job is enqueued (a service that writes the wrong params
fails at once, in its own request, not in a worker later) and when a compute part starts on a job
worker or in a child process (params from a control node of another version are refused there, not
misread). Fields a kind's ``prepare`` adds on the control node are optional here. Unknown fields
are allowed: a newer control node may add one that an older worker does not read.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import msgspec


class Payload(msgspec.Struct, frozen=True):
    pass


class ExportParams(Payload, frozen=True):
    session_id: str
    collection_id: str
    video_channel_id: str | None
    include_raw: bool
    #: Every id the job creates, fixed when queued: a rerun replaces, never duplicates.
    video_id: str
    asset_ids: dict[str, str]
    #: The recording's title in the library ("Recording, 6 Dec 2026 21:40"); older jobs have none.
    title: str | None = None


class TranscribeParams(Payload, frozen=True):
    asset_id: str
    #: The media file, relative to the media root.
    path: str
    force: bool = False
    language_code: str | None = None
    #: The transcript request's own options (``segmenter``, ``length``…), echoed in its answer.
    query: dict[str, Any] = {}
    #: Added by ``prepare``: a stored transcript to reuse, or the capture channels to transcribe.
    transcript: dict[str, Any] | None = None
    channels: list[dict[str, Any]] | None = None


class IndexParams(TranscribeParams, frozen=True):
    #: Queued by ``REELDB_AUTO_INDEX`` rather than by a call.
    auto: bool = False


class UploadParams(Payload, frozen=True):
    source: Literal["slot", "file", "http"]
    collection_id: str
    media_id: str
    name: str | None = None
    description: str | None = None
    media_type: str | None = None
    filename: str | None = None
    upload_id: str | None = None
    path: str | None = None
    url: str | None = None
    url_given: str | None = None


class RenderParams(Payload, frozen=True):
    timeline: dict[str, Any]
    sources: dict[str, dict[str, Any]]
    captions: list[list[Any]]
    media_id: str
    collection_id: str
    key: str


class PreviewsParams(Payload, frozen=True):
    media_id: str
    path: str
    hls_path: str


class ScenesParams(Payload, frozen=True):
    """What both scene kinds read: a video file and VideoDB's extraction (``shot_based`` /
    ``time_based`` and its config)."""

    asset_id: str
    path: str
    extraction_type: str
    config: dict[str, Any]


class ExtractScenesParams(ScenesParams, frozen=True):
    #: Fixed when queued: a rerun replaces the collection, never duplicates it.
    collection_id: str
    #: Where the kept frames' JPEGs go, relative to the media root (under the asset's folder).
    frames_dir: str


class SceneIndexParams(ScenesParams, frozen=True):
    #: Fixed when queued (the SDK's ``scene_index_id``).
    index_id: str
    #: OCR languages (``REELDB_OCR_LANGS``, checked when queued); empty for given scenes.
    langs: list[str]
    name: str | None = None
    #: Recorded, never run: descriptions are the text on screen.
    prompt: str | None = None
    model_name: str | None = None
    #: The caller's own scenes (``{start, end, description}``), indexed as given.
    scenes: list[dict[str, Any]] | None = None
    #: Queued by ``REELDB_AUTO_INDEX`` rather than by a call.
    auto: bool = False


#: By kind name (kinds that run only on the control node, retention, carry no checked params).
PARAMS: dict[str, type[Payload]] = {
    "export": ExportParams, "transcribe": TranscribeParams, "index": IndexParams, "upload": UploadParams,
    "render": RenderParams, "render_long": RenderParams, "previews": PreviewsParams,
    "extract_scenes": ExtractScenesParams, "scene_index": SceneIndexParams,
}


class BadParams(ValueError):
    """A job's params are not what its kind reads."""


def check(kind: str, params: Mapping[str, Any]) -> None:
    """Raise :class:`BadParams` naming the field when ``params`` is not what ``kind`` carries."""
    shape = PARAMS.get(kind)
    if shape is None:
        return
    try:
        msgspec.convert(dict(params), shape)
    except msgspec.ValidationError as exc:
        raise BadParams(f"job kind {kind!r}: its params are not what it reads ({exc})") from None
