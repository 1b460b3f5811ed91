"""deploy/: hadolint on the Dockerfile, the compose file against the compose-spec schema, the
systemd unit through `systemd-analyze verify` (and its exposure score), the proxy examples through
`caddy validate` and `nginx -t`, and the image's CMD run the way the image runs it (its ENV, its
WORKDIR as the data volume), then its HEALTHCHECK command. `docker build` is not available here."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.server_process import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}:{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        pytest.fail(f"{name} is not installed (tests/run.sh installs it)")
    return found


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in (DEPLOY / "Dockerfile").read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in text.splitlines() if line.strip()]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for op, args in dockerfile():
        if op == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def test_hadolint_passes():
    done = subprocess.run([tool("hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_shape():
    ops = dockerfile()
    first = dict(ops)
    assert re.match(r"python:3\.\d+-slim", first["FROM"])
    run = " ".join(a for op, a in ops if op == "RUN")
    assert "download.pytorch.org/whl/cpu" in " ".join(a for op, a in ops if op in ("ARG", "RUN"))
    assert "torch==" in run and "pip install --no-cache-dir ." in run
    user = [a for op, a in ops if op == "USER"]
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0"
    assert json.loads(first["VOLUME"]) == ["/data"] and image_env()["REELDB_DATA_DIR"] == "/data"
    exposed = " ".join(a for op, a in ops if op == "EXPOSE").split()
    assert "8700/tcp" in exposed and f"{image_env()['REELDB_ICE_PORT_RANGE']}/udp" in exposed  # media ports
    assert "HEALTHCHECK" in first and "/health" in first["HEALTHCHECK"]
    assert json.loads(first["CMD"]) == ["reeldb", "serve"]
    assert image_env()["HF_HUB_OFFLINE"] == "1"


def test_compose_file_validates_against_the_compose_spec(tmp_path):
    done = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                           str(DEPLOY / "compose.yaml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # The schema itself is exercised: an unknown key is refused.
    bad = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    bad["services"]["reeldb"]["network-mode"] = "host"  # a misspelt key
    broken = tmp_path
    (broken / "compose-bad.yaml").write_text(yaml.safe_dump(bad))
    done = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                           str(broken / "compose-bad.yaml")], capture_output=True, text=True)
    assert done.returncode != 0
    service = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["reeldb"]
    assert service["build"]["dockerfile"] == "deploy/Dockerfile" and "reeldb-data:/data" in service["volumes"]


def test_systemd_unit_verifies(tmp_path):
    unit = (DEPLOY / "reeldb.service").read_text()
    for option in ("ProtectSystem=strict", "NoNewPrivileges=yes", "ReadWritePaths=/var/lib/reeldb",
                   "PrivateTmp=yes", "CapabilityBoundingSet=\n"):
        assert option in unit, option
    # verify checks ExecStart's binary exists: point it at this install's reeldb.
    (tmp_path / "reeldb.service").write_text(unit.replace("/opt/reeldb/bin/reeldb", str(BIN / "reeldb")))
    done = subprocess.run([tool("systemd-analyze"), "verify", str(tmp_path / "reeldb.service")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), done.stdout + done.stderr
    done = subprocess.run([tool("systemd-analyze"), "security", "--offline=yes", str(tmp_path / "reeldb.service")],
                          capture_output=True, text=True)
    score = float(re.search(r"Overall exposure level for reeldb\.service: ([\d.]+)", done.stdout).group(1))
    assert score <= 2.5, done.stdout


def test_caddyfile_validates(tmp_path):
    done = subprocess.run([tool("caddy"), "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
                               "XDG_CONFIG_HOME": str(tmp_path)})
    assert done.returncode == 0 and "Valid configuration" in done.stdout + done.stderr, done.stdout + done.stderr


def test_nginx_example_passes_nginx_t(tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=reeldb.example.com",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"), "-days", "1"],
                   check=True, capture_output=True)
    site = (DEPLOY / "nginx.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/reeldb.example.com/fullchain.pem", str(tmp_path / "cert.pem"))
    site = site.replace("/etc/letsencrypt/live/reeldb.example.com/privkey.pem", str(tmp_path / "key.pem"))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"error_log stderr;\npid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n access_log off;\n"
        f" client_body_temp_path {tmp_path};\n proxy_temp_path {tmp_path};\n include {tmp_path}/site.conf;\n}}\n")
    done = subprocess.run([tool("nginx"), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_image_command_serves_and_its_healthcheck_passes(tmp_path):
    """CMD with the image's ENV and its WORKDIR as the data volume (here a temporary folder)."""
    ops = dict(dockerfile())
    cmd = json.loads(ops["CMD"])
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    env = {"PATH": f"{BIN}:/usr/bin:/bin", **image_env(), "REELDB_DATA_DIR": str(data), "REELDB_PORT": str(port),
           "HOME": str(data), "REELDB_ICE_ADDRESSES": "127.0.0.1"}
    assert env["REELDB_HOST"] == "0.0.0.0"
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(cmd, cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}", 60, tmp_path / "serve.log")
        health = json.loads(ops["HEALTHCHECK"].split(" CMD ", 1)[1])  # the exec form
        assert subprocess.run(health, env=env, timeout=30).returncode == 0
        compose_check = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["reeldb"]["healthcheck"]["test"]
        assert compose_check[0] == "CMD"
        compose_cmd = [c.replace("127.0.0.1:8700", f"127.0.0.1:{port}") for c in compose_check[1:]]
        assert subprocess.run(compose_cmd, env=env, timeout=30).returncode == 0
        assert (data / "reeldb.db").exists() and (data / "api_key").exists()  # everything in the volume
        assert not [p for p in tmp_path.iterdir() if p.name not in ("data", "serve.log")]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert subprocess.run(health, env=env, timeout=30).returncode != 0  # and fails when nothing answers
