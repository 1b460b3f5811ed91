"""The indexing job's body: media file → transcript → sentences → vectors → rows.

Why one function: the server's job runner needs a single blocking call it can run in a worker
thread, resume after a crash (it is idempotent: rows are replaced per asset) and report progress
from. The transcript is kept separately so ``get_transcript`` works without an index, and
re-indexing (``force``) does not re-transcribe unless asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence, TypeVar, Union

import sqlite_utils

from . import embed, segments, store
from .channels import ChannelSource, transcribe_channels
from .transcribe import Transcript, transcribe

Progress = Callable[[float], None]
T = TypeVar("T")


class Access(Protocol):
    """How the pipeline reaches its tables. The server passes its ``Database`` (reads on a reader
    thread, writes on its one writer thread); the stage alone passes a plain connection."""

    def read_sync(self, fn: Callable[[sqlite_utils.Database], T]) -> T: ...

    def write_sync(self, fn: Callable[[sqlite_utils.Database], T]) -> T: ...


class Direct:
    """:class:`Access` over one connection, for the stage on its own (tests, benches)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def read_sync(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        return fn(self.db)

    def write_sync(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        return fn(self.db)


def _access(db: Union[sqlite_utils.Database, Access]) -> Access:
    return Direct(db) if isinstance(db, sqlite_utils.Database) else db
TRANSCRIBE_SHARE = 0.9  # of progress; embedding and writing take the rest


@dataclass(frozen=True)
class IndexResult:
    asset_id: str
    segments: int
    words: int
    duration: float
    generation: int


def ensure_transcript(
    db: Union[sqlite_utils.Database, Access],
    asset_id: str,
    path: Union[str, os.PathLike],
    progress: Optional[Progress] = None,
    *,
    force: bool = False,
    language: Optional[str] = None,
    whisper_model: Optional[str] = None,
    sources: Sequence[ChannelSource] = (),
) -> Transcript:
    """The asset's stored transcript, transcribing and storing it first if missing (or ``force``).
    With ``sources`` (a capture's stored audio channels), each is transcribed on its own and
    merged (:func:`channels.transcribe_channels`), and each channel asset keeps its own transcript
    too. Blocking."""
    access = _access(db)
    if not force:
        existing = access.read_sync(lambda conn: store.get_transcript(conn, asset_id))
        if existing is not None:
            if progress:
                progress(1.0)
            return existing
    if not sources:
        tr = transcribe(path, progress, model_spec=whisper_model, language=language)
        access.write_sync(lambda conn: store.save_transcript(conn, asset_id, tr))
        return tr
    tr, own = transcribe_channels(sources, progress, model_spec=whisper_model, language=language)

    def save(conn: sqlite_utils.Database) -> None:
        for source_id, source_tr in own.items():
            store.save_transcript(conn, source_id, source_tr)
        store.save_transcript(conn, asset_id, tr)

    access.write_sync(save)
    return tr


def index_asset(
    db: Union[sqlite_utils.Database, Access],
    asset_id: str,
    path: Union[str, os.PathLike],
    progress: Optional[Progress] = None,
    *,
    force: bool = False,
    language: Optional[str] = None,
    whisper_model: Optional[str] = None,
    embed_model: Optional[str] = None,
    sources: Sequence[ChannelSource] = (),
) -> IndexResult:
    """Transcribe (unless a transcript is stored and not ``force``), segment, embed and store.

    Blocking, seconds to minutes: run in a worker thread. Progress goes 0 → 0.9 while
    transcribing, then 1.0. Raises ``TranscribeError`` / ``ModelNotFound``.
    """
    sub = (lambda f: progress(f * TRANSCRIBE_SHARE)) if progress else None
    tr = ensure_transcript(db, asset_id, path, sub, force=force, language=language, whisper_model=whisper_model,
                           sources=sources)
    segs = segments.index_segments(tr.words)
    vecs = embed.embed_texts([s.text for s in segs], model_spec=embed_model)
    model = embed_model or "bundled:all-MiniLM-L6-v2"
    gen = _access(db).write_sync(lambda conn: store.save_index(conn, asset_id, segs, vecs, embed_model=model))
    if progress:
        progress(1.0)
    return IndexResult(asset_id, len(segs), len(tr.words), tr.duration, gen)
