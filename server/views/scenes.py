"""Scene collections as VideoDB's SDK reads them (``Video._format_scene_collection``)."""

from __future__ import annotations

from typing import Any

from ..links import Links


def scene_collection(found: dict[str, Any], links: Links, base: str) -> dict[str, Any]:
    """A collection with its scenes and each frame's signed image link and time."""
    return {
        "scene_collection_id": found["id"], "video_id": found["asset_id"],
        "config": {"extraction_type": found["extraction_type"], **(found["config"] or {})},
        "scenes": [{
            "scene_id": s["id"], "start": s["start"], "end": s["end"], "description": s["description"],
            "metadata": s["metadata"],
            "frames": [{"frame_id": f["id"], "url": links.frame_url(base, f["id"]), "frame_time": f["frame_time"],
                        "description": f["description"]} for f in s["frames"]],
        } for s in found["scenes"]],
    }


def collection_summary(found: dict[str, Any]) -> dict[str, Any]:
    return {"scene_collection_id": found["id"], "video_id": found["asset_id"],
            "config": {"extraction_type": found["extraction_type"], **(found["config"] or {})},
            "created_at": found["created_at"]}
