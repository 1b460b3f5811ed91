"""Benchmark: indexing on the embedded job runner vs Celery + Redis, with 1 and 2 job workers.

    python tests/bench/jobs.py                       # 8 one-minute recordings, workers 1 and 2
    python tests/bench/jobs.py --videos 4 --minutes 0.5 --workers 1    # quick check

For each backend and worker count a fresh control node (``reeldb serve``) indexes the same
recordings (espeak-ng speech, made once under tests/.cache/): all are uploaded first, then every
``index`` job is submitted at once through the API, and the wall time from the first submission
to the last job's end (the ``jobs`` table) gives the throughput. "Workers" means: embedded,
``REELDB_WORKERS`` threads on the index lane; Celery, that many ``reeldb worker jobs --concurrency 1``
processes sharing the data dir as media root, with a ``redis-server`` of the bench's own.

Celery's overhead per job is read from the control node's log: for each job the pickup (message
sent to received by an idle worker), the start (token check, lock, ``started`` report) and the
report (``done`` posted to read by the control node); goal <= 50 ms. Compute time is the compute
part's own. Prints one table; goal: throughput grows with workers until the cores are used (this
machine's core count is printed beside it).
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.job_cluster import JobWorkerProcess, RedisServer, wait_for_workers  # noqa: E402
from support.server_process import ServerProcess, wait_until  # noqa: E402
from support.speech import MEETING_A, MEETING_B, compose, require_espeak  # noqa: E402
from support.media import write_video  # noqa: E402

CACHE = ROOT / "tests" / ".cache" / "bench_jobs"
TIMING = re.compile(r"job (\S+) \(index\) done on (\S+) \(compute ([\d.]+) s; celery overhead ([\d.]+) ms: "
                    r"pickup ([\d.]+), start ([\d.]+), report ([\d.]+)\)")


def recordings(count: int, minutes: float) -> list[Path]:
    """``count`` speech recordings of about ``minutes`` each, different texts, cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    sentences = MEETING_A + MEETING_B
    out = []
    for i in range(count):
        path = CACHE / f"talk_{i}_{minutes:g}min.mp4"
        if not path.exists():
            order = sentences[i % len(sentences):] + sentences[:i % len(sentences)]
            audio, placed = compose(order, gap=1.2, lead=0.5, seed=i)
            while len(audio) / 48000 < minutes * 60:
                more, _ = compose(order[::-1], gap=1.2, lead=0.5, seed=i + 100)
                import numpy as np

                audio = np.concatenate([audio, more])
            write_video(path, audio[: int(minutes * 60 * 48000)])
        out.append(path)
    return out


