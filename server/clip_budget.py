"""What a request for exact clips may cost (issue 18): pure checks over data, no I/O.

Stream and player links are shared by design and live for ten years, and the spans of a
``/stream/<token>/t/<spans>.m3u8`` URL are the caller's to choose, so whoever holds a link can ask
for new spans, each re-encoding its edges and cached on disk. Three bounds keep that affordable:

- :func:`check_spans`: at most ``clip_max_spans`` spans per request, none shorter than
  ``clip_min_span`` (a shorter one has no frame to play: the link would be dead);
- :class:`TokenBucket`: new (uncached) spans per minute, per link and per client address; cached
  spans cost nothing, so a clip that has been cut plays for everyone;
- :func:`evictions`: which cache entries go, least recently used first, when the clip cache is over
  its size in bytes.

The server's edges (``server/clips.py``, ``server/clip_cache.py``) feed them files and clocks.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Mapping, Sequence, TypeVar

from .errors import ApiError, BadRequest

K = TypeVar("K", bound=Hashable)

Span = tuple[float, float]


@dataclass(frozen=True)
class SpanLimits:
    """``REELDB_CLIP_MAX_SPANS`` and ``REELDB_CLIP_MIN_SPAN``."""

    max_spans: int
    min_span: float

    @classmethod
    def of(cls, settings: Any) -> "SpanLimits":
        return cls(settings.clip_max_spans, settings.clip_min_span)


class TooManyRequests(ApiError):
    """429 with ``Retry-After``: the link's or the client's budget of new clips is spent."""

    status_code = 429
    error_code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)


def check_spans(spans: Sequence[Span], limits: SpanLimits, length: float | None = None,
                what: str = "span") -> None:
    """400 naming the limit when there are too many spans or one is too short to play (after
    clamping to the video's ``length`` when known). ``what`` names a span as the caller's API does
    (a timeline entry, a shot)."""
    if len(spans) > limits.max_spans:
        raise BadRequest(f"At most {limits.max_spans} {what}s per clip (REELDB_CLIP_MAX_SPANS); got {len(spans)}",
                         error_code="CLIP_LIMIT")
    for start, end in spans:
        if short(start, end, limits.min_span, length):
            raise BadRequest(f"A {what} must last at least {limits.min_span:g} s (REELDB_CLIP_MIN_SPAN) of the "
                             f"video; {start:g}-{end:g} is shorter", error_code="CLIP_LIMIT")


def short(start: float, end: float, min_span: float, length: float | None = None) -> bool:
    """Whether ``[start, end)`` (clamped to ``[0, length]``) is shorter than ``min_span``; tolerant
    of the millisecond rounding of span URLs."""
    start, end = max(0.0, start), end if length is None else min(end, length)
    return end - start < min_span - 0.0005


def widen(spans: Iterable[Span], min_span: float) -> list[Span]:
    """Spans the server makes itself (a search hit: one short word) lengthened to ``min_span``,
    so a link it hands out always plays: started earlier (a hit ends inside its video; a span
    that would start before 0 ends later instead)."""
    out = []
    for s, e in spans:
        if e - s < min_span:
            s = max(0.0, e - min_span)
            e = max(e, s + min_span)
        out.append((s, e))
    return out


class TokenBucket:
    """New spans per minute for each key (a link's media, a client address): ``rate`` a minute,
    up to ``rate`` at once. A request costing more than the bucket holds goes through when the
    bucket is full and leaves it in debt (a compilation of many shots plays once, then its link and
    client wait until the debt is repaid), so the average stays at ``rate`` whatever the cost.

    Keys seen longest ago are forgotten beyond ``max_keys`` (a forgotten key starts full, as it
    would be after a minute anyway). Not thread-safe: used from the event loop only.
    """

    def __init__(self, rate: float, max_keys: int = 10000) -> None:
        self.rate = float(rate)
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def level(self, key: Hashable, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.rate, now))
        return min(self.rate, tokens + max(0.0, now - at) * self.rate / 60.0)

    def take(self, keys: Sequence[Hashable], cost: float, now: float) -> float:
        """Take ``cost`` tokens from every key's bucket if each has enough (``min(cost, rate)``):
        0.0. Otherwise nothing is taken and the answer is the seconds until they would have."""
        if self.rate <= 0 or cost <= 0:
            return 0.0
        need = min(cost, self.rate)
        levels = [self.level(k, now) for k in keys]
        wait = max((need - level) * 60.0 / self.rate for level in levels)
        if wait > 0:
            return wait
        for key, level in zip(keys, levels):
            self._buckets[key] = (level - cost, now)
            self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return 0.0


def evictions(entries: Mapping[K, tuple[int, float]], budget: int, keep: Iterable[K] = ()) -> list[K]:
    """The entries (``key -> (bytes, last used)``) to delete, least recently used first, so the
    rest fit in ``budget`` bytes; entries in ``keep`` (what the current request plays) never go,
    even when that leaves the cache over its budget until the next request."""
    total = sum(size for size, _ in entries.values())
    if total <= budget:
        return []
    kept = set(keep)
    out = []
    for key, (size, _) in sorted(entries.items(), key=lambda item: item[1][1]):
        if total <= budget:
            break
        if key in kept:
            continue
        out.append(key)
        total -= size
    return out
