"""Jobs cannot crash-loop the server (issue 18).

A job that was running when ``reeldb serve`` was killed may be what killed it: after the restart it
runs again in a child process, never in the server's own, and after ``REELDB_JOB_MAX_CRASHES`` such
ends it fails with that reason instead of taking the server down again. A clean stop is no crash:
its running jobs simply go back to the queue.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3

import pytest
import requests
from support.server_process import wait_until
from support.speech import MEETING_A, MEETING_B, compose, require_espeak
from support.media import write_video

pytestmark = pytest.mark.slow


def job(server, job_id: str) -> dict:
    with contextlib.closing(sqlite3.connect(server.data_dir / "reeldb.db")) as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("select * from jobs where id = ?", [job_id]).fetchone())


def start_index(server, path) -> str:
    key = {"x-access-token": server.api_key}
    import videodb

    video = videodb.connect(api_key=server.api_key, base_url=server.url).get_collection().upload(file_path=str(path))
    body = requests.post(f"{server.url}/video/{video.id}/index", headers=key, json={"index_type": "spoken_word"},
                         timeout=30).json()
    assert body["status"] == "processing", body
    job_id = body["data"]["id"]
    wait_until(lambda: job(server, job_id)["status"] == "running", 60, "the index job to start")
    return job_id


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    require_espeak()
    audio, _ = compose((MEETING_A + MEETING_B) * 4, gap=1.0)
    return write_video(tmp_path_factory.mktemp("talk") / "talk.mp4", audio)


def test_a_job_that_was_running_in_a_crash_runs_in_a_child_then_fails_after_too_many(server_factory, talk):
    server = server_factory(sync_wait="0", job_max_crashes="2", ingest_workers="0")
    job_id = start_index(server, talk)
    server.stop(signal.SIGKILL)  # as the OOM killer would
    server.start()
    wait_until(lambda: job(server, job_id)["status"] in ("done", "failed"), 180, "the index job to end")
    done = job(server, job_id)
    assert (done["status"], done["attempts"], done["crashes"]) == ("done", 2, 1), done
    assert f"job {job_id} (index) runs in a child process" in server.log()

    # Twice killed while it runs: failed with the reason, not run a third time.
    job_id = start_index(server, talk)
    server.stop(signal.SIGKILL)
    server.start()
    wait_until(lambda: job(server, job_id)["attempts"] == 2 and job(server, job_id)["status"] == "running", 120,
               "its second attempt to run")
    server.stop(signal.SIGKILL)
    server.start()
    wait_until(lambda: job(server, job_id)["status"] == "failed", 180, "the job to fail")
    failed = job(server, job_id)
    assert failed["crashes"] == 2 and failed["attempts"] == 2 and "REELDB_JOB_MAX_CRASHES" in failed["error"], failed
    assert requests.get(server.url + "/health", timeout=10).status_code == 200


def test_a_clean_stop_is_no_crash(server_factory, talk):
    server = server_factory(sync_wait="0", ingest_workers="0")
    job_id = start_index(server, talk)
    server.stop(signal.SIGTERM)
    row = job(server, job_id)
    assert (row["status"], row["attempts"], row["crashes"]) == ("queued", 0, 0), row
    server.start()
    wait_until(lambda: job(server, job_id)["status"] == "done", 180, "the requeued job to end")
    done = job(server, job_id)
    assert done["attempts"] == 1 and done["crashes"] == 0
    assert "runs in a child process" not in server.log()
