"""Videos whose frames say their number and whose audio marks the time, for the exact-clip tests.

Each frame carries its number as 12 black/white blocks along the top edge (read back after
lossy coding by thresholding the blocks' middles), over a moving bar that gives the encoder
motion to predict. The audio is silence with a 20 ms 1 kHz burst at every half second.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from gen_media import mux_audio

BITS = 12
BLOCK = 16
RATE = 48000
BURST_EVERY = 0.5
BURST_LEN = 0.02


def pattern(i: int, width: int, height: int, background: int = 40) -> np.ndarray:
    img = np.full((height, width, 3), background, np.uint8)
    x = (i * 6) % max(1, width - 24)
    img[BLOCK * 2:, x:x + 24] = (230, 180, 20)
    for b in range(BITS):
        if (i >> b) & 1:
            img[:BLOCK, b * BLOCK:(b + 1) * BLOCK] = 255
        else:
            img[:BLOCK, b * BLOCK:(b + 1) * BLOCK] = 0
    return img


def frame_number(frame: av.VideoFrame) -> int:
    gray = frame.to_ndarray(format="gray")
    n = 0
    for b in range(BITS):
        if gray[BLOCK // 2, b * BLOCK + BLOCK // 2] > 128:
            n |= 1 << b
    return n


def background_of(frame: av.VideoFrame) -> int:
    """The grey of a frame's background: the median of its bottom row (the bar covers 24 px of it)."""
    return int(np.median(frame.to_ndarray(format="gray")[-4]))


def play(url: str) -> tuple[float, float, float]:
    """What a clip plays: (its first frame's time, the end of its last frame, seconds of audio);
    a frame lasts the usual interval between two (the median)."""
    times, samples = [], 0
    with av.open(str(url)) as c:
        for frame in c.decode(*c.streams.video[:1], *c.streams.audio[:1]):
            if isinstance(frame, av.VideoFrame):
                times.append(frame.time)
            else:
                samples += frame.samples
    steps = sorted(b - a for a, b in zip(times, times[1:]))
    return times[0], times[-1] + steps[len(steps) // 2], samples / RATE


def audio_samples(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    on = (t % BURST_EVERY) < BURST_LEN
    return (0.5 * np.sin(2 * np.pi * 1000 * t) * on).astype(np.float32)


def make_numbered(path: Path, seconds: float, gop_seconds: float, *, fps: int = 25, size=(320, 240),
                  preset: str = "ultrafast", bframes: bool = False, audio: bool = True,
                  background: int = 40, hole: tuple[float, float] | None = None) -> Path:
    """An MP4 (H.264 + AAC) with keyframes exactly every ``gop_seconds`` (no scene cuts); the grey
    ``background`` tells two such videos apart (:func:`background_of`). ``hole``: seconds with
    no video frame (the audio goes on; the video resumes with a keyframe), as exports made before
    holes were filled have across a paused display."""
    g = int(round(gop_seconds * fps))
    params = f"keyint={g}:min-keyint={g}:scenecut=0" + ("" if bframes else ":bframes=0")
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps, options={"preset": preset, "x264-params": params})
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        a = None
        if audio:
            a = out.add_stream("aac", rate=RATE)
            a.layout = "mono"
        samples = audio_samples(seconds)
        chunk, pos = 1024, 0
        resumed = False
        for i in range(int(seconds * fps)):
            if hole and hole[0] <= i / fps < hole[1]:
                resumed = True
            else:
                frame = av.VideoFrame.from_ndarray(pattern(i, *size, background), format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, fps)
                frame.pict_type = av.video.frame.PictureType.I if resumed else av.video.frame.PictureType.NONE
                resumed = False
                for packet in v.encode(frame):
                    out.mux(packet)
            while a is not None and pos < len(samples) and pos / RATE <= (i + 1) / fps:
                mux_audio(out, a, samples, pos, RATE, chunk)
                pos += chunk
        for packet in v.encode():
            out.mux(packet)
        if a is not None:
            for packet in a.encode():
                out.mux(packet)
    return path
