"""A worker of another ReelDB version is refused, with one log line on each end (issue 19).

The "other version" is the real worker code with its wire module's ``VERSION`` set to another number
before it starts: exactly what a worker built from another release would send. Ingest workers are
refused at their heartbeat (they never host a session); job workers refuse the control node's job
messages, and the job fails saying why instead of running.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests
from support.media import make_video
from support.job_cluster import RedisServer, wait_for_workers
from support.server_process import NO_INGEST, ServerProcess, free_port, wait_until

from reeldb.server.ingest import wire as ingest_wire

pytestmark = pytest.mark.slow

TOKEN = "wire-version-test-secret"
OLD = ("import sys; import reeldb.server.{module}.wire as wire; wire.VERSION = 1; "
       "from reeldb.server.cli import main; sys.exit(main(sys.argv[1:]))")


def old_worker(module: str, args: list[str], env: dict[str, str], log_path) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-c", OLD.format(module=module), *args],
                            env={**env, "HF_HUB_OFFLINE": "1"}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_an_ingest_worker_of_another_version_is_refused_once_on_each_end(server_factory, tmp_path):
    import os

    control = server_factory("data", ingest_workers="external", worker_token=TOKEN)
    log_path = tmp_path / "old-ingest.log"
    worker = old_worker("ingest", ["worker", "ingest", "--id", "old", "--control", control.url, "--data-dir",
                                   str(control.data_dir), "--host", "127.0.0.1", "--port", str(free_port())],
                        {**os.environ, "REELDB_WORKER_TOKEN": TOKEN}, log_path)
    try:
        refusal = f"ingest wire version mismatch: the worker speaks 1, the control node {ingest_wire.VERSION}"
        wait_until(lambda: refusal in control.log() and refusal in log_path.read_text(errors="replace"), 120,
                   "both ends to log the refusal")
        time.sleep(4)  # several more heartbeats, each refused again
        assert worker.poll() is None
        assert control.log().count(refusal) == 1, control.log()
        assert log_path.read_text(errors="replace").count(refusal) == 1
        roster = requests.get(control.url + "/internal/ingest/workers", headers={"x-reeldb-worker-token": TOKEN},
                              timeout=10).json()["data"]["workers"]
        assert roster == []  # never registered: no session is ever placed on it
        # What the worker sent is refused with the API's envelope and the reason.
        answer = requests.post(control.url + "/internal/ingest/heartbeat", headers={"x-reeldb-worker-token": TOKEN},
                               json={"worker_id": "old", "url": "http://127.0.0.1:1", "version": 1}, timeout=10)
        assert answer.status_code == 409 and answer.json()["error_code"] == "WRONG_VERSION"
        assert refusal in answer.json()["message"]
    finally:
        stop(worker)


def test_a_job_worker_of_another_version_refuses_the_job_and_it_fails_saying_why(tmp_path):
    import os

    import videodb
    from videodb.exceptions import InvalidRequestError

    redis_server = RedisServer(tmp_path / "redis").start()
    common = {"REELDB_JOBS": "celery", "REELDB_REDIS_URL": redis_server.url}
    data = tmp_path / "data"
    server = ServerProcess(data, env={**common, **NO_INGEST, "REELDB_SYNC_WAIT": "5"})
    log_path = tmp_path / "old-jobs.log"
    worker = None
    try:
        server.start()
        worker = old_worker("jobs", ["worker", "jobs", "--data-dir", str(data), "--concurrency", "1", "--name", "old"],
                            {**os.environ, **common}, log_path)
        wait_for_workers(redis_server.url, {"old"})
        conn = videodb.connect(api_key=server.api_key, base_url=server.url)
        with pytest.raises(InvalidRequestError, match="job wire version 2, this worker 1"):
            conn.upload(file_path=str(make_video(tmp_path / "clip.mp4", seconds=1.0)))
        wait_until(lambda: "speaks job wire version 1, this control node 2" in server.log(), 60,
                   "the control node to log the refusal")
        assert server.log().count("speaks job wire version 1, this control node 2") == 1
        assert log_path.read_text(errors="replace").count("job wire version 2, this worker 1") == 1
    finally:
        if worker is not None:
            stop(worker)
        server.stop()
        redis_server.stop()
