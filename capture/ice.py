"""Which local addresses WebRTC offers as ICE host candidates.

aioice offers every interface address except loopback. On a laptop with no network, in CI, or
when only some interfaces should carry media, the operator names them instead
(``REELDB_ICE_ADDRESSES=127.0.0.1``). aioice has no option for it, so this module replaces its
address lookup; like ``tap.py`` it is the one place that knows about that internal.
"""

from __future__ import annotations

from typing import Iterable, Optional

import aioice.ice

_original = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: Optional[Iterable[str]]) -> None:
    """Offer only ``addresses`` (IPv4 or IPv6 literals); ``None`` or empty restores aioice's choice."""
    chosen = [a.strip() for a in (addresses or []) if a.strip()]
    if not chosen:
        aioice.ice.get_host_addresses = _original
        return

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


def from_env_value(value: Optional[str]) -> list[str]:
    return [a for a in (value or "").split(",") if a.strip()]
