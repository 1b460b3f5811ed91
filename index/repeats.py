"""The repeated-phrase guard: a phrase said more than twice in a row is a decoding loop. Pure.

Why a guard after whisper's own defences: on a mix where the same speech arrives twice ~1 s apart
(an echo, a call played through speakers) tiny.en looped "by May 4th, May 4th, …" fifty times, and
faster-whisper's batched pipeline has no compression-ratio or log-probability fallback to catch
it. People rarely say the same phrase three times running; a decoder stuck in a loop always does.
So a run of more than ``max_repeats`` copies of a phrase of up to ``max_n`` words becomes its first
copy (the loop's first copy is usually what was said; its timing is kept). Words are compared by
:func:`words.normal` ("4th," equals "4th").
"""

from __future__ import annotations

from typing import Sequence

from .words import Word, normal


def collapse_repeats(words: Sequence[Word], max_repeats: int = 2, max_n: int = 8) -> list[Word]:
    """``words`` with every run of more than ``max_repeats`` consecutive copies of an n-word phrase
    (1 <= n <= ``max_n``) reduced to its first copy. The longest run found at a position wins."""
    keys = [normal(w.text) or w.text for w in words]
    out: list[Word] = []
    i, total = 0, len(words)
    while i < total:
        best_n, best_k = 0, 1
        for n in range(1, max_n + 1):
            if i + n * (max_repeats + 1) > total:
                break
            phrase = keys[i:i + n]
            k = 1
            while keys[i + k * n:i + (k + 1) * n] == phrase:
                k += 1
            if k > max_repeats and k * n > best_k * best_n:
                best_n, best_k = n, k
        if best_n:
            out.extend(words[i:i + best_n])
            i += best_n * best_k
        else:
            out.append(words[i])
            i += 1
    return out


def longest_run(words: Sequence[Word], n: int) -> int:
    """How many times in a row the most repeated ``n``-word phrase occurs (tests, benches)."""
    keys = [normal(w.text) or w.text for w in words]
    best = 1 if len(keys) >= n else 0
    for i in range(len(keys) - n + 1):
        k = 1
        while keys[i + k * n:i + (k + 1) * n] == keys[i:i + n]:
            k += 1
        best = max(best, k)
    return best
