"""``smpsim run --ble`` as a process: smpmgr's ``--ble`` CLI against it, a clean stop that gives
the adapter back, and exit code 2 with the missing piece named when BLE cannot be served."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from bless.backends.bluezdbus.server import BlessServerBlueZDBus
from dbus_fast import BusType, Message
from dbus_fast.aio import MessageBus
from dbus_next.errors import DBusError

from smpsim.errors import ConfigError
from smpsim.pytest_plugin import EmulatedDevice
from smpsim.testing import mockbus
from smpsim.testing.mockbus import BOARD_ADAPTER, PERIPHERAL

from .ble_support import wait_until

BIN = Path(sys.executable).parent
READY = "smpsim: nrf52840dk serving SMP over BLE on hci1 as 'Zephyr'"
TIMEOUT_S = 30


@contextmanager
def smpsim_ble(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
               ) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """``smpsim run --ble ARGS``, once its ready line is out; yields it and its stderr file."""
    errors = tmp_path / "smpsim.err"
    with errors.open("w") as err:
        proc = subprocess.Popen(
            [str(BIN / "smpsim"), "run", "--ble", "--adapter", BOARD_ADAPTER, *args],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()],
                              daemon=True)
    reader.start()
    try:
        try:
            line = lines.get(timeout=TIMEOUT_S)
        except queue.Empty:
            raise AssertionError(f"no ready line (exit {proc.poll()}):\n"
                                 f"{errors.read_text()}") from None
        assert line.startswith(READY), line
        (errors.parent / "ready").write_text(line)
        yield proc, errors
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()


def adapter_property(name: str) -> object:
    async def get() -> object:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            reply = await bus.call(Message(
                destination="org.bluez", path=f"/org/bluez/{BOARD_ADAPTER}",
                interface="org.freedesktop.DBus.Properties", member="Get", signature="ss",
                body=["org.bluez.Adapter1", name]))
            assert reply is not None
            return reply.body[0].value
        finally:
            bus.disconnect()
            await bus.wait_for_disconnect()
    return asyncio.run(get())


def test_smpmgr_echo_against_smpsim_run(ble_bus: mockbus.MockBus, tmp_path: Path) -> None:
    assert adapter_property("Discoverable") is False
    with smpsim_ble(tmp_path, "--time-scale", "0") as (proc, errors):
        # smpsim made hci1 discoverable for good, as BlueZ reports LE advertisers only then.
        assert adapter_property("Discoverable") is True
        assert adapter_property("Alias") == "Zephyr"
        echo = subprocess.run(
            [str(BIN / "smpmgr"), "--ble", PERIPHERAL, "--timeout", "5", "os", "echo",
             "hello from smpmgr"], capture_output=True, text=True, timeout=TIMEOUT_S,
            check=False)
        assert echo.returncode == 0, echo.stdout + echo.stderr
        assert "r='hello from smpmgr'" in echo.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        log = errors.read_text()
    assert f"BLE: central {mockbus.CENTRAL} connected" in log
    assert "Traceback" not in log and " ERROR " not in log
    # A clean stop hands the adapter back as it found it.
    assert adapter_property("Discoverable") is False


def run_smpsim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "smpsim"), "run", *args], capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False, env=env)


def test_no_such_adapter(ble_bus: mockbus.MockBus) -> None:
    result = run_smpsim("--ble", "--adapter", "hci7", "--time-scale", "0")
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "smpsim: error: no Bluetooth adapter hci7: BlueZ has hci0, hci1"), result.stderr


def test_no_bluez_on_the_bus(tmp_path: Path) -> None:
    with mockbus.bare_bus() as address:
        result = run_smpsim("--ble", "--time-scale", "0",
                            env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": address})
    assert result.returncode == 2
    assert "smpsim: error: BLE needs BlueZ, and nobody owns org.bluez on the system bus" \
        in result.stderr
    assert "is bluetoothd running" in result.stderr


def test_no_system_bus(tmp_path: Path) -> None:
    address = f"unix:path={tmp_path}/no-bus"
    result = run_smpsim("--ble", "--time-scale", "0",
                        env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": address})
    assert result.returncode == 2
    assert f"there is no system bus at {address}" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_bless() -> None:
    """Without the ``ble`` extra: the error says how to get it."""
    code = ("import sys; sys.modules['bless'] = None; from smpsim.cli import main; "
            "sys.exit(main(['run', '--ble', '--time-scale', '0']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=TIMEOUT_S, check=False)
    assert result.returncode == 2
    assert "smpsim: error: BLE needs bless: pip install 'smpsim[ble]'" in result.stderr


def test_adapter_without_ble() -> None:
    result = run_smpsim("--adapter", "hci1")
    assert result.returncode == 2
    assert "--adapter names the adapter of --ble, which is not given" in result.stderr


def test_bluez_refuses_the_service(ble_bus: mockbus.MockBus,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """BlueZ may refuse the advertisement (kevincar/bless#130 on some adapters): starting
    fails with BlueZ's reason, and the adapter is left as it was."""
    async def refuse(self: object, **kwargs: object) -> bool:
        raise DBusError("org.bluez.Error.Failed", "Failed to register advertisement")
    monkeypatch.setattr(BlessServerBlueZDBus, "start", refuse)
    with pytest.raises(ConfigError) as info:
        EmulatedDevice(ble_adapter=BOARD_ADAPTER).start()
    assert str(info.value) == ("BlueZ refused the SMP service on hci1: DBusError: "
                               "Failed to register advertisement")
    assert adapter_property("Discoverable") is False


@pytest.mark.parametrize("gone", ["bus", "bluez"])
def test_sigterm_after_the_radio_went_away(gone: str, tmp_path: Path) -> None:
    """The D-Bus daemon dies (or BlueZ leaves the bus) under a running ``smpsim run --ble``: it
    says so at once, SIGTERM still ends it within 5 s, and the exit code and last line name
    the cause. (Its own bus: the session's is not to be killed.)"""
    with mockbus.start() as bus, smpsim_ble(tmp_path, "--time-scale", "0",
                                            env=bus.env()) as (proc, errors):
        victim = bus.daemon if gone == "bus" else bus.bluezoo
        victim.kill()
        victim.wait(5)
        cause = (f"the D-Bus system bus at {bus.address} went away" if gone == "bus"
                 else f"BlueZ (org.bluez) left the system bus at {bus.address}")
        wait_until(lambda: cause in errors.read_text())
        assert proc.poll() is None  # the board runs on (other transports) until told
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 1
        log = errors.read_text()
    assert f"smpsim: error: BLE: {cause}: the board is not served over " \
        "BLE" in log
    assert log.splitlines()[-1] == f"smpsim: error: {cause} while serving BLE on hci1"
    assert "Traceback" not in log


def test_a_second_signal_ends_a_stuck_stop(ble_bus: mockbus.MockBus, tmp_path: Path) -> None:
    """If closing waits on something that never comes, a second Ctrl-C ends it at once."""
    with smpsim_ble(tmp_path, "--time-scale", "0") as (proc, errors):
        proc.send_signal(signal.SIGSTOP)  # both signals are pending when it runs again
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGCONT)
        code = proc.wait(5)
        log = errors.read_text()
    assert code in (0, 1), log  # 0 if the first signal's clean stop won the race
    assert "Traceback" not in log


def test_ble_central(ble_bus: mockbus.MockBus, tmp_path: Path) -> None:
    """``--ble-central`` picks the central the mock's link model stands for; the ready line
    says which, with the connection's interval."""
    with smpsim_ble(tmp_path, "--ble-central", "desktop-chrome") as (proc, _):
        assert "BlueZoo mock, desktop-chrome central, link model 30 ms x 3 packets" in \
            (tmp_path / "ready").read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    result = run_smpsim("--ble-central", "desktop-chrome")
    assert result.returncode == 2
    assert "--ble-central names the central of --ble, which is not given" in result.stderr
