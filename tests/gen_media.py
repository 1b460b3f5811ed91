"""Real media files made with PyAV and numpy, for uploads and recordings."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_video(path: Path, seconds: float = 2.0, size: tuple[int, int] = (320, 240), fps: int = 25,
               tone_hz: float | None = 440.0, background: tuple[int, int, int] = (0, 0, 0),
               container: str | None = None, x264: dict[str, str] | None = None) -> Path:
    """H.264 video of a moving bar on ``background`` with (optionally) an AAC sine tone; an MP4 unless
    ``container`` says otherwise (``mpegts`` for a screen the recorder relays without re-encoding)."""
    with av.open(str(path), "w", format=container) as out:
        v = out.add_stream("libx264", rate=fps, options=x264 or {"preset": "ultrafast", "g": str(fps)})
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        a = None
        if tone_hz:
            a = out.add_stream("aac", rate=48000)
            a.layout = "mono"
        frames = int(seconds * fps)
        for i in range(frames):
            img = np.zeros((size[1], size[0], 3), np.uint8)
            img[:] = background
            img[:, (i * 8) % size[0]:(i * 8) % size[0] + 16] = (255, 200, 0)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
        if a is not None:
            write_tone(out, a, seconds, tone_hz)
    return path


def write_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float,
               hz: float, rate: int = 48000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    for start in range(0, len(samples), AUDIO_CHUNK):
        mux_audio(out, stream, samples, start, rate)
    for packet in stream.encode():
        out.mux(packet)


AUDIO_CHUNK = 1024


def mux_audio(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, samples: np.ndarray,
              start: int, rate: int, chunk: int = AUDIO_CHUNK) -> None:
    """Encode and mux ``samples[start:start + chunk]`` (mono float32) at its own timestamp."""
    frame = av.AudioFrame.from_ndarray(samples[None, start:start + chunk], format="flt", layout="mono")
    frame.sample_rate = rate
    frame.pts = start
    frame.time_base = Fraction(1, rate)
    for packet in stream.encode(frame):
        out.mux(packet)


def make_audio(path: Path, seconds: float = 2.0, hz: float = 440.0) -> Path:
    """A WAV (or, by suffix, any container PyAV can write) with a sine tone."""
    codec = {".wav": "pcm_s16le", ".m4a": "aac", ".mp3": "libmp3lame", ".ogg": "libopus"}[path.suffix]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=48000)
        stream.layout = "mono"
        write_tone(out, stream, seconds, hz)
    return path


def make_image(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    img = np.zeros((size[1], size[0], 3), np.uint8)
    img[..., 0] = 200
    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height = size
        stream.pix_fmt = "rgb24"
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
