"""Where an import may reach: local directories the operator lists, and public network addresses.

Two rules, kept here so they are read and tested in one place:

- ``file://`` imports read only inside ``REELDB_IMPORT_DIRS`` (symlinks and ``..`` resolved first) and
  never inside the data directory: opening ``reeldb.db`` in the server process, even to read it,
  drops SQLite's POSIX locks on it (closing any descriptor of a file releases the process's locks).
- ``http(s)://`` imports connect only to global unicast addresses unless the operator allows private
  ones. The check is made where the socket is made: :class:`GuardedBackend` resolves the name,
  checks every address, then connects to the address it checked, so DNS rebinding and redirects to
  internal hosts meet the same rule (each redirect hop opens its own connection through it).

Relies on httpcore's public ``network_backend`` seam (``SyncBackend.connect_tcp``) and on the
stream's ``get_extra_info("socket")``; nothing else of httpcore's internals.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


# -- network addresses ---------------------------------------------------------------------------
def address_refusal(address: str | IPAddress, allow_private: bool = False) -> str | None:
    """Why an import may not connect to ``address`` (a short noun phrase), or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(embedded, allow_private)
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if allow_private:
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if not ip.is_global:
        return "a private or reserved address"
    return None


def literal_address(host: str | None) -> IPAddress | None:
    """``host`` as an IP address when it is written as one (``[::1]`` included), else None."""
    if not host:
        return None
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class BlockedAddress(Exception):
    """A connection the import rules refuse; the message names the host the user gave, not its addresses."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host} is {reason}")
        self.host = host
        self.reason = reason


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's blocking backend, resolving and checking each connection's addresses itself.

    Every resolved address must pass :func:`address_refusal`; the socket then connects to one of
    those very addresses (no second resolution). :meth:`abort` shuts every socket it made, which
    ends a blocked read from another thread: that is how an overall deadline is enforced.
    """

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._aborted = False

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[tuple] | None = None) -> httpcore.NetworkStream:
        if self._aborted:
            raise httpcore.ConnectError("aborted")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(type(exc).__name__) from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        for address in addresses:
            reason = address_refusal(address, self.allow_private)
            if reason is not None:
                raise BlockedAddress(host, reason)
        error: Exception = httpcore.ConnectError("no address")
        for address in addresses:
            try:
                stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            sock = stream.get_extra_info("socket")
            with self._lock:
                self._sockets.append(sock)
                aborted = self._aborted
            if aborted:
                _shutdown(sock)
            return stream
        raise error

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# -- local files ---------------------------------------------------------------------------------
def import_roots(import_dirs: str | None) -> list[Path]:
    """The directories of ``REELDB_IMPORT_DIRS`` (comma- or os.pathsep-separated), resolved."""
    if not import_dirs:
        return []
    parts = import_dirs.replace(os.pathsep, ",").split(",")
    return [Path(os.path.realpath(os.path.expanduser(p.strip()))) for p in parts if p.strip()]


def importable_file(path: str, roots: list[Path], data_dir: Path) -> Path | None:
    """The real path of ``path`` if a ``file://`` import may read it, else None (never opens it).

    Allowed: an absolute path whose real path is a regular file under one of ``roots`` and not
    under ``data_dir``, and that is not one of the database's files under another name (a hard link).
    """
    if not roots or not os.path.isabs(path):
        return None
    real = Path(os.path.realpath(path))
    data = Path(os.path.realpath(data_dir))
    if _within(real, data) or not any(_within(real, root) for root in roots):
        return None
    try:
        st = os.stat(real, follow_symlinks=False)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in _database_inodes(data):
        return None
    return real


def open_importable(real: Path, data_dir: Path) -> int:
    """Open a path :func:`importable_file` returned, refusing any symlink that appeared since.

    Walks the path one component at a time with ``O_NOFOLLOW``, so a directory swapped for a link
    after the check cannot lead the open elsewhere. Returns a file descriptor; raises OSError.
    """
    parts = real.parts
    fd = os.open(parts[0], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in parts[1:-1]:
            nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
        st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in _database_inodes(
                Path(os.path.realpath(data_dir))):
            raise OSError("not an importable file")
        out = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(out).st_mode):
        os.close(out)
        raise OSError("not a regular file")
    return out


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _database_inodes(data: Path) -> set[tuple[int, int]]:
    found = set()
    for name in ("reeldb.db", "reeldb.db-wal", "reeldb.db-shm", "reeldb.db-journal"):
        try:
            st = os.stat(data / name)
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return found
