"""What a job is, independent of where it runs: its kind's three parts and the context its compute
part gets.

A leaf of the jobs package (it imports no service and no executor), so the services that declare
kinds and the executors that run them both stand on it, and neither reaches the other through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

from ..database import Conn, Database
from ..settings import Settings

T = TypeVar("T")
#: ``uploads``: files already received (the SDK's upload), ``imports``: downloads from URLs, which
#: may trickle for as long as their deadline allows; neither waits behind the other. ``renders_long``:
#: renders over ``REELDB_RENDER_LONG_PIXEL_FRAMES``, one at a time beside one short render.
#: ``previews``: posters and storyboards, made after the stream they preview (one at a time).
LANES = ("uploads", "imports", "exports", "index", "renders", "renders_long", "previews", "maintenance")

#: The error of a cancelled job (``error_code`` ``CANCELLED``).
CANCELLED = "The job was cancelled"


class JobLost(Exception):
    """This worker's lease was taken back (it was presumed hung); stop, the job runs elsewhere."""


@dataclass
class JobContext:
    """What a handler gets: its job, the database seam, and a progress report that is its heartbeat."""

    id: str
    kind: str
    params: dict[str, Any]
    settings: Settings
    #: None on a job worker: its compute part may not touch the database (see the package doc).
    db: Database | None
    _report: Callable[[float, bool], None]
    #: Set by the :class:`Heartbeat` when it learns that a newer attempt owns the job.
    lost: bool = False
    #: Run the compute part in a child process: the server stopped while this job ran before.
    isolated: bool = False

    def progress(self, fraction: float) -> None:
        """Report progress in [0, 1]; also a step where a superseded attempt stops. Raises :class:`JobLost`."""
        if self.lost:
            raise JobLost(self.id)
        self._report(max(0.0, min(1.0, fraction)), False)

    def heartbeat(self) -> None:
        """Prove liveness without new progress (call it from long steps that report nothing)."""
        self._report(-1.0, True)

    def read(self, fn: Callable[[Conn], T]) -> T:
        return self._database().read_sync(fn)

    def write(self, fn: Callable[[Conn], T]) -> T:
        return self._database().write_sync(fn)

    def _database(self) -> Database:
        if self.db is None:
            raise RuntimeError(f"job {self.id} ({self.kind}) touched the database on a job worker: "
                               "that belongs in the kind's prepare or commit part")
        return self.db


Handler = Callable[[JobContext], dict[str, Any] | None]
#: Control node, before the compute part: what it needs from the database, added to its params.
Prepare = Callable[[Conn, dict[str, Any]], dict[str, Any]]
#: Control node, after it: writes the compute part's result as rows; returns the job's result.
Commit = Callable[[JobContext, dict[str, Any]], dict[str, Any] | None]
#: Index a new asset's spoken words unasked, inside the transaction that records it:
#: (that transaction's connection, asset id, media path). ``Spoken.auto_index`` is the one.
AutoIndex = Callable[[Conn, str, str], None]
#: Called on the event loop when a job of a kind ends (done or failed), with its row.
Listener = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Compute:
    """A kind's compute part: files in, JSON out, no database. Declared once, as a constant of the
    service module that owns the kind; ``server/jobs/parts.py`` lists them for the processes that
    run compute parts away from the control node (job workers, a job's child process)."""

    name: str
    lane: str
    handler: Handler
    #: Liveness by time (:class:`Heartbeat`); False: by progress reports alone (imports).
    heartbeat: bool = True
    #: Runs in a child process of its own with ``REELDB_RENDER_MEMORY_MB`` as its memory limit
    #: (renders), on whichever executor runs it (``server/jobs/child.py``).
    own_process: bool = False
    #: Runs on the control node whatever the executor (its work *is* choosing rows: retention).
    local: bool = False


@dataclass(frozen=True)
class JobKind:
    """A kind as its owning service registers it: the compute part and the service's own
    control-node parts around it."""

    compute: Compute
    commit: Commit | None = None
    prepare: Prepare | None = None

    @property
    def name(self) -> str:
        return self.compute.name

    @property
    def lane(self) -> str:
        return self.compute.lane
