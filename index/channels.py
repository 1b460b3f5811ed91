"""Transcribing a capture's stored audio channels each on its own, merged into one transcript.

Why not the muxed recording's audio: it mixes every channel, and a mic that hears the call through
the speakers puts the same speech in the mix twice ~1 s apart, which sends whisper into a loop.
Each raw channel asset (the rtstreams' ``exported_asset_id``) is transcribed alone, its words moved
onto the muxed video's timeline by its ``offset`` (the asset's capture-clock start minus the
export's origin), then merged with the others in time order, echoes said once
(:mod:`.echoes`). Reads only files: the caller (the server's control node) says which.

Blocking and CPU-bound: call from a worker thread.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np

from .echo_mask import aligned, echo_spans, silence
from .echoes import merge_channels
from .transcribe import SAMPLE_RATE, Transcript, TranscribeError, transcribe
from .words import Word

Progress = Callable[[float], None]


@dataclass(frozen=True)
class ChannelSource:
    """One stored audio channel to transcribe. ``channel`` is its label (the category: ``mic`` or
    ``system_audio``); ``offset`` is where its t=0 lies on the merged timeline, in seconds."""

    channel: str
    path: Union[str, os.PathLike]
    offset: float = 0.0
    channel_id: Optional[str] = None
    asset_id: Optional[str] = None

    def describe(self) -> dict:
        """What the merged transcript records of this source (JSON)."""
        d = asdict(self)
        d.pop("path")
        return d


#: A jump in a channel's timestamps longer than this is a hole (a pause, a network gap).
HOLE = 0.05


def load_audio_on_clock(path: Union[str, os.PathLike]) -> np.ndarray:
    """16 kHz mono samples of a raw channel asset, each frame at its timestamp.

    Why not ``load_audio``: a raw channel is its capture's packets copied, so a pause or a network
    gap is a hole in its timestamps, not silence; decoding frame after frame would pull every
    later word earlier by the hole's length. Holes (and a late first frame) become silence here,
    so t seconds into the array is t seconds on the asset's clock.
    """
    import av

    chunks: list[np.ndarray] = []
    cursor = 0  # samples written so far
    try:
        with av.open(os.fspath(path)) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                if frame.pts is not None and frame.time_base is not None:
                    at = int(round(float(frame.pts * frame.time_base) * SAMPLE_RATE))
                    if at - cursor > HOLE * SAMPLE_RATE:
                        chunks.append(np.zeros(at - cursor, np.float32))
                        cursor = at
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    chunks.append(samples)
                    cursor += len(samples)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (OSError, IndexError, av.error.FFmpegError) as exc:
        raise TranscribeError(f"cannot decode audio from {os.fspath(path)}: {exc!r}") from exc
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)


def speech_level(audio: np.ndarray, words: Sequence[Word], rate: int = SAMPLE_RATE) -> float:
    """The channel's speech loudness: RMS in dBFS over the spans of its words (-inf: no speech)."""
    spans = [audio[int(w.start * rate):max(int(w.start * rate) + 1, int(w.end * rate))] for w in words]
    voiced = np.concatenate(spans) if spans else np.zeros(0, np.float32)
    if not voiced.size:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(voiced, dtype=np.float64))))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def _without_echoes(sources: Sequence[ChannelSource], audios: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Each mic's audio with the stretches that only echo another channel silenced (:mod:`.echo_mask`):
    whisper then never decodes the other side's speech twice. The full audio still measures loudness."""
    out: dict[int, np.ndarray] = {}
    for i, src in enumerate(sources):
        if src.channel != "mic" or i not in audios:
            continue
        mic = audios[i]
        spans: list[tuple[float, float]] = []
        for j, other in enumerate(sources):
            if j != i and other.channel != "mic" and j in audios:
                spans += echo_spans(mic, aligned(audios[j], other.offset - src.offset, len(mic), SAMPLE_RATE),
                                    SAMPLE_RATE)
        if spans:
            out[i] = silence(mic, spans, SAMPLE_RATE)
    return out


def shifted(words: Sequence[Word], offset: float) -> list[Word]:
    return [w._replace(start=round(w.start + offset, 3), end=round(w.end + offset, 3)) for w in words]


def transcribe_channels(
    sources: Sequence[ChannelSource],
    progress: Optional[Progress] = None,
    *,
    stored: Optional[Mapping[str, Transcript]] = None,
    model_spec: Optional[str] = None,
    language: Optional[str] = None,
    duration: Optional[float] = None,
) -> tuple[Transcript, dict[str, Transcript]]:
    """The merged transcript (on the shared timeline, every word labelled with its channel) and
    each source's own transcript by ``asset_id`` (on the asset's own timeline, for its row).

    ``stored`` holds transcripts already made of some sources (by asset id): they are reused, not
    made again (their loudness is then unknown; the echo rule falls back to earlier-wins and
    channel priority). Progress is shared evenly between sources.
    """
    stored = dict(stored or {})
    made: list[Transcript] = []
    placed: dict[str, list[Word]] = {}
    levels: dict[str, float] = {}
    language_seen = language
    share = 1.0 / max(1, len(sources))
    audios = {i: load_audio_on_clock(src.path) for i, src in enumerate(sources) if src.asset_id not in stored}
    quiet = _without_echoes(sources, audios)
    for i, src in enumerate(sources):
        sub = (lambda f, i=i: progress((i + f) * share)) if progress else None
        if src.asset_id in stored:
            tr = stored[src.asset_id]
            tr = Transcript([w._replace(channel=src.channel) for w in tr.words], tr.language, tr.duration, tr.model)
        else:
            audio = audios.pop(i)
            tr = transcribe(quiet.pop(i, audio), sub, model_spec=model_spec, language=language, channel=src.channel)
            levels[src.channel] = speech_level(audio, tr.words)
            del audio
        made.append(tr)
        language_seen = language_seen or tr.language
        placed.setdefault(src.channel, []).extend(shifted(tr.words, src.offset))
    if progress:
        progress(1.0)
    words = merge_channels({c: sorted(ws, key=lambda w: w.start) for c, ws in placed.items()}, levels)
    end = max((s.offset + t.duration for s, t in zip(sources, made)), default=0.0)
    model = next((t.model for t in made if t.model), "")
    merged = Transcript(words=words, language=language_seen or "en",
                        duration=round(duration if duration is not None else end, 3), model=model,
                        channels=[s.describe() for s in sources])
    return merged, {s.asset_id: t for s, t in zip(sources, made) if s.asset_id}
