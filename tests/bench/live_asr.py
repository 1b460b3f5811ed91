"""Live transcription's decode of one utterance: whisper's 30 s window against a window cut to the
utterance (``reeldb.index.utterance``), side by side: word error rate, what comes out of audio
with no speech in it, and CPU.

    apt-get install pocketsphinx-testdata espeak-ng
    python tests/bench/live_asr.py [--data /usr/share/pocketsphinx/test/data] [--repeat 2]

Utterances, each decoded as live transcription decodes a final (beam 5, the bundled tiny.en):
- recorded people: Debian's pocketsphinx-testdata (five LibriVox sentences, five spoken card names,
  "go forward ten meters"; ``asr_quality.py``'s references);
- espeak-ng: the suite's meeting sentences, one at a time, clean and in noise (SNR about 10 dB);
- no speech: silence, white noise, a 440 Hz tone, a door-slam click train: live transcription's
  energy detector can pass any of these on, and whisper must not make words of them.

Prints each method's corpus WER per set, the utterances on which the methods differ, the
non-empty texts made of no-speech audio, and the cut window's CPU as a ratio of the 30 s window's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from asr_quality import DATA, load, normalise, references  # noqa: E402
from support.speech import MEETING_A, MEETING_B, compose, require_espeak, wer  # noqa: E402

SR = 16000


def as_samples(source) -> np.ndarray:
    if isinstance(source, np.ndarray):
        return source.astype(np.float32)
    from faster_whisper import decode_audio

    return decode_audio(source, sampling_rate=SR).astype(np.float32)


def espeak_set(noise: float) -> list[tuple[np.ndarray, str]]:
    out = []
    for i, sentence in enumerate(MEETING_A + MEETING_B):
        audio, _ = compose([sentence], gap=0.2, lead=0.2, rate=SR, noise=noise, seed=i)
        out.append((audio.astype(np.float32), sentence))
    return out


def no_speech_set() -> list[tuple[np.ndarray, str]]:
    rng = np.random.default_rng(7)
    t = np.arange(int(3 * SR)) / SR
    clicks = np.zeros(int(3 * SR), np.float32)
    clicks[:: SR // 4] = 0.8
    return [(np.zeros(2 * SR, np.float32), "silence 2 s"),
            (rng.normal(0, 0.02, 3 * SR).astype(np.float32), "white noise 3 s"),
            (rng.normal(0, 0.1, 1 * SR).astype(np.float32), "loud noise 1 s"),
            ((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), "tone 440 Hz 3 s"),
            (clicks, "clicks 3 s")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--repeat", type=int, default=2, help="decodes per utterance and method, for CPU")
    ap.add_argument("--tail", type=float, default=None,
                    help="seconds of silence after the utterance in the cut window (default: utterance.TAIL)")
    args = ap.parse_args()
    require_espeak()
    from reeldb.index import models, utterance

    model = models.get_whisper(None)
    if args.tail is None:
        args.tail = utterance.TAIL

    def window30(audio: np.ndarray) -> str:  # what live.py did before utterance.py
        segments, _ = model.transcribe(audio, language="en", beam_size=5, vad_filter=False, without_timestamps=True,
                                       condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments if s.no_speech_prob < 0.8 and s.text.strip()).strip()

    def cut(audio: np.ndarray) -> str:
        heard = utterance.decode(model, audio, language="en", beam_size=5, tail=args.tail)
        return heard.text if heard.no_speech_prob < 0.8 else ""

    methods = {"30 s window": window30, "cut window": cut}
    sets = {"people": [(as_samples(load(p)), ref) for p, ref in references(args.data)] if (args.data / "librivox").is_dir() else [],
            "espeak clean": espeak_set(0.0), "espeak noisy": espeak_set(0.03)}
    if not sets["people"]:
        print(f"{args.data} has no pocketsphinx test data (apt-get install pocketsphinx-testdata): people skipped")
    window30(sets["espeak clean"][0][0])  # load the model and warm up before timing
    cpu = {m: 0.0 for m in methods}
    for name, items in sets.items():
        if not items:
            continue
        edits = {m: 0.0 for m in methods}
        words = 0
        for audio, ref in items:
            texts = {}
            for m, fn in methods.items():
                t0 = time.process_time()
                for _ in range(args.repeat):
                    texts[m] = fn(audio)
                cpu[m] += time.process_time() - t0
            n = len(normalise(ref).split())
            words += n
            for m in methods:
                edits[m] += wer(normalise(ref), normalise(texts[m])) * n
            if len(set(texts.values())) > 1:
                print(f"  differ ({len(audio) / SR:.1f} s) ref={ref!r}")
                for m in methods:
                    print(f"    {m:12s} {texts[m]!r}")
        print(f"{name:13s} " + "  ".join(f"{m}: WER {edits[m] / words:6.2%}" for m in methods) + f"  ({words} words)")
    made_up = {m: [] for m in methods}
    for audio, label in no_speech_set():
        for m, fn in methods.items():
            t0 = time.process_time()
            for _ in range(args.repeat):
                text = fn(audio)
            cpu[m] += time.process_time() - t0
            if text:
                made_up[m].append(f"{label}: {text!r}")
    for m in methods:
        print(f"no speech -> words, {m}: {len(made_up[m])} of 5 {made_up[m]}")
    base = cpu["30 s window"]
    print("CPU: " + "  ".join(f"{m} {cpu[m] / base:.2f}x" for m in methods) + f" (of the 30 s window's; tail {args.tail:g} s)")


if __name__ == "__main__":
    main()
