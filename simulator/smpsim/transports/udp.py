"""SMP over UDP: one datagram in, one datagram per response frame back to the sender."""

from __future__ import annotations

import asyncio
import socket
import typing

from smpsim.transports.runner import Runner


class UdpEndpoint(asyncio.DatagramProtocol):
    """A UDP socket serving SMP, like Zephyr's ``smp_udp`` on port 1337."""

    def __init__(self, runner: Runner, mtu: int) -> None:
        self.runner = runner
        self.mtu = mtu
        """Receive limit: longer datagrams are truncated, as ``MCUMGR_TRANSPORT_UDP_MTU``."""
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        transport = self.transport
        if transport is None:
            return
        self.runner.submit(data[:self.mtu], lambda frame: transport.sendto(frame, addr))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a client that went away: nothing to do, as on a board.
        pass

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port


async def serve_udp(runner: Runner, host: str, port: int) -> UdpEndpoint:
    """Bind ``host:port`` (IPv4 or IPv6 literal) and serve SMP on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: UdpEndpoint(runner, runner.device.profile.firmware.udp_mtu),
        local_addr=(host, port), family=family)
    return protocol


async def serve_udp_socket(runner: Runner, sock: socket.socket) -> UdpEndpoint:
    """Serve SMP on a UDP socket bound already (a fleet binds every board's address before
    any board starts, so a taken address is an error up front)."""
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: UdpEndpoint(runner, runner.device.profile.firmware.udp_mtu), sock=sock)
    return protocol
