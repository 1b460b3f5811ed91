"""Benchmark: the index stage (transcription overhead, indexing time, live latency, search latency).

    python tests/bench/index.py                      # 60-minute recording, 10^5 and 10^6 segments
    python tests/bench/index.py --minutes 1 --sizes 10000 100000 --live-sentences 2   # quick check

Measures:
- transcription RTF of ``reeldb.index.transcribe`` vs a bare ``WhisperModel.transcribe`` with the
  same options (beam 5, word timestamps, VAD) on the same audio, alternating, best of --runs;
  goal overhead <= 1.1x;
- indexing time of the recording (segment + embed + write to SQLite), after transcription;
- live latency: sentences fed in real time to ``LiveTranscriber``; seconds from the end of each
  utterance's audio to its final event, p50/p95; goal about 2 s;
- search latency over N random unit vectors (dim 384, in memory): whole collection and one asset
  of 1000 segments; p50/p99; goal p50 <= 10 ms at 10^5, <= 50 ms at 10^6. Plus query embedding.
  With --compare, also the plain float32 scan (the int8 pre-filter off) on the same queries.

The recording (espeak-ng sentences with pauses) is made once under tests/.cache/ (gitignored).
Set HF_HUB_OFFLINE=1: nothing is fetched.
"""

from __future__ import annotations

import argparse
import asyncio
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

from support.speech import compose, frames  # noqa: E402
from support.media import write_wav  # noqa: E402

POOL = [
    "The quarterly budget review is scheduled for next Tuesday afternoon.",
    "Our database migration failed because a column was missing.",
    "Please send the slides to the marketing team before Friday.",
    "The new office in Berlin opens in September.",
    "Customer support tickets doubled after the last release.",
    "We should hire two more engineers for the mobile team.",
    "The printer on the third floor is out of paper again.",
    "Let's move the design review to Thursday morning.",
    "Latency on the search endpoint went up by twenty percent.",
    "The contract with the cloud provider renews in March.",
    "Remember to water the tomato plants in the greenhouse.",
    "Sales in Europe were stronger than we expected this quarter.",
]


def recording(minutes: float, cache: Path) -> Path:
    path = cache / f"bench-index-{minutes:g}min.wav"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rate = 16000
    # build ~5 minutes of varied speech once, then tile it (espeak per sentence is the slow part)
    block_s = min(minutes, 5.0) * 60
    sents, total = [], 0.0
    while total < block_s:
        s = POOL[int(rng.integers(len(POOL)))]
        sents.append(s)
        total += 3.5 + 1.2
    audio, _ = compose(sents, gap=1.2, lead=0.5, rate=rate, noise=0.001)
    need = int(minutes * 60 * rate)
    reps = int(np.ceil(need / len(audio)))
    write_wav(path, np.tile(audio, reps)[:need], rate=rate)
    return path


def pct(xs, q):
    return float(np.percentile(np.asarray(xs), q)) if len(xs) else float("nan")


def bench_transcribe(path: Path, runs: int) -> "object":
    from reeldb.index import models
    from reeldb.index.transcribe import load_audio, transcribe

    model = models.get_whisper()
    duration = len(load_audio(path)) / 16000

    def bare():
        segs, _ = model.transcribe(str(path), beam_size=5, word_timestamps=True, vad_filter=True,
                                   condition_on_previous_text=False)
        return sum(len(s.words or ()) for s in segs)

    ours_t, bare_t, tr = [], [], None
    for _ in range(runs):
        t = time.perf_counter(); bare(); bare_t.append(time.perf_counter() - t)
        t = time.perf_counter(); tr = transcribe(path, lambda f: None); ours_t.append(time.perf_counter() - t)
    b, o = min(bare_t), min(ours_t)
    print(f"audio {duration/60:.1f} min; bare WhisperModel.transcribe {b:.2f} s (RTF {b/duration:.4f}); "
          f"ours {o:.2f} s (RTF {o/duration:.4f}); overhead {o/b:.3f}x (goal <= 1.1x)")
    return tr


def bench_indexing(tr) -> None:
    import sqlite_utils

    from reeldb.index import embed, segments, store

    with tempfile.TemporaryDirectory() as d:
        db = sqlite_utils.Database(sqlite3.connect(os.path.join(d, "b.db"), isolation_level=None))
        db.enable_wal()
        store.ensure_schema(db)
        embed.embed_texts(["warm up"])  # model load is not indexing time
        t0 = time.perf_counter()
        store.save_transcript(db, "m-bench", tr)
        segs = segments.index_segments(tr.words)
        t1 = time.perf_counter()
        vecs = embed.embed_texts([s.text for s in segs])
        t2 = time.perf_counter()
        store.save_index(db, "m-bench", segs, vecs)
        t3 = time.perf_counter()
    print(f"indexing after transcription: {len(tr.words)} words -> {len(segs)} segments; "
          f"segment {t1-t0:.2f} s, embed {t2-t1:.2f} s, write {t3-t2:.2f} s, total {t3-t0:.2f} s")


