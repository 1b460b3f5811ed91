"""The media library's one way in: every file that becomes an asset goes through :func:`add_asset`."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from reeldb.export import HlsError, MediaInfo, make_hls

from .ids import new_id

log = logging.getLogger("reeldb.library")


def add_asset(ctx_db: Any, settings: Any, src: Path, info: MediaInfo, kind: str, collection_id: str,
              name: str, origin: str, session_id: str | None = None, channel_id: str | None = None,
              move: bool = True, suffix: str | None = None, **extra: Any) -> dict[str, Any]:
    """Put a media file into the library (its own folder, plus HLS for videos) and record it.

    Every way media arrives (upload, URL, export) ends here, so every video gets its stream.
    """
    asset_id = new_id(kind)
    folder = settings.media_dir / collection_id / asset_id
    folder.mkdir(parents=True)
    dest = folder / f"source{suffix or src.suffix}"
    if move:
        os.replace(src, dest)
    else:
        shutil.copyfile(src, dest)
    hls_path = None
    if kind == "video":
        try:
            hls_path = str(make_hls(dest, folder / "hls"))
        except HlsError as exc:
            log.warning("no HLS rendition for %s: %s", asset_id, exc)
    now = time.time()
    row = {
        "id": asset_id, "collection_id": collection_id, "kind": kind, "name": name, "description": None,
        "path": str(dest), "size": dest.stat().st_size, "length": info.duration, "format": info.format,
        "width": info.width if kind != "audio" else None, "height": info.height if kind != "audio" else None,
        "fps": info.fps if kind == "video" else None, "video_codec": info.video_codec if kind == "video" else None,
        "audio_codec": info.audio_codec, "sample_rate": info.sample_rate, "audio_channels": info.channels,
        "source": None, "origin": origin, "created_at": now, "updated_at": now, "hls_path": hls_path,
        "session_id": session_id, "channel_id": channel_id, **extra,
    }
    ctx_db["media"].insert(row)
    return row
