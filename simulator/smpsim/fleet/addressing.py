"""Where fleet boards listen: one address per board on one port (``127.0.1.1``,
``127.0.1.2``, ... all on 1337, for clients whose port is fixed), or one port per board on one
address. Every socket is bound before any board starts, so a taken or impossible address is an
error up front, never a fleet half started."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from smpsim.errors import ConfigError

SMP_PORT = 1337
"""Zephyr's SMP UDP port (``MCUMGR_TRANSPORT_UDP_PORT``), where fixed-port clients look."""

_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True)
class Addressing:
    """The fleet's addressing scheme."""

    first: str | None = None
    """One address per board, from this one up, on :data:`SMP_PORT`."""
    host: str | None = None
    """One port per board on this address, from :attr:`base_port` up."""
    base_port: int = 0
    """First port (with :attr:`host`)."""

    def assign(self, counts: Sequence[tuple[int, str | None]]) -> list[tuple[str, int]]:
        """(host, port) for every board of specs given as ``(count, first or None)``: each
        spec's boards follow the previous spec's unless it names its own start."""
        endpoints: list[tuple[str, int]] = []
        for count, start in counts:
            if self.first is not None:
                base = _address(start or (str(_next_address(endpoints[-1][0]))
                                          if endpoints else self.first))
                endpoints += [(str(a), SMP_PORT) for a in _addresses(base, count)]
            else:
                assert self.host is not None
                port = _port(start) if start else (endpoints[-1][1] + 1 if endpoints
                                                   else self.base_port)
                if port + count - 1 > 65535:
                    raise ConfigError(f"{count} boards from port {port} need ports up to "
                                      f"{port + count - 1}; the last port is 65535")
                endpoints += [(self.host, p) for p in range(port, port + count)]
        return endpoints


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(f"not an IP address: {text!r}") from None


def _next_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text) + 1


def _addresses(first: ipaddress.IPv4Address | ipaddress.IPv6Address,
               count: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    last_possible = _last_address(first)
    room = int(last_possible) - int(first) + 1
    if count > room:
        raise ConfigError(f"{count} boards from {first} need {count} addresses; only {room} "
                          f"are left up to {last_possible}")
    return [first + i for i in range(count)]


def _last_address(first: ipaddress.IPv4Address | ipaddress.IPv6Address,
                  ) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if first in _LOOPBACK:
        return _LOOPBACK.broadcast_address - 1
    if first.version == 4:
        return ipaddress.IPv4Address("255.255.255.254")
    return ipaddress.IPv6Address((1 << 128) - 1)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ConfigError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"port {port} out of range (1 to 65535)")
    return port


def check_distinct(endpoints: Sequence[tuple[str, int]], names: Sequence[str]) -> None:
    """Two boards of one fleet never share an endpoint (specs with overlapping starts)."""
    seen: dict[tuple[str, int], str] = {}
    for endpoint, name in zip(endpoints, names, strict=True):
        other = seen.setdefault(endpoint, name)
        if other != name:
            raise ConfigError(f"{other} and {name} would both serve {_show(endpoint)}: "
                              "the board specs' address ranges overlap")


def bind_all(endpoints: Sequence[tuple[str, int]]) -> list[socket.socket]:
    """A bound UDP socket per endpoint; if any cannot be bound, none stays bound."""
    sockets: list[socket.socket] = []
    try:
        for host, port in endpoints:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sockets.append(sock)
            try:
                sock.bind((host, port))
            except OSError as exc:
                why = ("in use (another fleet, or another program, is bound there)"
                       if exc.errno == errno.EADDRINUSE else exc.strerror)
                raise ConfigError(f"cannot serve UDP on {_show((host, port))}: {why}") from None
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _show(endpoint: tuple[str, int]) -> str:
    host, port = endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
