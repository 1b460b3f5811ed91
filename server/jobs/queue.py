"""What the rest of the server needs of the job runner (``runner.Jobs`` is the one)."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

from ..database import Conn
from .kinds import JobKind, Listener

Job = dict[str, Any]


@runtime_checkable
class JobQueue(Protocol):
    """What the rest of the server needs of the job runner."""

    def register(self, kind: JobKind) -> None: ...

    def on_finish(self, kind: str, listener: Listener) -> None: ...

    def enqueue(self, conn: Conn, kind: str, params: Mapping[str, Any], lane: str | None = None) -> Job: ...

    def wake(self) -> None: ...

    async def submit(self, kind: str, params: Mapping[str, Any]) -> Job: ...

    async def get(self, job_id: str) -> Job | None: ...

    async def wait(self, job_id: str, timeout: float) -> Job | None: ...

    async def cancel(self, job_id: str, timeout: float = 10.0) -> Job | None: ...
