from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.server_process import ServerProcess, WebhookReceiver  # noqa: E402

from reeldb.capture.ice import restrict_host_addresses  # noqa: E402

# Every WebRTC peer of the suite (servers, recorders, in-process peers) uses loopback only.
os.environ["REELDB_ICE_ADDRESSES"] = "127.0.0.1"
restrict_host_addresses(["127.0.0.1"])


@pytest.fixture
def server_factory(tmp_path):
    """Start real servers with extra ``REELDB_*`` settings; all are stopped at the end."""
    started: list[ServerProcess] = []

    def start(name: str = "data", **env: str) -> ServerProcess:
        proc = ServerProcess(tmp_path / name, env={f"REELDB_{k.upper()}": str(v) for k, v in env.items()})
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def server(server_factory) -> ServerProcess:
    return server_factory(webhook_backoff="0.2", webhook_max_attempts="3", sync_wait="10")


@pytest.fixture
def conn(server):
    import videodb

    return videodb.connect(api_key=server.api_key, base_url=server.url)


@pytest.fixture
def hook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
