"""Where a microphone only hears the call: stretches whose loudness follows another channel's a
fraction of a second later, found before transcription so whisper never decodes them.

Why: with the call played through speakers, the mic carries the other side's speech again, ~0.1–2 s
late. :mod:`.echoes` already says such speech once in the transcript, but only after whisper has
decoded it twice: transcribing per channel then costs ~1.5× the mix. An echo is a delayed, filtered
copy, so its loudness envelope (log energy in 20 ms frames) tracks the source's closely at one lag,
while the person at the keyboard speaking tracks nothing; a window of the mic whose envelope
correlates with the other channel's at some lag in ``[0, MAX_LAG]`` above ``THRESHOLD``, with both
voiced, is an echo and is silenced before transcription. Double talk (the user speaking over the
call) correlates poorly and is kept; whatever still slips through is said once by :mod:`.echoes`.

Pure numpy over sample arrays on one clock; O(lags × frames) with running sums.
"""

from __future__ import annotations

import numpy as np

FRAME = 0.02  # seconds per envelope frame
WINDOW = 1.0  # seconds compared at a time
STEP = 0.25  # seconds between windows
MAX_LAG = 2.0  # the longest echo delay looked for, seconds
MARGIN = 0.15  # seconds kept at each end of an echo stretch
THRESHOLD = 0.7  # Pearson correlation of the envelopes at the best lag
VOICED_DB = 12.0  # a frame is voiced when it is this far above the channel's quiet floor


def envelope(audio: np.ndarray, rate: int) -> np.ndarray:
    """Log energy (dB) per :data:`FRAME`."""
    n = int(rate * FRAME)
    frames = len(audio) // n
    if frames == 0:
        return np.zeros(0, np.float64)
    power = np.square(audio[: frames * n].astype(np.float64)).reshape(frames, n).mean(axis=1)
    return 10.0 * np.log10(power + 1e-10)


def _voiced(env: np.ndarray) -> np.ndarray:
    if not env.size:
        return np.zeros(0, bool)
    floor = np.percentile(env, 10)
    return env > max(floor + VOICED_DB, -70.0)


def _windows(values: np.ndarray, width: int) -> np.ndarray:
    """Sums over every run of ``width`` consecutive values (running sums)."""
    c = np.concatenate([[0.0], np.cumsum(values)])
    return c[width:] - c[:-width]


def echo_spans(mic: np.ndarray, other: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """Spans (seconds on the shared clock) where ``mic`` is an echo of ``other``, merged."""
    a, b = envelope(mic, rate), envelope(other, rate)
    n = min(len(a), len(b))
    width, step, lags = int(WINDOW / FRAME), max(1, int(STEP / FRAME)), int(MAX_LAG / FRAME)
    if n < width:
        return []
    a, b = a[:n], b[:n]
    voiced_a, voiced_b = _voiced(a), _voiced(b)
    best = np.full(n - width + 1, -1.0)
    best_lag = np.zeros(n - width + 1, np.int64)
    sa, saa = _windows(a, width), _windows(a * a, width)
    for lag in range(0, lags + 1):
        if lag >= n - width:
            break
        x = a[lag:]  # mic at t ...
        y = b[: n - lag]  # ... against the other channel at t - lag
        sx, sy = sa[lag:], _windows(y, width)
        sxx, syy, sxy = saa[lag:], _windows(y * y, width), _windows(x * y, width)
        cov = sxy - sx * sy / width
        var = (sxx - sx * sx / width) * (syy - sy * sy / width)
        r = np.where(var > 1e-9, cov / np.sqrt(np.maximum(var, 1e-18)), -1.0)
        # r[i] is the window starting at mic frame lag + i
        better = r > best[lag:lag + len(r)]
        best[lag:lag + len(r)][better] = r[better]
        best_lag[lag:lag + len(r)][better] = lag
    va, vb = _windows(voiced_a.astype(np.float64), width), _windows(voiced_b.astype(np.float64), width)
    # the other channel voiced in the window the mic's echoes (``best_lag`` earlier)
    vb_lagged = vb[np.maximum(0, np.arange(len(best)) - best_lag)]
    echo = (best >= THRESHOLD) & (va >= width / 4) & (vb_lagged >= width / 4)
    spans: list[tuple[float, float]] = []
    for start in range(0, len(echo), step):
        if echo[start]:
            s, e = start * FRAME, (start + width) * FRAME
            if spans and s <= spans[-1][1]:
                spans[-1] = (spans[-1][0], e)
            else:
                spans.append((s, e))
    # A window that is mostly echo may end in the user's first or last word: keep its edges.
    return [(s + MARGIN, e - MARGIN) for s, e in spans if e - s > 2 * MARGIN]


def silence(audio: np.ndarray, spans: list[tuple[float, float]], rate: int) -> np.ndarray:
    """A copy of ``audio`` with ``spans`` (seconds) set to zero."""
    out = audio.copy()
    for s, e in spans:
        out[max(0, int(s * rate)):max(0, int(e * rate))] = 0.0
    return out


def aligned(other: np.ndarray, shift: float, length: int, rate: int) -> np.ndarray:
    """``other`` on a clock where it starts ``shift`` seconds later, cut or padded to ``length``."""
    out = np.zeros(length, np.float32)
    at = int(round(shift * rate))
    if at >= 0:
        piece = other[: max(0, length - at)]
        out[at:at + len(piece)] = piece
    else:
        piece = other[-at:-at + length]
        out[: len(piece)] = piece
    return out
