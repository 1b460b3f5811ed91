"""What crosses a process boundary as JSON (the job and ingest wires): msgspec, with one hook."""

from __future__ import annotations

from typing import Any


def plain(obj: Any) -> Any:
    """msgspec's hook for values it does not encode itself: numpy scalars (a transcript item's times
    and confidences, a compute part's durations) become the Python numbers they hold."""
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    raise NotImplementedError(f"cannot send a {type(obj).__name__} between processes")
