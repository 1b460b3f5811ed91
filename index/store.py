"""Transcripts and spoken-word index rows in the server's SQLite database.

Why in SQLite: the index is small next to the media (a 384-float vector is 1.5 KB per sentence,
~1 MB per recorded hour) and living in the same file as the assets makes deleting an asset and its
index one transaction, and backups one file. Vectors are float32 BLOBs; keyword search is an FTS5
table kept in sync by triggers; ``spoken_indexes.generation`` lets an in-memory search matrix
notice changes made by other connections (worker threads) with one cheap query.

Tables (their DDL is :data:`SCHEMA_V1` then :data:`SCHEMA_V2`, which the server applies as
migrations; :func:`ensure_schema` does the same for the stage on its own):
- ``transcripts``: one row per asset: language, duration, model, text, words (JSON
  [[s, e, t] or [s, e, t, channel]…]), ``format`` (2: whole words, pieces joined; NULL: rows from
  before, whose pieces are re-joined on read, :func:`words.rejoin_legacy`), ``channels`` (JSON: the
  capture channels transcribed on their own, ``[{channel, channel_id, asset_id, offset}]``).
- ``spoken_segments``: one row per indexed segment: asset_id, seq, start, end, text, vector,
  ``channel`` (NULL for one audio track).
- ``spoken_segments_fts``: FTS5 over ``spoken_segments.text`` (porter stemming).
- ``spoken_indexes``: one row per indexed asset: embed model, dim, count, generation.
- ``index_state``: a single counter, bumped on every index change.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any, Iterator, Optional, Sequence

from dataclasses import dataclass

import numpy as np
import sqlite_utils

from .embed import BUNDLED_NAME
from .segments import Segment
from .transcribe import Transcript
from .words import Word, rejoin_legacy


#: The index stage's tables, version 1. The server applies them as one of its migrations
#: (``reeldb.server.schema``), so the shape moves forward with the rest of the database; a later
#: change is a new tuple here and a new migration there, never an edit of this one.
SCHEMA_V1: tuple[str, ...] = (
    """CREATE TABLE transcripts (
                asset_id TEXT PRIMARY KEY, language TEXT, duration REAL, model TEXT,
                text TEXT, words TEXT, created_at REAL)""",
    """CREATE TABLE spoken_segments (
                id INTEGER PRIMARY KEY, asset_id TEXT NOT NULL, seq INTEGER NOT NULL,
                start REAL NOT NULL, "end" REAL NOT NULL, text TEXT NOT NULL, vector BLOB)""",
    """CREATE INDEX idx_spoken_segments_asset ON spoken_segments(asset_id, seq)""",
    """CREATE TABLE spoken_indexes (
                asset_id TEXT PRIMARY KEY, embed_model TEXT, dim INTEGER, segment_count INTEGER,
                generation INTEGER NOT NULL, created_at REAL)""",
    """CREATE TABLE index_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)""",
    """INSERT INTO index_state (key, value) VALUES ('generation', 0)""",
    """CREATE VIRTUAL TABLE spoken_segments_fts USING fts5(
                text, content='spoken_segments', content_rowid='id', tokenize='porter unicode61')""",
    """CREATE TRIGGER spoken_segments_ai AFTER INSERT ON spoken_segments BEGIN
                INSERT INTO spoken_segments_fts(rowid, text) VALUES (new.id, new.text); END""",
    """CREATE TRIGGER spoken_segments_ad AFTER DELETE ON spoken_segments BEGIN
                INSERT INTO spoken_segments_fts(spoken_segments_fts, rowid, text) VALUES ('delete', old.id, old.text);
                END""",
    """CREATE TRIGGER spoken_segments_au AFTER UPDATE ON spoken_segments BEGIN
                INSERT INTO spoken_segments_fts(spoken_segments_fts, rowid, text) VALUES ('delete', old.id, old.text);
                INSERT INTO spoken_segments_fts(rowid, text) VALUES (new.id, new.text); END""",
)


#: Version 2 (issue 17): per-channel transcripts and whole words. Old rows keep NULLs, read as
#: one audio track and as word pieces to re-join.
SCHEMA_V2: tuple[str, ...] = (
    """ALTER TABLE transcripts ADD COLUMN format INTEGER""",
    """ALTER TABLE transcripts ADD COLUMN channels TEXT""",
    """ALTER TABLE spoken_segments ADD COLUMN channel TEXT""",
)
#: What ``transcripts.format`` says of the words stored from now on: whisper's pieces joined.
WORDS_FORMAT = 2


@dataclass(frozen=True)
class Tables:
    """Where an index of timed texts with vectors lives: the spoken words' tables, or another
    index of the same shape (screen text, ``scene_store``), which the search layer reads alike.
    ``owner`` is the column that groups rows (an asset, a scene index)."""

    segments: str = "spoken_segments"
    fts: str = "spoken_segments_fts"
    indexes: str = "spoken_indexes"
    owner: str = "asset_id"
    state: str = "index_state"


SPOKEN = Tables()


def apply_schema(db: sqlite_utils.Database, statements: Sequence[str]) -> None:
    """Run one version's DDL in one transaction (a server migration calls this with its version)."""
    with _transaction(db):
        for statement in statements:
            db.execute(statement)


