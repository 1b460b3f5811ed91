"""An asset's files under the media root: its folder, its source file, its HLS rendition and its
previews, and the row that records them (returned, not written).

Files only, no database: job compute parts call these on job workers (an export's assets, an
upload, a render, previews); ``library.MediaLibrary`` writes the rows they return.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from reeldb.export import ExportError, HlsError, MediaInfo, make_hls
from reeldb.export.hls import PLAYLIST_NAME
from reeldb.export.thumbnails import poster, storyboard

from .storage import MediaRoot

log = logging.getLogger("reeldb.library")


def prepare_asset(storage: MediaRoot, asset_id: str, src: Path, info: MediaInfo, kind: str, collection_id: str,
                  name: str, origin: str, *, session_id: str | None = None, channel_id: str | None = None,
                  move: bool = True, suffix: str | None = None, description: str | None = None,
                  source: str | None = None, parent_id: str | None = None,
                  hls_made: Path | None = None) -> dict[str, Any]:
    """The file part of :meth:`MediaLibrary.place`, touching only the media root (a job worker with
    no database runs it): the asset's folder and its HLS (``hls_made``: a rendition its caller
    already wrote from the same packets, moved into place rather than made again); the row to
    write, returned (paths in it relative to the media root), for :meth:`MediaLibrary.commit`,
    which queues its previews."""
    folder = storage.asset_dir(collection_id, asset_id)
    dest = folder / f"source{suffix or src.suffix}"
    created = src.resolve() != dest.resolve()
    if created:
        shutil.rmtree(folder, ignore_errors=True)  # what a killed attempt of the same job left
        folder.mkdir(parents=True)
    try:
        if created:
            if move:
                storage.replace(src, dest)
            else:
                shutil.copyfile(src, dest)
        hls_path = None
        if kind == "video" and hls_made is not None:
            storage.replace(hls_made, folder / "hls")
            hls_path = storage.rel(folder / "hls" / PLAYLIST_NAME)
        elif kind == "video":
            try:
                hls_path = storage.rel(make_hls(dest, folder / "hls"))
            except HlsError as exc:
                log.warning("no HLS rendition for %s: %s", asset_id, exc)
        now = time.time()
        record = {
            "id": asset_id, "collection_id": collection_id, "kind": kind, "name": name,
            "description": description, "path": storage.rel(dest), "size": dest.stat().st_size,
            "length": info.duration, "format": info.format, "width": info.width if kind != "audio" else None,
            "height": info.height if kind != "audio" else None, "fps": info.fps if kind == "video" else None,
            "video_codec": info.video_codec if kind == "video" else None, "audio_codec": info.audio_codec,
            "sample_rate": info.sample_rate, "audio_channels": info.channels, "source": source,
            "origin": origin, "created_at": now, "updated_at": now, "hls_path": hls_path,
            "session_id": session_id, "channel_id": channel_id, "previews": 0,
            "parent_id": parent_id,
        }
        return record
    except BaseException:  # no asset folder without its row: give the source back, remove the rest
        if created:
            if move and dest.exists():
                storage.replace(dest, src)
            shutil.rmtree(folder, ignore_errors=True)
        raise


def make_previews(asset_id: str, video: Path, hls_dir: Path) -> bool:
    """A poster and a keyframe storyboard (sprite + WebVTT) beside the HLS rendition, served with
    it. Keyframes only, so this costs a fraction of a decode; a failure costs the previews only."""
    try:
        poster(video, hls_dir / "poster.jpg", width=640)
        storyboard(video, hls_dir)
        return True
    except (ExportError, OSError) as exc:  # (a full disk, a folder removed meanwhile): asked for, a 404, never a 500
        log.warning("no previews for %s: %s", asset_id, exc)
        return False
