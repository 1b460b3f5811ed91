"""Searching spoken words: semantic (vectors), keyword (FTS5 bm25) and hybrid (reciprocal rank fusion).

Why brute force: with unit vectors, cosine similarity over every segment is one matrix-vector
product; it is exact, has no training or parameters, and updates are free. The scan is memory
bound (float32 at 10^6 x 384 is 1.5 GB per query, ~100 ms here), so large scans read an int8 copy
of the matrix instead (a quarter of the bytes, exact int32 products, both cores; see
:mod:`.prefilter`): its scores have a proven error bound, every row that could be in the float32
top-k is kept, and those few candidates are re-ranked in float32. The answer is the float32
brute-force answer (ties aside).

Layers:
- :class:`VectorIndex`: pure, in memory. Per-asset blocks of vectors; one concatenated matrix
  (plus its int8 copy when it has at least ``fast_min_rows`` rows), rebuilt lazily after a
  change; a query is a matmul (over the whole matrix, or over the row ranges of the chosen assets
  when they are fewer than half) and an ``argpartition``; over many rows, an int8 pre-filter then
  a float32 matmul of the candidates.
- :class:`SearchIndex`: the I/O edge. Keeps a :class:`VectorIndex` in step with the database by
  comparing ``store.generation`` (one row) and reloading only changed assets.
- :func:`fuse`, :func:`fts_query`, :func:`apply_thresholds`: pure ranking helpers.

Results are dicts ``{asset_id, start, end, text, score}`` (plus ``channel``, the capture channel
that said it, when the transcript was made per channel) sorted by score, best first. Hybrid results
also carry their ``parts`` (cosine and keyword score), so that :func:`merge` can rank the hits of
several indexes together.
All search calls are blocking (query embedding ~5–20 ms, scan up to tens of ms at 10^6):
run them in a worker thread.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Literal, Optional, Sequence

import numpy as np
import sqlite_utils

from . import embed, prefilter, store
from .segments import Segment

Mode = Literal["semantic", "keyword", "hybrid"]
MODES = ("semantic", "keyword", "hybrid")
RRF_K = 60
#: VideoDB's defaults for semantic search (SDK ``SemanticSearchDefaultValues``).
DEFAULT_SCORE_THRESHOLD = 0.2
DEFAULT_RESULT_THRESHOLD = 5

Result = dict[str, Any]


class SearchError(ValueError):
    """A bad search request (unknown mode, empty query)."""


# --------------------------------------------------------------------------------------------
# pure core


@dataclass
class _Snapshot:
    matrix: np.ndarray  # (N, d) float32, unit rows
    starts: np.ndarray  # (N,) float64
    ends: np.ndarray  # (N,) float64
    texts: list[str]
    channels: list[Optional[str]]  # per row: the capture channel that said it, or None
    owners: list[str]  # asset id per block
    bounds: dict[str, tuple[int, int]]  # asset id -> [lo, hi) rows
    block_of_row: np.ndarray  # (N,) int32 index into owners
    pre: Optional["prefilter.Int8Prefilter"] = None  # int8 copy of matrix, when large enough


class VectorIndex:
    """Exact cosine search over unit float32 vectors, grouped by asset. Thread-safe."""

    #: Searches over at least this many rows use the int8 pre-filter (below it a float32 scan is
    #: as fast); the int8 copy is built when the whole matrix has this many rows.
    fast_min_rows: int = 32768

    def __init__(self, dim: Optional[int] = None) -> None:
        self.dim = dim
        self._blocks: dict[str, tuple[np.ndarray, list[Segment]]] = {}
        self._snap: Optional[_Snapshot] = None
        self._quant: dict[str, prefilter.Quantized] = {}  # int8 codes per asset, made lazily
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(s) for _, s in self._blocks.values())

    def assets(self) -> list[str]:
        return list(self._blocks)

    def set_asset(self, asset_id: str, segments: Sequence[Segment], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(segments) != len(vectors):
            raise ValueError(f"{len(segments)} segments but {len(vectors)} vectors")
        if len(segments) and vectors.ndim == 2:
            if self.dim is None:
                self.dim = int(vectors.shape[1])
            elif vectors.shape[1] != self.dim:
                raise ValueError(f"vectors of dim {vectors.shape[1]}, index has {self.dim}")
        with self._lock:
            if len(segments):
                self._blocks[asset_id] = (vectors, list(segments))
            else:
                self._blocks.pop(asset_id, None)
            self._quant.pop(asset_id, None)
            self._snap = None

    def remove_asset(self, asset_id: str) -> None:
        with self._lock:
            self._quant.pop(asset_id, None)
            if self._blocks.pop(asset_id, None) is not None:
                self._snap = None

    def _snapshot(self) -> _Snapshot:
        snap = self._snap
        if snap is not None:
            return snap
        with self._lock:
            if self._snap is not None:
                return self._snap
            owners = list(self._blocks)
            dim = self.dim or 0
            mats = [self._blocks[a][0] for a in owners]
            segs = [self._blocks[a][1] for a in owners]
            n = sum(len(s) for s in segs)
            matrix = np.concatenate(mats) if mats else np.zeros((0, dim), np.float32)
            starts = np.fromiter((s.start for ss in segs for s in ss), np.float64, n)
            ends = np.fromiter((s.end for ss in segs for s in ss), np.float64, n)
            texts = [s.text for ss in segs for s in ss]
            channels = [s.channel for ss in segs for s in ss]
            bounds: dict[str, tuple[int, int]] = {}
            block_of_row = np.empty(n, np.int32)
            lo = 0
            for i, (a, ss) in enumerate(zip(owners, segs)):
                bounds[a] = (lo, lo + len(ss))
                block_of_row[lo : lo + len(ss)] = i
                lo += len(ss)
            pre = None
            if not (n >= self.fast_min_rows and dim and prefilter.available()):
                self._quant.clear()  # (views would keep an old int8 copy alive)
            else:
                for a, m in zip(owners, mats):  # quantized once per asset version
                    if a not in self._quant:
                        self._quant[a] = prefilter.quantize(m)
                pre = prefilter.Int8Prefilter([self._quant[a] for a in owners], dim)
                # keep views into the concatenation, not the blocks: one int8 copy in memory
                self._quant = {a: pre.view(*bounds[a], self._quant[a]) for a in owners}
                if not pre.ok:
                    pre = None
            self._snap = _Snapshot(matrix, starts, ends, texts, channels, owners, bounds, block_of_row, pre)
            return self._snap

    def warm(self) -> None:
        """Build the concatenated matrix now (else the first search after a change does)."""
        self._snapshot()

    def scores(self, query: np.ndarray, asset_ids: Optional[Iterable[str]] = None) -> tuple[Optional[np.ndarray], np.ndarray]:
        """Cosine score of every selected row: (row indices, or None meaning all rows; scores)."""
        snap = self._snapshot()
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        n = len(snap.texts)
        if asset_ids is None:
            return None, snap.matrix @ q
        ranges = [snap.bounds[a] for a in dict.fromkeys(asset_ids) if a in snap.bounds]
        chosen = sum(hi - lo for lo, hi in ranges)
        if chosen == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if chosen * 2 < n:
            rows = np.concatenate([np.arange(lo, hi) for lo, hi in ranges])
            sc = np.concatenate([snap.matrix[lo:hi] @ q for lo, hi in ranges])
            return rows, sc
        sc = snap.matrix @ q
        mask = np.zeros(n, bool)
        for lo, hi in ranges:
            mask[lo:hi] = True
        rows = np.flatnonzero(mask)
        return rows, sc[rows]

    def search(
        self,
        query: np.ndarray,
        k: Optional[int] = DEFAULT_RESULT_THRESHOLD,
        asset_ids: Optional[Iterable[str]] = None,
        score_threshold: Optional[float] = None,
    ) -> list[Result]:
        """Top ``k`` rows by cosine (all if k is None) with score >= ``score_threshold``.

        The top k is taken first (argpartition, no copy of the score vector) and the threshold
        applied to those: the same answer as filtering first, without touching N rows twice.
        """
        snap = self._snapshot()
        if asset_ids is not None:
            asset_ids = list(asset_ids)  # may be read twice (pre-filter, then exact fallback)
        rows, sc = self._fast_scores(snap, query, k, asset_ids, score_threshold)
        if rows is None and sc is None:
            rows, sc = self.scores(query, asset_ids)
        if k is not None and len(sc) > k:
            top = np.argpartition(sc, len(sc) - k)[len(sc) - k:] if k > 0 else np.zeros(0, np.int64)
        else:
            top = np.arange(len(sc))
        top_sc = sc[top]
        if score_threshold is not None:
            keep = top_sc >= score_threshold
            top, top_sc = top[keep], top_sc[keep]
        order = np.argsort(-top_sc, kind="stable")
        idx = top if rows is None else rows[top]
        return [self._result(snap, int(idx[i]), float(top_sc[i])) for i in order]

    def _fast_scores(
        self, snap: _Snapshot, query: np.ndarray, k: Optional[int], asset_ids: Optional[Iterable[str]],
        score_threshold: Optional[float],
    ) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """Exact float32 scores of a candidate set of rows that holds the answer, via the int8
        pre-filter; (None, None) when it does not apply (few rows, no k and no threshold, too
        many candidates): then the caller scores every selected row."""
        pre = snap.pre
        if pre is None:
            return None, None
        ranges = None
        chosen = len(snap.texts)
        if asset_ids is not None:
            ranges = [snap.bounds[a] for a in dict.fromkeys(asset_ids) if a in snap.bounds]
            chosen = sum(hi - lo for lo, hi in ranges)
        if chosen < self.fast_min_rows:
            return None, None
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        rows = pre.candidates(q, k, score_threshold, ranges)
        if rows is None:
            return None, None
        return rows, snap.matrix[rows] @ q

    @staticmethod
    def _result(snap: _Snapshot, row: int, score: float) -> Result:
        result = {
            "asset_id": snap.owners[int(snap.block_of_row[row])],
            "start": float(snap.starts[row]),
            "end": float(snap.ends[row]),
            "text": snap.texts[row],
            "score": round(score, 6),
        }
        if snap.channels[row] is not None:
            result["channel"] = snap.channels[row]
        return result


_WORD = re.compile(r"[\w']+", re.UNICODE)
#: Dropped from "any term" keyword queries (used by hybrid), where they would match everything.
STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have how i if in into is it
    its me my of on or our so than that the their them then there these they this to was we were what when
    where which who why will with would you your about did does doing just any some all no not""".split()
)


