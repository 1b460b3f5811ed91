"""Search over indexed synthetic meetings: paraphrases, keywords, collections, thresholds."""

from __future__ import annotations

import pytest


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def idx():
    from reeldb.index.search import SearchIndex

    return SearchIndex()


def test_paraphrase_without_shared_words_finds_sentence_first(indexed_db, idx):
    # "Our database migration failed because a column was missing."
    res = idx.search(indexed_db, "schema upgrade broke due to an absent field", asset_ids=["m-a"])
    print(res)
    assert res and "migration" in res[0]["text"].lower()
    # "Our cat knocked a glass of water off the kitchen table." — collection-wide
    res = idx.search(indexed_db, "pet spilled a drink")
    assert res and res[0]["asset_id"] == "m-b" and "cat" in res[0]["text"].lower()


def test_keyword_finds_exact_words(indexed_db, idx):
    res = idx.search(indexed_db, "Berlin", mode="keyword", score_threshold=None)
    assert [r["asset_id"] for r in res] == ["m-a"] and "Berlin" in res[0]["text"]
    assert idx.search(indexed_db, "Berlin sourdough", mode="keyword", score_threshold=None) == []
    assert idx.search(indexed_db, "sourdough", mode="keyword", asset_ids=["m-a"], score_threshold=None) == []


def test_collection_search_ranks_across_assets(indexed_db, idx):
    res = idx.search(indexed_db, "gardening and growing vegetables", result_threshold=10, score_threshold=0.0)
    assert res[0]["asset_id"] == "m-b" and "tomato" in res[0]["text"].lower()
    assert {r["asset_id"] for r in res} == {"m-a", "m-b"}
    assert [r["score"] for r in res] == sorted((r["score"] for r in res), reverse=True)
    res = idx.search(indexed_db, "money plans for the quarter", mode="hybrid")
    assert res[0]["asset_id"] == "m-a" and "budget" in res[0]["text"].lower()


def test_thresholds(indexed_db, idx):
    every = idx.search(indexed_db, "office", score_threshold=-1.0, result_threshold=100)
    assert len(every) == 7  # all segments of both assets
    assert len(idx.search(indexed_db, "office", score_threshold=-1.0, result_threshold=2)) == 2
    high = idx.search(indexed_db, "office", score_threshold=0.99)
    assert high == []
    some = idx.search(indexed_db, "office", score_threshold=0.3, result_threshold=100)
    assert 0 < len(some) < 7 and all(r["score"] >= 0.3 for r in some)
    assert set(every[0]) == {"asset_id", "start", "end", "text", "score"}


def test_reindex_and_delete_seen_by_search(indexed_db, idx, spoken):
    from reeldb.index import pipeline, store

    r = pipeline.index_asset(indexed_db, "m-a2", spoken["a"][0])  # reuses nothing: new asset id
    assert r.segments == 4
    assert {x["asset_id"] for x in idx.search(indexed_db, "Berlin office", result_threshold=10)} >= {"m-a", "m-a2"}
    store.delete_for(indexed_db, "m-a2")
    assert all(x["asset_id"] != "m-a2" for x in idx.search(indexed_db, "Berlin office", result_threshold=10))
