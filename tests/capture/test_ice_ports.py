"""REELDB_ICE_PORT_RANGE: host candidates bound inside a fixed UDP port range (capture/ice.py)."""

from __future__ import annotations

import asyncio
import random
import socket

import aioice
import aioice.ice
import pytest
from aiortc import RTCPeerConnection

from reeldb.capture.ice import parse_port_range, restrict_port_range


def free_range(size: int) -> tuple[int, int]:
    for _ in range(200):
        low = random.randint(42000, 58000)
        try:
            socks = []
            for port in range(low, low + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return low, low + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


@pytest.fixture
def ports():
    chosen = free_range(4)
    restrict_port_range(chosen)
    yield chosen
    restrict_port_range(None)


def test_parse_port_range():
    assert parse_port_range("40000-40099") == (40000, 40099)
    assert parse_port_range("40000:40000") == (40000, 40000)
    assert parse_port_range("") is None and parse_port_range(None) is None
    for bad in ("40000", "a-b", "500-600", "41000-40000", "40000-70000"):
        with pytest.raises(ValueError, match="REELDB_ICE_PORT_RANGE"):
            parse_port_range(bad)


def test_relies_on_aioice_internals():
    """What capture/ice.py relies on: aioice.ice reaches asyncio through its module global."""
    import inspect

    assert aioice.__version__.startswith("0.")
    source = inspect.getsource(aioice.ice.Connection.get_component_candidates)
    assert "asyncio.get_running_loop()" in source and "local_addr=(address, 0)" in source


def test_host_candidates_bind_inside_the_range(ports):
    low, high = ports

    async def gather() -> list[int]:
        connections = [aioice.Connection(ice_controlling=True) for _ in range(3)]
        try:
            for c in connections:
                await c.gather_candidates()
            return [cand.port for c in connections for cand in c.local_candidates if cand.type == "host"]
        finally:
            for c in connections:
                await c.close()

    found = asyncio.run(gather())
    assert len(found) == 3 and len(set(found)) == 3
    assert all(low <= p <= high for p in found), (found, ports)


def test_a_full_range_leaves_no_candidate(ports):
    low, high = ports
    held = []
    try:
        for port in range(low, high + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", port))
            held.append(s)

        async def gather() -> list:
            c = aioice.Connection(ice_controlling=True)
            await c.gather_candidates()
            await c.close()
            return c.local_candidates

        assert asyncio.run(gather()) == []
    finally:
        for s in held:
            s.close()


def test_webrtc_connects_through_the_range(ports):
    low, high = ports

    async def connect() -> list[int]:
        a, b = RTCPeerConnection(), RTCPeerConnection()
        opened = asyncio.Event()
        channel = a.createDataChannel("x")
        channel.on("open", opened.set)
        try:
            await a.setLocalDescription(await a.createOffer())
            await b.setRemoteDescription(a.localDescription)
            await b.setLocalDescription(await b.createAnswer())
            await a.setRemoteDescription(b.localDescription)
            await asyncio.wait_for(opened.wait(), 20)
            return [int(line.split()[5]) for pc in (a, b) for line in pc.localDescription.sdp.splitlines()
                    if line.startswith("a=candidate:") and " typ host" in line]
        finally:
            await a.close()
            await b.close()

    found = asyncio.run(connect())
    assert found and all(low <= p <= high for p in found), (found, ports)
