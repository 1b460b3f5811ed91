"""Scene collections and screen-text scene indexes in the server's SQLite database.

The index has the spoken-word index's shape (timed texts, a float32 vector each, an FTS5 table kept
by triggers, a generation counter), so one search layer (:class:`reeldb.index.search.SearchIndex`
with :data:`TABLES`) ranks both; its rows are grouped by *scene index*, not by asset (a video may
have several: one per extraction, or scenes given by the caller).

Tables (:data:`SCHEMA_V1`, applied by a server migration; :func:`ensure_schema` for the stage alone):
- ``scene_collections``: one per ``extract_scenes``: asset, extraction type and config.
- ``scenes``: a collection's scenes (seq, start, end, description, metadata JSON).
- ``scene_frames``: a scene's kept frames (time, image path relative to the media root, description).
- ``scene_indexes``: one per ``index_scenes``: asset, name, extraction, ``source`` (``screen_text``:
  descriptions are the text read on screen; ``given``: the caller's scenes), the prompt and model
  asked for (recorded, never run), OCR languages, embed model, record count, generation.
- ``scene_records``: an index's records (seq, start, end, text, vector); ``scene_records_fts`` over text.
- ``scene_state``: the index's change counter.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional, Sequence

import numpy as np
import sqlite_utils

from .segments import Segment
from .store import Tables, _transaction, apply_schema, bump, replace_segments

TABLES = Tables(segments="scene_records", fts="scene_records_fts", indexes="scene_indexes", owner="index_id",
                state="scene_state")

SCHEMA_V1: tuple[str, ...] = (
    """CREATE TABLE scene_collections (
                id TEXT PRIMARY KEY, asset_id TEXT NOT NULL, extraction_type TEXT, config TEXT, created_at REAL)""",
    """CREATE INDEX idx_scene_collections_asset ON scene_collections(asset_id)""",
    """CREATE TABLE scenes (
                id TEXT PRIMARY KEY, collection_id TEXT NOT NULL, asset_id TEXT NOT NULL, seq INTEGER NOT NULL,
                start REAL NOT NULL, "end" REAL NOT NULL, description TEXT, metadata TEXT)""",
    """CREATE INDEX idx_scenes_collection ON scenes(collection_id, seq)""",
    """CREATE TABLE scene_frames (
                id TEXT PRIMARY KEY, scene_id TEXT NOT NULL, collection_id TEXT NOT NULL, asset_id TEXT NOT NULL,
                seq INTEGER NOT NULL, frame_time REAL NOT NULL, path TEXT, description TEXT)""",
    """CREATE INDEX idx_scene_frames_scene ON scene_frames(scene_id, seq)""",
    """CREATE TABLE scene_indexes (
                index_id TEXT PRIMARY KEY, asset_id TEXT NOT NULL, name TEXT, extraction_type TEXT, config TEXT,
                source TEXT NOT NULL, prompt TEXT, model_name TEXT, langs TEXT, embed_model TEXT, dim INTEGER,
                record_count INTEGER, generation INTEGER NOT NULL, created_at REAL)""",
    """CREATE INDEX idx_scene_indexes_asset ON scene_indexes(asset_id)""",
    """CREATE TABLE scene_records (
                id INTEGER PRIMARY KEY, index_id TEXT NOT NULL, seq INTEGER NOT NULL, start REAL NOT NULL,
                "end" REAL NOT NULL, text TEXT NOT NULL, vector BLOB, channel TEXT)""",
    """CREATE INDEX idx_scene_records_index ON scene_records(index_id, seq)""",
    """CREATE TABLE scene_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)""",
    """INSERT INTO scene_state (key, value) VALUES ('generation', 0)""",
    """CREATE VIRTUAL TABLE scene_records_fts USING fts5(
                text, content='scene_records', content_rowid='id', tokenize='porter unicode61')""",
    """CREATE TRIGGER scene_records_ai AFTER INSERT ON scene_records BEGIN
                INSERT INTO scene_records_fts(rowid, text) VALUES (new.id, new.text); END""",
    """CREATE TRIGGER scene_records_ad AFTER DELETE ON scene_records BEGIN
                INSERT INTO scene_records_fts(scene_records_fts, rowid, text) VALUES ('delete', old.id, old.text);
                END""",
)


def ensure_schema(db: sqlite_utils.Database) -> None:
    """For the stage on its own (tests, benches); the server's migrations own the schema."""
    if not db["scene_indexes"].exists():
        apply_schema(db, SCHEMA_V1)


