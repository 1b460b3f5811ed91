"""Test support: a real ReelDB server process, a webhook receiver, and generated media.

Everything runs on loopback: the server is the installed ``reeldb serve`` in a subprocess with its
own data dir, so tests see what a user sees, including restarts and SIGKILLs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from . import refuse_in_fast_tier

REELDB = str(Path(sys.executable).with_name("reeldb"))
#: Settings for a server that records nothing: capture is received in its own process, so it starts
#: no ingest worker processes (two cost it about 2 CPU-seconds to start, its own start 1.5).
NO_INGEST = {"REELDB_INGEST_WORKERS": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, every: float = 0.2) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` seconds (a
    deadline for a wait, generous so a busy machine passes, never a measure of speed)."""
    deadline = time.time() + timeout
    while not predicate():
        if time.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s: {what}")
        time.sleep(every)


def search_when_indexed(video, query: str, timeout: float = 240.0):
    """``video.search(query)`` once the recording's automatic index is done: a search that arrives
    while it runs waits up to 20 s and then answers "being indexed", which is asked again (any
    other error fails at once)."""
    from videodb.exceptions import InvalidRequestError

    found: list = []

    def searched() -> bool:
        try:
            found.append(video.search(query))
            return True
        except InvalidRequestError as exc:
            if "being indexed" not in str(exc):
                raise
            return False

    wait_until(searched, timeout, f"the index of {video.id}, for a search of {query!r}", every=0.0)
    return found[-1]


def wait_healthy(proc: subprocess.Popen, url: str, timeout: float, log: Path) -> None:
    """Wait until the server process ``proc`` answers ``url/health`` with 200; fail with its log
    if it exits first or does not answer within ``timeout`` seconds."""
    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            return requests.get(url + "/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, timeout, "the server to answer /health", every=0.1)
    except AssertionError:
        raise RuntimeError(f"server did not become healthy:\n{log.read_text(errors='replace')}") from None


@dataclass
class ServerProcess:
    data_dir: Path
    api_key: str = "sk-test-" + "k" * 24
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    #: Where it listens, and a command to run it under (e.g. ``ip netns exec NAME``).
    host: str = "127.0.0.1"
    prefix: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        refuse_in_fast_tier("a `reeldb serve` process")
        env = {**os.environ, "REELDB_DATA_DIR": str(self.data_dir), "REELDB_PORT": str(self.port),
               "REELDB_HOST": self.host,
               "REELDB_LOG_LEVEL": "info", "HF_HUB_OFFLINE": "1", **self.env}
        if self.api_key:
            env["REELDB_API_KEY"] = self.api_key
        else:
            env.pop("REELDB_API_KEY", None)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*self.prefix, REELDB, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_healthy(self.proc, self.url, timeout, self.log_path)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> "ServerProcess":
        self.stop()
        return self.start()


def metrics(url: str) -> dict[tuple[str, tuple], float]:
    """The server's ``/metrics`` (asked from loopback): {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(url + "/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def process_family(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc): a server's media may be received by the ingest
    worker processes it started (REELDB_INGEST_WORKERS)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def webhook_secret(server) -> str:
    """The install's webhook signing secret, as ``reeldb keys list --show-secrets`` prints it."""
    out = subprocess.run([REELDB, "keys", "list", "--show-secrets", "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, check=True).stdout
    return out.split("webhook_secret=")[1].split()[0]


def signed_by(secret: bytes, body: bytes, headers) -> bool:
    """Whether a webhook's ``X-VideoDB-Signature`` (``t=…,v1=…``) is HMAC-SHA256 of ``t.body``."""
    parts = dict(item.split("=", 1) for item in headers["X-VideoDB-Signature"].split(","))
    return parts["v1"] == hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookReceiver:
    """Collects POSTed JSON bodies (``arrived``: when each came, wall clock); ``status`` sets what
    it answers."""

    def __init__(self, port: int | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        self.raw: list[tuple[bytes, dict[str, str]]] = []
        self.status = 200
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._cond:
                    receiver.raw.append((body, dict(self.headers)))
                    if receiver.status < 300:
                        receiver.events.append(json.loads(body))
                        receiver.arrived.append(time.time())
                    receiver._cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"received": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, predicate, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.time() + timeout
        with self._cond:
            while not predicate(self.events):
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"timed out; webhook events so far: {[e.get('event') for e in self.events]}")
                self._cond.wait(left)
            return list(self.events)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
