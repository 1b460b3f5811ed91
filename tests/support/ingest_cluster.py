"""Test support for ingest workers (issue 13): network namespaces on a bridge so each process
talks to the others only over the network, ``reeldb worker ingest`` processes, and the control
node's roster of them (which worker hosts which session).

Used by ``tests/e2e/test_ingest_workers.py`` and ``tests/e2e/test_scale_out.py``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Iterable

import requests
from .server_process import REELDB, ServerProcess, free_port

HEADER = "x-reeldb-worker-token"


class Network:
    """One namespace per role on a bridge (the test process stays in the root namespace and
    reaches them through it), or plain loopback where ``ip netns`` is not allowed."""

    def __init__(self, roles: Iterable[str] = ("ctl", "w1", "w2")) -> None:
        tag = uuid.uuid4().hex[:5]
        roles = list(roles)
        self.bridge = f"rdb{tag}"
        self.names = {role: f"rdb{tag}{role}" for role in roles}
        self.addresses = {role: f"10.213.0.{i + 2}" for i, role in enumerate(roles)}
        self.host_address = "10.213.0.1"
        self.isolated = False
        self._made: list[list[str]] = []

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def up(self) -> "Network":
        try:
            self._ip("link", "add", self.bridge, "type", "bridge")
            self._made.append(["link", "del", self.bridge])
            self._ip("addr", "add", f"{self.host_address}/24", "dev", self.bridge)
            self._ip("link", "set", self.bridge, "up")
            for i, (role, ns) in enumerate(self.names.items()):
                self._ip("netns", "add", ns)
                self._made.append(["netns", "del", ns])
                outside, inside = f"{self.bridge}h{i}", f"{self.bridge}n{i}"
                self._ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                self._ip("link", "set", inside, "netns", ns)
                self._ip("link", "set", outside, "master", self.bridge)
                self._ip("link", "set", outside, "up")
                self._ip("-n", ns, "addr", "add", f"{self.addresses[role]}/24", "dev", inside)
                self._ip("-n", ns, "link", "set", inside, "up")
                self._ip("-n", ns, "link", "set", "lo", "up")
            self.isolated = True
        except (subprocess.CalledProcessError, FileNotFoundError):
            self.down()
            self.addresses = {role: "127.0.0.1" for role in self.names}
            self.host_address = "127.0.0.1"
        return self

    def prefix(self, role: str) -> list[str]:
        return ["ip", "netns", "exec", self.names[role]] if self.isolated else []

    def down(self) -> None:
        for args in reversed(self._made):
            subprocess.run(["ip", *args], capture_output=True)
        self._made.clear()


def start_ingest_worker(role: str, net: Network, control: ServerProcess, data: Path, token: str,
                        log_path: Path) -> subprocess.Popen:
    """``reeldb worker ingest --id ROLE`` in ROLE's namespace, reporting to ``control``."""
    log = open(log_path, "ab")
    return subprocess.Popen(
        [*net.prefix(role), REELDB, "worker", "ingest", "--id", role, "--control", control.url,
         "--data-dir", str(data), "--host", net.addresses[role], "--port", str(free_port())],
        env={**os.environ, "REELDB_WORKER_TOKEN": token, "REELDB_ICE_ADDRESSES": net.addresses[role],
             "HF_HUB_OFFLINE": "1"},
        stdout=log, stderr=subprocess.STDOUT)


def stop_process(proc: subprocess.Popen, timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def roster(control: ServerProcess, token: str) -> list[dict]:
    r = requests.get(control.url + "/internal/ingest/workers", headers={HEADER: token}, timeout=10)
    r.raise_for_status()
    return r.json()["data"]["workers"]


class Placements:
    """Which worker hosts which session, read off the control node's roster while sessions record."""

    def __init__(self, control: ServerProcess, token: str) -> None:
        self.control = control
        self.token = token
        self.where: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(requests.RequestException):
                for worker in roster(self.control, self.token):
                    for sid in worker["session_ids"]:
                        self.where.setdefault(sid, worker["worker_id"])
            self._stop.wait(0.3)

    def __enter__(self) -> "Placements":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
