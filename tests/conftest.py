from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import support  # noqa: E402
from support.in_process import InProcessServer  # noqa: E402
from support.server_process import ServerProcess, WebhookReceiver  # noqa: E402

from reeldb.capture.ice import restrict_host_addresses  # noqa: E402



#: The fast tier (``tests/run.sh -m fast``): every test not marked slow under FAST_FOLDERS (the
#: import architecture, pure cores, the stages fed from media made once per session), and under
#: ROUTE_FOLDERS every test not marked slow whose server is the in-process one (the ``server``
#: fixture unless marked ``process``; not ``server_factory``). A fast test that starts a server
#: process, a browser, a desktop or a recorder fails (``support.refuse_in_fast_tier``).
FAST_FOLDERS = ("architecture", "capture", "export", "index")
ROUTE_FOLDERS = ("server", "security")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else None
        in_process = "server_factory" not in item.fixturenames and not item.get_closest_marker("process")
        if not item.get_closest_marker("slow") and (
                folder in FAST_FOLDERS or folder in ROUTE_FOLDERS and in_process):
            item.add_marker(pytest.mark.fast)
        if item.get_closest_marker("fast") and item.get_closest_marker("slow"):
            raise pytest.UsageError(f"{item.nodeid} is marked both fast and slow")
    # The files with slow tests first (each file's tests together, in their order): parallel
    # workers (tests/run.sh) then start the long ones early instead of ending on them.
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    support.fast_test = item.nodeid if item.get_closest_marker("fast") else None


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    support.fast_test = None


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
def in_process_factory(tmp_path):
    """Start real servers inside the test process (``support/in_process.py``); all are stopped at the end."""
    started: list[InProcessServer] = []

    def start(name: str = "data", **env: str) -> InProcessServer:
        started.append(InProcessServer(tmp_path / name, env=env))
        return started[-1].start()

    yield start
    for proc in started:
        proc.stop()


SERVER_SETTINGS = {"webhook_backoff": "0.2", "webhook_max_attempts": "3", "sync_wait": "10"}


@pytest.fixture
def server(request, tmp_path):
    """The real server with the suite's usual settings: in this process for a test of route
    behaviour; a ``reeldb serve`` process for a test marked ``process`` (it reads the server's
    log or drives the CLI beside it)."""
    if request.node.get_closest_marker("process"):
        proc = ServerProcess(tmp_path / "data", env={f"REELDB_{k.upper()}": v for k, v in SERVER_SETTINGS.items()})
    else:
        proc = InProcessServer(tmp_path / "data", env=SERVER_SETTINGS)
    yield proc.start()
    proc.stop()


@pytest.fixture
def conn(server):
    import videodb

    return videodb.connect(api_key=server.api_key, base_url=server.url)


@pytest.fixture
def hook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
