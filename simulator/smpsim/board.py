"""A simulated board: the device, its runner and the transport endpoints it serves.

The composition root: the CLI (in the main thread) and the pytest plugin (in a background
thread) build one :class:`Board` per simulated board from a profile and a list of
:class:`~smpsim.transports.endpoint.EndpointSpec`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from smpsim import flashfile
from smpsim.config import Profile
from smpsim.device.mcu import Device
from smpsim.transports.busy import BusyTeller
from smpsim.transports.endpoint import Endpoint, EndpointSpec, open_endpoint
from smpsim.transports.runner import Runner

log = logging.getLogger(__name__)
console_log = logging.getLogger("smpsim.console")
"""The board's console lines (the CLI shows them as a serial monitor would)."""
E = TypeVar("E")

DEFAULT_UDP = ("127.0.0.1:1337", "[::1]:1337")
"""Where ``smpsim run`` serves UDP when told nothing else."""


@dataclass
class Board:
    """Everything one simulated board needs to run."""

    profile: Profile
    """Board and firmware."""
    specs: Sequence[EndpointSpec] = ()
    """The endpoints to serve, in order."""
    time_scale: float = 0.0
    """1.0 real time, 0 instant."""
    flash_path: Path | None = None
    """Flash file; ``None`` keeps flash in memory."""
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
            self.flash_file = flashfile.acquire(self.flash_path, self.profile.board.flash.size)
        try:
            self._make_device()
        except BaseException:
            await self.stop()
            raise
        self.device.console.subscribe(lambda line: console_log.info("%s", line))
        self.runner = Runner(self.device)
        self._busy = BusyTeller(self.runner)
        try:
            for spec in self.specs:
                self.endpoints.append(await open_endpoint(self.runner, spec))
            await self.runner.start()
            for endpoint in self.endpoints:
                await endpoint.started()
            if self.flash_file is not None:
                self.flash_file.commit()  # the board is up: its new flash file takes its name
        except BaseException:
            await self.stop()
            raise
        return [f"smpsim: {self.profile.name} serving SMP over {e.medium} on {e.describe()}"
                for e in self.endpoints]

    def _make_device(self) -> None:
        new = self.flash_file is not None and self.flash_file.created
        self.device = Device(self.profile, time_scale=self.time_scale,
                             flash_path=self.flash_file.open_path if self.flash_file else None)
        if new and self.device.bootloader is not None:
            self.device.provision()

    def endpoint(self, kind: type[E]) -> E:
        """The first open endpoint of class ``kind``."""
        for endpoint in self.endpoints:
            if isinstance(endpoint, kind):
                return endpoint
        raise LookupError(f"this board serves no {kind.__name__}")

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
