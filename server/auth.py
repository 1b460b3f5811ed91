"""Who is calling: an API key (full access) or a client token (capture only).

Secrets are stored as SHA-256 hashes: the data dir can be copied or backed up without handing out
working credentials. A client token belongs to the API key that minted it and reaches only that
key's capture sessions. Verified credentials are remembered for a few seconds, so a request costs
no database round trip for them; a revoked key stops working within that time.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from .database import Database, row
from .errors import Forbidden, Unauthorized
from .ids import new_id, new_secret

CACHE_SECONDS = 5.0
CACHE_MAX = 10_000


@dataclass(frozen=True)
class Principal:
    kind: str  # "key" | "token"
    api_key_id: str

    @property
    def is_key(self) -> bool:
        return self.kind == "key"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_api_key(db: sqlite_utils.Database, key: str | None = None) -> tuple[str, dict]:
    """Register ``key`` (or a new one); returns the key and its row. Idempotent for a known key."""
    key = key or new_secret("api_key")
    existing = row(db, "select * from api_keys where key_hash = ?", [digest(key)])
    if existing:
        return key, existing
    record = {
        "id": new_id("api_key"),
        "key_hash": digest(key),
        "webhook_secret": "whsec_" + secrets.token_urlsafe(32),
        "created_at": time.time(),
    }
    db["api_keys"].insert(record)
    return key, record


def ensure_api_key(db: sqlite_utils.Database, data_dir: Path, configured: str | None) -> str | None:
    """Make sure at least one key works; returns a newly generated key (to print once) or None.

    A configured key (``REELDB_API_KEY``) is registered as is. Without one, the first start generates
    a key and keeps it in ``<data_dir>/api_key`` (mode 0600) so the operator can find it again.
    """
    if configured:
        add_api_key(db, configured)
        return None
    key_file = data_dir / "api_key"
    if key_file.exists():
        add_api_key(db, key_file.read_text().strip())
        return None
    if db["api_keys"].count:
        return None
    key, _ = add_api_key(db)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


def _lookup(db: sqlite_utils.Database, secret: str) -> tuple[Principal, float]:
    """The principal for ``secret`` and until when it may be remembered; raises Unauthorized."""
    hashed = digest(secret)
    now = time.time()
    if secret.startswith("st-"):
        record = row(db, "select api_key_id, expires_at from client_tokens where token_hash = ?", [hashed])
        if record is None:
            raise Unauthorized("Invalid client token")
        if record["expires_at"] < now:
            raise Unauthorized("Client token expired")
        return Principal("token", record["api_key_id"]), min(now + CACHE_SECONDS, record["expires_at"])
    record = row(db, "select id from api_keys where key_hash = ?", [hashed])
    if record is None:
        raise Unauthorized("Invalid API key")
    return Principal("key", record["id"]), now + CACHE_SECONDS


class Auth:
    """Resolves credentials (remembering them briefly) and mints client tokens; owns the
    ``api_keys`` and ``client_tokens`` tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[Principal, float]] = {}

    async def resolve(self, secret: str | None) -> Principal:
        if not secret:
            raise Unauthorized("Missing API key: send it in the x-access-token header")
        if len(secret) > 512:
            raise Unauthorized("Invalid API key")
        hit = self._cache.get(secret)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        principal, until = await self.db.execute_fn(lambda conn: _lookup(conn, secret))
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[secret] = (principal, until)
        return principal

    async def mint_client_token(self, api_key_id: str, expires_in: int, user_id: str | None) -> tuple[str, float]:
        token = new_secret("client_token")
        now = time.time()
        expires_at = now + expires_in
        await self.db.execute_write_fn(lambda conn: conn["client_tokens"].insert(
            {"token_hash": digest(token), "api_key_id": api_key_id, "user_id": user_id,
             "expires_at": expires_at, "created_at": now}))
        return token, expires_at


def require_key(principal: Principal) -> Principal:
    if not principal.is_key:
        raise Forbidden(
            "Client tokens can only start, inspect and stop their capture sessions and open a "
            "websocket; this call needs an API key"
        )
    return principal
