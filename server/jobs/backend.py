"""The job runner ``REELDB_JOBS`` names, composed (the app's one call into the jobs package's insides)."""

from __future__ import annotations

from ..database import Database
from ..runtime import Runtime
from ..settings import Settings
from .runner import Jobs


def make_jobs(db: Database, settings: Settings, runtime: Runtime) -> Jobs:
    """``embedded`` (default: compute parts on this process's threads) or ``celery`` (on job workers;
    imported only then: the default install never loads Celery)."""
    if settings.jobs == "celery":
        from .celery import CeleryExecutor

        return Jobs(db, settings, runtime, CeleryExecutor(settings, runtime))
    if settings.jobs != "embedded":
        raise ValueError(f"REELDB_JOBS={settings.jobs!r}: embedded or celery")
    from .embedded import EmbeddedExecutor

    return Jobs(db, settings, runtime, EmbeddedExecutor(settings, runtime))