def fts_query(text: str, match: Literal["all", "any"] = "all") -> Optional[str]:
    """A safe FTS5 MATCH expression from free text: every word quoted (no operator injection);
    ``all`` requires every word, ``any`` requires one (stop words dropped). None if no words."""
    words = [w.replace('"', "").lower() for w in _WORD.findall(text)]
    words = [w.strip("'") for w in words if w.strip("'")]
    if match == "any":
        words = [w for w in words if w not in STOPWORDS] or words
    if not words:
        return None
    quoted = [f'"{w}"' for w in dict.fromkeys(words)]
    return (" OR " if match == "any" else " ").join(quoted)


def bm25_score(rank: float) -> float:
    """FTS5's bm25 (negative, lower is better) as a score in (0, 1), higher is better."""
    x = max(0.0, -float(rank))
    return x / (1.0 + x)


def _key(r: Result) -> tuple[str, float, float, str]:
    return (r["asset_id"], round(r["start"], 3), round(r["end"], 3), r.get("channel") or "")


#: What a hybrid result's ``parts`` name: the score it had in each ranking :meth:`SearchIndex.hybrid` fused.
PARTS = ("semantic", "keyword")


def fuse(rankings: Sequence[Sequence[Result]], k: int = RRF_K,
         key: Callable[[Result], Hashable] = _key) -> list[Result]:
    """Reciprocal rank fusion: score = Σ 1/(k + rank) over the lists a segment appears in,
    scaled so a segment ranked first in every list scores 1.0. Input results keep their other
    fields; the fused score replaces ``score`` (the originals are kept as ``scores``). ``key``
    tells when two lists hold the same segment (by default its asset, span and channel)."""
    fused: dict[Hashable, Result] = {}
    total: dict[Hashable, float] = {}
    best = len(rankings) / (k + 1)
    for li, ranking in enumerate(rankings):
        for rank, r in enumerate(ranking, start=1):
            key_ = key(r)
            if key_ not in fused:
                fused[key_] = {**r, "scores": {}}
                total[key_] = 0.0
            fused[key_]["scores"][li] = r["score"]
            total[key_] += 1.0 / (k + rank)
    out = []
    for key_, r in fused.items():
        r["score"] = round(total[key_] / best, 6) if best else 0.0
        out.append(r)
    out.sort(key=lambda r: (-r["score"], r["asset_id"], r["start"]))
    return out


