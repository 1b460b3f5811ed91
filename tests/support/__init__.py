"""The suite's helpers, one package: servers (in this process or as ``reeldb serve``), the one
media generator, speech, recording through the SDK, a private desktop, worker clusters."""

from __future__ import annotations

#: The node id of the running test when it is in the fast tier (set by ``tests/conftest.py``).
fast_test: str | None = None


def refuse_in_fast_tier(what: str) -> None:
    """Keep the fast tier true to its name: a fast test never starts ``what`` (a server process, a
    browser, a desktop, a recorder)."""
    if fast_test is not None:
        raise RuntimeError(f"{fast_test} is marked fast but starts {what}: use the in-process server "
                           f"(tests/support/in_process.py) or take the test out of the fast tier")
