"""Ingest workers (issue 13): a control node and two ``reeldb worker ingest`` processes sharing one
data folder, each in its own network namespace where the machine allows it (joined by a bridge;
loopback otherwise), so they talk only over the network.

Six sessions recorded through the official SDK's ``CaptureClient`` driving ``reeldb-recorder``
(each pauses, resumes and runs a live transcript of its mic, which runs on the worker) must land
on both workers and export right. Then one worker is SIGKILLed while sessions record: its sessions
must end ``stopped`` with what it flushed (≤ 1 s lost per stored channel) and export, and the
other worker's sessions must not notice.

The helpers come from ``ingest_cluster`` (the namespaces, starting a worker, the control node's
roster; shared with ``test_scale_out``), ``test_many_sessions`` (driving a session, checking an
export) and ``test_capture_robustness`` (how far a crash-truncated file decodes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import ingest_cluster  # noqa: E402
from support.ingest_cluster import HEADER, Network, Placements, start_ingest_worker, stop_process  # noqa: E402
from support.recording import record, use_reeldb_recorder  # noqa: E402
from support.server_process import REELDB, ServerProcess, wait_until  # noqa: E402
from test_capture_robustness import decoded_seconds  # noqa: E402
from test_many_sessions import (STORE, SessionRun, check_export, display_report, drive_session,  # noqa: E402
                                make_sources, wait_status)

pytestmark = pytest.mark.slow

TOKEN = "wk-test-" + "s" * 24
SECONDS = 8.0


@contextlib.contextmanager
def cluster(tmp_path: Path) -> Iterator[tuple[ServerProcess, dict[str, subprocess.Popen], Network]]:
    net = Network().up()
    data = tmp_path / "shared"
    env = {"REELDB_INGEST_WORKERS": "external", "REELDB_WORKER_TOKEN": TOKEN, "REELDB_SYNC_WAIT": "10"}
    control = ServerProcess(data, env=env, host=net.addresses["ctl"], prefix=net.prefix("ctl"))
    workers: dict[str, subprocess.Popen] = {}
    try:
        control.start(timeout=60)
        for role in ("w1", "w2"):
            workers[role] = start_ingest_worker(role, net, control, data, TOKEN, tmp_path / f"{role}.log")
        wait_until(lambda: {w["worker_id"] for w in roster(control) if w["up"]} == {"w1", "w2"}, 60,
                   "both ingest workers to register")
        yield control, workers, net
    finally:
        for proc in workers.values():
            stop_process(proc)
        control.stop()
        net.down()


def roster(control: ServerProcess) -> list[dict]:
    return ingest_cluster.roster(control, TOKEN)


def test_sessions_spread_over_two_ingest_workers_and_a_killed_worker_stops_its_own(tmp_path, monkeypatch):
    import videodb

    use_reeldb_recorder()
    sources = make_sources(tmp_path / "media", 60.0)
    with cluster(tmp_path) as (control, workers, net):
        # The recorder (a child of this process) offers candidates on the address the workers reach.
        monkeypatch.setenv("REELDB_ICE_ADDRESSES", net.host_address)

        # The worker API and the control node's worker endpoints refuse anyone without the secret.
        worker_url = next(w["url"] for w in roster(control) if w["worker_id"] == "w1")
        for headers in ({}, {HEADER: "wk-wrong"}):
            for method, url in (("get", worker_url + "/stats"), ("post", worker_url + "/sessions/cap-x/stop"),
                                ("get", control.url + "/internal/ingest/workers")):
                r = requests.request(method, url, headers=headers, timeout=10)
                assert r.status_code == 401, (url, r.status_code, r.text)
                assert r.json()["success"] is False and r.json()["message"]
            r = requests.post(control.url + "/internal/ingest/heartbeat", headers=headers, timeout=10,
                              json={"worker_id": "intruder", "url": "http://127.0.0.1:9", "sessions": {}})
            assert r.status_code == 401 and r.json()["success"] is False
        # The secret alone does not let a worker point the control node at another host's URL.
        r = requests.post(control.url + "/internal/ingest/heartbeat", headers={HEADER: TOKEN}, timeout=10,
                          json={"worker_id": "rogue", "url": "http://203.0.113.9:8080", "sessions": {}})
        assert r.status_code == 403 and "its own address" in r.json()["message"], r.text
        assert {w["worker_id"] for w in roster(control)} == {"w1", "w2"}
        # Nor name a folder outside the sessions folder.
        dots = requests.post(worker_url + "/sessions/cap-..%2F..%2Fx/offer", headers={HEADER: TOKEN}, timeout=10,
                             json={"channels": [{"channel_id": "mic:default", "type": "audio", "store": True}],
                                   "sdp": "v=0", "tracks": {}})
        assert 400 <= dots.status_code < 500 and dots.json()["success"] is False, dots.text
        bad = requests.post(worker_url + "/sessions/cap-x/offer", headers={HEADER: TOKEN}, timeout=10,
                            json={"channels": [{"channel_id": "mic:default", "type": "audio", "store": True}],
                                  "sdp": "not an offer", "tracks": {}})
        assert 400 <= bad.status_code < 500 and bad.json()["success"] is False, bad.text

        conn = videodb.connect(api_key=control.api_key, base_url=control.url)

        # -- six sessions, all at once: both workers take some, every export is right ----------------
        runs = [SessionRun(i) for i in range(6)]

        async def six() -> None:
            async def one(run: SessionRun) -> None:
                await drive_session(run, conn, control.url, sources, SECONDS, [(3.0, 1.5)])
                if run.cap_id:
                    run.status = await wait_status(conn, run.cap_id, ("exported", "failed"), timeout=300)
                    run.session = await asyncio.to_thread(conn.get_capture_session, run.cap_id)

            await asyncio.gather(*(one(run) for run in runs))

        with Placements(control, TOKEN) as placed:
            asyncio.run(six())
        errors = [f"session {r.index} ({r.cap_id}): {r.error}" for r in runs if r.error]
        assert not errors, "\n".join(errors) + "\n" + control.log()[-3000:]
        hosts = {placed.where.get(r.cap_id) for r in runs}
        assert hosts == {"w1", "w2"}, placed.where
        assert all(r.status == "exported" for r in runs), {r.cap_id: r.status for r in runs}
        problems = [p for r in runs for p in check_export(conn, control.data_dir, r)]
        assert not problems, "\n".join(problems)
        coll = conn.get_collection()
        for r in runs:
            report = display_report(control.data_dir / "sessions" / r.cap_id)
            assert report["packets"] > 0 and not report["dts_problems"], report
            # the 1.5 s pause, then a resume waits for the next keyframe (one second at most), and
            # nothing else is lost
            assert report["lost"] <= 15 * (1.5 + 1.0) + 5, (r.cap_id, report)
            video = coll.get_video(r.session.exported_video_id)
            span = json.loads((control.data_dir / "sessions" / r.cap_id / "manifest.json").read_text())
            display = next(c for c in span["channels"] if c["channel_id"] == "display:1")
            recorded = display["last_frame_at"] - display["first_frame_at"]
            assert abs(video.length - recorded) < 2.0, (r.cap_id, video.length, recorded)
        # the live transcripts ran on the workers and their words reached the control node
        assert all(r.transcript_status == "running" for r in runs)
        assert not [r.cap_id for r in runs if not r.records and not r.finals]

        # -- a worker SIGKILLed mid-recording: its sessions stop with what it flushed --------------
        token = conn.generate_client_token(expires_in=3600)
        caps = [conn.create_capture_session(end_user_id=f"kill-{i}") for i in range(4)]
        killed: dict[str, float] = {}
        outcome: dict[str, str] = {}

        async def recording(cap) -> None:
            async def during(client, channels) -> None:
                assert await wait_status(conn, cap.id, ("active",), timeout=60) == "active"
                while not killed:
                    await asyncio.sleep(0.1)
                if placed4.where.get(cap.id) in killed:
                    # no stop from the recorder: the control node must notice the silence itself
                    await wait_status(conn, cap.id, ("stopped", "exported", "failed"), timeout=120)
                else:
                    await asyncio.sleep(4.0)  # the survivors keep recording a while after the kill
            try:
                await record(control.url, token, cap.id, sources, STORE, 0, primary="display:1", during=during)
                outcome[cap.id] = "recorded"
            except Exception as exc:  # noqa: BLE001 - the killed worker's recorders may fail to stop
                outcome[cap.id] = f"{type(exc).__name__}: {exc}"

        async def killer() -> None:
            while any(s != "active" for s in await asyncio.gather(*(wait_status(conn, c.id, ("active",), 0)
                                                                    for c in caps))):
                await asyncio.sleep(0.2)
            await asyncio.sleep(3.0)
            where = dict(placed4.where)
            victim = where[caps[0].id]
            killed[victim] = time.time()
            workers[victim].send_signal(signal.SIGKILL)

        async def four() -> None:
            await asyncio.gather(killer(), *(recording(cap) for cap in caps))

        with Placements(control, TOKEN) as placed4:
            asyncio.run(four())
        (victim, killed_at), = killed.items()
        workers[victim].wait()
        lost_sessions = [c.id for c in caps if placed4.where.get(c.id) == victim]
        kept_sessions = [c.id for c in caps if placed4.where.get(c.id) != victim]
        assert lost_sessions and kept_sessions, placed4.where
        for cap_id in caps:
            assert asyncio.run(wait_status(conn, cap_id.id, ("exported", "failed"), 300)) == "exported", (
                cap_id.id, conn.get_capture_session(cap_id.id).status, control.log()[-3000:])
        for cap_id in lost_sessions:
            folder = control.data_dir / "sessions" / cap_id
            manifest = json.loads((folder / "manifest.json").read_text())
            for channel in manifest["channels"]:
                kept = decoded_seconds(folder / channel["file"])
                lost = killed_at - channel["start_time"] - kept
                assert lost < 1.0, f"{cap_id} {channel['channel_id']} lost {lost:.2f} s"
        assert "its ingest worker is gone" in control.log()
        for cap_id in kept_sessions:
            assert outcome[cap_id] == "recorded", outcome
            manifest = json.loads((control.data_dir / "sessions" / cap_id / "manifest.json").read_text())
            assert all(c["complete"] for c in manifest["channels"]), manifest
        # the survivor is still up and the dead one is reported down: roster, /metrics, doctor
        survivor = ({"w1", "w2"} - {victim}).pop()
        up = {w["worker_id"]: w["up"] for w in roster(control)}
        assert up == {victim: False, survivor: True}, up
        metrics = requests.get(control.url + "/metrics", headers={"x-access-token": control.api_key}, timeout=10).text
        assert f'reeldb_ingest_worker_up{{worker="{victim}"}} 0.0' in metrics, metrics
        assert f'reeldb_ingest_worker_up{{worker="{survivor}"}} 1.0' in metrics
        assert f'reeldb_ingest_worker_cpu{{worker="{survivor}"}}' in metrics
        doctor = subprocess.run([REELDB, "doctor", "--data-dir", str(control.data_dir)], capture_output=True,
                                text=True, timeout=300,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", "REELDB_HOST": net.addresses["ctl"],
                                     "REELDB_PORT": str(control.port), "REELDB_INGEST_WORKERS": "external",
                                     "REELDB_WORKER_TOKEN": TOKEN})
        line = next(x for x in doctor.stdout.splitlines() if "ingest workers:" in x)
        assert line.startswith("warn") and f"{victim} DOWN" in line and f"{survivor} up" in line, doctor.stdout


def test_a_restarted_control_node_stops_the_sessions_its_external_worker_still_hosts(tmp_path, server_factory):
    """The control node SIGKILLed mid-recording: on its next start it stops the session, as after
    any crash, and the worker, which kept receiving, hears that the session is no longer its own
    and finalizes the files."""
    import videodb

    use_reeldb_recorder()
    sources = make_sources(tmp_path / "media", 60.0)
    control = server_factory("shared", ingest_workers="external", worker_token=TOKEN, reconnect_grace="2")
    log = open(tmp_path / "worker.log", "ab")
    worker = subprocess.Popen([REELDB, "worker", "ingest", "--id", "solo", "--control", control.url,
                               "--data-dir", str(control.data_dir)],
                              env={**os.environ, "REELDB_WORKER_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1"},
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: [w["worker_id"] for w in roster(control) if w["up"]] == ["solo"], 60, "the worker")
        conn = videodb.connect(api_key=control.api_key, base_url=control.url)
        cap = conn.create_capture_session(end_user_id="restart")
        token = conn.generate_client_token(expires_in=600)

        async def during(client, channels) -> None:
            assert await wait_status(conn, cap.id, ("active",), timeout=60) == "active"
            await asyncio.sleep(2.0)
            await asyncio.to_thread(control.kill)
            await asyncio.to_thread(control.start)

        with contextlib.suppress(Exception):  # the recorder's stop meets a session already stopped
            asyncio.run(record(control.url, token, cap.id, sources, STORE, 0, primary="display:1", during=during))
        conn = videodb.connect(api_key=control.api_key, base_url=control.url)
        assert asyncio.run(wait_status(conn, cap.id, ("exported", "failed"), 120)) == "exported"
        wait_until(lambda: "no longer lists it here; closing it" in (tmp_path / "worker.log").read_text(), 60,
                   "the worker to close the session the control node no longer lists")
        manifest = control.data_dir / "sessions" / cap.id / "manifest.json"
        wait_until(lambda: all(c["complete"] for c in json.loads(manifest.read_text())["channels"]), 60,
                   "the worker to finalize the session's files")
        assert worker.poll() is None and [w["worker_id"] for w in roster(control) if w["up"]] == ["solo"]
    finally:
        worker.terminate()
        worker.wait(timeout=60)
