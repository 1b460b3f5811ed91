"""Fixtures for index tests: spoken sentences at known times, transcribed once per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from support.speech import MEETING_A, MEETING_B, compose, require_espeak
from support.media import write_wav

@pytest.fixture(scope="session")
def spoken(tmp_path_factory):
    """Two wav files with their placed sentences: {"a": (path, placed), "b": (path, placed)}."""
    require_espeak()
    d = tmp_path_factory.mktemp("speech")
    out = {}
    for name, sents in (("a", MEETING_A), ("b", MEETING_B)):
        audio, placed = compose(sents, gap=1.5, lead=1.0)
        out[name] = (write_wav(d / f"{name}.wav", audio), placed)
    return out


@pytest.fixture(scope="session")
def transcripts(spoken):
    from reeldb.index.transcribe import transcribe

    return {k: transcribe(p) for k, (p, _) in spoken.items()}


@pytest.fixture
def db(tmp_path):
    import sqlite_utils

    from reeldb.index import store

    d = sqlite_utils.Database(tmp_path / "t.db")
    store.ensure_schema(d)
    return d


@pytest.fixture(scope="session")
def indexed_db(tmp_path_factory, spoken, transcripts):
    """A database with both assets indexed (transcripts reused from the session fixture)."""
    import sqlite_utils

    from reeldb.index import pipeline, store

    d = sqlite_utils.Database(tmp_path_factory.mktemp("db") / "idx.db")
    store.ensure_schema(d)
    for k, (p, _) in spoken.items():
        store.save_transcript(d, f"m-{k}", transcripts[k])
        pipeline.index_asset(d, f"m-{k}", p)
    return d
