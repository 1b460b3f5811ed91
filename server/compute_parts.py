"""Every job kind whose compute part runs away from the control node, by name: the one table that a
Celery job worker and a job's child process (``render_process``) look compute parts up in.

Importable without a database or Celery: each entry is the owning service's compute part and how it
proves it is alive (``JobKind.heartbeat``); the control node checks its registered kinds against it.
"""

from __future__ import annotations

from .jobs import JobKind


def compute_parts() -> dict[str, JobKind]:
    """Every kind a job worker runs, by name: the services' compute parts (and how each proves it is
    alive), importable without a database. The control node checks its registered kinds against
    this table at start."""
    from .editor import render_compute
    from .exports import export_compute
    from .library import previews_compute
    from .spoken import index_compute, transcribe_compute
    from .uploads import import_compute

    return {"upload": JobKind("upload", "imports", import_compute, heartbeat=False),
            "export": JobKind("export", "exports", export_compute),
            "transcribe": JobKind("transcribe", "index", transcribe_compute),
            "index": JobKind("index", "index", index_compute),
            "render": JobKind("render", "renders", render_compute, own_process=True),
            "render_long": JobKind("render_long", "renders_long", render_compute, own_process=True),
            "previews": JobKind("previews", "previews", previews_compute)}
