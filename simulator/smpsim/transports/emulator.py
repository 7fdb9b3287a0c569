"""An emulated board on the network: a device, its runner and its transport endpoints.

Used by the CLI (in the main thread) and by the pytest plugin (in a background thread).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from smpsim.config import Profile
from smpsim.device.mcu import Device
from smpsim.errors import ConfigError
from smpsim.transports.runner import Runner
from smpsim.transports.serial_pty import PortEndpoint, PtyEndpoint
from smpsim.transports.udp import UdpEndpoint, serve_udp, serve_udp_socket

if TYPE_CHECKING:  # bless is an optional extra: imported when BLE is asked for
    from smpsim.transports.ble import BleEndpoint

log = logging.getLogger(__name__)

DEFAULT_UDP = ("127.0.0.1:1337", "[::1]:1337")


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


@dataclass
class Emulator:
    """Everything one emulated board needs to run."""

    profile: Profile
    """Board and firmware."""
    time_scale: float = 0.0
    """1.0 real time, 0 instant."""
    flash_path: Path | None = None
    """Flash file; ``None`` keeps flash in memory."""
    udp: list[tuple[str, int]] = field(default_factory=list)
    """UDP endpoints to serve."""
    udp_sockets: list[socket.socket] = field(default_factory=list)
    """UDP sockets, bound already, to serve on too (a fleet binds them up front)."""
    name: str | None = None
    """What the ready lines and console log lines call the board (default: the profile's
    name; a fleet's board id)."""
    pty: bool = False
    """Serve SMP on a PTY."""
    pty_link: Path | None = None
    """The PTY's symlink; ``None``: :func:`~smpsim.transports.serial_pty.default_link`."""
    serial_device: str | None = None
    """A real serial port to serve SMP on (``/dev/ttyUSB0``)."""
    baud: int | None = None
    """The real port's baud rate; ``None``: the profile's."""
    ble_adapter: str | None = None
    """Serve SMP over Bluetooth LE on this BlueZ adapter (``hci0``); ``None``: no BLE."""
    device: Device = field(init=False)
    runner: Runner = field(init=False)
    endpoints: list[UdpEndpoint] = field(init=False, default_factory=list)
    serial_endpoints: list[PtyEndpoint | PortEndpoint] = field(init=False, default_factory=list)
    ble_endpoints: list[BleEndpoint] = field(init=False, default_factory=list)

    async def start(self) -> list[str]:
        """Power the device on and open every endpoint; returns one ready line per endpoint."""
        self.device = Device(self.profile, time_scale=self.time_scale,
                             flash_path=self.flash_path)
        name = self.name or self.profile.name
        prefix = "" if self.name is None else f"{self.name} "
        self.device.console.subscribe(lambda line: log.info("%sconsole: %s", prefix, line))
        self.runner = Runner(self.device)
        lines = []
        try:
            for host, port in self.udp:
                try:
                    endpoint = await serve_udp(self.runner, host, port)
                except OSError as exc:
                    raise ConfigError(f"cannot serve UDP on {host}:{port}: {exc.strerror}") \
                        from None
                self.endpoints.append(endpoint)
            for sock in self.udp_sockets:
                self.endpoints.append(await serve_udp_socket(self.runner, sock))
            for endpoint in self.endpoints:
                bound_host, bound_port = endpoint.address
                shown = f"[{bound_host}]" if ":" in bound_host else bound_host
                lines.append(f"smpsim: {name} serving SMP over UDP on {shown}:{bound_port}")
            if self.pty:
                self.serial_endpoints.append(PtyEndpoint(self.runner, self.pty_link))
            if self.serial_device is not None:
                self.serial_endpoints.append(
                    PortEndpoint(self.runner, self.serial_device, self.baud))
            lines += [f"smpsim: {name} serving SMP over serial on {e.describe()}"
                      for e in self.serial_endpoints]
            if self.ble_adapter is not None:
                lines.append(await self._start_ble(self.ble_adapter))
            await self.runner.start()
            for ble in self.ble_endpoints:
                await ble.settled()  # advertising before the ready line
                if ble.register_error is not None:
                    raise ConfigError(f"BlueZ refused the SMP service on {ble.adapter}: "
                                      f"{ble.register_error}")
        except BaseException:
            await self.stop()
            raise
        return lines

    async def _start_ble(self, adapter: str) -> str:
        try:
            from smpsim.transports.ble import BleEndpoint
        except ImportError:
            raise ConfigError("BLE needs bless: pip install 'smpsim[ble]'") from None
        endpoint = BleEndpoint(self.runner, adapter)
        self.ble_endpoints.append(endpoint)
        await endpoint.start()
        return (f"smpsim: {self.name or self.profile.name} serving SMP over BLE on "
                f"{endpoint.describe()}")

    async def stop(self) -> None:
        """Close the endpoints and the flash file."""
        for ble in self.ble_endpoints:
            await ble.close()
        self.ble_endpoints.clear()
        for endpoint in self.endpoints:
            if endpoint.transport is not None:
                endpoint.transport.close()
        self.endpoints.clear()
        for serial in self.serial_endpoints:
            await serial.close()
        self.serial_endpoints.clear()
        if hasattr(self, "runner"):
            await self.runner.close()
        if hasattr(self, "device"):
            self.device.close()
