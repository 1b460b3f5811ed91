"""Identifiers with VideoDB's prefixes.

Media ids follow VideoDB's newer ``<prefix>-z-<uuid7>`` form; uuid7 is time-ordered, so ids sort by
creation and SQLite's primary-key index stays append-only.
"""

from __future__ import annotations

import os
import re
import secrets
import time
import uuid

PREFIXES = {
    "video": "m-z-",
    "audio": "a-z-",
    "image": "img-z-",
    "collection": "c-",
    "capture_session": "cap-",
    "rtstream": "rts-",
    "client_token": "st-",
    "api_key": "sk-",
    "event": "evt-",
    "job": "job-",
    "ws": "ws-",
    "upload": "up-",
    "compilation": "cmp-",
    "render": "rnd-",
    "scene_collection": "sc-",
    "scene": "scn-",
    "frame": "frm-",
    "scene_index": "si-",
    "rtstream_event": "event-",
    "rtstream_index": "rtsi-",
    "alert": "alert-",
}


def uuid7() -> uuid.UUID:
    """RFC 9562 UUIDv7: 48 bits of Unix milliseconds, then randomness."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | rand & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant
    return uuid.UUID(int=value)


def new_id(kind: str) -> str:
    return PREFIXES[kind] + str(uuid7())


def new_secret(kind: str) -> str:
    """A bearer secret (API key, client token): unguessable, so not time-ordered."""
    return PREFIXES[kind] + secrets.token_urlsafe(32)


_SHAPE = re.compile(r"^[a-z]+-(z-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_id(kind: str, value: object) -> bool:
    """True for an id this server could have made for ``kind`` (a prefix and a uuid7): what may
    name a folder (``sessions/<cap-id>/``), so ``..`` or ``a/b`` never reach a path."""
    return isinstance(value, str) and value.startswith(PREFIXES[kind]) and _SHAPE.match(value) is not None
