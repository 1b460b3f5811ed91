"""Every message a job crosses a process with, typed (msgspec structs), in one module both ends import.

Two wires carry jobs away from the control node's threads:

- **A job's child process** (``server/jobs/child.py``): one :class:`ChildRequest` line on its stdin,
  :data:`ChildReport` lines on its stdout.
- **Celery job workers** (``server/jobs/celery.py``): the task message (:class:`JobMessage`, the one
  argument of the ``reeldb.job`` task, as a JSON-able dict) and the reports back on one Redis stream
  (:data:`WorkerReport`, one stream entry each, its fields strings as Redis keeps them).

Both are validated on arrival (a wrong or missing field is a :class:`msgspec.ValidationError`,
never a ``KeyError`` deep in a handler), and both carry :data:`VERSION`: a worker of another
version refuses the message and reports that, and the control node logs one line naming both
versions, instead of running a job whose params it may read differently.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

from ..codec import plain

#: Bumped whenever a message's fields or a kind's params change meaning.
VERSION = 2


class WrongVersion(Exception):
    """A message from a process of another ReelDB version."""


# -- a job's child process ---------------------------------------------------------------------------

class ChildRequest(msgspec.Struct, frozen=True):
    """Parent → child, once: which job's compute part to run, and within what memory."""

    job_id: str
    kind: str
    params: dict[str, Any]
    media_root: str
    memory_mb: int
    data_dir: str | None = None


class Progress(msgspec.Struct, frozen=True, tag="progress"):
    fraction: float


class Done(msgspec.Struct, frozen=True, tag="done"):
    result: dict[str, Any]


class Failed(msgspec.Struct, frozen=True, tag="failed"):
    message: str
    code: str
    out_of_memory: bool = False


#: Child → parent, one a line.
ChildReport = Union[Progress, Done, Failed]

encode = msgspec.json.Encoder(enc_hook=plain).encode
decode_child_request = msgspec.json.Decoder(ChildRequest).decode
decode_child_report = msgspec.json.Decoder(ChildReport).decode


# -- Celery job workers ------------------------------------------------------------------------------

class JobMessage(msgspec.Struct, frozen=True):
    """Control node → job worker: one attempt of one job (the ``reeldb.job`` task's argument)."""

    version: int
    job_id: str
    #: The attempt's fencing token: the worker drops the message once it is no longer current.
    token: str
    kind: str
    #: The job's params merged with what its kind's ``prepare`` read.
    params: dict[str, Any]
    sent_at: float


def job_message(job_id: str, token: str, kind: str, params: dict[str, Any], sent_at: float) -> dict[str, Any]:
    """The task argument, as the JSON Celery carries."""
    return msgspec.to_builtins(JobMessage(VERSION, job_id, token, kind, params, sent_at), enc_hook=plain)


def read_job_message(raw: Any) -> JobMessage:
    """The task argument, validated; :class:`WrongVersion` from a control node of another version
    (its ``job_id``/``token`` still readable, so the worker can answer)."""
    message = msgspec.convert(raw, JobMessage)
    if message.version != VERSION:
        raise WrongVersion(f"control node speaks job wire version {message.version}, this worker {VERSION}")
    return message


class _Report(msgspec.Struct, frozen=True, tag_field="event"):
    job_id: str
    token: str
    worker: str
    version: int


class Started(_Report, frozen=True, tag="started"):
    pass


class Heartbeat(_Report, frozen=True, tag="progress"):
    #: In [0, 1], or -1: alive, no new progress.
    fraction: float = -1.0


class Finished(_Report, frozen=True, tag="done"):
    result: dict[str, Any] | None
    #: Seconds: the wait for the worker (sent to received, not counting a wait for a free slot),
    #: its start (token check, lock), the compute part, and when the report was posted (epoch).
    pickup: float = 0.0
    start: float = 0.0
    compute: float = 0.0
    posted: float = 0.0


class Failure(_Report, frozen=True, tag="failed"):
    error: str
    code: str | None = None
    #: The worker refused the message as from another version (it ran nothing).
    wrong_version: bool = False


#: Job worker → control node, one Redis stream entry each.
WorkerReport = Union[Started, Heartbeat, Finished, Failure]

_builtin = msgspec.json.Encoder(enc_hook=plain)
_report_decoder = msgspec.json.Decoder(WorkerReport)


def report_fields(report: WorkerReport) -> dict[str, str]:
    """A report as one Redis stream entry (its one field ``m``: the JSON)."""
    return {"m": _builtin.encode(report).decode()}


def read_report(fields: dict[str, str]) -> WorkerReport:
    """A stream entry back into its report; ``msgspec.ValidationError``/``DecodeError`` if it is not one."""
    return _report_decoder.decode(fields["m"])
