"""Operator commands: ``reeldb doctor``, ``reeldb backup`` and ``reeldb restore``.

- ``doctor`` checks what a start needs, one line per check (``ok``, ``warn`` or ``FAIL``), and
  exits 1 when a check fails: the data dir, disk space, the database, the bundled models (loaded
  for real), the port (free, or our own server answering), ICE host candidates and ICE servers,
  and ingest workers (``REELDB_INGEST_WORKERS``; with a server running, each worker as it reports).
- ``backup`` is consistent while the server runs: the database through SQLite's online backup API
  (a snapshot of one moment, WAL included), then the media and session folders of that snapshot
  (a session still recording is copied as far as it was flushed; its files are Matroska written
  with flush_packets, so a truncated copy plays up to its last whole cluster).
- ``restore`` copies a backup into an empty data dir (``--force`` replaces what is there; stop the
  server first) and rewrites the media paths the database holds to the new place.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Callable

from .settings import Settings

#: Below this many free bytes on the data dir's file system, doctor fails; below 5x, it warns.
MIN_FREE = 1 << 30
BACKUP_FORMAT = 1
#: Never copied: the quickstart's plaintext key (the operator holds it), staging and partial uploads.
SKIP_TOP = {"api_key", "worker_token", "reeldb.db", "reeldb.db-wal", "reeldb.db-shm", "exports", "uploads", "renders", "BACKUP.json"}


# -- doctor --------------------------------------------------------------------------------------
def doctor(settings: Settings, out=sys.stdout) -> int:
    failures = 0

    def say(state: str, name: str, detail: str) -> None:
        nonlocal failures
        failures += state == "FAIL"
        print(f"{state:<5} {name}: {detail}", file=out, flush=True)

    def check(name: str, fn: Callable[[], tuple[str, str]]) -> None:
        try:
            state, detail = fn()
        except Exception as exc:  # a check that crashes is a failed check, named
            state, detail = "FAIL", f"{type(exc).__name__}: {exc}"
        say(state, name, detail)

    check("data dir", lambda: _data_dir(settings))
    check("disk", lambda: _disk(settings))
    check("database", lambda: _database(settings))
    if settings.jobs != "embedded":
        check("job workers", lambda: _job_workers(settings))
    check("whisper model", lambda: _whisper(settings))
    check("embedding model", lambda: _embedder(settings))
    check("port", lambda: _port(settings))
    check("ice candidates", lambda: _ice(settings))
    check("ice servers", lambda: _ice_servers(settings))
    check("ingest workers", lambda: _ingest_workers(settings))
    say("ok", "ffmpeg, espeak", "not needed (PyAV's wheels carry FFmpeg's libraries; tests alone use espeak)")
    return 1 if failures else 0


def _job_workers(settings: Settings) -> tuple[str, str]:
    """REELDB_JOBS=celery: Redis answers, and which ``reeldb worker jobs`` processes beat there."""
    if settings.jobs != "celery":
        return "FAIL", f"REELDB_JOBS={settings.jobs!r}: embedded or celery"
    if not settings.redis_url:
        return "FAIL", "REELDB_JOBS=celery needs REELDB_REDIS_URL"
    from .jobs.celery import job_workers

    workers = job_workers(settings)  # a Redis that does not answer fails the check, named
    if not workers:
        return "warn", f"Redis at {settings.redis_url} answers, but no job worker is running (`reeldb worker jobs`)"
    return "ok", f"{len(workers)} on {settings.redis_url}: " + "; ".join(
        f"{w['name']} (pid {w['pid']} on {w['host']}, running {len(w.get('running', {}))}, "
        f"done {w.get('done', 0)}, failed {w.get('failed', 0)})" for w in workers)


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists():
        path = path.parent
    return path


def _data_dir(settings: Settings) -> tuple[str, str]:
    d = settings.data_dir.resolve()
    if not d.exists():
        parent = _existing(d)
        return ("ok", f"{d} does not exist yet; {parent} is writable") if os.access(parent, os.W_OK) else (
            "FAIL", f"{d} does not exist and {parent} is not writable")
    return ("ok", f"{d} is writable") if os.access(d, os.W_OK) else ("FAIL", f"{d} is not writable")


def _disk(settings: Settings) -> tuple[str, str]:
    usage = shutil.disk_usage(_existing(settings.media_root_dir))
    floor = int(settings.disk_floor_mb * 1024 * 1024)
    text = (f"{usage.free / 1e9:.1f} GB free of {usage.total / 1e9:.1f} GB; "
            f"{(usage.free - floor) / 1e9:.1f} GB above the floor of {settings.disk_floor_mb:g} MB (REELDB_DISK_FLOOR_MB)")
    if usage.free < floor:
        return "FAIL", text + ": below the floor, recordings stop and uploads are refused"
    if usage.free < MIN_FREE:
        return "FAIL", text + f" (under {MIN_FREE / 1e9:.1f} GB)"
    return ("warn", text + " (low for recordings)") if usage.free < 5 * MIN_FREE else ("ok", text)


def _database(settings: Settings) -> tuple[str, str]:
    if not settings.db_path.exists():
        return "ok", f"{settings.db_path} not created yet (the first start makes it)"
    conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True, timeout=10)
    try:
        result = conn.execute("pragma quick_check").fetchone()[0]
        sessions = conn.execute("select count(*) from capture_sessions").fetchone()[0]
        media = conn.execute("select count(*) from media").fetchone()[0]
    finally:
        conn.close()
    if result != "ok":
        return "FAIL", f"quick_check: {result}"
    return "ok", f"{settings.db_path}: quick_check ok, {sessions} sessions, {media} assets"


def _whisper(settings: Settings) -> tuple[str, str]:
    from reeldb.index.models import get_whisper, resolve_whisper

    start = time.monotonic()
    get_whisper(settings.whisper_model)
    return "ok", f"{resolve_whisper(settings.whisper_model)} loaded in {time.monotonic() - start:.1f}s"


def _embedder(settings: Settings) -> tuple[str, str]:
    from reeldb.index.models import get_embedder, resolve_embedder

    start = time.monotonic()
    model = get_embedder(settings.embed_model)
    dims = len(model.encode(["doctor"])[0])
    return "ok", f"{resolve_embedder(settings.embed_model)} loaded in {time.monotonic() - start:.1f}s ({dims} dims)"


def _port(settings: Settings) -> tuple[str, str]:
    where = f"{settings.host}:{settings.port}"
    try:
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((settings.host, settings.port))
        return "ok", f"{where} is free"
    except OSError as exc:
        bind_error = exc
    import httpx

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else ("::1" if settings.host == "::" else settings.host)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{settings.port}/health"
    try:
        body = httpx.get(url, timeout=3).json()
    except Exception:
        return "FAIL", f"{where} is taken ({bind_error.strerror}) by something that is not ReelDB"
    if body == {"success": True, "data": {"status": "ok"}}:
        return "ok", f"{where} is ReelDB, answering /health"
    return "FAIL", f"{where} is taken by something that is not ReelDB"


def _ice(settings: Settings) -> tuple[str, str]:
    import aioice.ice

    from reeldb.capture.ice import from_env_value, parse_port_range, restrict_host_addresses

    chosen = from_env_value(settings.ice_addresses)
    restrict_host_addresses(chosen)
    try:
        addresses = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True)
    finally:
        restrict_host_addresses(None)
    if not addresses:
        return "FAIL", ("no host address to offer (only loopback?); set REELDB_ICE_ADDRESSES=127.0.0.1 for "
                        "recorders on this machine" if not chosen else f"none of {chosen} usable")
    how = "REELDB_ICE_ADDRESSES" if chosen else "every interface but loopback"
    ports = parse_port_range(settings.ice_port_range)
    where = (f"UDP ports {ports[0]}-{ports[1]} (REELDB_ICE_PORT_RANGE)" if ports
             else f"UDP ports from net.ipv4.ip_local_port_range {_port_range()}")
    if ports:  # each address of a session takes one port of the range: can we bind one now?
        free = sum(_udp_free(addresses[0], port) for port in range(ports[0], ports[1] + 1))
        if not free:
            return "FAIL", f"{', '.join(addresses)}: no free UDP port in {ports[0]}-{ports[1]}"
        where += f", {free} free"
    return "ok", f"{', '.join(addresses)} ({how}; {where})"


def _udp_free(address: str, port: int) -> bool:
    try:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((address, port))
        return True
    except OSError:
        return False


def _port_range() -> str:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return f"{low}-{high}"
    except (OSError, ValueError):
        return "unknown"


def _ice_servers(settings: Settings) -> tuple[str, str]:
    from reeldb.capture.ice import parse_ice_servers

    servers = parse_ice_servers(settings.ice_servers)
    if not servers:
        return "ok", "none (host candidates only: fine on a LAN or with a public address)"
    return "ok", ", ".join(str(s.urls) for s in servers)


def _ingest_workers(settings: Settings) -> tuple[str, str]:
    """What REELDB_INGEST_WORKERS says, and with a control node answering, each worker's last report."""
    import httpx

    from .ingest.backend import WORKER_TOKEN_HEADER, worker_token
    from .ingest.supervisor import control_url, worker_count

    try:
        count = worker_count(settings.ingest_workers)
    except ValueError as exc:
        return "FAIL", str(exc)
    if count == 0:
        return "ok", "none: capture sessions are received in the server's process (REELDB_INGEST_WORKERS=0)"
    planned = "started elsewhere (external)" if count is None else f"{count} started by `reeldb serve`"
    token = worker_token(settings)
    try:
        r = httpx.get(control_url(settings) + "/internal/ingest/workers", timeout=3, trust_env=False,
                      headers={WORKER_TOKEN_HEADER: token or ""})
        workers = r.json()["data"]["workers"] if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        workers = None
    if workers is None:
        return "ok", (f"{planned}; no control node answering here showed its workers (it needs the worker "
                      "secret: REELDB_WORKER_TOKEN, REELDB_SECRET_KEY or <data dir>/worker_token)")
    if not workers:
        return "FAIL", f"{planned}; the control node knows none (no worker has registered)"
    lines = [f"{w['worker_id']} {'up' if w['up'] else 'DOWN'} ({w['sessions']} sessions, cpu {w['cpu']:.2f}, "
             f"{w['bitrate'] / 1e6:.1f} Mbit/s, {w['url']})" for w in workers]
    state = "ok" if all(w["up"] for w in workers) else ("warn" if any(w["up"] for w in workers) else "FAIL")
    return state, f"{planned}: " + "; ".join(lines)


