"""``reeldb`` command line: ``serve`` runs the server, ``keys`` lists, creates and revokes API keys,
``record`` records this machine (``capture/record.py``), ``doctor``, ``backup`` and ``restore``
are the operator's (``ops.py``), ``worker ingest`` hosts capture sessions for a control node
(``ingest/worker.py``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .logs import level_of, setup_logging
from .settings import Settings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["worker", "jobs"]:  # options of its own (see jobs_worker_command)
        return jobs_worker_command(argv[2:])
    parser = argparse.ArgumentParser(prog="reeldb", description="ReelDB: self-hosted capture, storage and search "
                                     "with VideoDB's API. `reeldb COMMAND --help` says more about each command.",
                                     epilog="Settings: REELDB_* environment variables (the docs' configuration "
                                            "page, at /docs on a running server); flags win.")
    parser.add_argument("--version", action="version", version=f"reeldb {version()}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the server: the API, the pages (/capture, /watch) and the docs (/docs)")
    serve.add_argument("--host", help="address to listen on (REELDB_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (REELDB_PORT, default 8700)")
    serve.add_argument("--data-dir", type=Path, help="where everything is kept (REELDB_DATA_DIR, default ./data)")
    serve.add_argument("--log-level", help="debug, info, warning (REELDB_LOG_LEVEL)")
    keys = sub.add_parser("keys", help="list, create or revoke API keys",
                          description="list: ids, creation time, origin and state (add --show-secrets "
                                      "for the webhook secrets); create: a new key, printed once; "
                                      "revoke KEY_ID: the key and its client tokens stop working "
                                      "within seconds, also on a running server.")
    keys.add_argument("action", choices=["list", "create", "revoke"])
    keys.add_argument("key_id", nargs="?", help="for revoke: the key's id, as `keys list` shows it")
    keys.add_argument("--show-secrets", action="store_true", help="list: print each key's webhook secret")
    keys.add_argument("--data-dir", type=Path)
    doctor = sub.add_parser("doctor", help="check models, disk, database, port and ICE; non-zero exit on a failure")
    doctor.add_argument("--data-dir", type=Path)
    doctor.add_argument("--host")
    doctor.add_argument("--port", type=int)
    backup = sub.add_parser("backup", help="copy the database (online) and media to DEST, also while serving")
    backup.add_argument("dest", type=Path)
    backup.add_argument("--data-dir", type=Path)
    restore = sub.add_parser("restore", help="restore a backup into an empty data dir (--force: replace)")
    restore.add_argument("src", type=Path)
    restore.add_argument("--data-dir", type=Path)
    restore.add_argument("--force", action="store_true", help="replace the target's database and media")
    jobs = sub.add_parser("jobs", help="list running and queued jobs, or cancel one",
                          description="list: the jobs not yet ended (id, kind, status, progress, attempts); "
                                      "cancel JOB_ID: a running server stops it within seconds (at its "
                                      "next step) and discards its work.")
    jobs.add_argument("action", choices=["list", "cancel"])
    jobs.add_argument("job_id", nargs="?", help="for cancel: the job's id, as `jobs list` shows it")
    jobs.add_argument("--data-dir", type=Path)
    worker = sub.add_parser("worker", help="`worker ingest`: receive capture sessions for a control node; "
                                           "`worker jobs`: run its jobs through Redis (REELDB_JOBS=celery)")
    worker.add_argument("role", choices=["ingest"], help="ingest: host capture sessions (WebRTC in, channel files out)")
    worker.add_argument("--control", help="the control node's URL (REELDB_CONTROL_URL, default http://127.0.0.1:<port>)")
    worker.add_argument("--data-dir", type=Path, help="the control node's data folder, shared (REELDB_DATA_DIR)")
    worker.add_argument("--host", help="address of the worker's internal API (REELDB_WORKER_HOST, default 127.0.0.1)")
    worker.add_argument("--port", type=int, help="its port (REELDB_WORKER_PORT, default any free one)")
    worker.add_argument("--url", help="the URL the control node reaches it at (REELDB_WORKER_URL)")
    worker.add_argument("--id", help="the worker's name ({pid} is replaced; default <hostname>-<pid>)")
    worker.add_argument("--log-level", help="debug, info, warning (REELDB_LOG_LEVEL)")
    worker.add_argument("--supervised-by", type=int, help=argparse.SUPPRESS)  # the serve process that started it
    from reeldb.capture import record as record_cli

    record_cli.add_arguments(sub.add_parser(
        "record", help="record this machine's screen and microphone (Ctrl-C stops; prints the player link)"))
    sample = sub.add_parser("sample", help="write a short test video (moving colour bars and a tone) to try uploads")
    sample.add_argument("path", type=Path, help="where to write it, e.g. meeting.mp4")
    sample.add_argument("--seconds", type=float, default=10.0, help="its length (default 10)")
    args = parser.parse_args(argv)
    if args.command == "sample":
        from .sample import write_sample

        write_sample(args.path, args.seconds)
        print(f"{args.path}: {args.seconds:g} s of colour bars and a 440 Hz tone")
        return 0
    if args.command == "record":  # a client of the API: no server settings to read
        return record_cli.command(args)
    try:
        settings = Settings.from_env(data_dir=args.data_dir, **({"host": args.host, "port": args.port,
                                                                  "log_level": getattr(args, "log_level", None)}
                                                                 if args.command in ("serve", "doctor") else {}),
                                     **({"control_url": args.control, "worker_host": args.host,
                                         "worker_port": args.port, "worker_url": args.url,
                                         "log_level": args.log_level} if args.command == "worker" else {}))
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "serve":
        return serve_command(settings)
    if args.command == "worker":
        return worker_command(settings, args.id, args.supervised_by)
    if args.command in ("doctor", "backup", "restore"):
        from . import ops

        if args.command == "doctor":
            return ops.doctor(settings)
        if args.command == "backup":
            return ops.backup(settings, args.dest)
        return ops.restore(settings, args.src, force=args.force)
    if args.command == "jobs":
        if (args.action == "cancel") != bool(args.job_id):
            parser.error("cancel takes one job id (see `reeldb jobs list`); list takes none")
        from . import ops

        return ops.jobs(settings, args.action, args.job_id)
    if (args.action == "revoke") != bool(args.key_id):
        parser.error("revoke takes one key id (see `reeldb keys list`); list and create take none")
    return keys_command(settings, args.action, args.key_id, args.show_secrets)


def _process_setup(settings: Settings, command: str) -> str | None:
    """ICE restrictions and the log format check, for the entry points that own a process and
    receive WebRTC (``serve``, ``worker ingest``); returns an error message or None."""
    from reeldb.capture.ice import (from_env_value, parse_ice_servers, parse_port_range, restrict_host_addresses,
                                    restrict_port_range)

    # Process-wide: aioice gathers host candidates from module state. Applied here, once, by the
    # entry point that owns the process (the recorder does the same), never by create_app.
    restrict_host_addresses(from_env_value(settings.ice_addresses))
    from .heap import limit_arenas

    limit_arenas(settings.malloc_arenas)  # process-wide as well, before any thread allocates
    from .seqdeps import resolve_dependencies_in_order

    resolve_dependencies_in_order()  # process-wide too: litestar's dependencies without a task group each
    try:
        parse_ice_servers(settings.ice_servers)
        restrict_port_range(parse_port_range(settings.ice_port_range))  # process-wide too
    except ValueError as exc:  # a bad REELDB_ICE_SERVERS or REELDB_ICE_PORT_RANGE stops the start, named
        return f"reeldb {command}: {exc}"
    if settings.log_format not in ("text", "json"):
        return f"reeldb {command}: REELDB_LOG_FORMAT={settings.log_format!r}: text or json"
    try:
        level_of(settings)
    except ValueError as exc:
        return f"reeldb {command}: {exc}"
    return None


def worker_command(settings: Settings, worker_id: str | None, parent: int | None = None) -> int:
    import os

    if parent is not None:
        # Started by `reeldb serve`: end with it, also when it is SIGKILLed (a worker left behind
        # would keep a port and re-register with the next control node). SIGTERM: files finalized.
        from .ingest.supervisor import end_with_parent

        if not end_with_parent(parent):
            return 0
    problem = _process_setup(settings, "worker ingest")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    setup_logging(settings)
    from .ingest.worker import run

    return run(settings, worker_id.replace("{pid}", str(os.getpid())) if worker_id else None)


def serve_command(settings: Settings) -> int:
    import uvicorn

    problem = _process_setup(settings, "serve")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    setup_logging(settings)
    from .app import create_app  # after logging is set: importing the routes may warn

    app = create_app(settings)
    setup_logging(settings)  # again: litestar put handlers of its own on the root logger
    print(banner(settings, {route.path for route in app.routes}, app.state.signin_url), flush=True)
    from .deadlines import protocol

    # log_config=None, log_level=None: uvicorn's loggers propagate to ours at the levels set there
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, log_level=None,
                access_log=False, ws="websockets-sansio", lifespan="on",
                http=protocol(settings.header_timeout, settings.body_timeout),
                timeout_keep_alive=int(settings.keep_alive) or 1)
    return 0


def banner(settings: Settings, paths: set[str], signin_url: str | None = None) -> str:
    """What ``reeldb serve`` prints once it is about to listen: where to go and with what key."""
    base = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::', '') else settings.host}:{settings.port}"
    key_file = settings.data_dir / "api_key"
    if settings.api_key:
        key = "the value of REELDB_API_KEY"
    elif key_file.exists():
        key = f"in {key_file}"
    else:
        key = "printed when it was made (`reeldb keys create` makes another)"
    lines = [f"ReelDB {version()} listening on http://{settings.host}:{settings.port} (data in {settings.data_dir})"]
    if "/" in paths:
        lines.append(f"  library    {base}/")
    if signin_url:
        lines.append(f"  browser    {signin_url}  (signs this browser in; works once)")
    lines += [f"  record     {base}/capture",
              f"  docs       {base}/docs",
              f"  API key    {key}",
              "  sign in    the SDK takes the key as videodb.connect(api_key=..., base_url=...)"
              + ("; the pages ask for it once" if "/" in paths else "")]
    return "\n".join(lines)


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("reeldb")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def keys_command(settings: Settings, action: str, key_id: str | None = None, show_secrets: bool = False) -> int:
    from datetime import datetime, timezone

    from .auth import Keyring, add_api_key, list_api_keys, revoke_api_key, unverifiable
    from .database import Database
    from .schema import migrate

    def when(ts: float) -> str:
        return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_path, readers=1)
    try:
        db.write_sync(migrate)
        if action == "create":
            fresh = not db.read_sync(lambda conn: conn["api_keys"].count)
            try:
                keyring = Keyring.load(settings, create=fresh)
            except ValueError as exc:
                print(f"reeldb keys create: {exc}", file=sys.stderr)
                return 2
            if db.read_sync(lambda conn: unverifiable(conn, keyring)):
                print("reeldb keys create: this database's keys are hashed under another secret; "
                      "run with the server's REELDB_SECRET_KEY", file=sys.stderr)
                return 2
            key, record = db.write_sync(lambda conn: add_api_key(conn, keyring, origin="cli"))
            print(f"key_id={record['id']}\napi_key={key}\nwebhook_secret={record['webhook_secret']}")
            return 0
        if action == "revoke":
            record = db.write_sync(lambda conn: revoke_api_key(conn, key_id or ""))
            if record is None:
                print(f"reeldb keys revoke: no key {key_id}", file=sys.stderr)
                return 1
            print(f"{record['id']}\trevoked={when(record['revoked_at'])}\t"
                  "(a running server refuses it and its client tokens within seconds; its browsers are signed out)")
            return 0
        for record in db.read_sync(list_api_keys):
            state = ("active" if record["revoked_at"] is None
                     else f"revoked={when(record['revoked_at'])}({record['revoked_reason'] or 'revoked'})")
            line = f"{record['id']}\tcreated={when(record['created_at'])}\torigin={record['origin'] or 'unknown'}\t{state}"
            if show_secrets:
                line += f"\twebhook_secret={record['webhook_secret']}"
            print(line)
        return 0
    finally:
        db.close()


def jobs_worker_command(argv: list[str]) -> int:
    """``reeldb worker jobs``: a Celery worker running the compute parts of jobs for a control node
    started with ``REELDB_JOBS=celery`` (server/jobs/celery.py). It never opens the database: it
    needs ``REELDB_REDIS_URL`` and the same media root (``--data-dir`` or ``REELDB_MEDIA_ROOT``)."""
    import os
    import socket

    parser = argparse.ArgumentParser(prog="reeldb worker jobs",
                                     description="Run imports, exports, transcription, indexing and renders "
                                                 "for a control node (REELDB_JOBS=celery), through Redis.")
    parser.add_argument("--data-dir", type=Path, help="the control node's data folder as mounted here: the "
                                                      "media root unless REELDB_MEDIA_ROOT (REELDB_DATA_DIR)")
    parser.add_argument("--concurrency", type=int, help="jobs run at once (default REELDB_WORKERS, 2)")
    parser.add_argument("--name", help="the worker's name in /metrics and doctor (default jobs-<host>-<pid>)")
    parser.add_argument("--log-level", help="debug, info, warning (REELDB_LOG_LEVEL)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(data_dir=args.data_dir, log_level=args.log_level)
    except ValueError as exc:
        parser.error(str(exc))
    if not settings.redis_url:
        print("reeldb worker jobs: REELDB_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)", file=sys.stderr)
        return 2
    if args.concurrency is not None and args.concurrency < 1:
        parser.error("--concurrency: at least 1")
    setup_logging(settings)
    from .jobs.celery import JobWorker

    name = args.name or f"jobs-{socket.gethostname()}-{os.getpid()}"
    return JobWorker(settings, name, args.concurrency or settings.workers).serve()


if __name__ == "__main__":
    raise SystemExit(main())
