"""How rows look on the wire: the JSON objects VideoDB's SDK parses.

Kept apart from the routes so the shapes are in one place and can be tested without a server.
"""

from __future__ import annotations

from typing import Any

from ..events import iso
from ..links import Links
from ..rows import CaptureSession, Collection, RTStream


def collection(row: Collection) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "is_public": row.is_public,
        "is_default": row.is_default,
        "created_at": iso(row.created_at),
    }


def media(row: dict[str, Any], urls: dict[str, Any] | None = None) -> dict[str, Any]:
    common = {
        "id": row["id"],
        "collection_id": row["collection_id"],
        "name": row["name"],
        "description": row["description"],
        "size": row["size"],
        "format": row["format"],
        "created_at": iso(row["created_at"]),
    }
    urls = urls or {}
    if row["kind"] == "image":
        return {**common, "width": row["width"], "height": row["height"], "url": urls.get("url")}
    common["length"] = row["length"]
    audio = {"audio_codec": row["audio_codec"], "sample_rate": row["sample_rate"],
             "channels": row["audio_channels"]}
    if row["kind"] == "audio":
        return {**common, **audio}
    return {
        **common, **audio,
        "width": row["width"], "height": row["height"], "fps": row["fps"],
        "video_codec": row["video_codec"],
        "stream_url": urls.get("stream_url"),
        "player_url": urls.get("player_url"),
        "thumbnail_url": urls.get("thumbnail_url"),
    }


def rtstream(row: RTStream) -> dict[str, Any]:
    return {
        "id": row.id,
        "rtstream_id": row.id,
        "name": row.name,
        "collection_id": row.collection_id,
        "channel_id": row.channel_id,
        "media_types": row.media_types,
        "sample_rate": row.sample_rate,
        "status": row.status,
        "store": row.store,
        "created_at": iso(row.created_at),
        "stream_url": None,
        "player_url": None,
        "exported_asset_id": row.exported_asset_id,
    }


def capture_session(row: CaptureSession, rtstreams: list[RTStream], *, for_create: bool = False,
                    urls: dict[str, Any] | None = None) -> dict[str, Any]:
    """A capture session; on create it carries ``session_id`` only (the SDK breaks on both, notes §13).

    ``urls``: ``stream_url`` / ``player_url`` of its exported video (``Exports.session_urls``), as
    the ``capture_session.exported`` event carries them; the capture page links to the player."""
    body: dict[str, Any] = {
        "session_id": row.id,
        "collection_id": row.collection_id,
        "end_user_id": row.end_user_id,
        "client_id": row.client_id,
        "status": row.status,
        "callback_url": row.callback_url,
        "ws_connection_id": row.ws_connection_id,
        "metadata": row.metadata,
        "channels": row.channels,
        "primary_video_channel_id": row.primary_video_channel_id,
        "export_status": row.export_status,
        "export_error": row.export_error,
        "exported_video_id": row.exported_video_id,
        "exported_videos": row.exported_videos,
        "error": row.error,
        #: ReelDB's own: why the server stopped the session itself (its disk fell below the floor).
        "stop_reason": row.stop_reason,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "rtstreams": [] if for_create else [rtstream(r) for r in rtstreams],
    }
    if not for_create:
        body["id"] = row.id
        body["stream_url"] = (urls or {}).get("stream_url")
        body["player_url"] = (urls or {}).get("player_url")
    return body


def exported_asset(media: dict[str, Any], links: Links, base: str) -> dict[str, Any]:
    """A channel's raw asset as ``rtstream.export()`` answers it."""
    urls = (links.stream_urls(media["id"], bool(media["hls_path"]), base) if media["kind"] == "video"
            else {"stream_url": None, "player_url": None})
    return {"video_id": media["id"], "name": media["name"], "duration": media["length"], "kind": media["kind"], **urls}
