"""Audio alignment and mixing: the pure numpy core of the muxed audio track.

Audio arrives as decoded frames ``(pts_seconds, samples[channels, n] float32)`` per channel.
Each channel is placed on the export timeline at ``pts + offset`` (capture-time alignment, see
:mod:`reeldb.export.plan`), summed, and passed through a peak limiter. Everything works in
fixed blocks so a 2-hour session mixes in constant memory, and the muxer can interleave
audio blocks with video packets.

Why sum + limiter rather than ffmpeg's ``amix`` (which divides by the number of inputs):
a voice on the mic must not get quieter because a silent system-audio channel was stored
too. The limiter only acts when the sum would clip.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

SAMPLE_RATE = 48000
CHANNELS = 2

Frame = tuple[float, np.ndarray]  # (pts in seconds on the channel's own clock, [channels, n] float32)


def to_stereo(samples: np.ndarray) -> np.ndarray:
    """[c, n] -> [2, n]: mono is duplicated, more than two channels are folded down."""
    if samples.ndim == 1:
        samples = samples[None, :]
    c = samples.shape[0]
    if c == CHANNELS:
        return samples
    if c == 1:
        return np.repeat(samples, 2, axis=0)
    left = samples[0::2].mean(axis=0)
    right = samples[1::2].mean(axis=0)
    return np.stack([left, right])


class PlacedTrack:
    """One channel's frames laid onto the timeline, read back block by block.

    A frame whose position is within ``tolerance`` of where the previous frame ended is
    butted against it: timestamps rounded to a millisecond (Matroska) would otherwise leave
    1-sample clicks or overlaps. A larger jump (a pause or a network gap) is kept as a hole
    of silence. Samples before timeline 0 are dropped.
    """

    def __init__(
        self,
        frames: Iterable[Frame],
        offset: float,
        *,
        rate: int = SAMPLE_RATE,
        tolerance: float = 0.02,
        gain: float = 1.0,
    ) -> None:
        self._frames: Iterator[Frame] = iter(frames)
        self._offset = offset
        self._rate = rate
        self._tol = int(round(tolerance * rate))
        self._gain = gain
        self._cur: np.ndarray | None = None
        self._cur_pos = 0
        self._expected: int | None = None
        self.exhausted = False
        self.end = 0  # timeline sample index just past the last sample seen so far

    def _advance(self) -> bool:
        for pts, samples in self._frames:
            samples = to_stereo(np.asarray(samples, dtype=np.float32))
            n = samples.shape[1]
            if n == 0:
                continue
            pos = int(round((pts + self._offset) * self._rate))
            if self._expected is not None and abs(pos - self._expected) <= self._tol:
                pos = self._expected
            self._expected = pos + n
            if pos + n <= 0:
                continue
            if pos < 0:
                samples, pos = samples[:, -pos:], 0
            self._cur, self._cur_pos = samples, pos
            self.end = max(self.end, pos + samples.shape[1])
            return True
        self._cur = None
        self.exhausted = True
        return False

    def add_into(self, out: np.ndarray, start: int) -> None:
        """Add this track's samples for timeline ``[start, start + out.shape[1])`` into ``out``."""
        stop = start + out.shape[1]
        while True:
            if self._cur is None and (self.exhausted or not self._advance()):
                return
            cur, pos = self._cur, self._cur_pos
            n = cur.shape[1]
            if pos >= stop:
                return  # belongs to a later block
            a, b = max(pos, start), min(pos + n, stop)
            if b > a:
                chunk = cur[:, a - pos : b - pos]
                out[:, a - start : b - start] += chunk if self._gain == 1.0 else chunk * self._gain
            if pos + n > stop:
                return  # rest of this frame goes to the next block
            self._cur = None


class Limiter:
    """Block-wise peak limiter with instant attack and a smooth release.

    Gains are computed per 10 ms window: the gain drops at once to keep the window's peak
    under ``ceiling`` and recovers at ``release`` per second. A final clip is a safety net
    that, with this gain, never bites.
    """

    def __init__(self, *, rate: int = SAMPLE_RATE, ceiling: float = 0.98, release_per_s: float = 2.0, window: float = 0.01) -> None:
        self._win = max(1, int(rate * window))
        self._ceiling = ceiling
        self._step = release_per_s * window
        self._gain = 1.0
        self.engaged = False

    def process(self, block: np.ndarray) -> np.ndarray:
        n = block.shape[1]
        peak_all = float(np.abs(block).max()) if n else 0.0
        if peak_all <= self._ceiling and self._gain >= 1.0:
            return block  # the common case: nothing to do
        self.engaged = True
        wins = -(-n // self._win)
        padded = np.zeros((block.shape[0], wins * self._win), dtype=block.dtype)
        padded[:, :n] = block
        peaks = np.abs(padded).reshape(block.shape[0], wins, self._win).max(axis=(0, 2))
        gains = np.empty(wins, dtype=np.float32)
        g = self._gain
        for i, p in enumerate(peaks.tolist()):
            target = self._ceiling / p if p > self._ceiling else 1.0
            g = min(target, g + self._step, 1.0)
            gains[i] = g
        self._gain = g
        out = (padded.reshape(block.shape[0], wins, self._win) * gains[None, :, None]).reshape(block.shape[0], -1)[:, :n]
        return np.clip(out, -1.0, 1.0, out=out)


def mix_block(tracks: Iterable[PlacedTrack], start: int, n: int, limiter: Limiter | None = None) -> np.ndarray:
    """Sum every track over timeline samples ``[start, start + n)``; holes stay silent."""
    out = np.zeros((CHANNELS, n), dtype=np.float32)
    for track in tracks:
        track.add_into(out, start)
    return limiter.process(out) if limiter is not None else out
