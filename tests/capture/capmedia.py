"""Real media for capture tests, generated with PyAV and numpy (no files checked in)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np


def h264_access_units(
    seconds: float, fps: int = 30, gop: int = 30, width: int = 320, height: int = 240
) -> list[bytes]:
    """Annex-B H.264 access units (constrained baseline, SPS/PPS before each IDR)."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.gop_size = gop
    ctx.options = {"profile": "baseline", "preset": "ultrafast", "tune": "zerolatency",
                   "keyint": str(gop), "min-keyint": str(gop), "scenecut": "0"}
    out: list[bytes] = []
    for i in range(int(seconds * fps)):
        img = np.zeros((height, width, 3), dtype=np.uint8)
        img[:, :, 0] = (i * 7) % 256
        img[(i * 3) % height, :, 1] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out


def vp8_frames(seconds: float, fps: int = 30, gop: int = 30, width: int = 320, height: int = 240) -> list[bytes]:
    """VP8 frames (a key frame every ``gop``)."""
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.gop_size = gop
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[bytes] = []
    for i in range(int(seconds * fps)):
        img = np.zeros((height, width, 3), dtype=np.uint8)
        img[(i * 3) % height, :, :] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out


def tone(seconds: float, freq: float = 440.0, amplitude: float = 0.5, rate: int = 48000) -> np.ndarray:
    """A stereo sine, float32, shape (samples, 2)."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([mono, mono], axis=1)


def opus_packets(seconds: float, freq: float = 440.0, amplitude: float = 0.5) -> list[bytes]:
    """20 ms Opus packets of a stereo tone."""
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = 48000
    ctx.layout = "stereo"
    ctx.format = "s16"
    ctx.time_base = Fraction(1, 48000)
    samples = (tone(seconds, freq, amplitude) * 32767).astype(np.int16)
    out: list[bytes] = []
    for i in range(0, len(samples) - 959, 960):
        chunk = samples[i:i + 960].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = i
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out


def probe(path) -> dict:
    """Decode a file completely: frames per stream, first/last frame time, errors."""
    result = {"frames": 0, "first": None, "last": None, "errors": 0, "codec": None, "width": None}
    with av.open(str(path)) as c:
        s = c.streams[0]
        result["codec"] = s.codec_context.name
        try:
            for pkt in c.demux(s):
                try:
                    for f in pkt.decode():
                        t = float(f.time) if f.time is not None else None
                        result["frames"] += 1
                        if result["first"] is None:
                            result["first"] = t
                        result["last"] = t
                        if getattr(f, "width", None):
                            result["width"] = f.width
                except av.FFmpegError:
                    result["errors"] += 1
        except av.FFmpegError:
            result["errors"] += 1
    return result


def write_ts(path, seconds: float, fps: int = 15, gop: int = 15) -> None:
    """An MPEG-TS file holding Annex-B H.264 (what the recorder relays without re-encoding)."""
    mux_ts(path, h264_access_units(seconds, fps=fps, gop=gop), fps, gop)


def mux_ts(path, aus: list[bytes], fps: int, gop: int) -> None:
    """Annex-B access units (a keyframe every ``gop``) into MPEG-TS at ``fps``."""
    with av.open(str(path), "w", format="mpegts") as c:
        s = c.add_mux_stream("h264", width=320, height=240)
        for i, au in enumerate(aus):
            p = av.Packet(au)
            p.stream = s
            p.time_base = Fraction(1, 90000)
            p.pts = p.dts = 90000 + i * 90000 // fps
            p.is_keyframe = i % gop == 0
            c.mux(p)


def write_wav(path, seconds: float, freq: float = 440.0, amplitude: float = 0.5) -> None:
    """A 48 kHz stereo s16 WAV of a tone."""
    samples = (tone(seconds, freq, amplitude) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="wav") as c:
        s = c.add_stream("pcm_s16le", rate=48000, layout="stereo")
        for i in range(0, len(samples), 4800):
            f = av.AudioFrame.from_ndarray(samples[i:i + 4800].reshape(1, -1), format="s16", layout="stereo")
            f.sample_rate = 48000
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
