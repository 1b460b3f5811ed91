"""Each table is written by the one module that owns it; the others call that module.

Read from the source of ``server/`` (every ``conn["t"].insert/update/upsert/delete``, ``insert into t``,
``update t set``, ``delete from t``), so a new write in the wrong room fails here, not in review.
Migrations (``schema.py``) create and reshape tables and are not writes of rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

SERVER = Path(__file__).resolve().parents[2] / "server"

#: table → the module (relative to server/) that writes it.
OWNERS = {
    "api_keys": "auth.py", "client_tokens": "auth.py", "web_sessions": "auth.py", "signin_links": "auth.py",
    "capture_sessions": "sessions.py", "rtstreams": "sessions.py",
    "collections": "collections.py", "compilations": "compilations.py",
    "events": "events.py", "deliveries": "events.py", "rtstream_events": "rt_events.py",
    "exports": "exports.py", "index_requests": "spoken.py",
    "jobs": "jobs/leases.py", "media": "library.py", "renders": "editor.py", "uploads": "uploads.py",
}

WRITES = [re.compile(r'\[\s*"(\w+)"\s*\]\s*\.\s*(?:insert|update|delete|upsert|insert_all|upsert_all|delete_where)\b'),
          re.compile(r'(?i)\binsert\s+(?:or\s+\w+\s+)?into\s+(\w+)'),
          re.compile(r'(?i)\bupdate\s+(\w+)\s+set\b'),
          re.compile(r'(?i)\bdelete\s+from\s+(\w+)')]


def writes() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in SERVER.rglob("*.py"):
        module = path.relative_to(SERVER).as_posix()
        if module == "schema.py":
            continue
        text = path.read_text()
        for pattern in WRITES:
            for match in pattern.finditer(text):
                found.setdefault(match.group(1), set()).add(module)
    return found


def test_only_the_owning_module_writes_each_table():
    found = writes()
    strays = {table: sorted(modules - {OWNERS.get(table)}) for table, modules in found.items()
              if modules - {OWNERS.get(table)}}
    assert not strays, f"tables written outside their owner (OWNERS): {strays}"


def test_the_check_sees_writes():
    """Every owner's writes are found (the patterns match this code base's ways of writing)."""
    found = writes()
    assert {table for table in OWNERS if OWNERS[table] in found.get(table, set())} == set(OWNERS)
