"""The serial endpoints: a PTY that clients open like a port (through a stable symlink), or a
real port through pyserial. Both carry a :class:`~smpsim.transports.serial.line.SerialLine`.

A PTY endpoint keeps its slave side open itself, so clients may come and go (and open and close
the port repeatedly) without the line ever seeing EOF or EIO. The symlink is removed on exit.

A symlink is served by one board at a time: while it serves, a board holds a claim on the link's
name (a listening socket in Linux's abstract namespace, which goes with the process however it
ends), and a second board asking for the same link is refused with the first one's PID.
"""

from __future__ import annotations

import hashlib
import os
import pty
import socket
import struct
import tempfile
import tty
from pathlib import Path

from smpsim.errors import ConfigError
from smpsim.transports.endpoint import EndpointSpec
from smpsim.transports.runner import Runner
from smpsim.transports.serial.line import BITS_PER_BYTE, SerialLine


def default_link(profile: str) -> Path:
    """The symlink ``smpsim run --serial`` makes when given none: ``smpsim-<profile>-<pid>`` in
    the temporary folder (``-2``, ``-3``... for more boards of one profile in one process)."""
    base = Path(tempfile.gettempdir()) / f"smpsim-{profile}-{os.getpid()}"
    link, n = base, 1
    while link.is_symlink() or link.exists():
        n += 1
        link = base.with_name(f"{base.name}-{n}")
    return link


def claim_link(link: Path) -> socket.socket:
    """Claim the symlink ``link`` for this process (close the socket to give it up); raises
    :class:`ConfigError` naming the holder when a live board serves it."""
    where = link.parent.resolve() / link.name  # the link itself, not the PTY it points to
    name = b"\0smpsim-serial-link-" + hashlib.sha256(os.fsencode(where)).hexdigest().encode()
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind(name)
    except OSError:
        claim.close()
        raise ConfigError(f"serial link {link} is served by {_claim_holder(name)}; one board "
                          "per link (stop that one, or give another --serial LINK)") from None
    claim.listen(1)  # asked who holds it, the kernel answers for us (SO_PEERCRED)
    return claim


def _claim_holder(name: bytes) -> str:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            probe.connect(name)
            creds = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                     struct.calcsize("3i"))
            pid = struct.unpack("3i", creds)[0]
    except OSError:
        return "another process"
    return f"smpsim process {pid}"


class PtyEndpoint:
    """A pseudo-terminal in raw mode, reachable through a stable symlink."""

    medium = "serial"
    lost: str | None = None  # a socket or a port has nothing to lose to others

    def __init__(self, runner: Runner, link: Path | None = None) -> None:
        profile = runner.device.profile
        self.link = link if link is not None else default_link(profile.name)
        """The symlink clients open."""
        self._claim = claim_link(self.link)
        try:
            self.master, self._slave = pty.openpty()
        except BaseException:
            self._claim.close()
            raise
        try:
            tty.setraw(self._slave)
            os.set_blocking(self.master, False)
            self.path = os.ttyname(self._slave)
            """The PTY's own name (``/dev/pts/N``)."""
            self._make_link()
        except BaseException:
            os.close(self.master)
            os.close(self._slave)
            self._claim.close()
            raise
        baud = profile.firmware.serial.baud
        self.line = SerialLine(runner, self.master, speed_bps=baud / BITS_PER_BYTE,
                               software_paced=True, name=str(self.link))

    def _make_link(self) -> None:
        link = self.link
        if link.is_symlink():
            link.unlink()  # left behind by an earlier run that was killed
        elif link.exists():
            raise ConfigError(f"cannot make the serial link {link}: a file is in the way")
        try:
            link.symlink_to(self.path)
        except OSError as exc:
            raise ConfigError(f"cannot make the serial link {link}: {exc.strerror}") from None

    def describe(self) -> str:
        """What the ready line says about the line."""
        serial = self.line.device.profile.firmware.serial
        speed = f"{serial.baud} baud" if serial.baud else "no line speed"
        return f"{self.link} ({self.path}, {serial.transport}, {speed})"

    async def started(self) -> None:
        """Nothing more to do: the line serves from the moment it is open."""

    async def close(self) -> None:
        """Close the PTY and remove the symlink (if it is still ours)."""
        await self.line.close()
        try:
            if self.link.is_symlink() and os.readlink(self.link) == self.path:
                self.link.unlink()
        except OSError:
            pass
        os.close(self.master)
        os.close(self._slave)
        self._claim.close()


class PortEndpoint:
    """A real serial port (``/dev/ttyUSB0``) opened through pyserial: its hardware sets the
    pace, so nothing is paced in software."""

    medium = "serial"
    lost: str | None = None  # a socket or a port has nothing to lose to others

    def __init__(self, runner: Runner, device: str, baud: int | None = None) -> None:
        import serial  # type: ignore[import-untyped]  # only this endpoint needs pyserial

        profile_baud = runner.device.profile.firmware.serial.baud
        self.baud = baud or profile_baud or 115200
        """The port's baud rate: ``--baud``, else the profile's, else 115200."""
        self.device = device
        try:
            self.port = serial.Serial(device, baudrate=self.baud, timeout=0, exclusive=True)
        except (serial.SerialException, ValueError) as exc:
            raise ConfigError(f"cannot open serial port {device}: {exc}") from None
        fd = self.port.fileno()
        os.set_blocking(fd, False)
        self.line = SerialLine(runner, fd, speed_bps=self.baud / BITS_PER_BYTE,
                               software_paced=False, name=device)

    def describe(self) -> str:
        """What the ready line says about the port."""
        kind = self.line.device.profile.firmware.serial.transport
        return f"{self.device} ({kind}, {self.baud} baud)"

    async def started(self) -> None:
        """Nothing more to do: the line serves from the moment it is open."""

    async def close(self) -> None:
        """Stop serving and close the port."""
        await self.line.close()
        self.port.close()


async def open_endpoint(runner: Runner, spec: EndpointSpec) -> PtyEndpoint | PortEndpoint:
    """``pty`` (``where``: the symlink, default :func:`default_link`) or ``serial-port``
    (``where``: the port)."""
    if spec.kind == "pty":
        return PtyEndpoint(runner, Path(spec.where) if spec.where else None)
    assert spec.where is not None, "a serial-port spec names its port"
    return PortEndpoint(runner, spec.where, spec.baud)
