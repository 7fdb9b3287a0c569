"""The shape of a transport: what every endpoint a board serves implements, and the registry
that builds endpoints from specs.

Adding a transport is one module with an ``open_endpoint(runner, spec)`` coroutine returning an
:class:`Endpoint`, plus one line in :data:`TRANSPORTS`. The module is imported only when a board
asks for that kind, so optional dependencies (pyserial, bless) cost nothing otherwise.

What an endpoint gets from the :class:`~smpsim.transports.runner.Runner`: ``submit(unit, send)``
to hand it a request unit with the callback that sends each response frame; ``online`` (the board
answers); ``boot_listeners`` (called when a boot ends); ``reset()``; ``device`` for the profile
and the console. An endpoint only moves bytes: what they mean is the runner's and the device's.
"""

from __future__ import annotations

import importlib
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

from smpsim.errors import ConfigError
from smpsim.records import Frozen, frozen
from smpsim.transports.runner import Runner


@frozen
class EndpointSpec(Frozen):
    """One endpoint a board is to serve."""

    kind: str
    """A key of :data:`TRANSPORTS`."""
    where: str | None = None
    """Kind-specific: ``HOST:PORT`` (udp), the symlink (pty), the port (serial-port), the
    adapter (ble); ``None``: the kind's default."""
    baud: int | None = None
    """serial-port: the port's baud rate; ``None``: the profile's."""
    central: str | None = None
    """ble: on the BlueZoo mock, the kind of central the link model stands for (a key of
    :data:`smpsim.transports.ble.link.CENTRALS`); ``None``: a phone."""
    sock: socket.socket | None = None
    """udp: a socket bound already, served instead of binding ``where`` (a fleet binds every
    board's address before any board starts, so a taken address is an error up front)."""


class Endpoint(Protocol):
    """A transport endpoint serving one board."""

    @property
    def medium(self) -> str:
        """What the ready line says SMP is served over: ``UDP``, ``serial``, ``BLE``."""
        ...

    def describe(self) -> str:
        """Where (the ready line's tail): an address, a PTY, an adapter."""
        ...

    async def started(self) -> None:
        """The board is up: finish opening (raise :class:`ConfigError` if the endpoint cannot
        serve after all)."""
        ...

    async def close(self) -> None:
        """Stop serving and release what the endpoint holds."""
        ...

    @property
    def lost(self) -> str | None:
        """Why the endpoint stopped serving while the board ran (what it needs went away:
        the bus of BlueZ), as ``"<cause> while serving <medium> on <where>"``; ``None``."""
        ...


Opener = Callable[[Runner, EndpointSpec], Awaitable[Endpoint]]

TRANSPORTS: dict[str, str] = {
    "udp": "smpsim.transports.udp",
    "pty": "smpsim.transports.serial.endpoints",
    "serial-port": "smpsim.transports.serial.endpoints",
    "ble": "smpsim.transports.ble.endpoint",
}
"""Endpoint kind -> the module whose ``open_endpoint`` builds it."""

_MISSING_EXTRA = {"ble": "BLE needs bless: pip install 'smpsim[ble]'"}


async def open_endpoint(runner: Runner, spec: EndpointSpec) -> Endpoint:
    """Build and open the endpoint ``spec`` names for ``runner``'s board."""
    name = TRANSPORTS.get(spec.kind)
    if name is None:
        raise ConfigError(f"unknown transport {spec.kind!r}; known: {', '.join(TRANSPORTS)}")
    try:
        module = importlib.import_module(name)
    except ImportError:
        if spec.kind in _MISSING_EXTRA:
            raise ConfigError(_MISSING_EXTRA[spec.kind]) from None
        raise
    opener = cast("Opener", module.open_endpoint)
    return await opener(runner, spec)
