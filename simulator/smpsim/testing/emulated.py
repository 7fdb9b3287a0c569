"""An emulated board serving SMP from a background thread: what the pytest plugin's fixtures
hand out (:class:`EmulatedDevice`), usable in any test harness.

The device runs in its own thread and event loop, so asyncio clients (smpclient), blocking
Python sockets and CLIs in a subprocess all work. A client that holds the GIL while it waits
(mcumgr-toolkit 0.20) starves that thread: run it in a subprocess.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from smpsim.board import Board
from smpsim.config import DEFAULT_PROFILE, Profile, load_profile
from smpsim.control.plane import ControlPlane
from smpsim.control.verbs import FaultVerbs, follow
from smpsim.device.mcu import Device
from smpsim.transports.ble.link import DEFAULT_CENTRAL
from smpsim.transports.endpoint import EndpointSpec
from smpsim.transports.serial.endpoints import PortEndpoint, PtyEndpoint
from smpsim.transports.udp import UdpEndpoint

if TYPE_CHECKING:  # bless is an optional extra
    from smpsim.transports.ble.endpoint import BleEndpoint

T = TypeVar("T")
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class DeviceState:
    """A snapshot of the emulated device, taken in its own thread."""

    online: bool
    """Answering requests (not rebooting)."""
    boot_count: int
    """Boots since start, power-on included."""
    uptime_s: float
    """Emulated seconds since the last boot."""
    boot_mode: int
    """Retained boot mode requested by the last reset."""


class EmulatedDevice:
    """An emulated board serving SMP over UDP (and, if asked, a serial line) from a background
    thread."""

    def __init__(self, profile: str | Path | Profile = DEFAULT_PROFILE, *,
                 time_scale: float = 0.0, host: str = "127.0.0.1", port: int = 0,
                 flash_path: str | Path | None = None, serial: bool = False,
                 serial_link: str | Path | None = None, serial_device: str | None = None,
                 baud: int | None = None, ble_adapter: str | None = None,
                 ble_central: str = DEFAULT_CENTRAL, hold_button: bool = False) -> None:
        self.profile = profile if isinstance(profile, Profile) else load_profile(profile)
        self.console: list[str] = []
        """Every line the board printed since power-on (MCUboot's, the application's)."""
        shown = f"[{host}]" if ":" in host else host
        specs = [EndpointSpec("udp", f"{shown}:{port}")]
        if serial or serial_link is not None:
            specs.append(EndpointSpec("pty", str(serial_link) if serial_link else None))
        if serial_device is not None:
            specs.append(EndpointSpec("serial-port", serial_device, baud))
        if ble_adapter is not None:
            specs.append(EndpointSpec("ble", ble_adapter, central=ble_central))
        self._board = Board(self.profile, specs, time_scale=time_scale,
                            flash_path=Path(flash_path) if flash_path else None,
                            hold_button=hold_button, console_listeners=[self.console.append])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="smpsim",
                                        daemon=True)
        self.address: tuple[str, int] = (host, port)
        """(host, port) the device answers on."""
        self._plane: ControlPlane | None = None
        self.faults = FaultVerbs(self._control)
        """Inject faults: ``device.faults.drop_responses(n=2)``, ``.bit_flip(partition=
        "slot1")``, ``.crash_next_boot()``, ``.list()``, ``.clear()``..."""
        self.serial_path: str | None = None
        """With ``serial=True``: the symlink to the PTY serving the board's serial line (open
        it like a port: SMP in the profile's serial framing, and its console)."""

    def start(self) -> EmulatedDevice:
        """Power the board on and wait until it answers."""
        self._thread.start()
        try:
            self._submit(self._board.start()).result(START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        async def attach() -> ControlPlane:
            return ControlPlane(self._board)
        self._plane = self._submit(attach()).result(START_TIMEOUT_S)
        self.address = self._board.endpoint(UdpEndpoint).address
        ptys = [e for e in self._board.endpoints if isinstance(e, PtyEndpoint)]
        if ptys:
            self.serial_path = str(ptys[0].link)
        return self

    def _submit(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    @property
    def host(self) -> str:
        """Host the device answers on."""
        return self.address[0]

    @property
    def port(self) -> int:
        """UDP port the device answers on."""
        return self.address[1]

    def call(self, fn: Callable[[Device], T]) -> T:
        """Run ``fn(device)`` in the device's thread and return its result."""
        async def run() -> T:
            return fn(self._board.device)
        result: T = self._submit(run()).result(START_TIMEOUT_S)
        return result

    def serial_traffic(self) -> tuple[int, int]:
        """(bytes received, bytes sent) on the serial line so far: what a client wrote to the
        board and what the board wrote back (SMP lines and console text)."""
        serial = [e for e in self._board.endpoints if isinstance(e, PtyEndpoint | PortEndpoint)]
        line = serial[0].line
        return line.bytes_in, line.bytes_out

    def ble_endpoint(self) -> BleEndpoint:
        """With ``ble_adapter``: the board's BLE endpoint (its ``mtu``, ``writes``,
        ``notifications``, ``connected`` centrals)."""
        from smpsim.transports.ble.endpoint import BleEndpoint
        return self._board.endpoint(BleEndpoint)

    def _control(self, fn: Callable[[ControlPlane], T]) -> T:
        plane = self._plane
        assert plane is not None, "start the board first"
        async def run() -> T:
            return fn(plane)
        result: T = self._submit(run()).result(START_TIMEOUT_S)
        return result

    def act(self, action: str, **body: Any) -> dict[str, Any]:
        """Carry out a control-plane action (``POST /api/actions/<action>``) and wait for it."""
        plane = self._plane
        assert plane is not None, "start the board first"
        result: dict[str, Any] = self._submit(plane.act(action, body)).result(START_TIMEOUT_S)
        return result

    def power_cut(self, *, before_op: int | None = None, at_swap_percent: float | None = None,
                  restore_after_s: float | None = None) -> dict[str, Any]:
        """Cut the power now, before the ``before_op``-th flash operation from now, or at
        ``at_swap_percent`` % of the next swap; it stays off until :meth:`power_on` unless
        ``restore_after_s`` says when it comes back."""
        body = {k: v for k, v in (("before_op", before_op), ("at_swap_percent", at_swap_percent),
                                  ("restore_after_s", restore_after_s)) if v is not None}
        return self.act("power-cut", **body)

    def power_on(self) -> None:
        """Give the board its power back and wait until its boot has ended."""
        self.act("power-on")

    def status(self) -> dict[str, Any]:
        """Board status, as ``GET /api/board``."""
        return self._control(lambda plane: plane.status())

    def slots(self) -> list[dict[str, Any]]:
        """Every image slot, as ``GET /api/slots``."""
        return self._control(lambda plane: plane.slots())

    def flash_map(self) -> dict[str, Any]:
        """Partitions and sectors, as ``GET /api/flash``."""
        return self._control(lambda plane: plane.flash())

    def events(self, since: int = 0, timeout_s: float = 10.0) -> Iterator[dict[str, Any]]:
        """Events after ``since`` (as the WebSocket sends them), waiting up to ``timeout_s``
        for each next one."""
        return follow(self._control, since, timeout_s)

    def reset(self, *, hold_button: bool = False) -> None:
        """Reset the board (as the reset button does) and wait until it answers again.
        ``hold_button``: with the recovery button held through the boot (MCUboot's serial
        recovery on builds with ``BOOT_SERIAL_ENTRANCE_GPIO``), released afterwards."""
        if hold_button:
            self.hold_button()
        try:
            self._submit(self._board.runner.reset()).result(START_TIMEOUT_S)
        finally:
            if hold_button:
                self.release_button()

    def hold_button(self) -> None:
        """Press the recovery button and keep it pressed (every boot meanwhile sees it)."""
        self.call(lambda device: device.hold_button())

    def release_button(self) -> None:
        """Let go of the recovery button."""
        self.call(lambda device: device.release_button())

    def in_recovery(self) -> bool:
        """MCUboot is in serial recovery (the application is not running)."""
        return self.call(lambda device: device.in_recovery)

    def state(self) -> DeviceState:
        """What the device is doing now."""
        def snapshot(device: Device) -> DeviceState:
            return DeviceState(self._board.runner.online.is_set(), device.boot_count,
                               device.uptime_s(), device.boot_mode)
        return self.call(snapshot)

    def wait_online(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Block until the device answers again (after a reset it asked for itself)."""
        self._submit(asyncio.wait_for(self._board.runner.online.wait(), timeout_s)) \
            .result(timeout_s + 1)

    def stop(self) -> None:
        """Power off and release everything."""
        if self._thread.is_alive():
            self._submit(self._board.stop()).result(START_TIMEOUT_S)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_S)
        self._loop.close()

    def __enter__(self) -> EmulatedDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
