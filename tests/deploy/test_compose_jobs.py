"""deploy/compose.jobs.yaml (control node + Redis + job workers): valid against the compose-spec
schema once merged over compose.yaml as `docker compose -f compose.yaml -f compose.jobs.yaml`
would (services merged key by key), and its workers run the command this version's CLI takes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from support.server_process import REELDB
from test_deploy_files import tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def merged() -> dict:
    base = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    extra = yaml.safe_load((DEPLOY / "compose.jobs.yaml").read_text())
    for name, service in extra["services"].items():
        target = base["services"].setdefault(name, {})
        for key, value in service.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = {**target[key], **value}
            else:
                target[key] = value
    return base


def test_jobs_compose_override_validates_and_wires_the_workers(tmp_path):
    config = merged()
    out = tmp_path / "compose-merged.yaml"
    out.write_text(yaml.safe_dump(config))
    done = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    services = config["services"]
    assert services["reeldb"]["environment"]["REELDB_JOBS"] == "celery"
    assert services["reeldb"]["environment"]["REELDB_REDIS_URL"] == services["jobs"]["environment"]["REELDB_REDIS_URL"]
    assert "reeldb-data:/data" in services["jobs"]["volumes"]  # the media root, shared
    command = services["jobs"]["command"]
    assert command[:3] == ["reeldb", "worker", "jobs"]
    helped = subprocess.run([REELDB, *command[1:], "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--concurrency" in helped.stdout, helped.stdout + helped.stderr
