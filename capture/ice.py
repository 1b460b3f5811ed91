"""Which local addresses, and which UDP ports, WebRTC offers as ICE host candidates.

aioice offers every interface address except loopback. On a laptop with no network, in CI, or
when only some interfaces should carry media, the operator names them instead
(``REELDB_ICE_ADDRESSES=127.0.0.1``). aioice has no option for it, so this module replaces its
address lookup; like ``tap.py`` it is the one place that knows about that internal.

Ports: aioice (0.13) binds each host candidate's socket with
``loop.create_datagram_endpoint(..., local_addr=(address, 0))`` in
``Connection.get_component_candidates``, so the kernel picks the port from its ephemeral range;
neither aioice's ``Connection`` nor aiortc's ``RTCConfiguration`` takes a port or a range. For
``REELDB_ICE_PORT_RANGE`` (a firewall opening a few ports, not 28,000) this module gives
``aioice.ice`` a view of :mod:`asyncio` whose running loop binds those port-0 UDP sockets to a
free port of the range instead. What it relies on, checked by ``tests/capture/test_ice_ports.py``:
``aioice.ice`` looks up ``asyncio.get_running_loop`` on its module global ``asyncio`` at call time,
and host candidates are bound through that loop's ``create_datagram_endpoint`` with port 0 (TURN
sockets are made in ``aioice.turn`` and keep the kernel's choice: they only connect out).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
from typing import Any, Iterable, Optional

import aioice.ice

log = logging.getLogger("reeldb.capture.ice")

_original = aioice.ice.get_host_addresses
_original_asyncio = aioice.ice.asyncio


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


def parse_port_range(value: Optional[str]) -> Optional[tuple[int, int]]:
    """``REELDB_ICE_PORT_RANGE``: ``"40000-40099"`` (inclusive), or unset for the kernel's choice."""
    if not value or not value.strip():
        return None
    try:
        low, high = (int(part) for part in value.replace(":", "-").split("-"))
    except ValueError:
        raise ValueError(f"REELDB_ICE_PORT_RANGE={value!r}: expected LOW-HIGH, e.g. 40000-40099") from None
    if not 1024 <= low <= high <= 65535:
        raise ValueError(f"REELDB_ICE_PORT_RANGE={value!r}: ports must satisfy 1024 <= LOW <= HIGH <= 65535")
    return low, high


class _RangeLoop:
    """The running loop, except that port-0 UDP binds take a free port of ``ports``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ports: tuple[int, int]) -> None:
        self._loop = loop
        self._ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(self, protocol_factory: Any, local_addr: Any = None, **kwargs: Any) -> Any:
        if local_addr is None or local_addr[1] != 0 or kwargs.get("sock") is not None:
            return await self._loop.create_datagram_endpoint(protocol_factory, local_addr=local_addr, **kwargs)
        low, high = self._ports
        ports = list(range(low, high + 1))
        random.shuffle(ports)  # two sessions starting together do not race for the same port
        for port in ports:
            try:
                return await self._loop.create_datagram_endpoint(
                    protocol_factory, local_addr=(local_addr[0], port), **kwargs)
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
        log.warning("no free UDP port in %d-%d on %s (REELDB_ICE_PORT_RANGE): widen the range", low, high,
                    local_addr[0])
        raise OSError(errno.EADDRINUSE, f"no free UDP port in {low}-{high}")


class _AsyncioWithPorts:
    """What ``aioice.ice`` sees as ``asyncio``: the real module but for ``get_running_loop``."""

    def __init__(self, ports: tuple[int, int]) -> None:
        self.ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    def get_running_loop(self) -> _RangeLoop:
        return _RangeLoop(asyncio.get_running_loop(), self.ports)


def restrict_port_range(ports: Optional[tuple[int, int]]) -> None:
    """Bind host candidates to ports ``low..high`` (inclusive); ``None`` restores the kernel's choice."""
    aioice.ice.asyncio = _AsyncioWithPorts(ports) if ports else _original_asyncio
