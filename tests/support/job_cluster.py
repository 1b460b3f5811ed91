"""Test support for REELDB_JOBS=celery: a real ``redis-server`` on a free port in a temp folder,
and ``reeldb worker jobs`` processes (each in its own process group, so a test can SIGKILL one
whole), beside a control node started with :class:`server_process.ServerProcess`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from .server_process import REELDB, free_port, wait_until


def require_redis() -> str:
    found = shutil.which("redis-server")
    if not found:
        pytest.fail("redis-server is not installed (Debian package redis-server; tests/run.sh installs it)")
    return found


@dataclass
class RedisServer:
    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    #: Where it listens, and a command to run it under (e.g. ``ip netns exec NAME``).
    host: str = "127.0.0.1"
    prefix: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> "RedisServer":
        import redis

        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [*self.prefix, require_redis(), "--port", str(self.port), "--bind", self.host, "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log"),
             # no password: protected mode would answer DENIED to every client not on loopback
             "--protected-mode", "yes" if self.host == "127.0.0.1" else "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(host=self.host, port=self.port)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(up, 20, "redis-server to answer PING")
        client.close()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@dataclass
class JobWorkerProcess:
    """One ``reeldb worker jobs`` process, in a process group of its own."""

    name: str
    data_dir: Path
    env: dict[str, str]
    concurrency: int = 1
    proc: subprocess.Popen | None = None
    #: A command to run it under (e.g. ``ip netns exec NAME``, which execs: the pid stays the worker's).
    prefix: list[str] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}-worker.log"

    def start(self) -> "JobWorkerProcess":
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **self.env}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*self.prefix, REELDB, "worker", "jobs", "--data-dir", str(self.data_dir),
                                      "--concurrency", str(self.concurrency), "--name", self.name],
                                     env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and whatever it started (its process group)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for_workers(redis_url: str, names: set[str], timeout: float = 180.0) -> None:
    """Until every named worker has loaded its models and beats in Redis."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        wait_until(lambda: names <= {k.rsplit(":", 1)[1] for k in client.keys("reeldb:workers:jobs:*")},
                   timeout, f"job workers {sorted(names)} to report in Redis", every=0.5)
    finally:
        client.close()


def running_jobs(redis_url: str) -> dict[str, str]:
    """Job id → the worker holding its lock now (``reeldb:job:<id>:lock`` = ``"<worker> <token>"``)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        found = {}
        for key in client.keys("reeldb:job:*:lock"):
            holder = client.get(key)
            if holder:
                found[key.split(":")[2]] = holder.split(" ", 1)[0]
        return found
    finally:
        client.close()
