"""Audio placement and mixing: the numpy core, without media files."""

from __future__ import annotations

import numpy as np

from reeldb.export.mix import Limiter, PlacedTrack, mix_block, to_stereo

R = 48000


def frames(n_frames, value, size=960, start=0.0, skip=()):
    for i in range(n_frames):
        if i in skip:
            continue
        yield start + i * size / R, np.full((2, size), value, np.float32)


def render(tracks, total, block=R // 4, limiter=None):
    return np.concatenate([mix_block(tracks, s, block, limiter) for s in range(0, total, block)], axis=1)[:, :total]


def test_offset_places_channel_late_and_holes_stay_silent():
    t = PlacedTrack(frames(50, 0.5, skip=range(10, 20)), offset=0.25)
    out = render([t], R * 2)
    first = int(np.argmax(out[0] != 0))
    assert first == R // 4
    hole = out[0, R // 4 + 10 * 960 : R // 4 + 20 * 960]
    assert not hole.any()
    assert t.exhausted and t.end == R // 4 + 50 * 960


def test_jittered_timestamps_are_butted_without_clicks():
    def jittery():
        for i in range(100):
            yield i * 0.02 + (0.001 if i % 2 else -0.001), np.full((2, 960), 0.1, np.float32)

    out = render([PlacedTrack(jittery(), 0.5)], R * 3)
    start = int(np.argmax(out[0] != 0))
    assert abs(start - R // 2) <= 48  # first frame's own 1 ms jitter
    body = out[0, start : start + 100 * 960]
    assert np.all(body == np.float32(0.1))  # no zeros (gaps) and no doubled samples
    assert not out[0, start + 100 * 960 :].any()


def test_samples_before_zero_are_dropped():
    out = render([PlacedTrack(frames(10, 0.2), offset=-0.1)], R)
    assert np.count_nonzero(out[0]) == 10 * 960 - R // 10


def test_sum_and_limiter_never_clip():
    a = PlacedTrack(frames(100, 0.8), 0.0)
    b = PlacedTrack(frames(100, 0.7), 0.0)
    lim = Limiter()
    out = render([a, b], 100 * 960, limiter=lim)
    assert lim.engaged
    assert np.abs(out).max() <= 0.98 + 1e-6
    quiet = render([PlacedTrack(frames(10, 0.3), 0.0)], 9600, limiter=Limiter())
    assert np.allclose(quiet, 0.3)  # untouched when the sum does not clip


def test_mono_is_duplicated_and_multichannel_folded():
    assert to_stereo(np.ones((1, 4), np.float32)).shape == (2, 4)
    assert to_stereo(np.ones((6, 4), np.float32)).shape == (2, 4)
