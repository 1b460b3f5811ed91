"""One short utterance through whisper, encoding the seconds it lasts and ten after, not a 30 s window.

Why: faster-whisper pads every input to whisper's 30 s window before the encoder, and on CPU the
encoder is most of a decode: for a 4 s utterance of live speech, tiny.en spends 0.75 CPU-s encoding
(26 s of it silence) and 0.2 CPU-s generating its words. CTranslate2's encoder takes a shorter mel
(its positional embeddings are sliced to fit), so a live transcriber that cuts speech at pauses
(``live.py``: utterances up to ``max_segment`` = 15 s) can encode less.

How much less is a quality question: whisper was trained on 30 s windows that end in silence, and
cut at the utterance's end it repeats it ("go forward 10 meters. Go forward 10 meters. ..."). With
:data:`TAIL` seconds of silence after the speech it does not: ``tests/bench/live_asr.py`` measured
against the 30 s window, on recorded people (pocketsphinx-testdata) WER 6.25 % with either (1 s of
tail: 132 %, loops; 5 s: 14.6 %; 7-8 s: 8.3 %), on espeak-ng 11.8 % against 13.2 % clean and 45.6 %
against 60.3 % in noise, no words made of silence, noise, a tone or clicks by either, and 0.46x
the CPU. The window is rounded up to whole seconds and never longer than 30 s.

What stays whisper's (as faster-whisper's ``transcribe`` does it, kept here because faster-whisper
has no public call for a shorter window): beam search at temperature 0, then sampling at rising
temperatures while the text loops (gzip compression ratio above 2.4) or scores too low (mean log
probability below -1); a window whose no-speech probability is high *and* whose text scores low is
silence. Only CTranslate2's public API (``encode``, ``generate``, ``detect_language``) and
faster-whisper's feature extractor and tokenizer are used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from .transcribe import COMPRESSION_RATIO, LOG_PROB_FLOOR, SAMPLE_RATE, silent

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

#: Mel frames per second of audio (whisper's hop is 160 samples at 16 kHz).
FRAMES_PER_SECOND = 100
#: Whisper's window: the longest input the encoder takes (3000 mel frames).
WINDOW_SECONDS = 30
#: Seconds of silence encoded after the speech: less and whisper repeats the utterance or misses
#: words (the module's docstring has the figures).
TAIL = 10.0
#: faster-whisper's defaults for ``transcribe``, which live transcription used before this module
#: (its thresholds are the index's: ``transcribe.COMPRESSION_RATIO``, ``LOG_PROB_FLOOR``, ``silent``).
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
BEST_OF = 5
#: Tokens a short utterance never needs more of (whisper's own bound is 448 for 30 s).
MAX_LENGTH = 224


@dataclass(frozen=True)
class Heard:
    """What whisper made of an utterance; ``text`` is empty when it judged the window silence."""

    text: str
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float
    temperature: float


def window_frames(samples: int, tail: float = TAIL) -> int:
    """Mel frames to encode for ``samples`` of 16 kHz audio: its length plus ``tail``, rounded up
    to whole seconds, at most whisper's 30 s window."""
    seconds = math.ceil(samples / SAMPLE_RATE + tail)
    return min(WINDOW_SECONDS, max(1, seconds)) * FRAMES_PER_SECOND


def decode(model: "WhisperModel", audio: np.ndarray, *, language: Optional[str] = None, beam_size: int = 5,
           tail: float = TAIL) -> Heard:
    """Decode ``audio`` (16 kHz mono float32, at most 30 s) as one window of
    :func:`window_frames` frames, with whisper's temperature fallback. ``language`` None on a
    multilingual model: the window's likeliest. Blocking: run it off the event loop."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_compression_ratio

    frames = window_frames(len(audio), tail)
    extractor = model.feature_extractor
    # The mel of the audio followed by silence, cut to the window: the same values as the first
    # frames of faster-whisper's 30 s padded mel (its log floor comes from the loudest frame).
    mel = extractor(np.asarray(audio, dtype=np.float32), padding=frames * extractor.hop_length)[:, :frames]
    encoded = model.encode(np.ascontiguousarray(mel))
    multilingual = model.model.is_multilingual
    if multilingual and not language:  # as faster-whisper does: the likeliest language of this window
        language = model.model.detect_language(encoded)[0][0][0][2:-2]
    tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe",
                          language=language if multilingual else None)
    prompt = list(tokenizer.sot_sequence) + [tokenizer.no_timestamps]
    suppress = sorted({*tokenizer.non_speech_tokens, tokenizer.transcribe, tokenizer.translate, tokenizer.sot,
                       tokenizer.sot_prev, tokenizer.sot_lm, tokenizer.no_speech})
    tried: list[Heard] = []
    for temperature in TEMPERATURES:
        options = ({"beam_size": beam_size} if temperature == 0 else
                   {"beam_size": 1, "num_hypotheses": BEST_OF, "sampling_topk": 0,
                    "sampling_temperature": temperature})
        result = model.model.generate(encoded, [prompt], max_length=MAX_LENGTH, return_scores=True,
                                      return_no_speech_prob=True, suppress_blank=True, suppress_tokens=suppress,
                                      **options)[0]
        tokens = result.sequences_ids[0]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        text = tokenizer.decode(tokens).strip()
        heard = Heard(text, float(result.no_speech_prob), float(avg_logprob), get_compression_ratio(text), temperature)
        tried.append(heard)
        if silent(heard) or heard.compression_ratio <= COMPRESSION_RATIO and heard.avg_logprob >= LOG_PROB_FLOOR:
            break
    else:  # every temperature failed: the best-scoring text that does not loop
        unlooped = [h for h in tried if h.compression_ratio <= COMPRESSION_RATIO]
        heard = max(unlooped or tried, key=lambda h: h.avg_logprob)
    if silent(heard):
        return Heard("", heard.no_speech_prob, heard.avg_logprob, heard.compression_ratio, heard.temperature)
    return heard
