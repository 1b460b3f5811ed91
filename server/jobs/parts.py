"""Every compute part that may run away from the control node, by kind name: the one table a Celery
job worker and a job's child process look compute parts up in, and the runner checks each kind a
service registers against (so what a worker runs is what the service declared).

Each part is a constant of the service module that owns the kind; this module only lists them.
Nothing the services import imports it (the runner reads it when a kind registers).
"""

from __future__ import annotations

from ..editor import RENDERS
from ..exports import EXPORT
from ..library import PREVIEWS
from ..scenes import EXTRACT, SCENE_INDEX
from ..spoken import INDEX, TRANSCRIBE
from ..uploads import IMPORT
from .kinds import Compute


def compute_parts() -> dict[str, Compute]:
    return {part.name: part for part in (IMPORT, EXPORT, TRANSCRIBE, INDEX, *RENDERS, PREVIEWS, EXTRACT,
                                                    SCENE_INDEX)}
