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


def parse_ice_servers(value: Optional[str]) -> list:
    """``REELDB_ICE_SERVERS`` (JSON: a list of ``{"urls": str | [str], "username"?, "credential"?}``,
    as a browser's RTCConfiguration takes) as aiortc ``RTCIceServer``s. aiortc hands aioice the
    first ``stun:`` URL and the first ``turn:``/``turns:`` URL it finds (aioice takes one of each).

    aioice (0.13) binds each host candidate's UDP socket to port 0, so the kernel picks the port
    from ``net.ipv4.ip_local_port_range``: there is no port-range option to pass (see the README's
    deploy section for the firewall rules and the sysctl that narrows the range)."""
    import json

    from aiortc import RTCIceServer

    if not value or not value.strip():
        return []
    try:
        raw = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"REELDB_ICE_SERVERS is not JSON: {exc}") from None
    if isinstance(raw, (str, dict)):
        raw = [raw]
    servers = []
    for item in raw:
        if isinstance(item, str):
            item = {"urls": item}
        if not isinstance(item, dict) or not item.get("urls"):
            raise ValueError(f"REELDB_ICE_SERVERS: each server needs urls, got {item!r}")
        urls = item["urls"]
        for url in [urls] if isinstance(urls, str) else urls:
            if not str(url).startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ValueError(f"REELDB_ICE_SERVERS: {url!r} is not a stun:/turn: URL")
        servers.append(RTCIceServer(urls=urls, username=item.get("username"), credential=item.get("credential")))
    return servers
