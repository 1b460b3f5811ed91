"""SDK round trip of get/create_capture_session: ReelDB against a bare litestar handler.

Both servers run as separate uvicorn processes on loopback and are called through the official
SDK, alternating in blocks of 100 calls so machine noise hits both alike. Prints p50/p99 per
server and the ratio ReelDB / bare.

    .venv/bin/python tests/bench/api_roundtrip.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import videodb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.server_process import ServerProcess, free_port  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        reeldb = ServerProcess(Path(tmp) / "data", env={"REELDB_LOG_LEVEL": "warning"}).start()
        port = free_port()
        bare = subprocess.Popen([sys.executable, str(Path(__file__).with_name("bare_app.py")), str(port)])
        try:
            bare_url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    requests.post(bare_url + "/collection/default/capture/session", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            ours = videodb.connect(api_key=reeldb.api_key, base_url=reeldb.url)
            theirs = videodb.connect(api_key="sk-any", base_url=bare_url)
            cap_id = ours.create_capture_session(end_user_id="bench").id
            timings: dict[tuple[str, str], list[float]] = {}
            calls = {
                "get_capture_session": lambda c: c.get_capture_session(cap_id),
                "create_capture_session": lambda c: c.create_capture_session(end_user_id="bench"),
            }
            for name, call in calls.items():
                for conn in (ours, theirs):  # warm up both
                    for _ in range(50):
                        call(conn)
                for block in range(args.calls // 100):
                    for label, conn in (("reeldb", ours), ("bare", theirs)):
                        bucket = timings.setdefault((name, label), [])
                        for _ in range(100):
                            t0 = time.perf_counter()
                            call(conn)
                            bucket.append(time.perf_counter() - t0)
            print(f"{'call':<24}{'server':<8}{'p50 ms':>9}{'p99 ms':>9}")
            for name in calls:
                row = {}
                for label in ("reeldb", "bare"):
                    values = timings[(name, label)]
                    row[label] = (percentile(values, 0.5) * 1e3, percentile(values, 0.99) * 1e3)
                    print(f"{name:<24}{label:<8}{row[label][0]:>9.2f}{row[label][1]:>9.2f}")
                print(f"{name:<24}{'ratio':<8}{row['reeldb'][0] / row['bare'][0]:>9.2f}"
                      f"{row['reeldb'][1] / row['bare'][1]:>9.2f}")
        finally:
            bare.terminate()
            bare.wait()
            reeldb.stop()


if __name__ == "__main__":
    main()