# -- backup and restore --------------------------------------------------------------------------
def backup(settings: Settings, dest: Path, out=sys.stdout) -> int:
    src_dir = settings.data_dir
    if not settings.db_path.exists():
        print(f"reeldb backup: no database at {settings.db_path}", file=sys.stderr)
        return 2
    if dest.exists() and any(dest.iterdir()):
        print(f"reeldb backup: {dest} is not empty", file=sys.stderr)
        return 2
    if dest.resolve().is_relative_to(src_dir.resolve()):
        print(f"reeldb backup: {dest} is inside the data dir {src_dir}; choose a place outside it", file=sys.stderr)
        return 2
    dest.mkdir(parents=True, exist_ok=True)
    started = time.time()
    # 1. The database, as of one moment, while the server keeps writing (online backup API).
    source = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dest / "reeldb.db")
    try:
        source.backup(target, pages=1024, sleep=0.005)
        target.execute("pragma journal_mode = delete")
    finally:
        source.close()
    try:
        media = target.execute("select id, collection_id, path from media").fetchall()
        sessions = [r[0] for r in target.execute("select id from capture_sessions")]
    finally:
        target.close()
    # 2. Media of that snapshot: an asset made after it has no row there, one deleted since is gone.
    copied = missing = 0
    for asset_id, collection_id, _ in media:
        folder = settings.media_dir / collection_id / asset_id
        if folder.is_dir():
            shutil.copytree(folder, dest / "media" / collection_id / asset_id, dirs_exist_ok=True)
            copied += 1
        else:
            missing += 1
    # 3. Session folders: what was flushed (a live session's files keep growing; we copy what is there).
    for sid in sessions:
        folder = settings.sessions_dir / sid
        if folder.is_dir():
            _copy_growing(folder, dest / "sessions" / sid)
    # 4. The rest of the top level (server_secret, models/), never the plaintext api_key.
    for item in src_dir.iterdir():
        if item.name in SKIP_TOP or item.name in ("media", "sessions") or item.name.endswith("-server.log"):
            continue
        if item.is_dir():
            shutil.copytree(item, dest / item.name, dirs_exist_ok=True)
        else:
            shutil.copy2(item, dest / item.name)
    info = {"format": BACKUP_FORMAT, "created_at": started, "source": str(src_dir.resolve()),
            "media_dir": str(settings.media_dir), "sessions": len(sessions), "assets": copied,
            "assets_missing": missing, "seconds": round(time.time() - started, 3)}
    (dest / "BACKUP.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"backup of {src_dir} in {dest}: {len(sessions)} sessions, {copied} assets "
          f"({missing} deleted while copying), {info['seconds']}s", file=out)
    if (dest / "server_secret").exists():
        print("note: the backup holds server_secret (keys and links need it): keep it as private as the "
              "data dir, or run with REELDB_SECRET_KEY", file=out)
    return 0


