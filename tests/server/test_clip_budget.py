"""The pure core of the clip budget (server/clip_budget.py): span checks, the token bucket, the LRU choice."""

from __future__ import annotations

import pytest

from reeldb.server.clip_budget import SpanLimits, TokenBucket, check_spans, evictions, short, widen
from reeldb.server.errors import BadRequest

LIMITS = SpanLimits(max_spans=3, min_span=0.1)


def test_spans_within_limits_pass():
    check_spans([(0, 1), (2, 2.1), (5, 9)], LIMITS, length=10)
    check_spans([(9.9, 20)], LIMITS, length=10)  # clamped to the video: 0.1 s left


@pytest.mark.parametrize("spans, length, named", [
    ([(0, 1)] * 4, None, "REELDB_CLIP_MAX_SPANS"),
    ([(1, 1.0005)], None, "REELDB_CLIP_MIN_SPAN"),   # sub-millisecond
    ([(1, 1.05)], None, "REELDB_CLIP_MIN_SPAN"),
    ([(9.95, 12)], 10.0, "REELDB_CLIP_MIN_SPAN"),    # 50 ms of video left after clamping
])
def test_spans_over_limits_are_a_400_naming_the_limit(spans, length, named):
    with pytest.raises(BadRequest, match=named) as caught:
        check_spans(spans, LIMITS, length)
    assert caught.value.status_code == 400


def test_short_tolerates_millisecond_rounding_and_widen_lengthens_server_made_spans():
    assert not short(1.0, 1.0996, 0.1) and short(1.0, 1.099, 0.1)
    assert widen([(1.0, 1.02), (2.0, 3.0), (0.0, 0.03)], 0.1) == [(pytest.approx(0.92), 1.02), (2.0, 3.0), (0.0, 0.1)]


def test_bucket_grants_up_to_its_rate_then_says_when():
    bucket = TokenBucket(rate=6)  # 6 a minute: one every 10 s
    assert bucket.take(["a"], 4, now=0) == 0 and bucket.take(["a"], 2, now=0) == 0
    wait = bucket.take(["a"], 1, now=0)
    assert wait == pytest.approx(10)
    assert bucket.take(["a"], 1, now=10) == 0  # refilled by then
    assert bucket.take(["b"], 6, now=10) == 0  # another key has its own


def test_bucket_checks_every_key_and_charges_none_when_refused():
    bucket = TokenBucket(rate=6)
    assert bucket.take(["link1", "ip"], 6, now=0) == 0
    assert bucket.take(["link2", "ip"], 1, now=0) > 0  # the address is spent
    assert bucket.level("link2", 0) == 6  # ... and the other link was not charged


def test_bucket_lets_a_large_cost_through_once_then_keeps_the_average():
    bucket = TokenBucket(rate=6)
    assert bucket.take(["cmp"], 30, now=0) == 0  # a full bucket pays for a compilation of 30 shots
    assert bucket.take(["cmp"], 1, now=0) == pytest.approx(250)  # 25 in debt + 1, at 10 s each
    assert bucket.take(["cmp"], 1, now=250) == 0


def test_bucket_with_rate_0_is_unlimited_and_forgets_old_keys():
    assert TokenBucket(rate=0).take(["a"], 10**6, now=0) == 0
    bucket = TokenBucket(rate=6, max_keys=2)
    for key in ("a", "b", "c"):
        bucket.take([key], 6, now=0)
    assert bucket.level("a", 0) == 6 and bucket.level("c", 0) == 0


def test_evictions_take_the_least_recently_used_until_within_budget():
    entries = {"old": (40, 1.0), "mid": (40, 2.0), "new": (40, 3.0)}
    assert evictions(entries, 200) == []
    assert evictions(entries, 80) == ["old"]
    assert evictions(entries, 50) == ["old", "mid"]
    assert evictions(entries, 50, keep=["old"]) == ["mid", "new"]
    assert evictions(entries, 0, keep=["old", "mid", "new"]) == []  # what a request plays stays
