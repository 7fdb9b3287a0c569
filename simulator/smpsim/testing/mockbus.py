"""A private D-Bus bus with BlueZoo on it: BLE with no radio, for tests and benchmarks.

:func:`start` runs ``dbus-daemon`` with its own configuration file (no system or session bus is
touched, and Debian's ``dbus`` package is all it needs) and :mod:`smpsim.testing.bluezoo_ci`
(BlueZoo with the fixes clients need) with two adapters:

* ``hci0`` (``00:00:00:00:00:01``): the clients'. Chromium always takes the first adapter, and
  bleak, smpclient and smpmgr take the only one with the central role.
* ``hci1`` (``00:00:00:00:00:02``): the board's (``smpsim run --ble --adapter hci1``). It
  reports only the peripheral role, so it is never a client's default adapter.

Point ``DBUS_SYSTEM_BUS_ADDRESS`` at :attr:`MockBus.address` and bless, bleak, Chromium and
BlueZoo all meet there. Anything that keeps the bus from coming up raises :class:`MockBusError`
with the reason and the logs: tests fail on it, they never skip. Needs ``smpsim[webbt]`` (or
``bluezoo`` and ``dbus-next``) and Debian's ``dbus``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import BusType, MessageType
from dbus_next.message import Message

from smpsim.transports.ble.bless_fixes import close_bus

BOARD_ADAPTER = "hci1"
"""Where the board serves."""
PERIPHERAL = "00:00:00:00:00:02"
"""The board's address (hci1's)."""
CENTRAL = "00:00:00:00:00:01"
"""hci0's address, where the clients connect from."""
START_TIMEOUT_S = 15.0
SCAN_INTERVAL_S = 0.1

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class MockBusError(RuntimeError):
    """The mock bus could not start."""


@dataclass
class MockBus:
    """A running bus with BlueZoo on it."""

    address: str
    """D-Bus address: the system bus for everything started with it in the environment."""
    folder: Path
    """Where the bus socket and the logs are."""
    daemon: subprocess.Popen[bytes]
    """The ``dbus-daemon`` (kill it to see what a client does when the bus dies)."""
    bluezoo: subprocess.Popen[bytes]
    """BlueZoo."""

    @property
    def bluezoo_log(self) -> str:
        """What BlueZoo printed (warnings and errors)."""
        return (self.folder / "bluezoo.log").read_text(errors="replace")

    def env(self) -> dict[str, str]:
        """The environment for a child process on this bus."""
        return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}


def _wait_for_adapters(address: str, zoo: subprocess.Popen[bytes], log: Path) -> None:
    async def adapters() -> set[str]:
        bus = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
        try:
            reply = await bus.call(Message(
                destination="org.bluez", path="/", interface="org.freedesktop.DBus.ObjectManager",
                member="GetManagedObjects"))
            if reply is None or reply.message_type is MessageType.ERROR:
                return set()
            return {p for p, i in reply.body[0].items() if "org.bluez.Adapter1" in i
                    and i["org.bluez.Adapter1"]["Powered"].value}
        finally:
            await close_bus(bus)

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if zoo.poll() is not None:
            raise MockBusError(f"bluezoo_ci.py exited ({zoo.returncode}):\n"
                               f"{log.read_text(errors='replace')}")
        if asyncio.run(adapters()) >= {"/org/bluez/hci0", "/org/bluez/hci1"}:
            return
        if time.monotonic() > deadline:
            raise MockBusError(f"BlueZoo did not bring up hci0 and hci1 in {START_TIMEOUT_S} s:"
                               f"\n{log.read_text(errors='replace')}")
        time.sleep(0.02)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


@contextlib.contextmanager
def bare_bus() -> Iterator[str]:
    """A private bus with nobody on it (no BlueZ): yields its address."""
    folder = Path(tempfile.mkdtemp(prefix="smpsim-bus-"))
    daemon: subprocess.Popen[bytes] | None = None
    try:
        daemon, address = _daemon(folder)
        yield address
    finally:
        _stop(daemon)
        shutil.rmtree(folder, ignore_errors=True)


def _daemon(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    daemon_exe = shutil.which("dbus-daemon")
    if daemon_exe is None:
        raise MockBusError("dbus-daemon is missing: the BLE tests need Debian's dbus package "
                           "(apt-get install dbus; `make test` installs it)")
    config = folder / "bus.conf"
    config.write_text(_CONFIG.format(socket=folder / "bus"), encoding="utf-8")
    daemon = subprocess.Popen(
        [daemon_exe, f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert daemon.stdout is not None and daemon.stderr is not None
    address = daemon.stdout.readline().decode().strip()
    if not address:
        error = daemon.stderr.read().decode()
        _stop(daemon)
        raise MockBusError(f"dbus-daemon did not start: {error}")
    return daemon, address


@contextlib.contextmanager
def start() -> Iterator[MockBus]:
    """Run the bus and BlueZoo for the duration of the ``with`` block."""
    folder = Path(tempfile.mkdtemp(prefix="smpsim-ble-"))
    daemon: subprocess.Popen[bytes] | None = None
    zoo: subprocess.Popen[bytes] | None = None
    try:
        daemon, address = _daemon(folder)
        log = folder / "bluezoo.log"
        with log.open("wb") as out:
            zoo = subprocess.Popen(
                [sys.executable, "-m", "smpsim.testing.bluezoo_ci", "-q", "--auto-enable",
                 "--scan-interval", str(SCAN_INTERVAL_S), "-a", CENTRAL, "-a", PERIPHERAL],
                env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": address,
                     "BLUEZOO_PERIPHERAL_ONLY": BOARD_ADAPTER},
                stdout=out, stderr=subprocess.STDOUT)
        _wait_for_adapters(address, zoo, log)
        yield MockBus(address, folder, daemon, zoo)
    finally:
        _stop(zoo)
        _stop(daemon)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """``python -m smpsim.testing.mockbus``: run the mock until Ctrl-C, for trying BLE by hand."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the bus and BlueZoo too
    with start() as bus:
        print(f"export DBUS_SYSTEM_BUS_ADDRESS='{bus.address}'", flush=True)
        print(f"# {BOARD_ADAPTER} {PERIPHERAL} is for smpsim run --ble --adapter "
              f"{BOARD_ADAPTER}; clients use hci0 {CENTRAL}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
