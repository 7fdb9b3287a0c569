"""A simulated board: the device, its runner and the transport endpoints it serves.

The composition root: the CLI (in the main thread) and the pytest plugin (in a background
thread) build one :class:`Board` per simulated board from a profile and a list of
:class:`~smpsim.transports.endpoint.EndpointSpec`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from smpsim.config import Profile
from smpsim.device.mcu import Device
from smpsim.records import Record, record
from smpsim.transports.busy import BusyTeller
from smpsim.transports.endpoint import Endpoint, EndpointSpec, open_endpoint
from smpsim.transports.runner import Runner

if TYPE_CHECKING:
    from smpsim import flashfile

log = logging.getLogger(__name__)
console_log = logging.getLogger("smpsim.console")
"""The board's console lines (the CLI shows them as a serial monitor would)."""
E = TypeVar("E")

DEFAULT_UDP = ("127.0.0.1:1337", "[::1]:1337")
"""Where ``smpsim run`` serves UDP when told nothing else."""


@record
class Board(Record):
    """Everything one simulated board needs to run."""

    profile: Profile
    """Board and firmware."""
    specs: Sequence[EndpointSpec] = ()
    """The endpoints to serve, in order."""
    time_scale: float = 0.0
    """1.0 real time, 0 instant."""
    flash_path: Path | None = None
    """Flash file; ``None`` keeps flash in memory."""
    before_boot: Callable[[Board], None] | None = None
    """Called once the device, its runner and the endpoints exist, before the first boot: the
    control plane attaches here, so its trace and event stream have that boot too."""
    name: str | None = None
    """What the ready lines and console log lines call the board (default: the profile's
    name; a fleet's board id)."""
    hold_button: bool = False
    """Power on with the recovery button held (released once the board is up): MCUboot
    enters serial recovery on builds with ``BOOT_SERIAL_ENTRANCE_GPIO``."""
    console_listeners: list[Callable[[str], None]] = field(default_factory=list)
    """Called with every console line from power-on."""
    device: Device = field(init=False)
    runner: Runner = field(init=False)
    endpoints: list[Endpoint] = field(init=False, default_factory=list)
    """The open endpoints, in the order of :attr:`specs`."""
    flash_file: flashfile.FlashFile | None = field(init=False, default=None)
    """The flash file this board owns (locked) while it runs."""
    _device_closed: bool = field(init=False, default=False)

    async def start(self) -> list[str]:
        """Power the device on and open every endpoint; returns one ready line per endpoint."""
        if self.flash_path is not None:
            from smpsim import flashfile  # only boards with a flash file need it

            self.flash_file = flashfile.acquire(self.flash_path, self.profile.board.flash.size)
        try:
            self._make_device()
        except BaseException:
            await self.stop()
            raise
        prefix = "" if self.name is None else f"{self.name}: "
        self.device.console.subscribe(lambda line: console_log.info("%s%s", prefix, line),
                                      lambda: console_log.isEnabledFor(logging.INFO))
        for listener in self.console_listeners:
            self.device.console.subscribe(listener)
        if self.hold_button:
            self.device.hold_button()
        self.runner = Runner(self.device)
        self._busy = BusyTeller(self.runner)
        try:
            for spec in self.specs:
                self.endpoints.append(await open_endpoint(self.runner, spec))
            if self.before_boot is not None:
                self.before_boot(self)
            await self.runner.start()
            self.device.release_button()
            for endpoint in self.endpoints:
                await endpoint.started()
            if self.flash_file is not None:
                self.flash_file.commit()  # the board is up: its new flash file takes its name
        except BaseException:
            await self.stop()
            raise
        name = self.name or self.profile.name
        return [f"smpsim: {name} serving SMP over {e.medium} on {e.describe()}"
                for e in self.endpoints]

    def _make_device(self) -> None:
        new = self.flash_file is not None and self.flash_file.created
        self.device = Device(self.profile, time_scale=self.time_scale,
                             flash_path=self.flash_file.open_path if self.flash_file else None)
        if new and self.profile.mcuboot is not None and self.profile.mcuboot.factory_image:
            self.device.provision()

    def endpoint(self, kind: type[E]) -> E:
        """The first open endpoint of class ``kind``."""
        for endpoint in self.endpoints:
            if isinstance(endpoint, kind):
                return endpoint
        raise LookupError(f"this board serves no {kind.__name__}")

    def failures(self) -> list[str]:
        """What went wrong while serving: endpoints that lost what they need."""
        return [e.lost for e in self.endpoints if e.lost is not None]

    async def stop(self) -> None:
        """Close the endpoints (last opened first) and the flash file (a new one never
        committed is removed)."""
        while self.endpoints:
            await self.endpoints.pop().close()
        if hasattr(self, "runner"):
            self._busy.close()
            await self.runner.close()
        if hasattr(self, "device") and not self._device_closed:
            self._device_closed = True  # stop may come twice (a failed start, then its owner)
            self.device.close()
        if self.flash_file is not None:
            self.flash_file.close()  # after the device: the lock outlives every write
            self.flash_file = None
