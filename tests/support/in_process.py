"""The real server inside the test process: ``create_app`` over a real SQLite file in a tmp data
dir, served by uvicorn on a loopback port from a thread, as ``reeldb serve`` serves it (the same
HTTP protocol with its deadlines, websockets, lifespan). No subprocess starts, so a test of route
behaviour pays neither a Python start nor the model loads of a new process (the models, once
loaded, are shared by every server of the session), and the SDK, ``requests`` and PyAV reach it
over HTTP exactly as they reach a process.

What needs a process of its own stays on :class:`support.server_process.ServerProcess`: a
restart, a crash or SIGKILL, the server's log, ingest workers, Celery, a network namespace.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .server_process import free_port, wait_until

API_KEY = "sk-test-" + "k" * 24


@dataclass
class InProcessServer:
    data_dir: Path
    api_key: str = API_KEY
    #: Settings fields (``sync_wait="10"``, as ``REELDB_SYNC_WAIT`` would say).
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "InProcessServer":
        import uvicorn

        from reeldb.server.app import create_app
        from reeldb.server.deadlines import protocol
        from reeldb.server.seqdeps import resolve_dependencies_in_order
        from reeldb.server.settings import Settings

        resolve_dependencies_in_order()  # what `reeldb serve` does for its process (idempotent)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        environ = {**{k: v for k, v in os.environ.items() if k.startswith("REELDB_")},  # as a child inherits
                   "REELDB_DATA_DIR": str(self.data_dir), "REELDB_HOST": self.host, "REELDB_PORT": str(self.port),
                   # capture runs in this process: no `reeldb worker ingest` children
                   "REELDB_INGEST_WORKERS": "0",
                   **{f"REELDB_{k.upper()}": str(v) for k, v in self.env.items()}}
        if self.api_key:
            environ["REELDB_API_KEY"] = self.api_key
        settings = Settings.from_env(environ)
        config = uvicorn.Config(create_app(settings), host=self.host, port=self.port, lifespan="on",
                                log_level="warning", access_log=False, ws="websockets-sansio",
                                http=protocol(settings.header_timeout, settings.body_timeout),
                                timeout_keep_alive=int(settings.keep_alive) or 1)
        self._server = uvicorn.Server(config)
        self._failed: list[BaseException] = []

        def serve() -> None:
            try:
                asyncio.run(self._serve())
            except BaseException as exc:  # noqa: BLE001 - reported by start()
                self._failed.append(exc)

        self._thread = threading.Thread(target=serve, name=f"reeldb-{self.port}", daemon=True)
        self._thread.start()

        def up() -> bool:
            if self._failed or not self._thread.is_alive():
                raise RuntimeError(f"the in-process server did not start: {self._failed!r}")
            return self._server.started

        wait_until(up, timeout, "the in-process server to start", every=0.02)
        return self

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.serve()

    def stop(self) -> None:
        """Stop as SIGTERM stops ``reeldb serve`` (uvicorn's graceful exit, then the lifespan's
        shutdown); a server still up after a minute fails the test with where it is stuck."""
        if getattr(self, "_thread", None) and self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(60)
            assert not self._thread.is_alive(), "the in-process server did not stop:\n" + self._stuck()

    def _stuck(self) -> str:
        """The server thread's stack and its event loop's tasks' stacks (a shutdown that hangs)."""
        frame = sys._current_frames().get(self._thread.ident)
        where = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)\n"
        loop = getattr(self, "_loop", None)
        if loop is not None:
            for task in list(asyncio.all_tasks(loop)):
                out = io.StringIO()
                task.print_stack(limit=8, file=out)
                where += f"\n{task.get_name()}:\n{out.getvalue()}"
        return where
