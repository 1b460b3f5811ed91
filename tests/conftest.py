from __future__ import annotations

import fcntl
import itertools
import os
import resource
import sys
import time
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

#: Tests that run in real time (recordings through WebRTC, browsers, live transcription): timing is
#: part of what they check (a GOP cadence, a clip's end in a player, a lost packet's recovery), so
#: across the parallel workers of tests/run.sh at most REALTIME_SLOTS of them run at once, beside
#: any number of other tests (as on a machine whose cores are busy, which each must stand).
REALTIME_FOLDERS = ("e2e", "browser")
REALTIME_FILES = {"capture/test_keyframe_cadence.py", "capture/test_video_loss.py", "capture/test_sender_stalls.py",
                  "capture/test_ingest.py", "capture/test_recorder.py", "capture/test_live_hub.py",
                  "capture/test_capture_export_contract.py", "docs/test_quiet_log.py", "docs/test_runnable_docs.py",
                  "index/test_capture_channels_server.py", "server/test_durable_jobs.py", "server/test_compile.py"}
#: Files under REALTIME_FOLDERS whose checks do not run in real time: the pages' HTML as the server
#: hands it out, job and worker tests with no recording, a page read but never played: any worker
#: runs them, beside the slots (a slot held by a test that only computes keeps a real-time one waiting).
NOT_REALTIME = {"browser/test_capture_page_html.py", "browser/test_player_page_html.py",
                "browser/test_schema_page_offline.py", "browser/test_player_screen_text.py",
                "e2e/test_celery_jobs.py", "e2e/test_media_root_move.py", "e2e/test_wire_versions.py"}
