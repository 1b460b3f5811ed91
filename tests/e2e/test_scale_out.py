"""Scale-out, the whole of it (issue 13's first "Done when"): ``redis-server``, the control node
(``REELDB_JOBS=celery``, external ingest workers, auto export and auto index on), two
``reeldb worker ingest`` and two ``reeldb worker jobs`` processes, each in its own network
namespace on a bridge (loopback where ``ip netns`` is not allowed), with one shared folder as
media root.

Six sessions recorded through the official SDK's ``CaptureClient`` driving ``reeldb-recorder``
land on both ingest workers; each is exported once (the muxed video as long as its stored display)
and its export indexed once (a word it spoke is found by search). Then, with four more sessions
recording, one ingest worker is SIGKILLed (its sessions end ``stopped`` with ≤ 1 s lost per stored
channel and export) and the job worker holding the first index job after that is SIGKILLed:
the other job worker finishes that job, committed once (two attempts, one index).

The helpers are the other scale-out tests' (``ingest_cluster``, ``job_cluster``) and
``test_many_sessions``' (sources, checking an export)."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.ingest_cluster import Network, Placements, roster, start_ingest_worker, stop_process  # noqa: E402
from support.job_cluster import JobWorkerProcess, RedisServer, running_jobs, wait_for_workers  # noqa: E402
from support.recording import record, use_reeldb_recorder  # noqa: E402
from support.server_process import ServerProcess, wait_until  # noqa: E402
from test_capture_robustness import decoded_seconds  # noqa: E402
from test_many_sessions import STORE, SessionRun, check_export, make_sources, wait_status  # noqa: E402

pytestmark = pytest.mark.slow

TOKEN = "wk-scale-" + "s" * 24
SECONDS = 10.0  # media per session of the first six, from the moment it is active
LEASE = "15"  # a job whose worker stops reporting for this long is sent again
#: Words of the first sentences the recorder's mic speaks (``speech_wav``: MEETING_A from its start).
WORDS = ("budget", "quarterly", "tuesday", "database", "migration", "column", "slides", "marketing")


def query(data: Path, sql: str, *args: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{data / 'reeldb.db'}?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def index_jobs(data: Path, asset_id: str) -> list[tuple]:
    return query(data, "select id, status, attempts from jobs where kind = 'index' and params like ?",
                 f'%"{asset_id}"%')


def check_sessions(conn, data: Path, cap_ids: list[str]) -> list[str]:
    """Each session exported once, its video as long as its stored display, indexed once, and a
    word it spoke found by search."""
    problems: list[str] = []
    coll = conn.get_collection()
    for cap_id in cap_ids:
        session = conn.get_capture_session(cap_id)
        problems += check_export(conn, data, SessionRun(0, cap_id=cap_id, session=session))
        if session.status != "exported":
            continue
        exports = query(data, "select status, attempts from jobs where kind = 'export' and params like ?",
                        f'%"{cap_id}"%')
        if [e[0] for e in exports] != ["done"]:
            problems.append(f"{cap_id}: export jobs {exports}")
        twins = query(data, "select origin, channel_id, count(*) from media where session_id = ? "
                            "group by origin, channel_id having count(*) > 1", cap_id)
        if twins:
            problems.append(f"{cap_id}: assets exported twice {twins}")
        video = coll.get_video(session.exported_video_id)
        manifest = json.loads((data / "sessions" / cap_id / "manifest.json").read_text())
        display = next(c for c in manifest["channels"] if c["channel_id"] == "display:1")
        recorded = display["last_frame_at"] - display["first_frame_at"]
        if abs(video.length - recorded) >= 2.0:
            problems.append(f"{cap_id}: exported video {video.length:.2f} s, display recorded {recorded:.2f} s")
        wait_until(lambda: (found := index_jobs(data, video.id)) and all(j[1] in ("done", "failed") for j in found),
                   300, f"the index job of {cap_id}'s export {video.id} to end")
        jobs = index_jobs(data, video.id)
        indexes = query(data, "select count(*) from spoken_indexes where asset_id = ?", video.id)
        segments = query(data, "select count(*), count(distinct seq), group_concat(text, ' ') "
                               "from spoken_segments where asset_id = ?", video.id)[0]
        if [j[1] for j in jobs] != ["done"] or indexes != [(1,)] or not segments[0] or segments[0] != segments[1]:
            problems.append(f"{cap_id}: index jobs {jobs}, indexes {indexes}, segments {segments[:2]}")
            continue
        word = next((w for w in WORDS if w in segments[2].lower()), None)
        if word is None:
            problems.append(f"{cap_id}: none of {WORDS} in its index: {segments[2]!r}")
            continue
        shots = video.search(word).shots
        if not shots or word not in shots[0].text.lower():
            problems.append(f"{cap_id}: search {word!r} found {[s.text for s in shots]}")
    return problems


def test_scale_out_two_ingest_and_two_job_workers_one_of_each_killed(tmp_path, monkeypatch):
    import videodb

    use_reeldb_recorder()
    sources = make_sources(tmp_path / "media", 60.0)  # longer than any session: the sources play once
    net = Network(("ctl", "redis", "w1", "w2", "j1", "j2")).up()
    data = tmp_path / "shared"
    redis_server = RedisServer(tmp_path / "redis", host=net.addresses["redis"], prefix=net.prefix("redis"))
    jobs_env = {"REELDB_JOBS": "celery", "REELDB_REDIS_URL": redis_server.url, "REELDB_JOB_LEASE": LEASE,
                "REELDB_CELERY_VISIBILITY_TIMEOUT": "30"}
    control = ServerProcess(data, host=net.addresses["ctl"], prefix=net.prefix("ctl"), env={
        **jobs_env, "REELDB_INGEST_WORKERS": "external", "REELDB_WORKER_TOKEN": TOKEN,
        "REELDB_AUTO_EXPORT": "true", "REELDB_AUTO_INDEX": "true"})
    ingest: dict[str, subprocess.Popen] = {}
    jobs = {name: JobWorkerProcess(name, data, jobs_env, prefix=net.prefix(name)) for name in ("j1", "j2")}
    try:
        redis_server.start()
        control.start(timeout=60)
        for role in ("w1", "w2"):
            ingest[role] = start_ingest_worker(role, net, control, data, TOKEN, tmp_path / f"{role}.log")
        for worker in jobs.values():
            worker.start()
        wait_until(lambda: {w["worker_id"] for w in roster(control, TOKEN) if w["up"]} == {"w1", "w2"}, 60,
                   "both ingest workers to register")
        wait_for_workers(redis_server.url, set(jobs))
        # The recorder (a child of this process) offers candidates on the address the workers reach.
        monkeypatch.setenv("REELDB_ICE_ADDRESSES", net.host_address)
        conn = videodb.connect(api_key=control.api_key, base_url=control.url)
        token = conn.generate_client_token(expires_in=3600)

        # -- six sessions at once: both ingest workers take some; every export and index is right ----
        caps = [conn.create_capture_session(end_user_id=f"scale-{i}").id for i in range(6)]

        async def session(cap_id: str) -> None:
            async def during(client, channels) -> None:
                assert await wait_status(conn, cap_id, ("active",), timeout=60) == "active"
                await asyncio.sleep(SECONDS)

            await record(control.url, token, cap_id, sources, STORE, 0, primary="display:1", during=during)

        async def six() -> None:
            await asyncio.gather(*(session(c) for c in caps))

        with Placements(control, TOKEN) as placed:
            asyncio.run(six())
        assert {placed.where.get(c) for c in caps} == {"w1", "w2"}, placed.where
        for cap_id in caps:
            assert asyncio.run(wait_status(conn, cap_id, ("exported", "failed"), 300)) == "exported", cap_id
        problems = check_sessions(conn, data, caps)
        assert not problems, "\n".join(problems)

        # -- four more; one ingest worker SIGKILLed mid-recording, then a job worker mid-job ---------
        caps4 = [conn.create_capture_session(end_user_id=f"kill-{i}").id for i in range(4)]
        killed: dict[str, float] = {}
        outcome: dict[str, str] = {}
        held: dict[str, str] = {}
        failures: list[BaseException] = []

        async def recording(cap_id: str) -> None:
            async def during(client, channels) -> None:
                assert await wait_status(conn, cap_id, ("active",), timeout=60) == "active"
                while not killed:
                    await asyncio.sleep(0.1)
                if placed4.where.get(cap_id) in killed:
                    # no stop from the recorder: the control node must notice the worker is gone
                    await wait_status(conn, cap_id, ("stopped", "exported", "failed"), timeout=120)
                else:
                    await asyncio.sleep(4.0)  # the survivors keep recording a while after the kill
            try:
                await record(control.url, token, cap_id, sources, STORE, 0, primary="display:1", during=during)
                outcome[cap_id] = "recorded"
            except Exception as exc:  # noqa: BLE001 - the killed worker's recorders may fail to stop
                outcome[cap_id] = f"{type(exc).__name__}: {exc}"

        async def killer() -> None:
            while any(s != "active" for s in await asyncio.gather(*(wait_status(conn, c, ("active",), 0)
                                                                    for c in caps4))):
                await asyncio.sleep(0.2)
            await asyncio.sleep(3.0)
            victim = placed4.where[caps4[0]]
            killed[victim] = time.time()
            ingest[victim].send_signal(signal.SIGKILL)

        def kill_a_job_worker() -> None:
            """The job worker holding the first index job after the ingest worker's death, SIGKILLed at
            once (an index job computes for seconds here, an export of these sessions for 0.1-1.3 s)."""
            try:
                wait_until(lambda: bool(killed), 120, "the ingest worker's kill", every=0.05)
                kinds: dict[str, str] = {}
                found: dict[str, str] = {}

                def holding_index() -> bool:
                    for job_id, name in running_jobs(redis_server.url).items():
                        if job_id not in kinds:
                            kinds[job_id] = query(data, "select kind from jobs where id = ?", job_id)[0][0]
                        if kinds[job_id] == "index":
                            found[job_id] = name
                            return True
                    return False

                wait_until(holding_index, 180, "an index job to start on a job worker", every=0.02)
                job_id, name = next(iter(found.items()))
                jobs[name].kill()
                held.update(job_id=job_id, worker=name,
                            status=query(data, "select status from jobs where id = ?", job_id)[0][0])
            except BaseException as exc:  # noqa: BLE001 - re-raised by the test thread
                failures.append(exc)

        async def four() -> None:
            await asyncio.gather(killer(), *(recording(c) for c in caps4))

        job_killer = threading.Thread(target=kill_a_job_worker, daemon=True)
        job_killer.start()
        with Placements(control, TOKEN) as placed4:
            asyncio.run(four())
        (victim, killed_at), = killed.items()
        ingest[victim].wait()
        job_killer.join(200)
        assert not failures and held, (failures, held)
        lost = [c for c in caps4 if placed4.where.get(c) == victim]
        kept = [c for c in caps4 if placed4.where.get(c) != victim]
        assert lost and kept, placed4.where
        for cap_id in caps4:
            assert asyncio.run(wait_status(conn, cap_id, ("exported", "failed"), 300)) == "exported", cap_id

        # The killed ingest worker's sessions stopped with what it flushed, and exported.
        log = control.log()
        for cap_id in lost:
            assert f"session {cap_id}: its ingest worker is gone" in log
            events = [e for (e,) in query(data, "select event from events where session_id = ? order by created_at",
                                          cap_id)]
            assert "capture_session.stopped" in events and "capture_session.exported" in events, events
            assert events.index("capture_session.stopped") < events.index("capture_session.exported"), events
            folder = data / "sessions" / cap_id
            for channel in json.loads((folder / "manifest.json").read_text())["channels"]:
                gone = killed_at - channel["start_time"] - decoded_seconds(folder / channel["file"])
                assert gone < 1.0, f"{cap_id} {channel['channel_id']} lost {gone:.2f} s"
        for cap_id in kept:
            assert outcome[cap_id] == "recorded", outcome
            manifest = json.loads((data / "sessions" / cap_id / "manifest.json").read_text())
            assert all(c["complete"] for c in manifest["channels"]), manifest
        problems = check_sessions(conn, data, caps4)
        assert not problems, "\n".join(problems)

        # The job killed with its worker was finished by the other one, once: two attempts, one commit.
        job_id, survivor = held["job_id"], ({"j1", "j2"} - {held["worker"]}).pop()
        assert held["status"] == "running", held  # killed mid-job, not after it ended
        (kind, status, attempts), = query(data, "select kind, status, attempts from jobs where id = ?", job_id)
        assert kind == "index" and (status, attempts) == ("done", 2), (kind, status, attempts)
        assert f"job {job_id} ({kind}) done on {survivor}" in control.log()
        assert jobs[survivor].proc.poll() is None
        assert {w["worker_id"]: w["up"] for w in roster(control, TOKEN)} == {victim: False,
                                                                             ({"w1", "w2"} - {victim}).pop(): True}
        print(f"\nkilled ingest worker {victim} ({len(lost)} sessions), job worker {held['worker']} "
              f"holding {kind} job {job_id}; finished by {survivor}")
    except BaseException:
        logs = [("control node", control.log())] + [(w.name, w.log()) for w in jobs.values()]
        logs += [(role, (tmp_path / f"{role}.log").read_text(errors="replace")) for role in ingest]
        for name, text in logs:
            print(f"----- {name} (last 60 lines)\n" + "\n".join(text.splitlines()[-60:]))
        raise
    finally:
        for worker in jobs.values():
            worker.stop()
        for proc in ingest.values():
            stop_process(proc)
        control.stop()
        redis_server.stop()
        net.down()
