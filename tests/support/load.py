"""A starved machine for the tests that must stand one: busy-looping processes, one per core the
rest of the suite leaves free.

Plain python instead of stress-ng, so nothing beyond tests/run.sh's packages is needed. Among
tests/run.sh's parallel workers the suite's other tests already load the cores, so a test that
starves the machine adds a burner for each core they leave (at least one), not one a core on top
of them: that would only slow the whole suite, which is CPU-bound on two cores.
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
    return max(1, (os.cpu_count() or 2) - others)


@contextlib.contextmanager
def busy_cpu(count: Optional[int] = None) -> Iterator[list[subprocess.Popen]]:
    """``count`` (default :func:`burners_needed`) ``while True: pass`` pythons, killed on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
             for _ in range(burners_needed() if count is None else count)]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in procs:
            proc.wait()
