"""Durable jobs: rows in SQLite, run in lanes, durable by construction.

Long work (imports, exports, transcription, indexing, renders, previews) must survive a restart,
must not block the event loop, and must not be done twice. The rules that make that so:

- A job is enqueued *in the same transaction* as whatever causes it (``JobQueue.enqueue`` takes
  the caller's connection), so "the session stopped" and "export it" commit together.
- A claim takes a lease with a fresh token (``leases.py``, the one writer of the ``jobs`` table).
  Liveness is proved *by time*, not by progress steps: while the compute part runs, a
  ``kinds.Heartbeat`` renews the lease every ``job_lease / 4`` seconds (whisper may decode a long
  batch without a progress report, and a busy machine makes every step slower: neither is a hang).
  Only a worker whose process stops renewing for ``job_lease`` seconds is presumed hung, and the
  reaper queues the job again. A stale worker that wakes up finds its token gone: its next step
  raises ``JobLost`` and its result is discarded (fencing). Imports are the exception
  (``Compute.heartbeat=False``): their step is a network read, and a read that brings nothing for a
  lease is a stalled connection that a fresh attempt cures.
- Otherwise an attempt never runs beside the one it superseded: a job whose earlier attempt is
  still running here is not claimed until that attempt has stopped, and a job worker holds a
  per-job lock while it runs an attempt (``celery.py``).
- Handlers are idempotent, keyed by job id: ids of what they create are fixed before they run
  (in ``params``), so a rerun replaces what a killed attempt left, never adds a second copy.
- Each kind belongs to a lane with its own capacity, so a slow import cannot starve exports or
  indexing, nor a long render an export, nor housekeeping anything.
- A kind is split where the database is: an optional ``prepare`` (reads, on the control node,
  merged into the params it hands on), the *compute* part (reads and writes only files under the
  media root and returns a JSON-able result, so it can run on a job worker with no database) and an
  optional ``commit`` (writes rows, on the control node, and returns the job's result). The owning
  service declares all three; ``parts.py`` lists the compute parts for the processes that run them
  away from the control node.

The modules: ``kinds`` (what a job is: a leaf), ``queue`` (the protocol services use), ``leases``
(the table), ``runner`` (the control node's loop over one executor), ``embedded`` and ``celery`` (the
two executors), ``wire`` (every message that crosses a process), ``child`` / ``child_main`` (a
compute part in a process of its own), ``parts`` (the compute parts by name), ``backend`` (which
executor ``REELDB_JOBS`` names). Services import this package's top only; it never imports them.
"""

from .kinds import (CANCELLED, LANES, AutoIndex, Commit, Compute, Handler, JobContext, JobKind, JobLost,
                    Listener, Prepare)
from .leases import Job, request_cancel
from .queue import JobQueue

__all__ = ["CANCELLED", "LANES", "AutoIndex", "Commit", "Compute", "Handler", "Job", "JobContext", "JobKind",
           "JobLost", "JobQueue", "Listener", "Prepare", "request_cancel"]
