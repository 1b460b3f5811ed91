"""Offline proof (issue 12): the seed's flow in a network namespace with no route out, and no
process of it trying to reach any host but this one.

``unshare -n`` gives the flow a namespace whose only interface is loopback (brought up with
``ip link set lo up``); the server, the SDK client and the recorder all run in it, with
``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` unset, so a model hub lookup would fail there rather
than be skipped. That alone proves the flow needs no network; to prove nothing even *tries*, every
Python process runs a ``sitecustomize`` audit hook that logs each ``socket.connect``,
``socket.sendto`` and name lookup, and every one must be to loopback or a Unix socket.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HOOK = r'''
import json, os, sys

_log = os.path.join(os.environ["REELDB_NET_LOG_DIR"], "net-%d.log" % os.getpid())
_EVENTS = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
           "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.getnameinfo", "http.client.connect"}


def _hook(event, args):
    if event not in _EVENTS:
        return
    try:
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            sock, address = args[0], args[-1]
            record = {"event": event, "family": int(getattr(sock, "family", -1)), "address": repr(address)}
            if isinstance(address, tuple) and address:
                record["host"] = str(address[0])
        elif event == "http.client.connect":
            record = {"event": event, "host": str(args[1]), "port": args[2]}
        else:
            record = {"event": event, "host": None if args[0] is None else str(args[0])}
        record["argv"] = " ".join(sys.argv[:2])[-120:]
        with open(_log, "a") as f:
            f.write(json.dumps(record) + "\n")
    except Exception:
        pass


sys.addaudithook(_hook)
'''

#: Names that resolve without a network: loopback's, and this machine's own (``/etc/hosts``; the server
#: looks it up once for ``REELDB_TRUSTED_HOSTS``' default).
LOOPBACK_NAMES = {"localhost", "ip6-localhost", socket.gethostname()}


def is_local(host: str | None) -> bool:
    if host in (None, "", *LOOPBACK_NAMES):
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def namespace_prefix() -> list[str]:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        raise RuntimeError("unshare (util-linux) and ip (iproute2) are needed: tests/run.sh installs them")
    # root (CI, as tests/run.sh runs) needs no user namespace; anyone else maps themselves to root in one
    user = [] if os.geteuid() == 0 else ["-r"]
    return ["unshare", *user, "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def test_the_seed_flow_runs_with_no_route_out_and_reaches_no_host(tmp_path):
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "REELDB_CAPTURE_SOURCES")}
    env.update(PYTHONPATH=os.pathsep.join([str(hook_dir), *filter(None, [os.environ.get("PYTHONPATH")])]),
               REELDB_NET_LOG_DIR=str(tmp_path))

    # The namespace really has no way out: nothing but loopback, and a public address is unreachable.
    reach_out = ("import socket; s = socket.socket(); s.settimeout(3)\n"
                 "try:\n s.connect(('1.1.1.1', 443)); print('reached')\n"
                 "except OSError as e:\n print('unreachable', e.errno)")
    probe = subprocess.run([*namespace_prefix(), sys.executable, "-c", reach_out],
                           capture_output=True, text=True, env=env, timeout=60, check=False)
    assert probe.stdout.startswith("unreachable"), (probe.stdout, probe.stderr)
    links = subprocess.run([*namespace_prefix(), "ip", "-o", "link"], capture_output=True, text=True, timeout=30, check=False)
    assert [line.split(":")[1].strip() for line in links.stdout.splitlines()] == ["lo"], links.stdout
    for log in tmp_path.glob("net-*.log"):  # the probe's own attempt is not the flow's
        log.unlink()

    flow = subprocess.run([*namespace_prefix(), sys.executable, str(Path(__file__).with_name("offline_flow.py")),
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=600, check=False)
    server_log = (tmp_path / "server.log").read_text(errors="replace") if (tmp_path / "server.log").exists() else ""
    assert flow.returncode == 0, (flow.stdout[-3000:], flow.stderr[-5000:], server_log[-5000:])
    result = json.loads((tmp_path / "result.json").read_text())
    assert "budget" in result["shot"].lower() and result["fetched"]

    records = [json.loads(line) for log in tmp_path.glob("net-*.log") for line in log.read_text().splitlines()]
    processes = {r["argv"] for r in records}
    # the hook ran in the flow, the server and the recorder (each connects to the server at least)
    assert any("reeldb serve" in p or p.endswith("serve") for p in processes), processes
    assert any("offline_flow" in p for p in processes), processes
    assert any("recorder" in p for p in processes), processes
    outside = [r for r in records
               if not (r.get("family") == 1 or is_local(r.get("host")))]  # 1: AF_UNIX
    assert not outside, outside[:20]
    assert "HF_HUB_OFFLINE" not in env and "TRANSFORMERS_OFFLINE" not in env
