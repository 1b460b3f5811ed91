"""Jobs on Celery + Redis (REELDB_JOBS=celery): a real redis-server, the control node and two
``reeldb worker jobs`` processes sharing its media root, driven through the official SDK.

Uploads and spoken-word indexes run on the workers and land right; then one worker is SIGKILLed
in the middle of an index job, and the job is finished by the other worker, committed once: one
index of that video, its row ``done`` after two attempts, one ``done`` counted for it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading

import pytest
import redis
import requests
from support.job_cluster import JobWorkerProcess, RedisServer, running_jobs, wait_for_workers
from support.server_process import NO_INGEST, REELDB, ServerProcess, metrics, wait_until
from support.speech import MEETING_A, MEETING_B, compose, require_espeak
from support.media import write_video
from videodb.exceptions import InvalidRequestError

from reeldb.server.jobs import wire

pytestmark = pytest.mark.slow

LEASE = "15"


def test_jobs_on_two_celery_workers_and_one_killed_mid_job(tmp_path):
    require_espeak()
    import videodb

    redis_server = RedisServer(tmp_path / "redis").start()
    common = {"REELDB_JOBS": "celery", "REELDB_REDIS_URL": redis_server.url, "REELDB_JOB_LEASE": LEASE,
              "REELDB_CELERY_VISIBILITY_TIMEOUT": "30"}
    data = tmp_path / "data"
    server = ServerProcess(data, env={**common, **NO_INGEST, "REELDB_SYNC_WAIT": "5"})
    workers = [JobWorkerProcess(name, data, common) for name in ("w1", "w2")]
    try:
        server.start()
        for worker in workers:
            worker.start()
        wait_for_workers(redis_server.url, {"w1", "w2"})
        seen = metrics(server.url)
        assert seen[("reeldb_job_workers", ())] == 2 and seen[("reeldb_jobs_broker_up", ())] == 1
        doctor = subprocess.run([REELDB, "doctor", "--data-dir", str(data), "--port", str(server.port)],
                                capture_output=True, text=True, timeout=300,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", **common})
        line = next(x for x in doctor.stdout.splitlines() if "job workers:" in x)
        assert line.startswith("ok") and "w1 (pid" in line and "w2 (pid" in line, doctor.stdout

        conn = videodb.connect(api_key=server.api_key, base_url=server.url)
        coll = conn.get_collection()
        talks = {"a": (MEETING_A, "budget"), "b": (MEETING_B, "sourdough"),
                 "c": (MEETING_A[::-1] + MEETING_B[:2], "tomato")}
        videos = {}
        for key, (sentences, _) in talks.items():
            audio, _ = compose(sentences, gap=1.0, lead=0.5)
            videos[key] = coll.upload(file_path=str(write_video(tmp_path / f"{key}.mp4", audio)))
            assert videos[key].length > 5
        errors: list[BaseException] = []

        def index(video) -> None:
            try:
                video.index_spoken_words()
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                errors.append(exc)

        threads = [threading.Thread(target=index, args=(v,)) for v in videos.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        assert not errors, errors
        for key, (sentences, word) in talks.items():
            shots = videos[key].search(word).shots
            assert shots and word in shots[0].text.lower(), (key, [s.text for s in shots])
        assert "tomato" in videos["b"].get_transcript_text().lower()
        done = metrics(server.url)
        per_worker = {w.name: done.get(("reeldb_job_worker_jobs_total", (("status", "done"), ("worker", w.name))), 0)
                      for w in workers}
        assert all(n >= 1 for n in per_worker.values()), per_worker  # both took work

        # A fourth, longer video; its index job is killed with its worker in the middle.
        audio, _ = compose((MEETING_A + MEETING_B) * 3, gap=1.0, lead=0.5)  # a few seconds of compute
        long_video = coll.upload(file_path=str(write_video(tmp_path / "long.mp4", audio)))
        thread = threading.Thread(target=index, args=(long_video,))
        thread.start()
        def index_job() -> str | None:  # its index job (not the upload's previews job)
            found = _row(data, "select id from jobs where kind = 'index' and params like ?", f'%"{long_video.id}"%')
            return found[0] if found else None

        wait_until(lambda: index_job() in running_jobs(redis_server.url), 120, "the index job to start on a worker",
                   every=0.02)
        job_id = index_job()
        victim_name = running_jobs(redis_server.url)[job_id]
        victim = next(w for w in workers if w.name == victim_name)
        survivor = next(w for w in workers if w is not victim)
        victim.kill()
        assert _row(data, "select status from jobs where id = ?", job_id) == ("running",)  # killed mid-job
        thread.join(600)
        assert not thread.is_alive() and not errors, errors
        shots = long_video.search("sourdough bread").shots
        assert shots and "sourdough" in shots[0].text.lower()

        db = sqlite3.connect(f"file:{data / 'reeldb.db'}?mode=ro", uri=True)
        try:
            job = db.execute("select status, attempts from jobs where id = ?", [job_id]).fetchone()
            indexes = db.execute("select count(*) from spoken_indexes where asset_id = ?", [long_video.id]).fetchone()
            segs = db.execute("select count(*), count(distinct seq) from spoken_segments where asset_id = ?",
                              [long_video.id]).fetchone()
            index_jobs = db.execute("select count(*) from jobs where kind = 'index' and params like ?",
                                    [f'%"{long_video.id}"%']).fetchone()
        finally:
            db.close()
        assert job == ("done", 2), job  # the killed attempt, then the survivor's
        assert indexes == (1,) and segs[0] == segs[1] > 0 and index_jobs == (1,)
        assert f"job {job_id} (index) done on {survivor.name}" in server.log()

        # A late second result for the finished job (as from a worker that woke up) changes nothing.
        owner = _row(data, "select owner from jobs where id = ?", job_id)[0]
        client = redis.Redis.from_url(redis_server.url)
        late = wire.Finished(job_id, owner, "late", wire.VERSION,
                             {"asset_id": long_video.id, "segments": [[0, 1, "zebra"]], "vectors": "", "dim": 384,
                              "model": "x", "words": 1, "duration": 1})
        client.xadd("reeldb:jobs:events", wire.report_fields(late))
        client.close()
        wait_until(lambda: f"job {job_id}: a result from late" in server.log(), 30, "the late result to be ignored")
        with pytest.raises(InvalidRequestError, match="No results found"):  # the late result left no trace
            long_video.search("zebra", search_type="keyword")
        ended = metrics(server.url)
        assert ended[("reeldb_jobs_finished_total", (("kind", "index"), ("status", "done")))] == 4
        wait_until(lambda: metrics(server.url)[("reeldb_job_workers", ())] == 1, 30,
                   "the dead worker's heartbeat to expire from /metrics")
    except BaseException:
        for name, text in [("control node", server.log())] + [(w.name, w.log()) for w in workers]:
            print(f"----- {name} (last 80 lines)\n" + "\n".join(text.splitlines()[-80:]))
        raise
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
        redis_server.stop()


def _row(data, sql: str, *args: str) -> tuple:
    db = sqlite3.connect(f"file:{data / 'reeldb.db'}?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchone()
    finally:
        db.close()


def test_control_node_restart_mid_job_resends_it_and_commits_once(tmp_path):
    """The control node stops while a worker runs an index job and starts again: it takes the job
    back (a new attempt, the old one's token revoked), and the index is written once."""
    require_espeak()
    import videodb

    redis_server = RedisServer(tmp_path / "redis").start()
    common = {"REELDB_JOBS": "celery", "REELDB_REDIS_URL": redis_server.url, "REELDB_JOB_LEASE": LEASE}
    data = tmp_path / "data"
    server = ServerProcess(data, env={**common, **NO_INGEST, "REELDB_SYNC_WAIT": "0"})
    worker = JobWorkerProcess("w1", data, common)
    try:
        server.start()
        worker.start()
        wait_for_workers(redis_server.url, {"w1"})
        conn = videodb.connect(api_key=server.api_key, base_url=server.url)
        audio, _ = compose((MEETING_A + MEETING_B) * 3, gap=1.0, lead=0.5)
        video = conn.get_collection().upload(file_path=str(write_video(tmp_path / "long.mp4", audio)))
        answer = requests.post(f"{server.url}/video/{video.id}/index", headers={"x-access-token": server.api_key},
                               json={"index_type": "spoken_word"}, timeout=30).json()
        job_id = answer["data"]["output_url"].rstrip("/").rsplit("/", 1)[-1]
        wait_until(lambda: job_id in running_jobs(redis_server.url), 120, "the job to start on the worker", every=0.02)
        server.restart()
        wait_until(lambda: _row(data, "select status from jobs where id = ?", job_id)[0] in ("done", "failed"), 300,
                   "the job to end after the restart")
        assert _row(data, "select status, attempts from jobs where id = ?", job_id) == ("done", 2)
        assert _row(data, "select count(*) from spoken_indexes where asset_id = ?", video.id) == (1,)
        assert "requeued after a restart" in server.log()
        shots = conn.get_collection().get_video(video.id).search("sourdough bread").shots
        assert shots and "sourdough" in shots[0].text.lower()
    except BaseException:
        for name, text in (("control node", server.log()), (worker.name, worker.log())):
            print(f"----- {name} (last 60 lines)\n" + "\n".join(text.splitlines()[-60:]))
        raise
    finally:
        worker.stop()
        server.stop()
        redis_server.stop()
