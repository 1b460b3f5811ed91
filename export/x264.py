"""x264 encoders whose output can sit beside a recorded H.264 stream, copied into the same track.

Two places encode a few pictures that end up between stream-copied ones: the exact-clip edges
(:mod:`.clips`) and the held pictures that fill a recording's holes (:mod:`.hold`). Both need the
same rules, so they live here once: the source's profile and level (a player set up for the
track's profile meets nothing beyond it), no B-frames (DTS = PTS, so the copied packets around
them keep increasing DTS), ``ultrafast`` (the pictures are few; CPU matters more than bytes).
Every keyframe carries its SPS/PPS in band (the context has no global header), which is what
lets a decoder switch to them and back at the next copied keyframe.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

import av

PRESET = "ultrafast"

#: FFmpeg's profile names -> x264's ``profile`` option.
PROFILES = {
    "baseline": "baseline", "constrained baseline": "baseline", "main": "main", "extended": "main",
    "high": "high", "high 10": "high10", "high 10 intra": "high10", "high 4:2:2": "high422",
    "high 4:2:2 intra": "high422", "high 4:4:4 predictive": "high444", "high 4:4:4 intra": "high444",
}  # fmt: skip


def matching_encoder(width: int, height: int, pix_fmt: str, time_base: Fraction, rate: Fraction,
                     profile: Optional[str], level: Optional[int], crf: str, *,
                     params: tuple[str, ...] = (), tune: Optional[str] = None) -> av.CodecContext:
    """An opened-on-first-frame libx264 context matching a source's profile and level.

    ``rate`` is only what the stream's VUI announces; timestamps come from the frames.
    ``params`` are more ``x264-params`` (``keyint=...``)."""
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height = width, height
    enc.pix_fmt = pix_fmt
    enc.time_base = time_base
    enc.framerate = Fraction(rate).limit_denominator(1001000)
    options = {"preset": PRESET, "crf": crf}
    if tune:
        options["tune"] = tune
    name = PROFILES.get(str(profile or "").lower())
    if name:
        options["profile"] = name
    x264_params = ["bframes=0", *params]
    if level and level > 0:
        x264_params.append(f"level={level / 10:g}")
    options["x264-params"] = ":".join(x264_params)
    enc.options = options
    return enc
