"""Search results as VideoDB's SDK reads them: one entry a video, its matching spans as ``docs``."""

from __future__ import annotations

from typing import Any

from ..errors import NotFound
from ..links import Links

#: VideoDB's legacy search answers a search that matched nothing with this error (client code
#: written for it catches it); the v2 search answers an empty list.
NO_RESULTS = "No results found"


def search_results(videos: list[dict[str, Any]], hits: list[dict[str, Any]], links: Links,
                   base: str) -> list[dict[str, Any]]:
    """The hits (best first) grouped by video, each doc with its stream URLs (and the ``channel``
    that said it, when the video's transcript was made per capture channel)."""
    by_id = {v["id"]: v for v in videos}
    grouped: dict[str, dict[str, Any]] = {}
    for hit in hits:
        video = by_id[hit["asset_id"]]
        entry = grouped.setdefault(video["id"], {
            "video_id": video["id"], "collection_id": video["collection_id"], "length": video["length"],
            "title": video["name"], "docs": []})
        urls = links.stream_urls(video["id"], bool(video["hls_path"]), base, [(hit["start"], hit["end"])])
        # SDK 0.4.x reads ``stream_link``, 0.5.x ``stream_url``: both, as VideoDB sends.
        entry["docs"].append({"start": hit["start"], "end": hit["end"], "text": hit["text"], "score": hit["score"],
                              **urls, "stream_link": urls["stream_url"], **_said_by(hit)})
    return list(grouped.values())


def _said_by(hit: dict[str, Any]) -> dict[str, Any]:
    """Which index a hit matched (``index_type``: ``spoken_word`` or ``scene``, and the scene index:
    ``scene_index_id``, as VideoDB's scene hits carry), and for spoken words the capture channel
    (``mic``: the person at the keyboard, ``system_audio``: the others on the call; nothing for a
    video with one audio track), extra fields next to VideoDB's."""
    said = {k: hit[k] for k in ("index_type", "scene_index_id") if hit.get(k)}
    return {**said, "channel": hit["channel"]} if hit.get("channel") else said


def search_legacy(results: list[dict[str, Any]]) -> dict[str, Any]:
    if not results:
        raise NotFound(NO_RESULTS)
    return {"success": True, "data": {"results": results, "warnings": []}}


def search_v2(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"success": True, "data": {"response_type": "shots", "session_id": None, "waiting_for": "none",
                                      "clarification": None, "trace": None, "warnings": [], "results": results}}
