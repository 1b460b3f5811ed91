"""Media assertions shared by the export tests (NAL units, tones, digests)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np


def folder_digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir())}


def nal_units(data: bytes, avcc: bool | None = None) -> list[bytes]:
    """Split an H.264 access unit into NAL units, from Annex-B or 4-byte length-prefixed form."""
    if avcc is None:
        avcc = not (data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01"))
    units = []
    if avcc:
        i = 0
        while i + 4 <= len(data):
            n = int.from_bytes(data[i : i + 4], "big")
            units.append(data[i + 4 : i + 4 + n])
            i += 4 + n
        return units
    parts = data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    return [p for p in parts if p]


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def packets_by_ms(path: Path) -> dict[int, bytes]:
    """Video packets by their time in milliseconds (the stored files' unit)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return {round(float(p.pts * s.time_base) * 1000): bytes(p) for p in c.demux(s) if p.size}


def decode_audio(path: Path, rate: int = 48000) -> np.ndarray:
    """Mono float32 of the first audio stream, placed by pts (timeline from 0)."""
    chunks = []
    with av.open(str(path)) as c:
        rs = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        for f in c.decode(audio=0):
            for o in rs.resample(f):
                chunks.append((float(o.pts * o.time_base) if o.pts is not None else None, o.to_ndarray()[0]))
    total = max((t or 0) + len(a) / rate for t, a in chunks)
    out = np.zeros(int(total * rate) + 1, np.float32)
    pos = 0
    for t, a in chunks:
        if t is not None:
            pos = max(0, int(round(t * rate)))
        out[pos : pos + len(a)] = a[: len(out) - pos]
        pos += len(a)
    return out


def tone_level(x: np.ndarray, freq: float, rate: int = 48000) -> float:
    """Amplitude of ``freq`` in ``x`` (windowed FFT peak, normalised)."""
    if len(x) < 256:
        return 0.0
    w = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x * w)) / (w.sum() / 2)
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    half = max(15.0, rate / len(x))
    band = (freqs > freq - half) & (freqs < freq + half)
    return float(spec[band].max())


def tone_onset(x: np.ndarray, freq: float, rate: int = 48000, win: float = 0.02, thresh: float = 0.05) -> float | None:
    n = int(win * rate)
    for i in range(0, len(x) - n, n // 2):
        if tone_level(x[i : i + n], freq, rate) > thresh:
            return i / rate
    return None