def merge(lists: Sequence[Sequence[Result]], count: Optional[int] = None, k: int = RRF_K) -> list[Result]:
    """One ranking, best first, of hits from indexes searched alike (spoken words, screen text).

    Why not sort them by score: a hybrid score is a rank fusion within its own list, where each
    list's first hit scores 1.0 however well it matched, so a slide sharing one word with the query
    tied with the spoken sentence that said all of it. Hybrid hits carry their ``parts`` (the
    cosine similarity, one embedding model for every index, so comparable; and the keyword score)
    and are fused again over the union of the lists. Semantic and keyword scores compare as they
    are. One list keeps its order. ``parts`` is removed from what comes back."""
    hits = [h for found in lists for h in found]
    if sum(1 for found in lists if found) > 1:
        if any("parts" in h for h in hits):
            by_part = [sorted((h for h in hits if part in h.get("parts", {})), key=lambda h: -h["parts"][part])
                       for part in PARTS]
            hits = fuse(by_part, k, key=id)
        else:
            hits = sorted(hits, key=lambda h: -h["score"])
    out = [{name: v for name, v in h.items() if name not in ("parts", "scores")} for h in hits]
    return out if count is None else out[:count]


def apply_thresholds(
    results: list[Result],
    score_threshold: Optional[float] = None,
    result_threshold: Optional[int] = None,
    dynamic_score_percentage: Optional[float] = None,
) -> list[Result]:
    """Sorted results cut by score, by relative score (keep scores within the given percentage of
    the best), and by count."""
    out = [r for r in results if score_threshold is None or r["score"] >= score_threshold]
    if dynamic_score_percentage is not None and out:
        floor = out[0]["score"] * (1 - float(dynamic_score_percentage) / 100.0)
        out = [r for r in out if r["score"] >= floor]
    if result_threshold is not None:
        out = out[: max(0, int(result_threshold))]
    return out


