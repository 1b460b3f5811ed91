"""Search quality: spoken meetings (espeak-ng), written queries, recall@1 and MRR per method.

    python tests/bench/search_quality.py

Three short "meetings" are spoken, transcribed and indexed with the real pipeline (bundled
whisper tiny.en + all-MiniLM-L6-v2). Each query names the sentence it should find (meeting, index);
a result is a hit when it is in that meeting and overlaps that sentence's placed time by more than
half. Queries come in three kinds: paraphrase (no content word shared), exact (words spoken),
question (how someone would ask). Methods: semantic (cosine), keyword (FTS5, all words, bm25) and
hybrid (RRF of semantic and any-word keyword). Search is collection-wide (all meetings) with no
score threshold and the top 10 results.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.speech import compose  # noqa: E402
from support.media import write_wav  # noqa: E402

MEETINGS = {
    "m-eng": [
        "Our database migration failed because a column was missing.",
        "Latency on the search endpoint went up by twenty percent after Monday's deploy.",
        "We will roll back the payment service tonight.",
        "The new laptops for the interns arrive next week.",
        "Please review the pull request for the login page.",
        "The test suite takes forty minutes and needs to be faster.",
    ],
    "m-sales": [
        "Sales in Europe were stronger than we expected this quarter.",
        "The quarterly budget review is scheduled for next Tuesday afternoon.",
        "Our biggest customer wants a discount before renewing the contract.",
        "We should hire two more account managers in Singapore.",
        "The trade show in Chicago brought in forty new leads.",
        "Marketing will launch the spring campaign in April.",
    ],
    "m-home": [
        "Remember to water the tomato plants in the greenhouse.",
        "Our cat knocked a glass of water off the kitchen table.",
        "The bakery on the corner sells fresh sourdough bread.",
        "My daughter starts piano lessons on Saturday.",
        "The car needs new tires before the winter.",
        "We are painting the living room a pale shade of green.",
    ],
}

# (kind, query, meeting, sentence index)
QUERIES = [
    ("paraphrase", "schema upgrade broke due to an absent field", "m-eng", 0),
    ("paraphrase", "response times got slower", "m-eng", 1),
    ("paraphrase", "undo the billing system release", "m-eng", 2),
    ("paraphrase", "computers for new trainees", "m-eng", 3),
    ("paraphrase", "check my code change for the sign in screen", "m-eng", 4),
    ("paraphrase", "automated checks are too slow", "m-eng", 5),
    ("paraphrase", "revenue across the continent beat forecasts", "m-sales", 0),
    ("paraphrase", "meeting about spending plans", "m-sales", 1),
    ("paraphrase", "a major client asks for a lower price", "m-sales", 2),
    ("paraphrase", "recruiting people in Asia", "m-sales", 3),
    ("paraphrase", "an exhibition produced prospects", "m-sales", 4),
    ("paraphrase", "pet spilled a drink", "m-home", 1),
    ("paraphrase", "shop selling loaves", "m-home", 2),
    ("paraphrase", "child begins music classes", "m-home", 3),
    ("paraphrase", "vehicle maintenance for the cold season", "m-home", 4),
    ("paraphrase", "redecorating a room", "m-home", 5),
    ("exact", "database migration", "m-eng", 0),
    ("exact", "payment service", "m-eng", 2),
    ("exact", "pull request", "m-eng", 4),
    ("exact", "Singapore", "m-sales", 3),
    ("exact", "spring campaign", "m-sales", 5),
    ("exact", "Chicago", "m-sales", 4),
    ("exact", "tomato plants", "m-home", 0),
    ("exact", "sourdough", "m-home", 2),
    ("exact", "piano lessons", "m-home", 3),
    ("question", "why did the migration fail?", "m-eng", 0),
    ("question", "when are we rolling back payments?", "m-eng", 2),
    ("question", "how long does the test suite take?", "m-eng", 5),
    ("question", "when is the budget review?", "m-sales", 1),
    ("question", "how many leads came from the trade show?", "m-sales", 4),
    ("question", "what does the customer want before renewing?", "m-sales", 2),
    ("question", "what colour is the living room going to be?", "m-home", 5),
    ("question", "what happened to the glass of water?", "m-home", 1),
    ("question", "when do the piano lessons start?", "m-home", 3),
]


def build(dirpath: Path):
    import sqlite_utils

    from reeldb.index import pipeline, store

    db = sqlite_utils.Database(sqlite3.connect(str(dirpath / "q.db"), isolation_level=None))
    store.ensure_schema(db)
    placed = {}
    for mid, sents in MEETINGS.items():
        audio, placed[mid] = compose(sents, gap=1.2, lead=0.5, noise=0.001)
        path = write_wav(dirpath / f"{mid}.wav", audio)
        pipeline.index_asset(db, mid, path)
    return db, placed


def is_hit(r, mid, p) -> bool:
    if r["asset_id"] != mid:
        return False
    overlap = min(r["end"], p.end) - max(r["start"], p.start)
    return overlap > 0.5 * (p.end - p.start)


def main() -> None:
    from reeldb.index.search import SearchIndex

    with tempfile.TemporaryDirectory() as d:
        db, placed = build(Path(d))
        idx = SearchIndex()
        methods = {
            "semantic": dict(mode="semantic", score_threshold=None),
            "keyword": dict(mode="keyword", score_threshold=None),
            "hybrid": dict(mode="hybrid", score_threshold=None),
        }
        table: dict[tuple[str, str], list[float]] = {}
        misses = []
        for kind, q, mid, i in QUERIES:
            p = placed[mid][i]
            for name, kw in methods.items():
                res = idx.search(db, q, result_threshold=10, **kw)
                rank = next((n for n, r in enumerate(res, 1) if is_hit(r, mid, p)), None)
                rr = 1.0 / rank if rank else 0.0
                for k in (kind, "all"):
                    table.setdefault((name, k), []).append(rr)
                if name == "hybrid" and rank != 1:
                    misses.append((kind, q, rank, res[0]["text"] if res else None))
        kinds = ["paraphrase", "exact", "question", "all"]
        print(f"{len(QUERIES)} queries over {sum(map(len, MEETINGS.values()))} spoken sentences in {len(MEETINGS)} meetings")
        print(f"{'method':10}" + "".join(f"{k:>22}" for k in kinds))
        for name in methods:
            cells = []
            for k in kinds:
                rr = table[(name, k)]
                cells.append(f"R@1 {sum(x == 1.0 for x in rr)/len(rr):.2f} MRR {sum(rr)/len(rr):.2f}")
            print(f"{name:10}" + "".join(f"{c:>22}" for c in cells))
        for m in misses:
            print("hybrid miss:", m)


if __name__ == "__main__":
    main()