#: Pages checked as the server hands them out, with no browser: the fast tier's too.
FAST_FILES = {"browser/test_capture_page_html.py", "browser/test_player_page_html.py"}
#: Three: the suite held two for about 2,150 s of a 20.4-minute run and then waited on them; with three
#: it passed in 19.5 minutes, CPU-bound (``REELDB_TEST_REALTIME_SLOTS`` to try another count).
REALTIME_SLOTS = int(os.environ.get("REELDB_TEST_REALTIME_SLOTS", "3"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else None
        in_process = "server_factory" not in item.fixturenames and not item.get_closest_marker("process")
        relative = _relative(item.path, tests)
        if not item.get_closest_marker("slow") and (
                folder in FAST_FOLDERS or folder in ROUTE_FOLDERS and in_process or relative in FAST_FILES):
            item.add_marker(pytest.mark.fast)
        if item.get_closest_marker("fast") and item.get_closest_marker("slow"):
            raise pytest.UsageError(f"{item.nodeid} is marked both fast and slow")
        if (folder in REALTIME_FOLDERS or relative in REALTIME_FILES) and relative not in NOT_REALTIME:
            item.add_marker(pytest.mark.realtime)
    items[:] = in_queue_order(items, tests)


def _relative(path: Path, tests: Path) -> str:
    return path.relative_to(tests).as_posix() if path.is_relative_to(tests) else ""


#: The longest files (seconds of one worker on a quiet 2-core machine, from ``--durations``): first
#: in the queue, so that the suite does not end on one of them running alone.
LONGEST = {"e2e/test_many_sessions.py": 190, "security/test_openapi_conformance.py": 150,
           "e2e/test_editor_raw_assets.py": 145, "e2e/test_capture_flow.py": 120, "e2e/test_celery_jobs.py": 120,
           "browser/test_player_page.py": 105, "e2e/test_live_screen_indexes.py": 95, "e2e/test_live_indexes.py": 95,
           "e2e/test_scale_out.py": 85, "browser/test_capture_keyframes.py": 85, "docs/test_runnable_docs.py": 75,
           "docs/test_quiet_log.py": 75, "server/test_job_crashes.py": 60, "server/test_editor_budget.py": 60,
           "server/test_editor_validation.py": 55, "server/test_ops_commands.py": 50, "server/test_editor_render.py": 45}


def in_queue_order(items: list, tests: Path) -> list:
    """The order pytest-xdist hands files out in (``tests/run.sh``: ``--dist loadfile
    --no-loadscope-reorder``; each file's tests together, in their order): the longest files first,
    then those with slow tests, then the rest; and files that run in real time alternate with the
    others, so that about as many workers wait on real time as there are slots while the rest
    compute (a queue of only real-time files leaves workers waiting for a slot)."""
    files: dict[Path, list] = {}
    for item in items:
        files.setdefault(item.path, []).append(item)

    def rank(path: Path) -> tuple[int, float]:
        relative = _relative(path, tests)
        if relative in LONGEST:
            return 0, -LONGEST[relative]
        return (1 if any(i.get_closest_marker("slow") for i in files[path]) else 2), 0.0

    realtime = sorted((p for p in files if files[p][0].get_closest_marker("realtime")), key=rank)
    others = sorted((p for p in files if not files[p][0].get_closest_marker("realtime")), key=rank)
    order = [p for pair in itertools.zip_longest(others, realtime) for p in pair if p is not None]
    return [item for path in order for item in files[path]]


class RealtimeSlot:
    """The slot a ``realtime`` test holds (nothing for another test). A test whose real-time part
    ends before its checks do (a recording exported, then edited or searched) calls :meth:`release`
    there, so that a test waiting for a slot starts while it computes."""

    def __init__(self, handle=None) -> None:
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


@pytest.fixture(autouse=True)
def realtime_slot(request, tmp_path_factory):
    """One of REALTIME_SLOTS for a ``realtime`` test, held while it runs or until it releases it
    (a lock file shared by the xdist workers of one run: their base temp folders share a parent)."""
    if not request.node.get_closest_marker("realtime"):
        yield RealtimeSlot()
        return
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    held = None
    asked = time.monotonic()
    while held is None:
        for slot in range(REALTIME_SLOTS):
            handle = open(shared / f"realtime-slot-{slot}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            held = handle
            break
        else:
            time.sleep(0.5)
    request.node.user_properties.append(("realtime_slot_wait", round(time.monotonic() - asked, 1)))
    slot = RealtimeSlot(held)
    try:
        yield slot
    finally:
        slot.release()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    support.fast_test = item.nodeid if item.get_closest_marker("fast") else None


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    support.fast_test = None


#: ``REELDB_TEST_CPU=file``: each test's CPU seconds (its worker process and the children it
#: reaped: server processes, recorders, tools), wall seconds, seconds waited for a real-time slot
#: and ``realtime`` or ``-``, appended to ``file`` as ``cpu<TAB>wall<TAB>wait<TAB>kind<TAB>nodeid``,
#: to find what makes the suite slow on a machine whose cores it saturates.
CPU_LOG = os.environ.get("REELDB_TEST_CPU")


def _cpu() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not CPU_LOG:
        yield
        return
    before, started = _cpu(), time.monotonic()
    yield
    wait = dict(item.user_properties).get("realtime_slot_wait", 0.0)
    kind = "realtime" if item.get_closest_marker("realtime") else "-"
    with open(CPU_LOG, "a") as out:
        out.write(f"{_cpu() - before:.1f}\t{time.monotonic() - started:.1f}\t{wait}\t{kind}\t{item.nodeid}\n")


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
    process = request.node.get_closest_marker("process")
    if process:
        # No ingest workers unless the test asks for them (``@pytest.mark.process(ingest_workers="auto")``):
        # a test of the log or the CLI records nothing (support.server_process.NO_INGEST).
        settings = {**SERVER_SETTINGS, "ingest_workers": process.kwargs.get("ingest_workers", "0")}
        proc = ServerProcess(tmp_path / "data", env={f"REELDB_{k.upper()}": v for k, v in settings.items()})
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
