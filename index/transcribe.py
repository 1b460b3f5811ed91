"""Speech to timestamped words, from any media file (audio or video).

Why these choices: faster-whisper with word timestamps gives each word its own start/end, which
every segmenter and search result is built from (its word pieces are joined as whisper means them,
:mod:`.words`); its Silero VAD skips silence (faster, and no
hallucinated text in long pauses) while keeping timestamps on the original timeline. Audio is
decoded with PyAV through faster-whisper's ``decode_audio`` (16 kHz mono float32), so a video
asset is read directly without extracting its audio to a file.

Blocking and CPU-bound: call from a worker thread, never the event loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import numpy as np

from . import models
from .repeats import collapse_repeats
from .words import Piece, Word, join_pieces, join_words

Progress = Callable[[float], None]
SAMPLE_RATE = 16000


class TranscribeError(Exception):
    """The media could not be read or holds no audio stream."""


@dataclass
class Transcript:
    """Words in time order. ``channels`` describes where they came from when each stored audio
    channel of a capture was transcribed on its own (``[{channel, channel_id, asset_id, offset}]``),
    empty for one audio track."""

    words: list[Word] = field(default_factory=list)
    language: str = "en"
    duration: float = 0.0
    model: str = ""
    channels: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return join_words(self.words)

    def to_dict(self) -> dict[str, Any]:
        return {
            "words": [w.row() for w in self.words],
            "language": self.language,
            "duration": self.duration,
            "model": self.model,
            "channels": self.channels,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Transcript":
        words = [Word.from_row(r) for r in data.get("words", [])]
        return cls(words=words, language=data.get("language", "en"), duration=float(data.get("duration", 0.0)),
                   model=data.get("model", ""), channels=list(data.get("channels") or []))


def whisper_language(code: Optional[str]) -> Optional[str]:
    """SDK language codes (``en_us``, ``en-GB``, ``fr``) to whisper's two-letter codes."""
    if not code:
        return None
    return code.replace("-", "_").split("_")[0].lower() or None


def load_audio(source: Union[str, os.PathLike, np.ndarray]) -> np.ndarray:
    """16 kHz mono float32 samples of the first audio stream of a media file (PyAV)."""
    if isinstance(source, np.ndarray):
        return source.astype(np.float32, copy=False)
    from faster_whisper.audio import decode_audio

    path = os.fspath(source)
    if not os.path.exists(path):
        raise TranscribeError(f"media file not found: {path}")
    try:
        return decode_audio(path, sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV raises InvalidDataError, StopIteration for no audio, ...
        raise TranscribeError(f"cannot decode audio from {path}: {exc!r}") from exc


#: Whisper's own test for a window that holds no speech: a high no-speech probability *and* a low
#: average log probability (the values whisper and faster-whisper use by default).
NO_SPEECH_PROB = 0.6
LOG_PROB_FLOOR = -1.0
#: gzip compression ratio above which decoded text is a loop ("May 4th, May 4th, ...").
COMPRESSION_RATIO = 2.4


def transcribe(
    path: Union[str, os.PathLike, np.ndarray],
    progress: Optional[Progress] = None,
    *,
    model_spec: Optional[str] = None,
    language: Optional[str] = None,
    beam_size: int = 5,
    vad: bool = True,
    cpu_threads: int = 0,
    batch_size: int = 8,
    channel: Optional[str] = None,
) -> Transcript:
    """Transcribe a media file (or 16 kHz mono samples) to words with timestamps. Blocking; run in
    a worker thread.

    ``progress`` is called with a fraction in [0, 1] as segments are decoded (from each segment's
    end time over the duration) and with 1.0 at the end. ``beam_size`` stays faster-whisper's default 5: on tiny.en greedy
    decoding (1) was only ~30% faster but its word error rate was 6x worse on test speech.
    ``batch_size`` > 1 decodes VAD chunks in batches (faster-whisper's batched pipeline): 2.3x
    faster on this 2-core CPU (RTF 0.026 against 0.059 on 3 minutes of speech), which is what
    brings an hour of audio under 3 % of its duration; 1 restores sequential decoding.
    ``channel`` labels every word (a capture channel transcribed on its own).

    No loops, no invented words: Silero VAD keeps silence and steady tones from the decoder; each
    window is decoded on its own (``condition_on_previous_text=False``: a loop cannot carry over);
    the sequential decoder retries a window whose text compresses too well or scores too low at a
    higher temperature and skips silences around a suspected hallucination; the batched pipeline
    has none of those options, so its segments are filtered here with whisper's no-speech rule and
    its looping segments (compression ratio) are left to the repeated-phrase guard
    (:func:`repeats.collapse_repeats`), which both paths' words go through last.
    Raises :class:`TranscribeError` (unreadable media) or :class:`models.ModelNotFound`.
    """
    model = models.get_whisper(model_spec, cpu_threads=cpu_threads)
    audio = load_audio(path)
    duration = len(audio) / SAMPLE_RATE
    if progress:
        progress(0.0)
    if duration == 0:
        if progress:
            progress(1.0)
        return Transcript(words=[], language=language or "en", duration=0.0, model=_model_name(model_spec))
    if batch_size > 1 and vad:
        from faster_whisper import BatchedInferencePipeline

        segments, info = BatchedInferencePipeline(model).transcribe(
            audio, language=whisper_language(language), beam_size=beam_size, word_timestamps=True,
            batch_size=batch_size,  # VAD on; chunks are independent, as condition_on_previous_text=False
        )
    else:
        segments, info = model.transcribe(
            audio,
            language=whisper_language(language),
            beam_size=beam_size,
            word_timestamps=True,
            vad_filter=vad,
            condition_on_previous_text=False,  # avoids repetition loops on long recordings
            compression_ratio_threshold=COMPRESSION_RATIO,
            log_prob_threshold=LOG_PROB_FLOOR,
            no_speech_threshold=NO_SPEECH_PROB,
            hallucination_silence_threshold=2.0,
        )
    pieces: list[Piece] = []
    last = 0.0
    for seg in segments:
        if not silent(seg):
            pieces.extend(Piece(float(w.start), float(w.end), w.word) for w in seg.words or ())
        if progress and duration > 0:
            frac = min(1.0, max(last, float(seg.end) / duration))
            if frac > last:
                last = frac
                progress(frac)
    if progress:
        progress(1.0)
    words = collapse_repeats(join_pieces(pieces, channel))
    return Transcript(words=words, language=info.language or "en", duration=round(duration, 3),
                      model=_model_name(model_spec))


def silent(seg: Any) -> bool:
    """Whisper's rule for a window that is silence whatever text came out of it."""
    return (getattr(seg, "no_speech_prob", 0.0) > NO_SPEECH_PROB
            and getattr(seg, "avg_logprob", 0.0) < LOG_PROB_FLOOR)


def _model_name(spec: Optional[str]) -> str:
    return spec or "bundled:tiny.en"
