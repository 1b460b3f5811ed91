"""Fixtures for index tests: spoken sentences at known times, transcribed once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from speech import HAVE_ESPEAK, compose, write_wav  # noqa: E402

needs_espeak = pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng not installed (apt-get install espeak-ng)")

#: Asset A: an engineering meeting. Asset B: a garden club. Distinct topics, so collection
#: search has a right answer in each.
MEETING_A = [
    "The quarterly budget review is scheduled for next Tuesday afternoon.",
    "Our database migration failed because a column was missing.",
    "Please send the slides to the marketing team before Friday.",
    "The new office in Berlin opens in September.",
]
MEETING_B = [
    "Remember to water the tomato plants in the greenhouse every morning.",
    "Our cat knocked a glass of water off the kitchen table.",
    "The bakery on the corner sells fresh sourdough bread.",
]


@pytest.fixture(scope="session")
def spoken(tmp_path_factory):
    """Two wav files with their placed sentences: {"a": (path, placed), "b": (path, placed)}."""
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng not installed")
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
