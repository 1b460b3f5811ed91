"""Speech recognition quality on recorded human speech: Debian's pocketsphinx-testdata.

    apt-get install pocketsphinx-testdata     # BSD-2: LibriVox sentences, spoken cards, a command
    python tests/bench/asr_quality.py [--data /usr/share/pocketsphinx/test/data] [--batch-size 8]

Espeak-ng's voice (every other speech bench here) is robotic; these are people: five LibriVox
sentences of *Sense and Sensibility*, five spoken card names and "go forward ten meters". Each
file is transcribed with ``reeldb.index.transcribe`` (the bundled tiny.en, the options the index
job uses) and scored against its reference: corpus word error rate (edits over reference words)
after both sides are normalised the same way (lower case, punctuation and hyphens as spaces,
numbers written as words: whisper writes "10 of clubs", the reference "ten of clubs").
Reference figure: ~6.5 % for tiny.en.

First, one short espeak-ng sentence in a video's audio track (what
``tests/index/test_transcribe.py::test_video_file_and_progress`` transcribes), against the bound
of 0.2 it once asserted: one short utterance is a quality figure, not a behaviour.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from support.media import write_video  # noqa: E402
from support.speech import compose, require_espeak, wer  # noqa: E402

DATA = Path("/usr/share/pocketsphinx/test/data")
#: goforward.raw's words, from the package's own grammar (goforward.gram: "go forward ten meters").
GOFORWARD = "go forward ten meters"

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
       "seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spoken_number(n: int) -> str:
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + spoken_number(rest))
    return " ".join(ONES[int(d)] for d in str(n))


def normalise(text: str) -> str:
    text = text.lower().replace("-", " ")
    text = re.sub(r"\bmr\.?(?=\s)", "mister", text)
    return re.sub(r"\d+", lambda m: " " + spoken_number(int(m.group())) + " ", text)


def references(data: Path) -> list[tuple[Path, str]]:
    """(audio file, reference text) pairs; Sphinx transcription lines are ``<s> words </s> (id)``."""
    out = []
    for folder, listing in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for line in (data / folder / listing).read_text().splitlines():
            m = re.match(r"\s*<s>(.*)</s>\s*\((\S+)\)", line)
            if m:
                out.append((data / folder / f"{m.group(2)}.wav", m.group(1).strip()))
    out.append((data / "goforward.raw", GOFORWARD))
    return out


def load(path: Path) -> np.ndarray | str:
    """Raw files are headerless 16 kHz s16 mono; wav files are read by the transcriber itself."""
    if path.suffix == ".raw":
        return np.frombuffer(path.read_bytes(), "<i2").astype(np.float32) / 32768.0
    return str(path)


SHORT_SENTENCE = "Video files carry their speech in an audio track."
SHORT_BOUND = 0.2


def short_video_sentence() -> None:
    """The behaviour test's one sentence, through a video file: its WER against ``SHORT_BOUND``."""
    import tempfile

    from reeldb.index.transcribe import transcribe

    require_espeak()
    audio, _ = compose([SHORT_SENTENCE], lead=0.5, gap=0.5)
    with tempfile.TemporaryDirectory() as d:
        tr = transcribe(write_video(Path(d) / "v.mp4", audio))
    err = wer(SHORT_SENTENCE, tr.text)
    verdict = "within" if err <= SHORT_BOUND else "OVER"
    print(f"short espeak sentence in a video: WER {err:.2f} ({verdict} {SHORT_BOUND}) hyp={tr.text!r}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--batch-size", type=int, default=8, help="8: the batched pipeline the index job uses; 1: sequential")
    args = ap.parse_args()
    short_video_sentence()
    if not (args.data / "librivox").is_dir():
        sys.exit(f"{args.data} has no pocketsphinx test data: apt-get install pocketsphinx-testdata")
    from reeldb.index.transcribe import transcribe

    edits = words = 0.0
    audio_s = cpu_s = 0.0
    for path, ref in references(args.data):
        t0 = time.process_time()
        tr = transcribe(load(path), batch_size=args.batch_size)
        cpu_s += time.process_time() - t0
        audio_s += tr.duration
        n = len(normalise(ref).split())
        err = wer(normalise(ref), normalise(tr.text))
        edits += err * n
        words += n
        print(f"{err:6.1%}  {path.name:45s} ref={ref!r}\n{'':8s}{'':45s} hyp={tr.text!r}")
    print(f"\nWER {edits / words:.2%} over {int(words)} words, {audio_s:.1f} s of speech "
          f"(CPU {cpu_s:.1f} s, batch_size {args.batch_size})")


if __name__ == "__main__":
    main()
