"""The one database object: a small read pool and one writer thread, in the style of datasette's.

Why: SQLite allows one writer at a time, and every query, however quick, blocks whatever thread
runs it. So nothing here runs on the event loop: reads go to a few reader threads with their own
connections (WAL lets them read while the writer writes), and every write goes to one writer
thread, inside a transaction, in the order it was asked for. Routes ``await`` both; job threads
use the blocking ``*_sync`` forms. :meth:`Database.close` closes every connection it opened.

A hop to a reader thread costs a request two thread wake-ups, more than the read itself: reads that
clients repeat (a polled capture session, a stream's row for each of its segments) go through
:meth:`Database.execute_cached`, answered from memory while SQLite's ``data_version`` says no
connection of any process has committed since they were read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, TypeVar

import sqlite_utils

T = TypeVar("T")
Conn = sqlite_utils.Database
#: A unit of work against one connection, run on a database thread.
Fn = Callable[[Conn], T]


def connect(path: Path) -> Conn:
    """One connection with the project's pragmas (WAL, foreign keys, a generous busy timeout)."""
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")
    db = sqlite_utils.Database(conn)
    if db.journal_mode != "wal":
        db.enable_wal()
    conn.execute("PRAGMA synchronous = NORMAL")
    return db


class Database:
    """Owned by ``create_app`` (or a CLI command); shared by routes, services and jobs alike."""

    def __init__(self, path: Path, readers: int = 3) -> None:
        self.path = path
        self._local = threading.local()
        self._opened: list[Conn] = []
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-write")
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="db-read")
        self._writer_ident: int | None = None
        self._closed = False
        #: execute_cached's answers: key -> (data_version when read, value); one probe connection per
        #: thread that asks (the event loop's), which never waits for a lock.
        self._cache: dict[Hashable, tuple[int, Any]] = {}
        self._probes: list[sqlite3.Connection] = []

    # -- connections -----------------------------------------------------------------------------
    def _conn(self) -> Conn:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path)
            with self._lock:
                self._opened.append(db)
        return db

    def _read(self, fn: Fn[T]) -> T:
        return fn(self._conn())

    def _write(self, fn: Fn[T]) -> T:
        self._writer_ident = threading.get_ident()
        db = self._conn()
        with db.atomic():
            return fn(db)

    # -- from the event loop ---------------------------------------------------------------------
    async def execute_fn(self, fn: Fn[T]) -> T:
        """Run ``fn(conn)`` on a reader thread."""
        return await _hop(self._readers, self._read, fn)

    async def execute_cached(self, key: Hashable, fn: Fn[T]) -> T:
        """``execute_fn(fn)``, answered from memory when ``key`` was read since the last commit of
        any connection (this process's writer, another process: ``reeldb keys``, a restore…), as
        SQLite's ``PRAGMA data_version`` tells: a few microseconds on the loop, against two thread
        wake-ups for a hop. ``fn`` must depend on the database only (not on the time); its value is
        kept and handed out as a copy (dicts and lists copied, so a caller may change its own).
        Errors are not kept."""
        version = self._version()
        if version is not None:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == version:
                return _copied(hit[1])
        value = await self.execute_fn(fn)
        if version is not None:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (version, value)
            return _copied(value)
        return value

    def _version(self) -> int | None:
        """This database's ``data_version`` seen from the calling thread's probe connection, which
        reads no page and has no busy timeout: None (read through) whenever it cannot say at once."""
        probe = getattr(self._local, "probe", None)
        try:
            if probe is None:
                if self._closed:
                    return None
                probe = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
                probe.execute("PRAGMA busy_timeout = 0")
                self._local.probe = probe
                with self._lock:
                    self._probes.append(probe)
            return probe.execute("PRAGMA data_version").fetchall()[0][0]  # stepped to its end: no read left open
        except sqlite3.Error:
            return None

    async def execute_write_fn(self, fn: Fn[T]) -> T:
        """Run ``fn(conn)`` on the writer thread, in one transaction (rolled back if it raises)."""
        return await _hop(self._writer, self._write, fn)

    # -- from other threads (job handlers, CLI) --------------------------------------------------
    def read_sync(self, fn: Fn[T]) -> T:
        return self._readers.submit(self._read, fn).result()

    def write_sync(self, fn: Fn[T]) -> T:
        if threading.get_ident() == self._writer_ident:  # nested: already in the writer's transaction
            return fn(self._conn())
        future: Future[T] = self._writer.submit(self._write, fn)
        return future.result()

    def close(self) -> None:
        """Finish queued work, then close every connection this object opened."""
        if self._closed:
            return
        self._closed = True
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for db in self._opened:
                db.conn.close()
            self._opened.clear()
            for probe in self._probes:
                probe.close()
            self._probes.clear()
            self._cache.clear()


#: At most this many answers are kept by :meth:`Database.execute_cached` (all dropped at once past it).
CACHE_MAX = 512


def _copied(value: Any) -> Any:
    """A copy of rows as the services return them (dicts, lists and tuples of them, and the frozen
    row types of ``rows.py``, whose JSON columns are dicts and lists), so a caller that changes its
    answer does not change the kept one."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = {f.name: _copied(getattr(value, f.name)) for f in dataclasses.fields(value)
                   if f.init and isinstance(getattr(value, f.name), (dict, list, tuple))}
        return dataclasses.replace(value, **changed) if changed else value
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copied(v) for v in value)
    return value


def _settle(future: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


async def _hop(executor: ThreadPoolExecutor, run: Callable[[Fn[T]], T], fn: Fn[T]) -> T:
    """Run on ``executor`` and wake the loop once with the outcome.

    Why not ``asyncio.wrap_future``: it chains a concurrent future to an asyncio one through two
    callbacks and a lock; one ``call_soon_threadsafe`` with the result is measurably cheaper, and
    every request pays this hop.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def work() -> None:
        try:
            result = run(fn)
        except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
            loop.call_soon_threadsafe(_settle, future, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    executor.submit(work)
    return await future


# -- small helpers for the services' SQL ------------------------------------------------------------
def loads(value: str | None, default: Any = None) -> Any:
    return default if value in (None, "") else json.loads(value)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def rows(db: Conn, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
    return db.query(sql, params)


def row(db: Conn, sql: str, params: Any = ()) -> dict[str, Any] | None:
    return next(iter(db.query(sql, params)), None)