# --------------------------------------------------------------------------------------------
# I/O edge


class SearchIndex:
    """Search over the spoken-word index in one database, with the vectors cached in memory.

    One per process and database (the server owns it). Every call first checks the index's
    generation (one indexed row) and reloads only assets whose index changed, so writes made by
    other connections (indexing jobs in worker threads) are seen by the next search.
    """

    def __init__(self, *, embed_model: Optional[str] = None, tables: store.Tables = store.SPOKEN) -> None:
        self.embed_model = embed_model
        #: Which index's tables (spoken words by default; screen text's are ``scene_store.TABLES``).
        self.tables = tables
        self.vectors = VectorIndex()
        self._generation = -1
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    def load_embedder(self) -> None:
        """Load the query embedder now (blocking; once per process, shared by every index), so
        that the first search does not load it inside its request."""
        embed.dimension(self.embed_model)

    def refresh(self, db: sqlite_utils.Database) -> None:
        """Bring the in-memory matrix in step with the database (cheap when nothing changed)."""
        if store.generation(db, self.tables) == self._generation:
            return
        with self._lock:
            gen = store.generation(db, self.tables)
            if gen == self._generation:
                return
            current = store.index_generations(db, self.tables)
            for asset_id in list(self._generations):
                if asset_id not in current:
                    self.vectors.remove_asset(asset_id)
                    del self._generations[asset_id]
            for asset_id, g in current.items():
                if self._generations.get(asset_id) != g:
                    segs, mat = store.load_segments(db, asset_id, self.tables)
                    self.vectors.set_asset(asset_id, segs, mat)
                    self._generations[asset_id] = g
            self._generation = gen
        self.vectors.warm()

    def semantic(
        self,
        db: sqlite_utils.Database,
        query: str,
        *,
        asset_ids: Optional[Sequence[str]] = None,
        score_threshold: Optional[float] = DEFAULT_SCORE_THRESHOLD,
        result_threshold: Optional[int] = DEFAULT_RESULT_THRESHOLD,
        query_vector: Optional[np.ndarray] = None,
    ) -> list[Result]:
        """Segments by cosine similarity of their embedding to the query's."""
        self.refresh(db)
        q = query_vector if query_vector is not None else embed.embed_query(query, model_spec=self.embed_model)
        return self.vectors.search(q, result_threshold, asset_ids, score_threshold)

    def keyword(
        self,
        db: sqlite_utils.Database,
        query: str,
        *,
        asset_ids: Optional[Sequence[str]] = None,
        score_threshold: Optional[float] = None,
        result_threshold: Optional[int] = DEFAULT_RESULT_THRESHOLD,
        match: Literal["all", "any"] = "all",
    ) -> list[Result]:
        """Segments containing the query's words (all of them by default; stemmed), by bm25."""
        expr = fts_query(query, match)
        if expr is None:
            return []
        limit = result_threshold if result_threshold is not None else 1000
        rows = store.keyword_rows(db, expr, asset_ids, limit=max(limit, 1) * (1 if score_threshold is None else 4),
                                  tables=self.tables)
        results = [
            {"asset_id": r["asset_id"], "start": float(r["start"]), "end": float(r["end"]), "text": r["text"],
             "score": round(bm25_score(r["rank"]), 6), **({"channel": r["channel"]} if "channel" in r else {})}
            for r in rows
        ]
        return apply_thresholds(results, score_threshold, result_threshold)

    def hybrid(
        self,
        db: sqlite_utils.Database,
        query: str,
        *,
        asset_ids: Optional[Sequence[str]] = None,
        score_threshold: Optional[float] = DEFAULT_SCORE_THRESHOLD,
        result_threshold: Optional[int] = DEFAULT_RESULT_THRESHOLD,
        depth: int = 50,
    ) -> list[Result]:
        """Semantic and any-word keyword rankings fused by RRF.

        ``score_threshold`` applies to a segment's cosine similarity (so it means the same as in
        semantic search) except that keyword hits always pass; the reported score is the fused one.
        """
        k = max(depth, 2 * (result_threshold or DEFAULT_RESULT_THRESHOLD))
        sem = self.semantic(db, query, asset_ids=asset_ids, score_threshold=None, result_threshold=k)
        kw = self.keyword(db, query, asset_ids=asset_ids, result_threshold=k, match="any")
        cos = {_key(r): r["score"] for r in sem}
        kw_keys = {_key(r) for r in kw}
        fused = [
            r for r in fuse([sem, kw])
            if score_threshold is None or _key(r) in kw_keys or cos.get(_key(r), -1.0) >= score_threshold
        ]
        for r in fused:  # what each ranking said, kept for :func:`merge`
            scores = r.pop("scores", {})
            r["parts"] = {name: scores[i] for i, name in enumerate(PARTS) if i in scores}
        return apply_thresholds(fused, None, result_threshold)

    def search(
        self,
        db: sqlite_utils.Database,
        query: str,
        *,
        mode: Mode = "semantic",
        asset_ids: Optional[Sequence[str]] = None,
        score_threshold: Optional[float] = DEFAULT_SCORE_THRESHOLD,
        result_threshold: Optional[int] = DEFAULT_RESULT_THRESHOLD,
        dynamic_score_percentage: Optional[float] = None,
    ) -> list[Result]:
        """One entry point: ``mode`` semantic | keyword | hybrid; ``asset_ids`` None = every asset.

        For keyword mode ``score_threshold`` is on the bm25-derived score in (0, 1); the SDK sends
        None for keyword search, which means no threshold. Raises :class:`SearchError`.
        """
        if not query or not query.strip():
            raise SearchError("query must not be empty")
        if mode == "semantic":
            res = self.semantic(db, query, asset_ids=asset_ids, score_threshold=score_threshold,
                                result_threshold=None if dynamic_score_percentage is not None else result_threshold)
        elif mode == "keyword":
            res = self.keyword(db, query, asset_ids=asset_ids, score_threshold=score_threshold,
                               result_threshold=None if dynamic_score_percentage is not None else result_threshold)
        elif mode == "hybrid":
            res = self.hybrid(db, query, asset_ids=asset_ids, score_threshold=score_threshold,
                              result_threshold=None if dynamic_score_percentage is not None else result_threshold)
        else:
            raise SearchError(f"unknown search mode {mode!r}; one of {', '.join(MODES)}")
        return apply_thresholds(res, None, result_threshold, dynamic_score_percentage)