def bench_live(n: int) -> None:
    from reeldb.index.live import LiveTranscriber

    audio, placed = compose([POOL[i % len(POOL)] for i in range(n)], gap=1.5, lead=0.5)

    async def main():
        got = []
        lt = LiveTranscriber(lambda ch, ev: got.append(ev))
        t0 = time.time()
        for i, f in enumerate(frames(audio)):
            await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.time()))
            await lt.on_audio("mic", f)
        await lt.flush()
        await lt.aclose()
        return lt, got

    lt, got = asyncio.run(main())
    lat = lt.final_latencies
    print(f"live: {n} sentences, {sum(e['is_final'] for e in got)} finals, "
          f"{sum(not e['is_final'] for e in got)} interims; final latency after utterance end "
          f"p50 {pct(lat, 50):.2f} s, p95 {pct(lat, 95):.2f} s (end-of-speech detection {lt.pause} s included)")


def bench_search(sizes, queries: int, compare: bool = False) -> None:
    from reeldb.index import embed
    from reeldb.index.search import VectorIndex
    from reeldb.index.segments import Segment

    rng = np.random.default_rng(1)
    t = time.perf_counter()
    for _ in range(3):
        embed.embed_query("what did we decide about the budget")
    qt = []
    for i in range(20):
        t = time.perf_counter(); embed.embed_query(f"what did we decide about item {i}"); qt.append(time.perf_counter() - t)
    print(f"query embedding p50 {pct(qt, 50)*1e3:.1f} ms")
    for n in sizes:
        per = 1000
        vi = VectorIndex(dim=384)
        for a in range(0, n, per):
            m = min(per, n - a)
            x = rng.standard_normal((m, 384), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            vi.set_asset(f"m-{a // per}", [Segment(float(i), float(i + 1), "") for i in range(m)], x)
        t = time.perf_counter(); vi.warm(); build = time.perf_counter() - t
        qs = rng.standard_normal((queries, 384), dtype=np.float32)
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)
        for q in qs[:3]:
            vi.search(q, 5, None, 0.2)
        full, one, scan = [], [], []
        for q in qs:
            t = time.perf_counter(); vi.search(q, 5, None, 0.0); full.append(time.perf_counter() - t)
            t = time.perf_counter(); vi.search(q, 5, ["m-3"], 0.0); one.append(time.perf_counter() - t)
        if compare:
            # the plain float32 scan (int8 pre-filter off) on the same data and queries, in passes
            # (not alternating per query: OpenBLAS's and torch's worker threads both spin for a
            # while after a call, and on 2 cores each then slows the other down 2-3x)
            fast_min, same = vi.fast_min_rows, 0
            for _ in range(2):
                vi.fast_min_rows = 10**18
                ref = []
                for q in qs:
                    t = time.perf_counter(); ref.append(vi.search(q, 5, None, 0.0)); scan.append(time.perf_counter() - t)
                vi.fast_min_rows = fast_min
                for q, r in zip(qs, ref):
                    t = time.perf_counter(); got = vi.search(q, 5, None, 0.0); full.append(time.perf_counter() - t)
                    assert len(got) == len(r) and all(abs(x["score"] - y["score"]) <= 2e-6 for x, y in zip(got, r)), (got, r)
                    same += [(x["asset_id"], x["start"]) for x in got] == [(y["asset_id"], y["start"]) for y in r]
        pre = vi._snapshot().pre
        extra = f" + int8 copy {pre.nbytes/2**20:.0f} MiB" if pre is not None else ""
        print(f"search n={n:>8}: all assets p50 {pct(full, 50)*1e3:.2f} ms p99 {pct(full, 99)*1e3:.2f} ms; "
              f"one asset p50 {pct(one, 50)*1e3:.3f} ms; matrix build {build:.2f} s, {n*384*4/2**20:.0f} MiB{extra}")
        if compare:
            print(f"    float32 scan (before): p50 {pct(scan, 50)*1e3:.2f} ms p99 {pct(scan, 99)*1e3:.2f} ms; "
                  f"same scores on all {2*len(qs)} queries, same rows in the same order on {same} "
                  f"(all-assets figures above: 3 passes)")
        del vi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the recording to index")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--live-sentences", type=int, default=10)
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip", nargs="*", default=[], choices=["transcribe", "live", "search"])
    ap.add_argument("--compare", action="store_true",
                    help="search: also time the plain float32 scan (no int8 pre-filter) on the same queries")
    args = ap.parse_args()
    if "transcribe" not in args.skip:
        tr = bench_transcribe(recording(args.minutes, ROOT / "tests" / ".cache"), args.runs)
        bench_indexing(tr)
    if "live" not in args.skip:
        bench_live(args.live_sentences)
    if "search" not in args.skip:
        bench_search(args.sizes, args.queries, args.compare)


if __name__ == "__main__":
    main()
