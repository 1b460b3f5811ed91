"""Jobs durable by construction, and an event loop nothing blocks (issue 8's acceptance tests).

A rerun of a job (what a crash or a reclaimed lease causes) replaces what the first run made; a
worker that hangs is presumed dead after its lease and the job finishes elsewhere, once; slow
imports have a lane of their own; and no route handler holds the event loop while uploads and
exports run.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import logging
import sqlite3
import threading
import time

import numpy as np
import pytest
import requests
import videodb
from support.recording import record, use_reeldb_recorder
from support.media import screen_ts, write_wav

from reeldb.server.runtime import Runtime

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def screen(tmp_path_factory):
    return screen_ts(tmp_path_factory.mktemp("screen") / "screen.ts", 20, (40, 90, 200))


def recorded_session(server, screen, seconds: float = 4.0):
    """A capture session recorded through the SDK's CaptureClient (display + mic, both stored)."""
    use_reeldb_recorder()
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    cap = conn.create_capture_session(end_user_id="u")
    token = conn.generate_client_token(expires_in=600)
    asyncio.run(record(server.url, token, cap.id, {"mic:default": "pattern:tone:440", "display:1": str(screen)},
                       {"mic:default": True, "display:1": True}, seconds))
    return conn, cap


def wait_for(predicate, timeout: float = 120.0, every: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()


class Stalling(http.server.BaseHTTPRequestHandler):
    """Serves ``payload``; the first ``stall_first`` requests send headers and a few bytes, then hang
    until ``release`` is set (a source that stops sending, or a worker stuck reading it)."""

    payload = b""
    stall_first = 1
    served = 0
    release = threading.Event()
    lock = threading.Lock()

    def do_GET(self):  # noqa: N802
        with Stalling.lock:
            Stalling.served += 1
            stall = Stalling.served <= Stalling.stall_first
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        if stall:
            self.wfile.write(self.payload[:1000])
            self.wfile.flush()
            Stalling.release.wait(300)
            return
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def stalling_source(payload: bytes, stall_first: int):
    Stalling.payload, Stalling.stall_first, Stalling.served = payload, stall_first, 0
    Stalling.release = threading.Event()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/clip.mp4"
    finally:
        Stalling.release.set()
        httpd.shutdown()
        httpd.server_close()


def start_import(server, url: str) -> str:
    body = requests.post(server.url + "/collection/default/upload", json={"url": url},
                         headers={"x-access-token": server.api_key}).json()
    assert body["status"] == "processing", body
    return body["data"]["id"]


def job_row(server, job_id: str) -> dict:
    with contextlib.closing(sqlite3.connect(server.data_dir / "reeldb.db")) as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("select * from jobs where id = ?", [job_id]).fetchone())


# -- the loop watch ------------------------------------------------------------------------------

def test_loop_watch_reports_a_step_that_blocks(caplog):
    """The detector the next test relies on: a callback burning 120 ms of CPU is reported."""
    async def main() -> float:
        runtime = Runtime(io_threads=1)
        runtime.spawn(runtime.watch_loop(0.05), name="watch")
        await asyncio.sleep(0.05)
        end = time.thread_time() + 0.12
        while time.thread_time() < end:  # a handler doing blocking work on the loop
            pass
        await asyncio.sleep(0.05)
        await runtime.close()
        return runtime.longest_block

    with caplog.at_level(logging.WARNING, logger="reeldb.runtime"):
        longest = asyncio.run(main())
    assert longest >= 0.1
    assert "event loop blocked" in caplog.text