# -- scene collections --------------------------------------------------------------------------

def save_collection(db: sqlite_utils.Database, collection_id: str, asset_id: str, extraction_type: str,
                    config: dict[str, Any], scenes: Sequence[dict[str, Any]]) -> None:
    """Store (replace) a collection: ``scenes`` are ``{id, start, end, description?, metadata?, frames:
    [{id, frame_time, path, description?}]}``."""
    with _transaction(db):
        _delete_collection(db, collection_id)
        db.execute("INSERT INTO scene_collections (id, asset_id, extraction_type, config, created_at) "
                   "VALUES (?, ?, ?, ?, ?)", [collection_id, asset_id, extraction_type, json.dumps(config), time.time()])
        for seq, scene in enumerate(scenes):
            db.execute('INSERT INTO scenes (id, collection_id, asset_id, seq, start, "end", description, metadata) '
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [scene["id"], collection_id, asset_id, seq, scene["start"], scene["end"],
                        scene.get("description"), json.dumps(scene.get("metadata") or {})])
            for fseq, frame in enumerate(scene.get("frames") or []):
                db.execute("INSERT INTO scene_frames (id, scene_id, collection_id, asset_id, seq, frame_time, path, "
                           "description) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [frame["id"], scene["id"], collection_id, asset_id, fseq, frame["frame_time"],
                            frame.get("path"), frame.get("description")])


def _delete_collection(db: sqlite_utils.Database, collection_id: str) -> None:
    db.execute("DELETE FROM scene_frames WHERE collection_id = ?", [collection_id])
    db.execute("DELETE FROM scenes WHERE collection_id = ?", [collection_id])
    db.execute("DELETE FROM scene_collections WHERE id = ?", [collection_id])


def delete_collection(db: sqlite_utils.Database, collection_id: str) -> list[str]:
    """Remove a collection; the image paths its frames had (to delete from disk)."""
    with _transaction(db):
        paths = [r["path"] for r in db.query("SELECT path FROM scene_frames WHERE collection_id = ?", [collection_id])
                 if r["path"]]
        _delete_collection(db, collection_id)
    return paths


def get_collection(db: sqlite_utils.Database, collection_id: str) -> Optional[dict[str, Any]]:
    """A collection with its scenes and their frames, in order; None if there is none."""
    coll = next(db.query("SELECT * FROM scene_collections WHERE id = ?", [collection_id]), None)
    if coll is None:
        return None
    frames: dict[str, list[dict[str, Any]]] = {}
    for f in db.query("SELECT * FROM scene_frames WHERE collection_id = ? ORDER BY seq", [collection_id]):
        frames.setdefault(f["scene_id"], []).append(f)
    scenes = [{**s, "metadata": json.loads(s["metadata"] or "{}"), "frames": frames.get(s["id"], [])}
              for s in db.query("SELECT * FROM scenes WHERE collection_id = ? ORDER BY seq", [collection_id])]
    return {**coll, "config": json.loads(coll["config"] or "{}"), "scenes": scenes}


def list_collections(db: sqlite_utils.Database, asset_id: str) -> list[dict[str, Any]]:
    return [{**c, "config": json.loads(c["config"] or "{}")} for c in db.query(
        "SELECT * FROM scene_collections WHERE asset_id = ? ORDER BY created_at", [asset_id])]


def get_scene(db: sqlite_utils.Database, scene_id: str) -> Optional[dict[str, Any]]:
    scene = next(db.query("SELECT * FROM scenes WHERE id = ?", [scene_id]), None)
    if scene is None:
        return None
    frames = list(db.query("SELECT * FROM scene_frames WHERE scene_id = ? ORDER BY seq", [scene_id]))
    return {**scene, "frames": frames}


