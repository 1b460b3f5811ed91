"""A starved machine for the tests that must stand one: busy-looping processes, one per core the
rest of the suite leaves free.

Plain python instead of stress-ng, so nothing beyond tests/run.sh's packages is needed. Among
tests/run.sh's parallel workers the suite's other tests already load the cores (about 90 % busy on
two cores, the longest files first), so a test that starves the machine adds a burner for each core
they leave, none when there are at least as many other workers as cores: burners on top of them
only slowed the whole suite, which is CPU-bound on two cores (the fifty-session test's one burner
was a tenth of the suite's CPU). Run alone, a test gets a burner for every core.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from typing import Iterator, Optional


def burners_needed() -> int:
    others = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) - 1
    return max(0, (os.cpu_count() or 2) - others)


@contextlib.contextmanager
def busy_cpu(count: Optional[int] = None, at_least: int = 0) -> Iterator[list[subprocess.Popen]]:
    """``count`` (default :func:`burners_needed`, and ``at_least`` that many) ``while True: pass``
    pythons, killed on exit. ``at_least=1``: a test whose check needs the machine starved for sure
    (not only busy most of the time), and that is short enough for one burner not to matter."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
             for _ in range(max(at_least, burners_needed()) if count is None else count)]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in procs:
            proc.wait()
