"""``reeldb`` command line: ``serve`` runs the server, ``keys`` manages API keys."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reeldb", description="ReelDB: self-hosted capture, storage and search.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--host", help="address to listen on (REELDB_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (REELDB_PORT, default 8700)")
    serve.add_argument("--data-dir", type=Path, help="where everything is kept (REELDB_DATA_DIR, default ./data)")
    serve.add_argument("--log-level", help="debug, info, warning (REELDB_LOG_LEVEL)")
    keys = sub.add_parser("keys", help="list API keys and their webhook secrets, or create one")
    keys.add_argument("action", choices=["list", "create"])
    keys.add_argument("--data-dir", type=Path)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(data_dir=args.data_dir, **({"host": args.host, "port": args.port,
                                                                  "log_level": args.log_level}
                                                                 if args.command == "serve" else {}))
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "serve":
        return serve_command(settings)
    return keys_command(settings, args.action)


def serve_command(settings: Settings) -> int:
    import uvicorn

    from reeldb.capture.ice import from_env_value, restrict_host_addresses

    from .app import create_app

    # Process-wide: aioice gathers host candidates from module state. Applied here, once, by the
    # entry point that owns the process (the recorder does the same), never by create_app.
    restrict_host_addresses(from_env_value(settings.ice_addresses))
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    app = create_app(settings)
    print(f"ReelDB listening on http://{settings.host}:{settings.port} (data in {settings.data_dir})", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=False, ws="websockets-sansio", lifespan="on")
    return 0


def keys_command(settings: Settings, action: str) -> int:
    from .auth import add_api_key
    from .database import Database
    from .schema import migrate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_path, readers=1)
    try:
        db.write_sync(migrate)
        if action == "create":
            key, record = db.write_sync(add_api_key)
            print(f"api_key={key}\nwebhook_secret={record['webhook_secret']}")
            return 0
        for record in db.read_sync(lambda conn: list(conn["api_keys"].rows)):
            print(f"{record['id']}\twebhook_secret={record['webhook_secret']}")
        return 0
    finally:
        db.close()


if __name__ == "__main__":
    raise SystemExit(main())