def _copy_growing(src: Path, dst: Path) -> None:
    """Copy a folder whose files may still grow: each file as far as it is written now."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.is_dir():
            _copy_growing(item, dst / item.name)
            continue
        try:
            size = item.stat().st_size
            with open(item, "rb") as r, open(dst / item.name, "wb") as w:
                left = size
                while left > 0:
                    chunk = r.read(min(1 << 20, left))
                    if not chunk:
                        break
                    w.write(chunk)
                    left -= len(chunk)
        except FileNotFoundError:  # a temp file replaced while we copied (manifest.json's tmp)
            continue


def restore(settings: Settings, src: Path, force: bool = False, out=sys.stdout) -> int:
    info_path = src / "BACKUP.json"
    if not info_path.exists() or not (src / "reeldb.db").exists():
        print(f"reeldb restore: {src} is not a ReelDB backup (no BACKUP.json and reeldb.db)", file=sys.stderr)
        return 2
    info = json.loads(info_path.read_text())
    dest = settings.data_dir
    media_root = settings.media_root_dir  # media and sessions go there (the data dir unless REELDB_MEDIA_ROOT)
    if dest.exists() and any(dest.iterdir()):
        if not force:
            print(f"reeldb restore: {dest} is not empty (--force replaces its database, media and "
                  "sessions; stop the server first)", file=sys.stderr)
            return 2
        for name in ("reeldb.db", "reeldb.db-wal", "reeldb.db-shm", "api_key", "server_secret"):
            (dest / name).unlink(missing_ok=True)
        for name in ("media", "sessions", "uploads", "exports"):
            shutil.rmtree(dest / name, ignore_errors=True)
            shutil.rmtree(media_root / name, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name == "BACKUP.json":
            continue
        if item.is_dir():
            into = media_root if item.name in ("media", "sessions") else dest
            shutil.copytree(item, into / item.name, dirs_exist_ok=True)
        else:
            shutil.copy2(item, dest / item.name)
    # Paths relative to the media root, whatever the backup's database held (older ones: absolute).
    conn = sqlite3.connect(dest / "reeldb.db")
    try:
        with conn:
            from .library import rebase_paths  # (its imports are heavy; only a restore needs them)

            rebase_paths(conn, lambda path, collection_id, asset_id: _moved(path, settings, collection_id, asset_id))
    finally:
        conn.close()
    print(f"restored {src} ({info.get('sessions')} sessions, {info.get('assets')} assets, "
          f"taken {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(info.get('created_at', 0)))} UTC) into {dest}",
          file=out)
    return 0


def _moved(path: str | None, settings: Settings, collection_id: str, asset_id: str) -> str | None:
    """The stored path of an asset's file after a restore: ``media/<collection>/<asset>/…``,
    relative to the media root (a path that names no asset folder is left as it is)."""
    if not path:
        return path
    marker = f"{collection_id}/{asset_id}/"
    at = path.replace(os.sep, "/").rfind(marker)
    if at < 0:
        return path
    return f"media/{collection_id}/{asset_id}/{path.replace(os.sep, '/')[at + len(marker):]}"


def jobs(settings: Settings, action: str, job_id: str | None = None, out=sys.stdout) -> int:
    """``reeldb jobs list`` / ``cancel JOB_ID``, on the database file (a running server sees a cancel
    at its runner's next pass, within seconds, as it sees ``keys revoke``)."""
    from .database import Database, rows
    from .jobs import request_cancel

    if not settings.db_path.exists():
        print(f"no database at {settings.db_path}: nothing has run yet", file=sys.stderr)
        return 1
    db = Database(settings.db_path, readers=1)
    try:
        if action == "list":
            found = db.read_sync(lambda conn: list(rows(
                conn, "select id, kind, status, progress, attempts from jobs "
                      "where status in ('queued', 'running', 'cancelling') order by created_at")))
            for job in found:
                print(f"{job['id']}  {job['kind']:<10} {job['status']:<10} {round((job['progress'] or 0) * 100):>3} %  "
                      f"attempt {job['attempts']}", file=out)
            if not found:
                print("no job is queued or running", file=out)
            return 0
        assert job_id is not None
        job = db.write_sync(lambda conn: request_cancel(conn, job_id))
        if job is None:
            print(f"{job_id}: no such job, or it has ended already", file=sys.stderr)
            return 1
        print(f"{job_id} ({job['kind']}): cancelling; a running server stops it at its next step", file=out)
        return 0
    finally:
        db.close()
