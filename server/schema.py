"""The database's shape, as forward-only sqlite-utils migrations, applied on every start.

Each service owns its tables' SQL (see the README's map of the server); their shape lives here,
in order, so a database of any earlier version moves forward to this one, and nothing else
creates tables (the index stage's DDL is applied as one of these steps).
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("reeldb")


def migrate(db: sqlite_utils.Database) -> None:
    migrations.apply(db)


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db["api_keys"].create(
        {"id": str, "key_hash": str, "webhook_secret": str, "created_at": float},
        pk="id",
    )
    db["api_keys"].create_index(["key_hash"], unique=True)
    db["client_tokens"].create(
        {"token_hash": str, "api_key_id": str, "user_id": str, "expires_at": float, "created_at": float},
        pk="token_hash",
    )
    db["collections"].create(
        {"id": str, "name": str, "description": str, "is_public": int, "is_default": int,
         "created_at": float},
        pk="id",
    )
    db["media"].create(
        {
            "id": str, "collection_id": str, "kind": str, "name": str, "description": str,
            "path": str, "size": int, "length": float, "format": str,
            "width": int, "height": int, "fps": float, "video_codec": str,
            "audio_codec": str, "sample_rate": int, "audio_channels": int,
            "source": str, "origin": str, "created_at": float, "updated_at": float,
        },
        pk="id",
    )
    db["media"].create_index(["collection_id", "kind", "created_at"])
    db["uploads"].create(
        {"id": str, "secret": str, "collection_id": str, "name": str, "path": str, "size": int,
         "created_at": float, "expires_at": float},
        pk="id",
    )
    db["capture_sessions"].create(
        {
            "id": str, "collection_id": str, "api_key_id": str, "end_user_id": str,
            "client_id": str, "status": str, "callback_url": str, "ws_connection_id": str,
            "metadata": str, "channels": str, "primary_video_channel_id": str,
            "export_status": str, "export_error": str, "exported_video_id": str,
            "exported_videos": str, "error": str, "created_at": float, "updated_at": float,
            "started_at": float, "stopped_at": float,
        },
        pk="id",
    )
    db["capture_sessions"].create_index(["collection_id", "status", "created_at"])
    db["rtstreams"].create(
        {
            "id": str, "session_id": str, "collection_id": str, "name": str, "channel_id": str,
            "media_types": str, "sample_rate": int, "status": str, "store": int,
            "exported_asset_id": str, "created_at": float,
        },
        pk="id",
    )
    db["rtstreams"].create_index(["session_id"])
    db["events"].create(
        {"id": str, "session_id": str, "event": str, "payload": str, "ws_connection_id": str,
         "created_at": float},
        pk="id",
    )
    db["deliveries"].create(
        {"id": int, "event_id": str, "url": str, "api_key_id": str, "status": str,
         "attempts": int, "next_attempt_at": float, "last_error": str, "delivered_at": float},
        pk="id",
    )
    db["deliveries"].create_index(["status", "next_attempt_at"])
    db["jobs"].create(
        {
            "id": str, "kind": str, "params": str, "status": str, "progress": float,
            "result": str, "error": str, "attempts": int, "lease_until": float,
            "owner": str, "created_at": float, "updated_at": float,
        },
        pk="id",
    )
    db["jobs"].create_index(["status", "created_at"])


@migrations()
def m002_exports_and_streams(db: sqlite_utils.Database) -> None:
    db["media"].add_column("hls_path", str)
    db["media"].add_column("session_id", str)
    db["media"].add_column("channel_id", str)
    db["exports"].create(
        {"id": str, "session_id": str, "video_channel_id": str, "status": str, "job_id": str,
         "video_id": str, "error": str, "connection_id": str, "include_raw": int,
         "created_at": float, "updated_at": float},
        pk="id",
    )
    db["exports"].create_index(["session_id", "video_channel_id"], unique=True)


@migrations()
def m003_spoken_index(db: sqlite_utils.Database) -> None:
    from reeldb.index.store import SCHEMA_V1, apply_schema  # the index stage owns its tables' shape

    apply_schema(db, SCHEMA_V1)


@migrations()
def m004_job_lanes(db: sqlite_utils.Database) -> None:
    """Lanes, fencing tokens in ``owner``, error codes, and progress as a fraction."""
    db["jobs"].add_column("lane", str)
    db["jobs"].add_column("error_code", str)
    lanes = {"upload": "imports", "export": "exports", "transcribe": "index", "index": "index"}
    for kind, lane in lanes.items():
        db.execute("update jobs set lane = ? where kind = ?", [lane, kind])
    db.execute("update jobs set progress = progress / 100.0 where progress > 1")
    db["jobs"].create_index(["status", "lane", "created_at"])


@migrations()
def m005_secrets(db: sqlite_utils.Database) -> None:
    """Keyed credential hashes, key origins and revocation.

    Rows from before hold plain SHA-256 hashes; the plaintext is unknown here, so they are marked
    ``sha256`` and rewritten under the pepper by the auth service on their first successful use.
    Where an existing key came from is unknown too (``origin = 'unknown'``): only keys registered
    from ``REELDB_API_KEY`` from now on (``'env'``) are revoked when the environment names another.
    """
    db["api_keys"].add_column("hash_scheme", str)
    db["api_keys"].add_column("origin", str)
    db["api_keys"].add_column("revoked_at", float)
    db["api_keys"].add_column("revoked_reason", str)
    db.execute("update api_keys set hash_scheme = 'sha256', origin = 'unknown'")
    db["client_tokens"].add_column("hash_scheme", str)
    db.execute("update client_tokens set hash_scheme = 'sha256'")
    db["client_tokens"].create_index(["api_key_id"])


@migrations()
def m006_session_owner(db: sqlite_utils.Database) -> None:
    """Which client token started a session: only that token may read, pause or stop it."""
    db["capture_sessions"].add_column("started_by", str)


@migrations()
def m007_previews(db: sqlite_utils.Database) -> None:
    """Videos get a poster and a seek storyboard beside their HLS; thumbnails remember their video."""
    db["media"].add_column("previews", int)
    db["media"].add_column("parent_id", str)
    db["media"].create_index(["parent_id"])


@migrations()
def m008_compilations(db: sqlite_utils.Database) -> None:
    db["compilations"].create({"id": str, "parts": str, "created_at": float}, pk="id")


@migrations()
def m009_renders(db: sqlite_utils.Database) -> None:
    """The editor's renders, one per canonical timeline (the cache)."""
    db["renders"].create({"id": str, "key": str, "job_id": str, "media_id": str, "collection_id": str,
                          "way": str, "created_at": float}, pk="id")
    db["renders"].create_index(["key"], unique=True)


