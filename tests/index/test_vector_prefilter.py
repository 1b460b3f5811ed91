"""The int8 pre-filter of VectorIndex: its answers are exactly the float32 brute-force answers."""

from __future__ import annotations

import numpy as np
import pytest

from reeldb.index import prefilter
from reeldb.index.search import VectorIndex
from reeldb.index.segments import Segment

pytestmark = pytest.mark.skipif(not prefilter.available(), reason="no exact torch int8 matmul here")


def unit(x):
    x = np.asarray(x, np.float32)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def adversarial(rng, d):
    """Rows that stress per-row int8 scales: one-hot, one outlier dimension, constant, tiny."""
    rows = [np.eye(d, dtype=np.float32)[i] for i in range(0, d, max(1, d // 8))]
    spike = rng.normal(size=(8, d)).astype(np.float32) * 0.01
    spike[:, 0] = 1.0
    rows += list(spike)
    rows.append(np.ones(d, np.float32))
    rows.append(-np.ones(d, np.float32))
    rows += list(rng.normal(size=(4, d)).astype(np.float32) * 1e-15)  # unit after normalising
    return unit(np.stack(rows))


def build(rng, d=96, sizes=(3000, 2500, 40, 4000, 1, 700, 1800)):
    """Assets of random unit vectors; asset m-1 also holds near-ties and exact duplicates around
    an anchor vector (differences far below the int8 error bound), m-3 adversarial rows."""
    anchor = unit(rng.normal(size=d))
    mats = {}
    for i, n in enumerate(sizes):
        m = unit(rng.normal(size=(n, d)))
        if i == 1:
            near = unit(anchor + rng.normal(size=(200, d)) * rng.choice([1e-5, 1e-4, 1e-3, 1e-2], size=(200, 1)))
            m = np.concatenate([m, near, near[:20], np.repeat(anchor[None], 5, 0)])  # duplicates: ties
        if i == 3:
            m = np.concatenate([m, adversarial(rng, d)])
        mats[f"m-{i}"] = m.astype(np.float32)
    vi = VectorIndex()
    vi.fast_min_rows = 0  # every search through the pre-filter
    for a, m in mats.items():
        vi.set_asset(a, [Segment(float(j), float(j + 1), f"{a} {j}") for j in range(len(m))], m)
    return vi, mats, anchor


def brute(mats, ids, q, k, thr):
    """(asset, row, float32 score) of the float32 brute-force answer, best first, over all rows;
    the scores of all rows; each asset's first row; which rows are selected."""
    full = np.concatenate([mats[a] for a in mats]) @ q  # the reference: one float32 matmul
    names = list(mats)
    sizes = [len(mats[a]) for a in names]
    off = dict(zip(names, np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()))
    inside = np.concatenate([np.full(len(mats[a]), a in ids) for a in names])
    order = np.flatnonzero(inside)
    order = order[np.argsort(-full[order], kind="stable")]
    if thr is not None:
        order = order[full[order] >= thr]
    if k is not None:
        order = order[:k]
    block = np.searchsorted(np.cumsum(sizes), order, side="right")
    want = [(names[b], int(i - off[names[b]]), float(full[i])) for b, i in zip(block, order)]
    return want, full, off, inside


#: Float32 brute force is itself only defined to about an ulp: BLAS computes the last rows of a
#: block (and of each thread's share) with another summation order, so the same row may score
#: 1 ulp apart in two float32 products. Scores closer than this count as tied.
EPS = 2e-6


def check(vi, mats, q, k, sel, thr):
    ids = set(mats if sel is None else sel)
    want, full, off, inside = brute(mats, ids, q, k, thr)
    got = vi.search(q, k, sel, thr)
    rows = [(r["asset_id"], int(r["start"])) for r in got]
    scores = np.array([r["score"] for r in got])
    assert len(set(rows)) == len(rows) and all(a in ids for a, _ in rows)
    # every reported score is that row's float32 brute-force score, best first
    assert all(abs(r["score"] - float(full[off[x[0]] + x[1]])) <= EPS for r, x in zip(got, rows))
    assert np.all(np.diff(scores) <= 0)
    # the same scores as the brute-force answer, position by position
    near_thr = thr is not None and bool(np.any(np.abs(full[inside] - thr) <= EPS))
    assert len(got) == len(want) or near_thr
    if len(got) == len(want):
        assert np.all(np.abs(scores - np.array([s for _, _, s in want])) <= EPS)
    # the same rows, except rows tied (within EPS) at the k-th score or at the threshold
    floor = want[-1][2] if want and k is not None and len(want) == k else -np.inf
    lo = max(floor, thr if thr is not None else -np.inf)
    must = {(a, j) for a, j, s in want if s > lo + EPS}
    assert must <= set(rows)
    assert all(full[off[x[0]] + x[1]] >= lo - EPS for x in rows)
    return got


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_path_equals_float32_brute_force(seed):
    rng = np.random.default_rng(seed)
    vi, mats, anchor = build(rng)
    snap = vi._snapshot()
    assert snap.pre is not None
    d = vi.dim
    queries = [unit(rng.normal(size=d)) for _ in range(6)]
    queries += [anchor, unit(anchor + rng.normal(size=d) * 1e-3), unit(anchor + rng.normal(size=d) * 0.3)]
    queries += [mats["m-3"][-10], -anchor]
    used_fast = 0
    for q in queries:
        for sel in (None, ["m-1"], ["m-1", "m-3", "nope"], ["m-0", "m-1", "m-3", "m-6"], ["m-4"], []):
            for k, thr in ((5, None), (1, None), (50, 0.0), (30, 0.2), (None, 0.3), (None, 0.97), (250, None), (0, None)):
                check(vi, mats, q, k, sel, thr)
                rows, _ = vi._fast_scores(snap, q, k, sel, thr)
                used_fast += rows is not None
    assert used_fast > 300  # most cases really went through the pre-filter (else it fell back)
    # one asset replaced, one removed: only they are re-quantized; answers stay exact
    mats["m-0"] = unit(rng.normal(size=(2600, d)))
    vi.set_asset("m-0", [Segment(float(j), float(j + 1), "") for j in range(2600)], mats["m-0"])
    vi.remove_asset("m-5")
    del mats["m-5"]
    assert vi._snapshot().pre is not None and vi._snapshot().pre.n == sum(len(m) for m in mats.values())
    for q in queries[:4] + [anchor]:
        for sel in (None, ["m-0", "m-1"], ["m-5"]):
            check(vi, mats, q, 5, sel, None)
            check(vi, mats, q, 40, sel, 0.1)


def test_near_ties_resolved_in_float32():
    rng = np.random.default_rng(7)
    vi, mats, anchor = build(rng)
    snap = vi._snapshot()
    q = anchor
    rows, sc = vi._fast_scores(snap, q, 10, None, None)
    assert rows is not None and len(rows) >= 100  # the near-ties are all candidates ...
    got = check(vi, mats, q, 10, None, None)  # ... and float32 orders them exactly
    assert abs(got[0]["score"] - float(anchor @ anchor)) <= EPS


@pytest.mark.slow
def test_candidates_contain_float32_top_k_under_adversarial_rows():
    rng = np.random.default_rng(3)
    d = 384
    x = np.concatenate([unit(rng.normal(size=(20000, d))), adversarial(rng, d)])
    pre = prefilter.Int8Prefilter.from_matrix(x)
    assert pre.ok and pre.err_max < 0.05
    for i in range(40):
        q = unit(rng.normal(size=d)) if i % 2 else x[rng.integers(len(x))]
        full = x @ q
        for k in (1, 5, 20):
            cand = pre.candidates(q, k, None)
            assert cand is not None and np.all(np.diff(cand) > 0)
            kth = np.sort(full)[-k]
            assert set(np.flatnonzero(full >= kth)) <= set(cand.tolist())
        cand = pre.candidates(q, None, 0.15)
        if cand is not None:
            assert set(np.flatnonzero(full >= 0.15)) <= set(cand.tolist())
        lo, hi = 5000, 9000
        cand = pre.candidates(q, 5, None, [(lo, hi), (15000, 15100)])
        sub = np.concatenate([np.arange(lo, hi), np.arange(15000, 15100)])
        kth = np.sort(full[sub])[-5]
        assert set(sub[full[sub] >= kth]) <= set(cand.tolist()) <= set(sub.tolist())


def test_small_index_and_fallbacks_stay_exact():
    rng = np.random.default_rng(4)
    vi, mats, _ = build(rng, d=16, sizes=(300, 200))
    q = unit(rng.normal(size=16))
    check(vi, mats, q, None, None, None)  # no k, no threshold: every row, exact scan
    check(vi, mats, q, None, None, -1.0)  # everything passes: too many candidates, exact scan
    vi.fast_min_rows = 10**9
    vi.set_asset("m-0", [Segment(float(j), float(j + 1), "") for j in range(300)], mats["m-0"])
    assert vi._snapshot().pre is None
    check(vi, mats, q, 5, None, None)
