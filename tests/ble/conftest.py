"""Fixtures of the BLE tests: one mock BlueZ bus for the session, a board on hci1 per test.

The bus is started once (``dbus-daemon`` and BlueZoo, about 0.3 s) and ``DBUS_SYSTEM_BUS_ADDRESS``
points at it for the whole session, in this process and its children. If it cannot start, every
BLE test fails with the reason: an untested BLE transport must not pass as green.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smpsim.pytest_plugin import EmulatedDevice
from smpsim.testing import mockbus


@pytest.fixture(scope="session")
def ble_bus() -> Iterator[mockbus.MockBus]:
    """The mock bus, as the system bus of this process."""
    try:
        manager = mockbus.start()
        bus = manager.__enter__()
    except mockbus.MockBusError as exc:
        pytest.fail(f"the mock BlueZ bus did not start: {exc}", pytrace=False)
    before = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
    try:
        yield bus
    finally:
        if before is None:
            del os.environ["DBUS_SYSTEM_BUS_ADDRESS"]
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = before
        manager.__exit__(None, None, None)


@pytest.fixture
def ble_board(ble_bus: mockbus.MockBus, smp_device_factory: Callable[..., EmulatedDevice],
              ) -> Callable[..., EmulatedDevice]:
    """Start a board serving SMP over BLE on hci1 (clients are on hci0):
    ``ble_board(profile, **options)``."""
    def make(profile: str | Path = "nrf52840dk", **options: Any) -> EmulatedDevice:
        return smp_device_factory(profile, ble_adapter=mockbus.BOARD_ADAPTER, **options)
    return make


def ble_profile(tmp_path: Path, **ble: Any) -> Path:
    """A profile file: the default board with ``[firmware.ble]`` keys changed."""
    lines = ['extends = "nrf52840dk"', "[firmware.ble]"]
    for key, value in ble.items():
        text = str(value).lower() if isinstance(value, bool) else repr(value)
        lines.append(f"{key} = {text}")
    path = tmp_path / "board.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
