"""SMP over UDP: one datagram in, one datagram per response frame back to the sender."""

from __future__ import annotations

import asyncio
import socket
import typing
from collections.abc import Callable

from smpsim.errors import ConfigError
from smpsim.transports.endpoint import EndpointSpec
from smpsim.transports.origin import Origin
from smpsim.transports.runner import Runner

DEFAULT_ADDRESS = "127.0.0.1:1337"
"""Where a ``udp`` spec without an address binds (Zephyr's smp_udp port)."""
PEERS_KEPT = 1024
"""Senders whose origin and reply callback are kept for the next datagram (a client sends
many): more, and the table starts again."""


class UdpEndpoint(asyncio.DatagramProtocol):
    """A UDP socket serving SMP, like Zephyr's ``smp_udp`` on port 1337."""

    medium = "UDP"
    lost: str | None = None  # a socket or a port has nothing to lose to others

    def __init__(self, runner: Runner, mtu: int) -> None:
        self.runner = runner
        self.mtu = mtu
        """Receive limit: longer datagrams are truncated, as ``MCUMGR_TRANSPORT_UDP_MTU``."""
        self.transport: asyncio.DatagramTransport | None = None
        self._peers: dict[tuple[str | int, ...], tuple[Callable[[bytes], None], Origin]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = typing.cast(asyncio.DatagramTransport, transport)
        if hasattr(transport, "max_size"):
            # Each datagram is read into a buffer of the MTU, not the selector transport's
            # 256 KiB: glibc serves that size with mmap, mremap and munmap per datagram unless
            # an earlier large free has raised its threshold, so three system calls a request
            # came and went with the process's history. A shorter read truncates a longer
            # datagram as the slice in datagram_received does.
            typing.cast(typing.Any, transport).max_size = self.mtu

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        peer = self._peers.get(addr)
        if peer is None:
            transport = self.transport
            if transport is None:
                return
            if len(self._peers) >= PEERS_KEPT:
                self._peers.clear()
            peer = self._peers[addr] = (
                lambda frame: transport.sendto(frame, addr),
                Origin("udp", f"{addr[0]}:{addr[1]}"))
        send, origin = peer  # a call with *peer costs more than the unpacking
        self.runner.submit(data[:self.mtu], send, origin)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a client that went away: nothing to do, as on a board.
        pass

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def describe(self) -> str:
        """The bound address, ``[v6]:port`` for IPv6."""
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def started(self) -> None:
        """Nothing more to do: the socket serves from the moment it is bound."""

    async def close(self) -> None:
        """Close the socket."""
        if self.transport is not None:
            self.transport.close()
        self._peers.clear()


def parse_hostport(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); raises ConfigError with the reason."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]:")
    else:
        host, sep, rest = text.rpartition(":")
    if not sep or not host or (":" in host and not text.startswith("[")):
        raise ConfigError(f"bad address {text!r}: expected HOST:PORT or [IPV6]:PORT")
    try:
        port = int(rest)
    except ValueError:
        raise ConfigError(f"bad port in {text!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"port out of range in {text!r}")
    return host, port


async def open_endpoint(runner: Runner, spec: EndpointSpec) -> UdpEndpoint:
    """Serve SMP on the spec's ``HOST:PORT`` (or its bound socket); a bind failure is a
    :class:`ConfigError`."""
    if spec.sock is not None:
        return await serve_udp_socket(runner, spec.sock)
    host, port = parse_hostport(spec.where or DEFAULT_ADDRESS)
    try:
        return await serve_udp(runner, host, port)
    except OSError as exc:
        raise ConfigError(f"cannot serve UDP on {host}:{port}: {exc.strerror}") from None


async def serve_udp(runner: Runner, host: str, port: int) -> UdpEndpoint:
    """Bind ``host:port`` (IPv4 or IPv6 literal) and serve SMP on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            # One socket per family, as Zephyr's smp_udp opens: [::]:P then takes IPv6 only,
            # so 0.0.0.0:P can be served beside it (the container image serves both).
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: UdpEndpoint(runner, runner.device.profile.firmware.udp_mtu), sock=sock)
    return protocol


async def serve_udp_socket(runner: Runner, sock: socket.socket) -> UdpEndpoint:
    """Serve SMP on a UDP socket bound already."""
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: UdpEndpoint(runner, runner.device.profile.firmware.udp_mtu), sock=sock)
    return protocol