def run(backend: str, workers: int, videos: list[Path], tmp: Path) -> dict:
    import videodb

    data = tmp / f"{backend}-{workers}" / "data"
    env = {"REELDB_WORKERS": str(workers), "REELDB_SYNC_WAIT": "0", "REELDB_AUTO_INDEX": "false"}  # it submits the index jobs itself
    redis_server, job_workers = None, []
    if backend == "celery":
        redis_server = RedisServer(tmp / f"{backend}-{workers}" / "redis").start()
        env.update(REELDB_JOBS="celery", REELDB_REDIS_URL=redis_server.url)
    server = ServerProcess(data, env=env)
    try:
        server.start(timeout=60)
        if backend == "celery":
            job_workers = [JobWorkerProcess(f"bench{i}", data, {"REELDB_JOBS": "celery",
                                                               "REELDB_REDIS_URL": redis_server.url}).start()
                           for i in range(workers)]
            wait_for_workers(redis_server.url, {w.name for w in job_workers})
        conn = videodb.connect(api_key=server.api_key, base_url=server.url)
        coll = conn.get_collection()
        assets = [coll.upload(file_path=str(v)).id for v in videos]
        headers = {"x-access-token": server.api_key}
        # One warm-up job per worker (whisper's VAD, first inferences), timed by nobody.
        warm = [coll.upload(file_path=str(videos[i % len(videos)])).id for i in range(workers)]
        for asset in warm:
            requests.post(f"{server.url}/video/{asset}/index", headers=headers, json={"index_type": "spoken_word"},
                          timeout=30).raise_for_status()
        wait_until(lambda: _ended(data / "reeldb.db", warm), 600, "the warm-up jobs to end", every=0.2)
        started = time.time()
        job_ids = set()
        for asset in assets:
            r = requests.post(f"{server.url}/video/{asset}/index", headers=headers,
                              json={"index_type": "spoken_word"}, timeout=30)
            assert r.status_code == 200, r.text
            job_ids.add(r.json()["data"]["output_url"].rstrip("/").rsplit("/", 1)[-1])
        db_path = data / "reeldb.db"

        wait_until(lambda: _ended(db_path, assets), 3600, "every index job to end", every=0.2)
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            marks = ",".join("?" * len(assets))
            rows = db.execute(f"select status, created_at, started_at, finished_at from jobs where kind = 'index' "
                              f"and json_extract(params, '$.asset_id') in ({marks})", assets).fetchall()
        finally:
            db.close()
        assert all(r[0] == "done" for r in rows), rows
        wall = max(r[3] for r in rows) - started
        timings = [m.groups() for m in TIMING.finditer(server.log()) if m.group(1) in job_ids]
        return {"backend": backend, "workers": workers, "wall": wall, "jobs": len(rows),
                "overhead_ms": [float(t[3]) for t in timings], "compute_s": [float(t[2]) for t in timings],
                "per_worker": sorted({t[1] for t in timings})}
    finally:
        for w in job_workers:
            w.stop()
        server.stop()
        if redis_server:
            redis_server.stop()


def _ended(db_path: Path, assets: list[str]) -> bool:
    """Whether the index job of every asset has ended (done or failed)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(assets))
        n = db.execute(f"select count(*) from jobs where kind = 'index' and status in ('done', 'failed') "
                       f"and json_extract(params, '$.asset_id') in ({marks})", assets).fetchone()[0]
        return n == len(assets)
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    require_espeak()
    videos = recordings(args.videos, args.minutes)
    print(f"{len(videos)} recordings of {args.minutes:g} min; {os.cpu_count()} cores; load before: "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="reeldb-bench-jobs-") as tmp:
        for workers in args.workers:
            for backend in ("embedded", "celery"):
                r = run(backend, workers, videos, Path(tmp))
                results.append(r)
                compute = f"; compute per job p50 {statistics.median(r['compute_s']):.2f} s" if r["compute_s"] else ""
                print(f"  {backend:<8} x{workers}: {r['jobs']} jobs in {r['wall']:.1f} s "
                      f"({r['jobs'] / r['wall'] * 60:.2f} jobs/min){compute}", flush=True)
    print()
    print(f"{'backend':<10}{'workers':>8}{'wall s':>9}{'jobs/min':>10}{'vs embedded':>13}{'vs 1 worker':>13}"
          f"{'overhead ms p50/max':>22}")
    for r in results:
        same = next(x for x in results if x["backend"] == "embedded" and x["workers"] == r["workers"])
        one = next((x for x in results if x["backend"] == r["backend"] and x["workers"] == args.workers[0]), r)
        over = (f"{statistics.median(r['overhead_ms']):.1f} / {max(r['overhead_ms']):.1f}"
                if r["overhead_ms"] else "-")
        print(f"{r['backend']:<10}{r['workers']:>8}{r['wall']:>9.1f}{r['jobs'] / r['wall'] * 60:>10.2f}"
              f"{same['wall'] / r['wall']:>12.2f}x{one['wall'] / r['wall']:>12.2f}x{over:>22}")
    overheads = [o for r in results for o in r["overhead_ms"]]
    if overheads:
        print(f"\nCelery overhead per job: median {statistics.median(overheads):.1f} ms, max {max(overheads):.1f} ms "
              f"over {len(overheads)} jobs (goal <= 50 ms)")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
