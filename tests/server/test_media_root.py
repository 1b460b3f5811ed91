"""The media root seam (server/storage.py) and the migration that made stored media paths
relative to it: a database of an earlier version, whose rows hold absolute paths under its data
dir, moves forward to relative ones; rows pointing outside it are left as they are."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from reeldb.server.schema import migrate
from reeldb.server.storage import MediaRoot


def test_stored_paths_are_relative_and_resolve_under_any_root(tmp_path):
    root = MediaRoot(tmp_path / "root")
    file = tmp_path / "root" / "media" / "c-1" / "m-1" / "source.mp4"
    assert root.rel(file) == "media/c-1/m-1/source.mp4"
    assert MediaRoot(tmp_path / "moved").path("media/c-1/m-1/source.mp4") == \
        tmp_path / "moved" / "media" / "c-1" / "m-1" / "source.mp4"
    outside = tmp_path / "elsewhere" / "x.mp4"
    assert root.rel(outside) == str(outside)  # not under the root: stored as it is
    assert root.path(str(outside)) == outside  # and used as it is
    (tmp_path / "link").symlink_to(tmp_path / "root")  # a root named through a symlink
    assert MediaRoot(tmp_path / "link").rel(file) == "media/c-1/m-1/source.mp4"


def test_migration_rewrites_absolute_paths_under_the_data_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite_utils.Database(data / "reeldb.db")
    migrate(db)
    inside = str(data / "media" / "c-1" / "m-1" / "source.mp4")
    hls = str(data / "media" / "c-1" / "m-1" / "hls" / "index.m3u8")
    outside = str(tmp_path / "other" / "m-2" / "source.mp4")
    db["media"].insert_all([{"id": "m-1", "path": inside, "hls_path": hls},
                            {"id": "m-2", "path": outside, "hls_path": None}])
    db["uploads"].insert({"id": "up-1", "path": str(data / "uploads" / "up-1")})
    # As a database from before the migration: undo its record, then start again.
    db.execute("delete from _sqlite_migrations where name = 'm011_relative_media_paths'")
    migrate(db)
    got = {r["id"]: (r["path"], r["hls_path"]) for r in db["media"].rows}
    assert got == {"m-1": ("media/c-1/m-1/source.mp4", "media/c-1/m-1/hls/index.m3u8"), "m-2": (outside, None)}
    assert next(db["uploads"].rows)["path"] == "uploads/up-1"
    assert MediaRoot(Path("/srv/root")).path(got["m-1"][0]) == Path("/srv/root/media/c-1/m-1/source.mp4")