def create_schema(db: sqlite_utils.Database) -> None:
    """Create the index tables (every version) in a database that has none of them."""
    apply_schema(db, SCHEMA_V1 + SCHEMA_V2)


def ensure_schema(db: sqlite_utils.Database) -> None:
    """For the stage on its own (tests, benches): create the tables, or bring version 1 tables
    forward. The server does not call this; its migrations own the schema."""
    if not db["transcripts"].exists():
        create_schema(db)
    elif "format" not in db["transcripts"].columns_dict:
        apply_schema(db, SCHEMA_V2)


@contextlib.contextmanager
def _transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """A savepoint: atomic on its own, nests inside a caller's transaction, works whatever the
    connection's isolation level (the server's is autocommit)."""
    name = "reeldb_index_" + uuid.uuid4().hex[:8]
    db.conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        db.conn.execute(f"ROLLBACK TO {name}")
        db.conn.execute(f"RELEASE {name}")
        raise
    db.conn.execute(f"RELEASE {name}")


def save_transcript(db: sqlite_utils.Database, asset_id: str, transcript: Transcript) -> None:
    """Store (replace) an asset's transcript."""
    words = json.dumps([w.row() for w in transcript.words], separators=(",", ":"))
    channels = json.dumps(transcript.channels, separators=(",", ":")) if transcript.channels else None
    with _transaction(db):
        db.execute(
            """INSERT OR REPLACE INTO transcripts (asset_id, language, duration, model, text, words, format, channels,
               created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [asset_id, transcript.language, transcript.duration, transcript.model, transcript.text, words,
             WORDS_FORMAT, channels, time.time()],
        )


def get_transcript(db: sqlite_utils.Database, asset_id: str) -> Optional[Transcript]:
    """An asset's stored transcript, or None."""
    row = next(db.query("SELECT * FROM transcripts WHERE asset_id = ?", [asset_id]), None)
    if row is None:
        return None
    words = [Word.from_row(r) for r in json.loads(row["words"] or "[]")]
    if not row.get("format"):
        words = rejoin_legacy(words)
    return Transcript(words=words, language=row["language"] or "en", duration=row["duration"] or 0.0,
                      model=row["model"] or "", channels=json.loads(row.get("channels") or "[]"))


def save_index(
    db: sqlite_utils.Database,
    asset_id: str,
    segments: Sequence[Segment],
    vectors: np.ndarray,
    *,
    embed_model: str = BUNDLED_NAME,
) -> int:
    """Store (replace) an asset's indexed segments and their vectors in one transaction.

    Returns the new generation. Raises ValueError if counts or shapes disagree.
    """
    with _transaction(db):
        vectors = replace_segments(db, SPOKEN, asset_id, segments, vectors)
        gen = _bump(db)
        db.execute(
            """INSERT OR REPLACE INTO spoken_indexes (asset_id, embed_model, dim, segment_count, generation, created_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            [asset_id, embed_model, int(vectors.shape[1]), len(segments), gen, time.time()],
        )
    return gen


def replace_segments(db: sqlite_utils.Database, tables: Tables, owner_id: str, segments: Sequence[Segment],
                     vectors: np.ndarray) -> np.ndarray:
    """Inside the caller's transaction: the owner's rows replaced by ``segments`` with their
    ``vectors`` (float32, one row each; ValueError if they disagree). Returns the vectors as stored."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(segments):
        raise ValueError(f"{len(segments)} segments but vectors of shape {vectors.shape}")
    db.execute(f"DELETE FROM {tables.segments} WHERE {tables.owner} = ?", [owner_id])
    db.conn.executemany(
        f'INSERT INTO {tables.segments} ({tables.owner}, seq, start, "end", text, vector, channel) '
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(owner_id, i, s.start, s.end, s.text, vectors[i].tobytes(), s.channel) for i, s in enumerate(segments)])
    return vectors


def bump(db: sqlite_utils.Database, tables: Tables) -> int:
    """The index's generation, moved on (every change of its rows)."""
    db.execute(f"UPDATE {tables.state} SET value = value + 1 WHERE key = 'generation'")
    return int(next(db.query(f"SELECT value FROM {tables.state} WHERE key = 'generation'"))["value"])


def _bump(db: sqlite_utils.Database) -> int:
    return bump(db, SPOKEN)


def has_index(db: sqlite_utils.Database, asset_id: str) -> bool:
    return next(db.query("SELECT 1 FROM spoken_indexes WHERE asset_id = ?", [asset_id]), None) is not None


def delete_for(db: sqlite_utils.Database, asset_id: str) -> None:
    """Remove an asset's transcript, segments and index row (nothing to do if it has none)."""
    with _transaction(db):
        db.execute("DELETE FROM spoken_segments WHERE asset_id = ?", [asset_id])
        db.execute("DELETE FROM transcripts WHERE asset_id = ?", [asset_id])
        cur = db.execute("DELETE FROM spoken_indexes WHERE asset_id = ?", [asset_id])
        if cur.rowcount:
            _bump(db)


def generation(db: sqlite_utils.Database, tables: Tables = SPOKEN) -> int:
    """The index's change counter (cheap: one row)."""
    row = next(db.query(f"SELECT value FROM {tables.state} WHERE key = 'generation'"), None)
    return int(row["value"]) if row else 0


def index_generations(db: sqlite_utils.Database, tables: Tables = SPOKEN) -> dict[str, int]:
    """owner (asset id) → generation of its current index."""
    return {r["owner"]: int(r["generation"])
            for r in db.query(f"SELECT {tables.owner} AS owner, generation FROM {tables.indexes}")}


def load_segments(db: sqlite_utils.Database, asset_id: str,
                  tables: Tables = SPOKEN) -> tuple[list[Segment], np.ndarray]:
    """An asset's segments (in order) and their vectors as one (n, dim) float32 matrix."""
    rows = db.execute(
        f'SELECT start, "end", text, vector, channel FROM {tables.segments} WHERE {tables.owner} = ? ORDER BY seq',
        [asset_id]).fetchall()
    segs = [Segment(r[0], r[1], r[2], r[4]) for r in rows]
    if not rows:
        return segs, np.zeros((0, 0), np.float32)
    mat = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    return segs, mat


def keyword_rows(
    db: sqlite_utils.Database, match: str, asset_ids: Optional[Sequence[str]] = None, limit: int = 100,
    tables: Tables = SPOKEN,
) -> list[dict[str, Any]]:
    """FTS5 ``match`` expression → rows ``{asset_id, start, end, text, rank}`` best first
    (``rank`` is bm25: lower is better; ``asset_id`` is the row's owner), plus ``channel`` when the
    segment has one."""
    fts = tables.fts
    sql = (
        f'SELECT s.{tables.owner}, s.start, s."end", s.text, bm25({fts}) AS rank, s.channel '
        f"FROM {fts} JOIN {tables.segments} s ON s.id = {fts}.rowid "
        f"WHERE {fts} MATCH ?"
    )
    params: list[Any] = [match]
    if asset_ids is not None:
        ids = list(asset_ids)
        if not ids:
            return []
        sql += f" AND s.{tables.owner} IN ({','.join('?' * len(ids))})"
        params += ids
    sql += " ORDER BY rank LIMIT ?"
    params.append(int(limit))
    cur = db.execute(sql, params)
    return [dict(asset_id=r[0], start=r[1], end=r[2], text=r[3], rank=r[4], **({"channel": r[5]} if r[5] else {}))
            for r in cur.fetchall()]
