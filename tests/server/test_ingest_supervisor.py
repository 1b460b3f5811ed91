"""``reeldb serve`` with ``REELDB_INGEST_WORKERS=2`` starts two ingest worker processes, starts a
killed one again, and leaves none behind when it stops, also when it is SIGKILLed itself.

Real processes: the workers are found through the control node's roster (their ids carry their
pids) and signalled by pid.
"""

from __future__ import annotations

import os
import signal

import pytest
import requests

from support.server_process import wait_until

pytestmark = pytest.mark.slow

HEADER = "x-reeldb-worker-token"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not reaped yet) is gone for our purposes
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _up(server, token: str) -> dict[str, int]:
    r = requests.get(server.url + "/internal/ingest/workers", headers={HEADER: token}, timeout=10)
    r.raise_for_status()
    return {w["worker_id"]: int(w["worker_id"].rsplit("-", 1)[1]) for w in r.json()["data"]["workers"] if w["up"]}


def test_serve_supervises_its_ingest_workers(server_factory):
    token = "wk-supervised-" + "t" * 24
    server = server_factory(ingest_workers="2", worker_token=token)
    assert not (server.data_dir / "worker_token").exists()  # workers it starts get the secret in memory
    for wrong in ({}, {HEADER: "wk-wrong"}):
        r = requests.get(server.url + "/internal/ingest/workers", headers=wrong, timeout=10)
        assert r.status_code == 401 and r.json()["success"] is False

    wait_until(lambda: len(_up(server, token)) == 2, 60, "two ingest workers to register")
    first = _up(server, token)
    metrics = requests.get(server.url + "/metrics", timeout=10).text
    for worker_id in first:
        assert f'reeldb_ingest_worker_up{{worker="{worker_id}"}} 1.0' in metrics

    # a worker that dies is started again (a new process, a new registration)
    victim, pid = sorted(first.items())[0]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: len(_up(server, token)) == 2 and victim not in _up(server, token), 60,
               "the killed worker to be replaced")
    pids = list(_up(server, token).values())

    # stopping serve stops its workers
    server.stop()
    wait_until(lambda: not any(_alive(p) for p in pids), 60, "the workers to end with serve")

    # and a SIGKILLed serve leaves none behind either
    server.start()
    wait_until(lambda: len(_up(server, token)) == 2, 60, "two ingest workers after a restart")
    pids = list(_up(server, token).values())
    server.kill()
    wait_until(lambda: not any(_alive(p) for p in pids), 60, "the workers to end with a SIGKILLed serve")
