"""Store and ranking without models: schema, rows, FTS sync, exact vector search, fusion, thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from reeldb.index import store
from reeldb.index.search import SearchIndex, VectorIndex, apply_thresholds, fts_query, fuse, merge
from reeldb.index.segments import Segment
from reeldb.index.transcribe import Transcript, Word


def unit(rng, n, d=8):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_schema_idempotent_and_rows(db):
    store.ensure_schema(db)
    store.ensure_schema(db)
    tr = Transcript([Word(0.0, 0.5, "Hello"), Word(0.5, 1.0, "world.")], duration=1.0)
    store.save_transcript(db, "m-1", tr)
    assert store.get_transcript(db, "m-1").text == "Hello world."
    segs = [Segment(0.0, 1.0, "Hello world."), Segment(1.0, 2.0, "Budgets are due.")]
    g1 = store.save_index(db, "m-1", segs, unit(np.random.default_rng(0), 2))
    assert store.has_index(db, "m-1") and store.generation(db) == g1
    got, mat = store.load_segments(db, "m-1")
    assert got == segs and mat.shape == (2, 8) and mat.dtype == np.float32
    assert [r["text"] for r in store.keyword_rows(db, fts_query("budget"))] == ["Budgets are due."]  # porter stem
    g2 = store.save_index(db, "m-1", segs[:1], unit(np.random.default_rng(1), 1))  # replace
    assert g2 > g1 and store.keyword_rows(db, fts_query("budget")) == []
    store.delete_for(db, "m-1")
    assert not store.has_index(db, "m-1") and store.get_transcript(db, "m-1") is None
    assert db.execute("SELECT count(*) FROM spoken_segments_fts").fetchone()[0] == 0
    with pytest.raises(ValueError):
        store.save_index(db, "m-2", segs, unit(np.random.default_rng(0), 3))


def test_vector_index_is_exact_and_filters_assets():
    rng = np.random.default_rng(1)
    vi = VectorIndex()
    mats = {}
    for a in ("m-a", "m-b", "m-c"):
        mats[a] = unit(rng, 50)
        vi.set_asset(a, [Segment(i, i + 1, f"{a} {i}") for i in range(50)], mats[a])
    q = unit(rng, 1)[0]
    for sel in (None, ["m-b"], ["m-a", "m-c"]):
        ids = sel or list(mats)
        brute = sorted(((float(mats[a][i] @ q), a, i) for a in ids for i in range(50)), reverse=True)[:7]
        got = vi.search(q, 7, sel)
        assert [(r["asset_id"], r["start"]) for r in got] == [(a, i) for _, a, i in brute]
        assert [r["score"] for r in got] == sorted((r["score"] for r in got), reverse=True)
    assert all(r["score"] >= 0.5 for r in vi.search(q, None, None, score_threshold=0.5))
    vi.remove_asset("m-b")
    assert all(r["asset_id"] != "m-b" for r in vi.search(q, 200))


def test_search_index_sees_writes_from_other_connections(db, tmp_path):
    import sqlite_utils

    idx = SearchIndex()
    rng = np.random.default_rng(2)
    v = unit(rng, 3)
    store.save_index(db, "m-1", [Segment(i, i + 1, f"s{i}") for i in range(3)], v)
    assert idx.semantic(db, "", query_vector=v[1], result_threshold=1)[0]["text"] == "s1"
    other = sqlite_utils.Database(tmp_path / "t.db")
    store.delete_for(other, "m-1")
    assert idx.semantic(db, "", query_vector=v[1]) == []


def test_fts_query_is_safe():
    assert fts_query('budget" OR NEAR(x') == '"budget" "or" "near" "x"'
    assert fts_query("what is the budget", "any") == '"budget"'
    assert fts_query("?!") is None


def test_fuse_and_thresholds():
    a = [{"asset_id": "x", "start": 0, "end": 1, "text": "A", "score": 0.9},
         {"asset_id": "x", "start": 1, "end": 2, "text": "B", "score": 0.5}]
    b = [{"asset_id": "x", "start": 1, "end": 2, "text": "B", "score": 0.7}]
    f = fuse([a, b])
    assert [r["text"] for r in f] == ["B", "A"]
    assert f[0]["score"] <= 1.0
    assert [r["text"] for r in apply_thresholds(a, score_threshold=0.6)] == ["A"]
    assert len(apply_thresholds(a, result_threshold=1)) == 1
    assert [r["text"] for r in apply_thresholds(a, dynamic_score_percentage=20)] == ["A"]


def test_merge_ranks_the_hits_of_two_indexes_together():
    """A hybrid list's first hit scores 1.0 however well it matched: merged by that score, a slide
    sharing one word with the query tied with (and once came above) the spoken sentence that said
    all of it. Merged, the hits are fused again by their cosine and keyword scores."""
    def hit(text, score, semantic=None, keyword=None, **extra):
        parts = {k: v for k, v in (("semantic", semantic), ("keyword", keyword)) if v is not None}
        return {"asset_id": "v", "start": 0.0, "end": 1.0, "text": text, "score": score, "parts": parts, **extra}

    spoken = [hit("budget talk", 0.99, semantic=0.62, keyword=0.4),
              hit("the quarterly budget review is on Friday", 0.98, semantic=0.71, keyword=0.8)]
    slides = [hit("Welcome to the review", 1.0, semantic=0.35, keyword=0.3, index_type="scene")]
    merged = merge([spoken, slides])
    assert [h["text"] for h in merged] == ["the quarterly budget review is on Friday", "budget talk",
                                          "Welcome to the review"]
    assert merged[0]["score"] == 1.0 and all("parts" not in h for h in merged)
    assert merged[2]["index_type"] == "scene"
    assert [h["text"] for h in merge([spoken, []], 1)] == ["budget talk"]  # one list keeps its order
    plain = merge([[{"asset_id": "v", "start": 0, "end": 1, "text": "a", "score": 0.3}],
                   [{"asset_id": "v", "start": 2, "end": 3, "text": "b", "score": 0.6}]])
    assert [h["text"] for h in plain] == ["b", "a"]  # semantic or keyword scores compare as they are