def test_no_handler_blocks_the_loop_while_a_100mb_upload_and_an_export_run(server_factory, screen, tmp_path):
    server = server_factory(auto_export="false", sync_wait="10")
    conn, cap = recorded_session(server, screen)
    big = write_wav(tmp_path / "long.wav", np.random.default_rng(1).normal(0, 0.1, 53_000_000).astype(np.float32))
    assert big.stat().st_size > 100 * 1024 * 1024

    uploaded: dict = {}
    reading = threading.Event()

    def upload():
        own = videodb.connect(api_key=server.api_key, base_url=server.url)
        uploaded["audio"] = own.get_collection().upload(file_path=str(big))

    def keep_reading():  # route handlers running all along
        own = videodb.connect(api_key=server.api_key, base_url=server.url)
        while not reading.is_set():
            own.get_capture_session(cap.id)
            own.get_collection().get_videos()

    threads = [threading.Thread(target=upload), threading.Thread(target=keep_reading)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    first = cap.export()
    assert first["export_status"] in ("exporting", "exported")
    assert wait_for(lambda: cap.export()["export_status"] == "exported")
    threads[0].join(300)
    reading.set()
    threads[1].join(60)
    assert uploaded["audio"].id.startswith("a-") and uploaded["audio"].length > 1000
    assert "event loop blocked" not in server.log(), server.log()[-3000:]


# -- reruns replace, never duplicate -------------------------------------------------------------

def test_requeued_export_and_index_leave_exactly_one_asset_and_one_index(server_factory, screen):
    server = server_factory()
    conn, cap = recorded_session(server, screen)
    assert wait_for(lambda: conn.get_capture_session(cap.id).status == "exported")
    session = conn.get_capture_session(cap.id)
    video = conn.get_collection().get_video(session.exported_video_id)
    video.index_spoken_words()
    server.stop()

    db_path = server.data_dir / "reeldb.db"

    def snapshot() -> dict:
        with contextlib.closing(sqlite3.connect(db_path)) as db:
            return {
                "media": sorted(r[0] for r in db.execute("select id from media")),
                "assets": sorted(r[0] for r in db.execute("select exported_asset_id from rtstreams")),
                "indexes": db.execute("select count(*) from spoken_indexes where asset_id = ?", [video.id]).fetchone()[0],
                "segments": db.execute("select count(*) from spoken_segments where asset_id = ?", [video.id]).fetchone()[0],
                "transcripts": db.execute("select count(*) from transcripts").fetchone()[0],
                "folders": sorted(p.name for p in (server.data_dir / "media").glob("*/*")),
                "jobs": {r[0]: r[1] for r in db.execute("select id, kind from jobs where kind in ('export', 'index')")},
            }

    before = snapshot()
    assert sorted(before["jobs"].values()) == ["export", "index"]
    assert before["indexes"] == 1
    # What a crash mid-job leaves behind: the jobs still "running", their leases run out.
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        db.execute("update jobs set status = 'running', lease_until = 0 where kind in ('export', 'index')")
        db.commit()
    server.start()
    ids = list(before["jobs"])
    assert wait_for(lambda: all(job_row(server, j)["status"] == "done" for j in ids))
    assert all(job_row(server, j)["attempts"] == 2 for j in ids)
    assert "requeued after a restart" in server.log()
    server.stop()
    after = snapshot()
    assert after == before  # same assets, same files, one index: the rerun replaced its own work


# -- hung workers, slow sources ------------------------------------------------------------------

def test_a_hung_import_is_reclaimed_and_finished_once(server_factory, tmp_path):
    from support.media import make_video

    payload = make_video(tmp_path / "clip.mp4", 2.0).read_bytes()
    server = server_factory(job_lease="3", sync_wait="0", import_allow_private="true", ingest_workers="0")
    with stalling_source(payload, stall_first=1) as url:
        job_id = start_import(server, url)
        conn = videodb.connect(api_key=server.api_key, base_url=server.url)
        result = wait_for(lambda: (r := conn.get_async_response(job_id)).get("id") and r, timeout=90)
        # Finished by a second attempt while the first worker is still stuck on its read.
        assert not Stalling.release.is_set()
        assert result["id"].startswith("m-") and abs(result["length"] - 2.0) < 0.15
        assert Stalling.served == 2
        assert "presumed hung" in server.log()
        assert job_row(server, job_id)["attempts"] == 2
    # Released, the stale worker wakes up and finds its lease gone: its outcome is discarded.
    assert wait_for(lambda: "superseded attempt" in server.log() or "a newer attempt owns it" in server.log(), 60)
    assert [v.id for v in conn.get_collection().get_videos()] == [result["id"]]


def test_stalled_imports_do_not_hold_up_a_capture_export(in_process_factory, screen, tmp_path):
    server = in_process_factory(sync_wait="0", import_allow_private="true", job_lease="600")
    with stalling_source(b"\0" * 100_000, stall_first=2) as url:
        stuck = [start_import(server, url), start_import(server, url)]
        assert wait_for(lambda: all(job_row(server, j)["status"] == "running" for j in stuck), 30)
        conn, cap = recorded_session(server, screen, seconds=3.0)
        assert wait_for(lambda: conn.get_capture_session(cap.id).status == "exported")
        assert all(job_row(server, j)["status"] == "running" for j in stuck)  # still stuck: separate lanes
        # An SDK upload of a file is not an import from a URL: it does not wait behind them either.
        from support.media import make_video

        video = conn.get_collection().upload(file_path=str(make_video(tmp_path / "mine.mp4", 1.0)))
        assert video.id.startswith("m-") and all(job_row(server, j)["status"] == "running" for j in stuck)