def get_frame(db: sqlite_utils.Database, frame_id: str) -> Optional[dict[str, Any]]:
    return next(db.query("SELECT * FROM scene_frames WHERE id = ?", [frame_id]), None)


def describe_frames(db: sqlite_utils.Database, descriptions: dict[str, str], scene_id: str | None = None,
                    scene_description: str | None = None) -> None:
    """Record frames' descriptions (the text read on them), and a scene's."""
    with _transaction(db):
        for frame_id, text in descriptions.items():
            db.execute("UPDATE scene_frames SET description = ? WHERE id = ?", [text, frame_id])
        if scene_id is not None:
            db.execute("UPDATE scenes SET description = ? WHERE id = ?", [scene_description, scene_id])


# -- scene indexes ------------------------------------------------------------------------------

def save_index(db: sqlite_utils.Database, index_id: str, asset_id: str, meta: dict[str, Any],
               records: Sequence[Segment], vectors: np.ndarray, *, embed_model: str) -> int:
    """Store (replace) a scene index and its records; ``meta`` holds name, extraction_type, config,
    source, prompt, model_name, langs. Returns the new generation."""
    with _transaction(db):
        vectors = replace_segments(db, TABLES, index_id, records, vectors)
        gen = bump(db, TABLES)
        db.execute(
            "INSERT OR REPLACE INTO scene_indexes (index_id, asset_id, name, extraction_type, config, source, prompt, "
            "model_name, langs, embed_model, dim, record_count, generation, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [index_id, asset_id, meta.get("name"), meta.get("extraction_type"), json.dumps(meta.get("config") or {}),
             meta.get("source") or "screen_text", meta.get("prompt"), meta.get("model_name"),
             meta.get("langs"), embed_model, int(vectors.shape[1]), len(records), gen, time.time()])
    return gen


def delete_index(db: sqlite_utils.Database, index_id: str) -> bool:
    with _transaction(db):
        db.execute("DELETE FROM scene_records WHERE index_id = ?", [index_id])
        cur = db.execute("DELETE FROM scene_indexes WHERE index_id = ?", [index_id])
        if cur.rowcount:
            bump(db, TABLES)
    return bool(cur.rowcount)


def get_index(db: sqlite_utils.Database, index_id: str) -> Optional[dict[str, Any]]:
    found = next(db.query("SELECT * FROM scene_indexes WHERE index_id = ?", [index_id]), None)
    return {**found, "config": json.loads(found["config"] or "{}")} if found else None


def list_indexes(db: sqlite_utils.Database, asset_id: str) -> list[dict[str, Any]]:
    return [{**r, "config": json.loads(r["config"] or "{}")} for r in db.query(
        "SELECT * FROM scene_indexes WHERE asset_id = ? ORDER BY created_at", [asset_id])]


def index_records(db: sqlite_utils.Database, index_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query(
        'SELECT start, "end", text FROM scene_records WHERE index_id = ? ORDER BY seq', [index_id])]


def indexes_of(db: sqlite_utils.Database, asset_ids: Sequence[str]) -> dict[str, str]:
    """index id → asset id, for every scene index of the assets."""
    if not asset_ids:
        return {}
    marks = ",".join("?" * len(asset_ids))
    return {r["index_id"]: r["asset_id"] for r in db.query(
        f"SELECT index_id, asset_id FROM scene_indexes WHERE asset_id IN ({marks})", list(asset_ids))}


def delete_for(db: sqlite_utils.Database, asset_id: str) -> None:
    """Every scene index and collection of an asset (its frame images go with its folder)."""
    with _transaction(db):
        for r in list(db.query("SELECT index_id FROM scene_indexes WHERE asset_id = ?", [asset_id])):
            delete_index(db, r["index_id"])
        for r in list(db.query("SELECT id FROM scene_collections WHERE asset_id = ?", [asset_id])):
            _delete_collection(db, r["id"])
