"""``reeldb sample PATH``: a short test video to try uploads with, made here (PyAV) so a fresh
machine needs no media of its own and no ffmpeg: moving colour bars and a quiet 440 Hz tone."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BARS = np.array([(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192), (192, 0, 0),
                 (0, 0, 192)], np.uint8)


def write_sample(path: Path, seconds: float = 10.0, size: tuple[int, int] = (640, 360), fps: int = 25) -> Path:
    """H.264 + AAC in an MP4 (by ``path``'s suffix), ``seconds`` long."""
    width, height = size
    columns = BARS[(np.arange(width) * len(BARS)) // width]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "g": str(2 * fps)})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "mono"
        for i in range(int(seconds * fps)):
            image = np.broadcast_to(np.roll(columns, i * 4, axis=0), (height, width, 3)).copy()
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        rate, block = 48000, 1024
        t = np.arange(int(seconds * rate)) / rate
        tone = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
        for start in range(0, len(tone), block):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + block], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode())
    return path
