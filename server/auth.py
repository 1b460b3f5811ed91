"""Who is calling: an API key (full access) or a client token (capture only), and the secrets behind them.

Keys and client tokens are stored as ``HMAC-SHA256(pepper, secret)``: a copy of the database alone
(a backup, a stolen disk image) neither hands out working credentials nor lets anyone test guesses
offline, since that needs the pepper too. The pepper is derived from ``REELDB_SECRET_KEY`` when it is
configured (kept outside the data dir, so the data dir then holds no secret that signs or verifies
anything), else from ``<data_dir>/server_secret`` (weaker: a copy of the whole data dir has both).
A per-key random salt (or scrypt) would need the key's id inside the key to find its row, and
keys keep VideoDB's bare ``sk-…`` shape, so the row is found by its keyed hash instead; the keys
themselves are 256-bit random values, so a fast keyed hash is enough.

Rows written before this scheme hold a plain SHA-256 (``hash_scheme = 'sha256'``) or a hash under
a previous pepper (``hmac-sha256:<pepper id>``, when the data dir's ``server_secret`` was the pepper
and ``REELDB_SECRET_KEY`` was configured since): they are accepted once more and rewritten under the
current pepper on their first successful use.

A client token belongs to the API key that minted it, reaches only that key's capture sessions,
and stops working with it. Verified credentials are remembered for ``CACHE_SECONDS``, so a request
costs no database round trip for them; a key revoked by ``reeldb keys revoke`` (another process)
stops working within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from .database import Database, row, rows
from .errors import Forbidden, Unauthorized
from .ids import new_id, new_secret
from .settings import Settings

log = logging.getLogger("reeldb.auth")

CACHE_SECONDS = 5.0
CACHE_MAX = 10_000
LEGACY_SCHEME = "sha256"


@dataclass(frozen=True)
class Principal:
    kind: str  # "key" | "token"
    api_key_id: str
    #: For a client token: a stable fingerprint of it, so a session remembers which token started
    #: it (the stored hash may be rewritten under a new pepper; this never changes).
    token_id: str | None = None

    @property
    def is_key(self) -> bool:
        return self.kind == "key"


# -- the install's secrets -------------------------------------------------------------------------
def _derive(root: bytes, purpose: str) -> bytes:
    return hmac.new(root, f"reeldb/{purpose}".encode(), hashlib.sha256).digest()


def _read_server_secret(data_dir: Path, create: bool) -> bytes | None:
    path = data_dir / "server_secret"
    if not path.exists():
        if not create:
            return None
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())


@dataclass(frozen=True)
class Keyring:
    """The pepper for credential hashes (and any older ones still readable) and the link-signing secret."""

    pepper: bytes
    link_secret: bytes
    #: True when the secrets come from ``REELDB_SECRET_KEY``, i.e. not from the data dir.
    external: bool
    #: Peppers of earlier configurations still on hand, for rows hashed under them.
    previous: tuple[bytes, ...] = ()

    @classmethod
    def load(cls, settings: Settings, create: bool = True) -> "Keyring":
        """``create=False`` refuses to make a new ``server_secret`` (a CLI beside a server that
        was given ``REELDB_SECRET_KEY`` must not invent a pepper of its own)."""
        file_secret = _read_server_secret(settings.data_dir, create=create and not settings.secret_key)
        if file_secret is None and not settings.secret_key:
            raise ValueError(f"no REELDB_SECRET_KEY and no {settings.data_dir / 'server_secret'}: "
                             "run with the server's REELDB_SECRET_KEY")
        if settings.secret_key:
            root = settings.secret_key.encode()
            previous = (_derive(file_secret, "credential-hash"),) if file_secret else ()
            return cls(pepper=_derive(root, "credential-hash"), link_secret=_derive(root, "links"),
                       external=True, previous=previous)
        # Links stay signed with the file's bytes as they always were, so links handed out earlier
        # keep working; the pepper is derived from it.
        return cls(pepper=_derive(file_secret, "credential-hash"), link_secret=file_secret, external=False)

    @property
    def scheme(self) -> str:
        return scheme_of(self.pepper)

    @property
    def schemes(self) -> set[str]:
        """Every stored form this keyring can verify."""
        return {self.scheme, LEGACY_SCHEME, *(scheme_of(p) for p in self.previous)}

    def digest(self, secret: str) -> str:
        return digest(self.pepper, secret)

    def candidates(self, secret: str) -> dict[str, str]:
        """Every stored form ``secret`` may have: hash -> scheme, the current one first."""
        found = {digest(self.pepper, secret): self.scheme}
        for pepper in self.previous:
            found.setdefault(digest(pepper, secret), scheme_of(pepper))
        found.setdefault(hashlib.sha256(secret.encode()).hexdigest(), LEGACY_SCHEME)
        return found


def scheme_of(pepper: bytes) -> str:
    """``hmac-sha256:<pepper id>``; the id names the pepper without revealing it."""
    return "hmac-sha256:" + hmac.new(pepper, b"reeldb/pepper-id", hashlib.sha256).hexdigest()[:12]


def digest(pepper: bytes, secret: str) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


# -- api_keys rows (run on a database thread) ------------------------------------------------------
def _find_key(db: sqlite_utils.Database, keyring: Keyring, key: str) -> dict[str, Any] | None:
    """The row of ``key`` under any scheme, rewritten under the current pepper (call while writing)."""
    forms = keyring.candidates(key)
    marks = ",".join("?" * len(forms))
    for record in rows(db, f"select * from api_keys where key_hash in ({marks})", list(forms)):
        if forms.get(record["key_hash"]) == record["hash_scheme"]:
            if record["hash_scheme"] != keyring.scheme:
                db.execute("update api_keys set key_hash = ?, hash_scheme = ? where id = ?",
                           [keyring.digest(key), keyring.scheme, record["id"]])
                record = {**record, "key_hash": keyring.digest(key), "hash_scheme": keyring.scheme}
            return record
    return None


def add_api_key(db: sqlite_utils.Database, keyring: Keyring, key: str | None = None,
                origin: str = "cli") -> tuple[str, dict]:
    """Register ``key`` (or a new one); returns the key and its row. A known key keeps its row
    (and stays revoked if it was)."""
    if key:
        existing = _find_key(db, keyring, key)
        if existing:
            return key, existing
    key = key or new_secret("api_key")
    record = {
        "id": new_id("api_key"),
        "key_hash": keyring.digest(key),
        "hash_scheme": keyring.scheme,
        "webhook_secret": "whsec_" + secrets.token_urlsafe(32),
        "created_at": time.time(),
        "origin": origin,
        "revoked_at": None,
        "revoked_reason": None,
    }
    db["api_keys"].insert(record)
    return key, record


def revoke_api_key(db: sqlite_utils.Database, key_id: str, reason: str = "revoked") -> dict | None:
    """Revoke the key ``key_id`` (and with it its client tokens); returns its row, None if unknown."""
    record = row(db, "select * from api_keys where id = ?", [key_id])
    if record is None:
        return None
    if record["revoked_at"] is None:
        db.execute("update api_keys set revoked_at = ?, revoked_reason = ? where id = ?",
                   [time.time(), reason, key_id])
    # its browsers' sign-ins end with it (the next page they ask for goes to the sign-in page)
    db.execute("delete from web_sessions where api_key_id = ?", [key_id])
    db.execute("delete from signin_links where api_key_id = ?", [key_id])
    return row(db, "select * from api_keys where id = ?", [key_id])


def ensure_api_key(db: sqlite_utils.Database, keyring: Keyring, data_dir: Path,
                   configured: str | None) -> str | None:
    """Make sure at least one key works; returns a newly generated key (to print once) or None.

    A configured key (``REELDB_API_KEY``) is the one environment key: it is registered with
    ``origin = 'env'`` and every other key that came from the environment is revoked (keys made
    with ``reeldb keys create`` stay). Without one, a start that finds no usable key generates one;
    it is kept in ``<data_dir>/api_key`` (mode 0600) unless ``REELDB_SECRET_KEY`` is configured,
    in which case it is only printed.
    """
    key_file = data_dir / "api_key"
    lost = unverifiable(db, keyring)
    if lost:
        log.warning("%d API key(s) were hashed under another secret (REELDB_SECRET_KEY changed?) "
                    "and cannot be verified; they work again with that secret", lost)
    if configured:
        _, record = add_api_key(db, keyring, configured, origin="env")
        if record["origin"] in (None, "unknown"):
            db.execute("update api_keys set origin = 'env' where id = ?", [record["id"]])
        if record["revoked_at"] is not None:
            if record["revoked_reason"] == "replaced":  # the environment names it again
                db.execute("update api_keys set revoked_at = null, revoked_reason = null where id = ?",
                           [record["id"]])
            else:
                log.warning("REELDB_API_KEY names key %s, which was revoked: it is refused", record["id"])
        replaced = [r["id"] for r in rows(
            db, "select id from api_keys where origin = 'env' and id != ? and revoked_at is null", [record["id"]])]
        for key_id in replaced:
            revoke_api_key(db, key_id, reason="replaced")
            log.warning("API key %s from an earlier REELDB_API_KEY is revoked: the environment names another", key_id)
        return None
    if key_file.exists():
        add_api_key(db, keyring, key_file.read_text().strip(), origin="generated")
        if keyring.external:
            log.warning("%s holds a working API key in plaintext; delete it once the key is kept elsewhere",
                        key_file)
        return None
    if row(db, "select id from api_keys where revoked_at is null limit 1"):
        return None
    key, _ = add_api_key(db, keyring, origin="generated")
    if not keyring.external:
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
    return key


def unverifiable(db: sqlite_utils.Database, keyring: Keyring) -> int:
    """How many unrevoked keys are hashed under a pepper this keyring does not have (the secret
    key changed, or a CLI runs without the server's ``REELDB_SECRET_KEY``)."""
    return sum(1 for r in rows(db, "select hash_scheme from api_keys where revoked_at is null")
               if r["hash_scheme"] not in keyring.schemes)


def list_api_keys(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(rows(db, "select * from api_keys order by created_at, id"))


# -- lookups ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Found:
    principal: Principal
    until: float
    #: (table, stored hash) to rewrite under the current pepper, if stored in an older form.
    rehash: tuple[str, str] | None = None


def token_fingerprint(secret: str) -> str:
    """An identifier for a client token (256 random bits: a plain hash cannot be reversed)."""
    return hashlib.sha256(b"reeldb/client-token-id/" + secret.encode()).hexdigest()[:32]


def _lookup(db: sqlite_utils.Database, keyring: Keyring, secret: str) -> _Found:
    """The principal for ``secret`` and until when it may be remembered; raises Unauthorized."""
    forms = keyring.candidates(secret)
    marks = ",".join("?" * len(forms))
    now = time.time()
    if secret.startswith("st-"):
        for record in rows(
            db,
            "select t.token_hash, t.hash_scheme, t.api_key_id, t.expires_at, k.id as key_id, k.revoked_at "
            f"from client_tokens t left join api_keys k on k.id = t.api_key_id where t.token_hash in ({marks})",
            list(forms),
        ):
            if forms.get(record["token_hash"]) != record["hash_scheme"]:
                continue
            if record["expires_at"] < now:
                raise Unauthorized("Client token expired")
            if record["key_id"] is None or record["revoked_at"] is not None:
                raise Unauthorized("Client token revoked: the API key that made it was revoked")
            rehash = None if record["hash_scheme"] == keyring.scheme else ("client_tokens", record["token_hash"])
            return _Found(Principal("token", record["api_key_id"], token_fingerprint(secret)),
                          min(now + CACHE_SECONDS, record["expires_at"]), rehash)
        raise Unauthorized("Invalid client token")
    for record in rows(db, f"select id, key_hash, hash_scheme, revoked_at from api_keys where key_hash in ({marks})",
                       list(forms)):
        if forms.get(record["key_hash"]) != record["hash_scheme"]:
            continue
        if record["revoked_at"] is not None:
            raise Unauthorized("API key revoked")
        rehash = None if record["hash_scheme"] == keyring.scheme else ("api_keys", record["key_hash"])
        return _Found(Principal("key", record["id"]), now + CACHE_SECONDS, rehash)
    raise Unauthorized("Invalid API key")


def _rehash(db: sqlite_utils.Database, keyring: Keyring, secret: str, table: str, old: str) -> None:
    column = "token_hash" if table == "client_tokens" else "key_hash"
    db.execute(f"update {table} set {column} = ?, hash_scheme = ? where {column} = ?",
               [keyring.digest(secret), keyring.scheme, old])


class Auth:
    """Resolves credentials (remembering them briefly) and mints client tokens; owns the
    ``api_keys`` and ``client_tokens`` tables."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self.db = db
        self.keyring = keyring
        self._cache: dict[str, tuple[Principal, float]] = {}

    async def resolve(self, secret: str | None) -> Principal:
        if not secret:
            raise Unauthorized("Missing API key: send it in the x-access-token header")
        if len(secret) > 512:
            raise Unauthorized("Invalid API key")
        hit = self._cache.get(secret)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        keyring = self.keyring
        found = await self.db.execute_fn(lambda conn: _lookup(conn, keyring, secret))
        if found.rehash is not None:
            table, old = found.rehash
            await self.db.execute_write_fn(lambda conn: _rehash(conn, keyring, secret, table, old))
            log.info("credential of %s rewritten under the current hash scheme", found.principal.api_key_id)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[secret] = (found.principal, found.until)
        return found.principal

    async def revoked(self, api_key_ids: set[str]) -> set[str]:
        """Which of these API keys are revoked (or gone): their websockets and links stop working."""
        if not api_key_ids:
            return set()
        ids = sorted(api_key_ids)
        marks = ", ".join("?" for _ in ids)
        alive = await self.db.execute_fn(lambda conn: {r["id"] for r in rows(
            conn, f"select id from api_keys where id in ({marks}) and revoked_at is null", ids)})
        return set(ids) - alive

    async def mint_client_token(self, api_key_id: str, expires_in: int, user_id: str | None) -> tuple[str, float]:
        token = new_secret("client_token")
        now = time.time()
        expires_at = now + expires_in
        token_hash, scheme = self.keyring.digest(token), self.keyring.scheme
        await self.db.execute_write_fn(lambda conn: conn["client_tokens"].insert(
            {"token_hash": token_hash, "hash_scheme": scheme, "api_key_id": api_key_id, "user_id": user_id,
             "expires_at": expires_at, "created_at": now}))
        return token, expires_at


# -- the web pages' sign-ins -----------------------------------------------------------------------
#: How long a browser stays signed in, and how long the link ``reeldb serve`` prints stays good.
WEB_SESSION_SECONDS = 14 * 86400
#: Sign-in attempts one address may make in ``SIGN_IN_WINDOW`` seconds before it must wait.
SIGN_IN_ATTEMPTS = 5
SIGN_IN_WINDOW = 60.0


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: whose key it acts for, and the token its forms must carry (CSRF)."""

    principal: Principal
    csrf: str


class SignInRequired(Exception):
    """A page asked for without a (live) sign-in: the answer is the sign-in page (server/routes/web.py)."""


class SignInLimited(Exception):
    """Too many sign-in attempts from one address: it waits ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class SignInLimiter:
    """Failed sign-ins per client address in a sliding window; past the limit every attempt from
    that address is refused (the right key too) until the window has moved on."""

    def __init__(self, attempts: int = SIGN_IN_ATTEMPTS, window: float = SIGN_IN_WINDOW) -> None:
        self.attempts, self.window = attempts, window
        self._failures: dict[str, list[float]] = {}

    def check(self, address: str) -> None:
        now = time.monotonic()
        recent = [t for t in self._failures.get(address, []) if now - t < self.window]
        if recent:
            self._failures[address] = recent
        else:
            self._failures.pop(address, None)
        if len(recent) >= self.attempts:
            raise SignInLimited(max(1, int(self.window - (now - recent[0])) + 1))

    def failed(self, address: str) -> None:
        if len(self._failures) >= CACHE_MAX:
            self._failures.clear()
        self._failures.setdefault(address, []).append(time.monotonic())


def _new_web_session(conn: sqlite_utils.Database, keyring: Keyring, api_key_id: str) -> tuple[str, str]:
    secret, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(24), time.time()
    conn.execute("delete from web_sessions where expires_at < ?", [now])
    conn["web_sessions"].insert({"secret_hash": keyring.digest("web:" + secret), "api_key_id": api_key_id,
                                 "csrf": csrf, "created_at": now, "expires_at": now + WEB_SESSION_SECONDS})
    return secret, csrf


def mint_signin_link(db: sqlite_utils.Database, keyring: Keyring, ttl: float) -> str | None:
    """A one-time sign-in token for the local user: the newest working key the environment or the
    first start made (``reeldb serve`` prints it as a link); None when no such key works."""
    record = row(db, "select id from api_keys where revoked_at is null and hash_scheme in "
                     f"({','.join('?' * len(keyring.schemes))}) order by origin = 'env' desc, "
                     "origin = 'generated' desc, created_at desc limit 1", sorted(keyring.schemes))
    if record is None:
        return None
    token, now = secrets.token_urlsafe(32), time.time()
    db.execute("delete from signin_links where expires_at < ?", [now])
    db["signin_links"].insert({"token_hash": keyring.digest("link:" + token), "api_key_id": record["id"],
                               "created_at": now, "expires_at": now + ttl})
    return token


class WebSessions:
    """The browsers signed in to the pages, kept in ``web_sessions`` (part of :class:`Auth`)."""

    def __init__(self, auth: "Auth") -> None:
        self.auth = auth
        self.limiter = SignInLimiter()

    async def sign_in(self, key: str, address: str) -> tuple[str, str]:
        """A new session for the API key ``key`` typed in the sign-in form: (cookie secret, csrf).
        Raises Unauthorized (a client token, a wrong or revoked key) or SignInLimited."""
        self.limiter.check(address)
        try:
            principal = await self.auth.resolve(key.strip() or None)
            if not principal.is_key:
                raise Unauthorized("a client token is not an API key")
        except Unauthorized:
            self.limiter.failed(address)
            raise
        keyring = self.auth.keyring
        return await self.auth.db.execute_write_fn(lambda conn: _new_web_session(conn, keyring, principal.api_key_id))

    async def redeem_link(self, token: str) -> tuple[str, str] | None:
        """A sign-in link's session, once: None when the link is unknown, used or expired."""
        keyring = self.auth.keyring

        def write(conn: sqlite_utils.Database) -> tuple[str, str] | None:
            token_hash = keyring.digest("link:" + token)
            link = row(conn, "select l.api_key_id, l.expires_at, k.revoked_at from signin_links l "
                             "join api_keys k on k.id = l.api_key_id where l.token_hash = ?", [token_hash])
            conn.execute("delete from signin_links where token_hash = ?", [token_hash])
            if link is None or link["expires_at"] < time.time() or link["revoked_at"] is not None:
                return None
            return _new_web_session(conn, keyring, link["api_key_id"])

        return await self.auth.db.execute_write_fn(write)

    async def find(self, secret: str | None) -> WebSession | None:
        """The live session behind a cookie (its key still working), else None."""
        if not secret or len(secret) > 128:
            return None
        secret_hash = self.auth.keyring.digest("web:" + secret)
        found = await self.auth.db.execute_fn(lambda conn: row(
            conn, "select s.api_key_id, s.csrf from web_sessions s join api_keys k on k.id = s.api_key_id "
                  "where s.secret_hash = ? and s.expires_at > ? and k.revoked_at is null", [secret_hash, time.time()]))
        return WebSession(Principal("key", found["api_key_id"]), found["csrf"]) if found else None

    async def sign_out(self, secret: str) -> None:
        secret_hash = self.auth.keyring.digest("web:" + secret)
        await self.auth.db.execute_write_fn(lambda conn: conn.execute(
            "delete from web_sessions where secret_hash = ?", [secret_hash]))


def require_key(principal: Principal) -> Principal:
    if not principal.is_key:
        raise Forbidden(
            "Client tokens can only start, inspect and stop their capture sessions and open a "
            "websocket; this call needs an API key"
        )
    return principal
