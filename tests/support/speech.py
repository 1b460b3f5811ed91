"""Synthetic speech for index tests: espeak-ng sentences placed at known times.

Why espeak-ng: deterministic, offline, fast (milliseconds per sentence), so tests know exactly
what was said and when. Its voice is robotic, which makes whisper's word error rate a pessimistic
bound for real speech.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

HAVE_ESPEAK = shutil.which("espeak-ng") is not None


def require_espeak() -> None:
    """Speech tests need espeak-ng; a missing one is a broken setup, not a reason to skip."""
    if not HAVE_ESPEAK:
        raise RuntimeError("espeak-ng is not installed: tests/run.sh installs it (apt-get install espeak-ng)")


#: Asset A: an engineering meeting. Asset B: a garden club. Distinct topics, so collection
#: search has a right answer in each.
MEETING_A = [
    "The quarterly budget review is scheduled for next Tuesday afternoon.",
    "Our database migration failed because a column was missing.",
    "Please send the slides to the marketing team before Friday.",
    "The new office in Berlin opens in September.",
]
MEETING_B = [
    "Remember to water the tomato plants in the greenhouse every morning.",
    "Our cat knocked a glass of water off the kitchen table.",
    "The bakery on the corner sells fresh sourdough bread.",
]


@dataclass(frozen=True)
class Placed:
    text: str
    start: float  # seconds where the sentence's audio begins
    end: float  # seconds where it ends (trailing espeak silence trimmed)


def say(text: str, rate: int = 48000, wpm: int = 160, voice: str = "en-us") -> np.ndarray:
    """One sentence as float32 mono at ``rate`` Hz, leading/trailing silence trimmed."""
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "--stdout", text], check=True, capture_output=True
    ).stdout
    with wave.open(io.BytesIO(out)) as w:
        src_rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    x = _trim(x)
    if src_rate != rate:
        n = int(round(len(x) * rate / src_rate))
        x = np.interp(np.arange(n) * (src_rate / rate), np.arange(len(x)), x).astype(np.float32)
    return x


def _trim(x: np.ndarray, thresh: float = 0.01) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x) > thresh)
    return x[idx[0] : idx[-1] + 1] if idx.size else x[:0]


def compose(
    sentences: Sequence[str], gap: float = 1.5, lead: float = 1.0, rate: int = 48000, noise: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, list[Placed]]:
    """Sentences separated by ``gap`` seconds of silence; returns samples and where each lies."""
    parts = [np.zeros(int(lead * rate), np.float32)]
    placed = []
    t = lead
    for s in sentences:
        x = say(s, rate)
        placed.append(Placed(s, round(t, 3), round(t + len(x) / rate, 3)))
        parts += [x, np.zeros(int(gap * rate), np.float32)]
        t += len(x) / rate + gap
    audio = np.concatenate(parts) * 0.7
    if noise:
        audio = audio + np.random.default_rng(seed).normal(0, noise, audio.shape).astype(np.float32)
    return audio.astype(np.float32), placed


def normalise_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level Levenshtein distance over the reference length."""
    r, h = normalise_words(reference), normalise_words(hypothesis)
    d = np.arange(len(h) + 1)
    for i in range(1, len(r) + 1):
        prev, d = d, np.empty_like(d)
        d[0] = i
        for j in range(1, len(h) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return float(d[-1]) / max(1, len(r))


def frames(audio: np.ndarray, rate: int = 48000, samples: int = 960) -> Iterable["object"]:
    """``audio`` as 20 ms s16 stereo ``av.AudioFrame``s, as aiortc's Opus decoder hands them out."""
    import av

    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    for i in range(0, len(pcm) - samples + 1, samples):
        chunk = pcm[i : i + samples]
        inter = np.repeat(chunk, 2).reshape(1, -1)
        f = av.AudioFrame.from_ndarray(inter, format="s16", layout="stereo")
        f.sample_rate = rate
        f.pts = i
        yield f


def echoed(audio: np.ndarray, delay: float, gain: float = 0.8, rate: int = 48000) -> np.ndarray:
    """``audio`` delayed by ``delay`` seconds (what a mic hears of a call played through speakers)."""
    return np.concatenate([np.zeros(int(delay * rate), np.float32), audio * gain]).astype(np.float32)