@migrations()
def m010_job_times(db: sqlite_utils.Database) -> None:
    """When a job's last attempt started and when it ended: job durations for /metrics."""
    db["jobs"].add_column("started_at", float)
    db["jobs"].add_column("finished_at", float)


@migrations()
def m011_relative_media_paths(db: sqlite_utils.Database) -> None:
    """Media paths relative to the media root (``REELDB_MEDIA_ROOT``), so the root can move or be
    mounted elsewhere by a job worker (server/storage.py resolves them at use).

    Until now the media root was always the data dir, the database file's folder: paths under it
    become relative to it; any other path (a row pointing outside it) is left as it is. Paths that
    were stored relative to the server's working directory (a relative ``--data-dir``) are taken
    from there.
    """
    import os

    files = [r[2] for r in db.execute("pragma database_list").fetchall() if r[1] == "main" and r[2]]
    if not files:  # an in-memory database has no data dir, and no files
        return
    roots = {os.path.abspath(os.path.dirname(files[0])), os.path.realpath(os.path.dirname(files[0]))}

    def relative(path: str | None) -> str | None:
        if not path:
            return path
        for candidate in (os.path.abspath(path), os.path.realpath(path)):
            for root in roots:
                if candidate.startswith(root.rstrip(os.sep) + os.sep):
                    return os.path.relpath(candidate, root).replace(os.sep, "/")
        return path

    for media_id, path, hls in db.execute("select id, path, hls_path from media").fetchall():
        db.execute("update media set path = ?, hls_path = ? where id = ?", [relative(path), relative(hls), media_id])
    for upload_id, path in db.execute("select id, path from uploads").fetchall():
        db.execute("update uploads set path = ? where id = ?", [relative(path), upload_id])


@migrations()
def m012_index_requests(db: sqlite_utils.Database) -> None:
    """Explicit ``index_spoken_words()`` calls, one row per asset (server/spoken.py): recordings are
    indexed without asking, and the first explicit call on one joins that index (VideoDB's code
    still runs) while a second answers VideoDB's "already exists"."""
    db["index_requests"].create({"asset_id": str, "job_id": str, "requested_at": float}, pk="asset_id")


@migrations()
def m013_channel_transcripts(db: sqlite_utils.Database) -> None:
    """Per-channel transcripts (issue 17): a word's and a segment's capture channel, the channels
    a transcript was made from, and which transcripts hold whole words (older rows hold whisper's
    pieces, re-joined when read). The index stage's DDL, version 2."""
    from reeldb.index.store import SCHEMA_V2, apply_schema

    apply_schema(db, SCHEMA_V2)


@migrations()
def m014_stop_reason(db: sqlite_utils.Database) -> None:
    """Why a session stopped when the server stopped it (the disk fell below its floor, ...)."""
    db["capture_sessions"].add_column("stop_reason", str)


@migrations()
def m015_job_crashes(db: sqlite_utils.Database) -> None:
    """How often the server ended while a job ran (server/jobs/leases.py ``recover``)."""
    db["jobs"].add_column("crashes", int, not_null_default=0)


@migrations()
def m016_web_sessions(db: sqlite_utils.Database) -> None:
    """The web pages' sign-ins (issue 22, server/auth.py): a session a browser keeps in a cookie,
    held as a keyed hash of its secret with the form token (CSRF) that goes with it, and the
    one-time sign-in links ``reeldb serve`` prints."""
    db["web_sessions"].create(
        {"secret_hash": str, "api_key_id": str, "csrf": str, "created_at": float, "expires_at": float},
        pk="secret_hash",
    )
    db["web_sessions"].create_index(["api_key_id"])
    db["signin_links"].create(
        {"token_hash": str, "api_key_id": str, "created_at": float, "expires_at": float}, pk="token_hash",
    )


@migrations()
def m017_scenes(db: sqlite_utils.Database) -> None:
    """Scene collections and screen-text scene indexes (issue 20, server/scenes.py): the index
    stage's scene tables (``index/scene_store.py``)."""
    from reeldb.index.scene_store import SCHEMA_V1, apply_schema

    apply_schema(db, SCHEMA_V1)


@migrations()
def m018_rtstream_events(db: sqlite_utils.Database) -> None:
    """Events that live rtstream indexes' alerts fire on (issue 21, server/rt_events.py):
    ``conn.create_event(event_prompt, label)``. Alerts and index records stay in memory (an
    ephemeral channel's must never reach the disk); an event is only a prompt and a label."""
    db["rtstream_events"].create(
        {"id": str, "api_key_id": str, "event_prompt": str, "label": str, "created_at": float}, pk="id",
    )
