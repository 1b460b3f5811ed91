"""The indexing job's body: media file → transcript → sentences → vectors → rows.

Why one function: the server's job runner needs a single blocking call it can run in a worker
thread, resume after a crash (it is idempotent: rows are replaced per asset) and report progress
from. The transcript is kept separately so ``get_transcript`` works without an index, and
re-indexing (``force``) does not re-transcribe unless asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Protocol, Sequence, TypeVar, Union

import numpy as np

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


def transcribe_asset(
    path: Union[str, os.PathLike],
    progress: Optional[Progress] = None,
    *,
    sources: Sequence[ChannelSource] = (),
    stored: Optional[Mapping[str, Transcript]] = None,
    language: Optional[str] = None,
    whisper_model: Optional[str] = None,
) -> tuple[Transcript, dict[str, Transcript]]:
    """The asset's transcript, and each channel asset's own one that is new (by asset id; ``stored``
    holds those already made, which are reused). With ``sources`` (a capture's stored audio
    channels) each is transcribed on its own and merged (:func:`channels.transcribe_channels`);
    without, the file's own audio. Files only: the server runs this as a job's compute part."""
    if not sources:
        return transcribe(path, progress, model_spec=whisper_model, language=language), {}
    tr, own = transcribe_channels(sources, progress, stored=stored, model_spec=whisper_model, language=language)
    return tr, {asset_id: t for asset_id, t in own.items() if asset_id not in (stored or {})}


def segment_and_embed(tr: Transcript, embed_model: Optional[str] = None) -> tuple[list[segments.Segment], np.ndarray]:
    """The index of a transcript: its sentences and their vectors (float32, one row each)."""
    segs = segments.index_segments(tr.words)
    vecs = np.ascontiguousarray(embed.embed_texts([s.text for s in segs], model_spec=embed_model), dtype=np.float32)
    return segs, vecs


def save_transcripts(conn: sqlite_utils.Database, made: Mapping[str, Transcript]) -> None:
    for asset_id, tr in made.items():
        store.save_transcript(conn, asset_id, tr)


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
    """The asset's stored transcript, transcribing and storing it first if missing (or ``force``),
    each channel asset's own transcript too. Blocking."""
    access = _access(db)
    if not force:
        existing = access.read_sync(lambda conn: store.get_transcript(conn, asset_id))
        if existing is not None:
            if progress:
                progress(1.0)
            return existing
    tr, own = transcribe_asset(path, progress, sources=sources, language=language, whisper_model=whisper_model)
    access.write_sync(lambda conn: save_transcripts(conn, {**own, asset_id: tr}))
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
    """Transcribe (unless a transcript is stored and not ``force``), segment, embed and store: the
    steps the server's index job runs split where the database is (``server/spoken.py``), in one
    call for the stage on its own (tests, benches).

    Blocking, seconds to minutes: run in a worker thread. Progress goes 0 → 0.9 while
    transcribing, then 1.0. Raises ``TranscribeError`` / ``ModelNotFound``.
    """
    sub = (lambda f: progress(f * TRANSCRIBE_SHARE)) if progress else None
    tr = ensure_transcript(db, asset_id, path, sub, force=force, language=language, whisper_model=whisper_model,
                           sources=sources)
    segs, vecs = segment_and_embed(tr, embed_model)
    gen = _access(db).write_sync(lambda conn: store.save_index(conn, asset_id, segs, vecs,
                                                               embed_model=embed.model_name(embed_model)))
    if progress:
        progress(1.0)
    return IndexResult(asset_id, len(segs), len(tr.words), tr.duration, gen)
