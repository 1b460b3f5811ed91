"""Benchmark: per-channel transcription against transcribing the mix, and the index job's wall time.

    python tests/bench/stop_to_search.py                       # 1-, 10- and 30-minute recordings
    python tests/bench/stop_to_search.py --minutes 0.5         # quick check
    python tests/bench/stop_to_search.py --minutes 10 --echo   # the mic also hears the call

A two-person call made with espeak-ng: sentences alternate between the mic (the person at the
keyboard) and system audio (the other side), one second apart, as a capture stores them: each
channel Opus in WebM on its own clock. The mix is both channels summed (what the muxed export's
one audio track holds). With ``--echo`` the mic also hears system audio through the speakers (at
0.3, 1 s late), the case that made whisper loop on the mix.

Measures, per length:
- CPU seconds (process time: every thread) of ``transcribe`` on the mix against
  ``transcribe_channels`` on the two channels (decode included in both); goal per-channel
  <= 1.3x the mix. VAD keeps each channel's silence (the other side talking) from the decoder, so
  per-channel costs about what the mix does when people take turns;
- wall time of the index job's body (``pipeline.index_asset`` with the channels: transcribe each,
  merge, segment, embed, write to SQLite), models loaded beforehand: the time from a stopped (and
  exported) recording to a searchable one, export aside;
- wall time of the early index a recording gets at export when its stored audio was transcribed
  live (server/live_seed.py: the live finals onto the video's timeline, segmented, embedded and
  written), the same call's sentences standing in for the live finals: the time from exported to
  searchable then, as a share of the index job's.

- wall time of the early screen-text index a recording gets at export when its display was read
  live (server/live_seed.py, ``Scenes.seed``), a slide every 30 s standing in for the live
  records (``--screen-only``: that alone).

Recordings are made once under tests/.cache/ (gitignored). Set HF_HUB_OFFLINE=1: nothing is fetched.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.speech import say  # noqa: E402
from support.media import write_opus, write_wav  # noqa: E402

RATE = 48000
MIC = [
    "The quarterly budget review is scheduled for next Tuesday afternoon.",
    "Please send the slides to the marketing team before Friday.",
    "Let's move the design review to Thursday morning.",
    "We should hire two more engineers for the mobile team.",
    "Latency on the search endpoint went up by twenty percent.",
    "Remember to water the tomato plants in the greenhouse.",
]
SYSTEM = [
    "Our database migration failed because a column was missing.",
    "The new office in Berlin opens in September.",
    "Customer support tickets doubled after the last release.",
    "The printer on the third floor is out of paper again.",
    "The contract with the cloud provider renews in March.",
    "Sales in Europe were stronger than we expected this quarter.",
]


def recording(minutes: float, cache: Path, echo: bool) -> tuple[Path, Path, Path]:
    """(mic.webm, system.webm, mix.wav) of a call ``minutes`` long."""
    stem = cache / f"bench-call-{minutes:g}min{'-echo' if echo else ''}"
    paths = (stem.with_name(stem.name + "-mic.webm"), stem.with_name(stem.name + "-system.webm"),
             stem.with_name(stem.name + "-mix.wav"))
    if all(p.exists() for p in paths):
        return paths
    cache.mkdir(parents=True, exist_ok=True)
    voices = {s: say(s, RATE) for s in MIC + SYSTEM}  # espeak once per sentence, then reused
    total = int(minutes * 60 * RATE)
    mic, system = np.zeros(total, np.float32), np.zeros(total, np.float32)
    rng = np.random.default_rng(0)
    t, turn = int(0.5 * RATE), 0
    while True:
        pool, track = (MIC, mic) if turn % 2 == 0 else (SYSTEM, system)
        x = voices[pool[int(rng.integers(len(pool)))]] * 0.7
        if t + len(x) > total:
            break
        track[t:t + len(x)] += x
        t += len(x) + RATE  # one second between turns
        turn += 1
    if echo:
        lag = RATE
        mic[lag:] += 0.3 * system[:-lag]
    noise = np.random.default_rng(1).normal(0, 0.001, total).astype(np.float32)
    mic += noise
    write_opus(paths[0], mic, RATE)
    write_opus(paths[1], system, RATE)
    write_wav(paths[2], np.clip(mic + system, -1, 1), RATE)
    return paths


def cpu(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def bench(minutes: float, echo: bool) -> None:
    import sqlite_utils

    from reeldb.index import pipeline, store
    from reeldb.index.channels import ChannelSource, transcribe_channels
    from reeldb.index.repeats import longest_run
    from reeldb.index.transcribe import transcribe

    mic, system, mix = recording(minutes, ROOT / "tests" / ".cache", echo)
    sources = [ChannelSource("mic", mic, 0.0, "mic:default", "a-mic"),
               ChannelSource("system_audio", system, 0.0, "system_audio:default", "a-sys")]
    mixed, mix_cpu, mix_wall = cpu(lambda: transcribe(mix))
    (merged, _), ch_cpu, ch_wall = cpu(lambda: transcribe_channels(sources))
    with tempfile.TemporaryDirectory() as d:
        db = sqlite_utils.Database(sqlite3.connect(os.path.join(d, "b.db"), isolation_level=None))
        db.enable_wal()
        store.ensure_schema(db)
        result, job_cpu, job_wall = cpu(lambda: pipeline.index_asset(db, "m-call", mix, sources=sources))
    audio_s = minutes * 60
    print(f"{minutes:g} min call{' (mic hears the call)' if echo else ''}:")
    print(f"  mix:         CPU {mix_cpu:7.1f} s  wall {mix_wall:7.1f} s  {len(mixed.words):6d} words  "
          f"longest 4-word run {longest_run(mixed.words, 4)}")
    print(f"  per channel: CPU {ch_cpu:7.1f} s  wall {ch_wall:7.1f} s  {len(merged.words):6d} words  "
          f"longest 4-word run {longest_run(merged.words, 4)}")
    print(f"  per-channel / mix CPU: {ch_cpu / mix_cpu:.2f}x (goal <= 1.3x)")
    print(f"  index job (channels -> searchable): wall {job_wall:.1f} s = {job_wall / audio_s:.3f} of the "
          f"recording, CPU {job_cpu:.1f} s; {result.segments} segments")
    seed_wall, seed_cpu, seeded = early_index(merged.words, audio_s)
    print(f"  early index (live words -> searchable): wall {seed_wall:.2f} s, CPU {seed_cpu:.2f} s; {seeded} "
          f"segments; {seed_wall / job_wall:.3f}x the index job's wall")


def early_index(words, length: float) -> tuple[float, float, int]:
    """What ``LiveSeed`` and ``Spoken.seed`` do at export, on finals made of the call's sentences
    (one a final, unix seconds, per channel, as the live transcriber emits them)."""
    import sqlite_utils

    from reeldb.index import pipeline, segments, store
    from reeldb.index.segmenter import timeline_words
    from reeldb.index.transcribe import Transcript

    zero = 1_765_000_000.0
    finals: dict[str, list[dict]] = {}
    for seg in segments.index_segments(words):
        finals.setdefault(seg.channel or "mic", []).append(
            {"start": zero + seg.start, "end": zero + seg.end, "text": seg.text})
    with tempfile.TemporaryDirectory() as d:
        db = sqlite_utils.Database(sqlite3.connect(os.path.join(d, "s.db"), isolation_level=None))
        store.ensure_schema(db)

        def seed() -> int:
            heard = sorted((w for ch, fs in finals.items() for w in timeline_words(fs, zero, length, ch)),
                           key=lambda w: (w.start, w.end))
            segs, vecs = pipeline.segment_and_embed(Transcript(words=heard, duration=length, model="live"))
            store.save_index(db, "m-call", segs, vecs)
            return len(segs)

        made, seed_cpu, seed_wall = cpu(seed)
    return seed_wall, seed_cpu, made


def early_screen(minutes: float, every: float = 30.0) -> tuple[float, float, int]:
    """What ``LiveSeed`` and ``Scenes.seed`` do at export with a display read live: a slide every
    ``every`` seconds (a live screen record each, six lines of the screen tests' words), placed
    on the video's timeline, embedded and written as a scene index."""
    import random

    import sqlite_utils

    from reeldb.index import scene_store, screen_text
    from reeldb.server.live_seed import timeline_scenes
    from support.screens import sentence

    rng, zero, length = random.Random(7), 1_765_000_000.0, minutes * 60
    records = [{"start": zero + t, "end": zero + t + 0.5, "scene": i,
                "text": "\n".join(sentence(rng) for _ in range(6))}
               for i, t in enumerate(np.arange(0.0, length, every))]
    with tempfile.TemporaryDirectory() as d:
        db = sqlite_utils.Database(sqlite3.connect(os.path.join(d, "s.db"), isolation_level=None))
        scene_store.ensure_schema(db)

        def seed() -> int:
            scenes = timeline_scenes(records, zero, length)
            vecs = screen_text.embed_scenes([s.text for s in scenes])
            scene_store.save_index(db, "si-live", "m-call", {"source": "live_screen_text"}, scenes, vecs,
                                   embed_model="bench")
            return len(scenes)

        made, seed_cpu, seed_wall = cpu(seed)
    return seed_wall, seed_cpu, made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="*", default=[1.0, 10.0, 30.0])
    ap.add_argument("--echo", action="store_true", help="the mic also hears system audio (1 s late, at 0.3)")
    ap.add_argument("--screen-only", action="store_true", help="only the early screen-text index")
    args = ap.parse_args()
    from reeldb.index import embed, models

    embed.embed_texts(["warm up"])  # model loads are not indexing time
    if not args.screen_only:
        models.get_whisper()
    for minutes in args.minutes:
        if not args.screen_only:
            bench(minutes, args.echo)
        wall, cpu_s, made = early_screen(minutes)
        print(f"{minutes:g} min, a slide every 30 s: early screen-text index (live records -> searchable): "
              f"wall {wall:.2f} s, CPU {cpu_s:.2f} s; {made} scenes")


if __name__ == "__main__":
    main()
