"""pytest plugin: emulated smp_svr boards as fixtures, for client developers' own test suites.

Registered through the ``pytest11`` entry point, so installing smpsim is enough::

    def test_echo(smp_device):
        host, port = smp_device.address          # an ephemeral UDP port on 127.0.0.1
        ...                                       # talk SMP to it with any client

    @pytest.mark.smpsim(profile="native_sim_udp6", host="::1")
    def test_ipv6(smp_device): ...

    def test_serial(smp_device_factory):
        board = smp_device_factory("qemu_cortex_m0_img", serial=True)
        ...                                       # open board.serial_path like a port

    def test_ble(smp_device_factory):            # BlueZ (or a mock of it) on the system bus
        board = smp_device_factory(ble_adapter="hci0")
        ...                                       # scan for it and connect with a BLE client

    def test_web_tool(web_bluetooth):            # smpsim[webbt]: mock bus, board, Chromium
        bench = web_bluetooth("web/")             # serves web/ on http://127.0.0.1:PORT/
        page = bench.open("index.html", click="#connect")   # the chooser answered
        page.wait_for_console("connected")

The device runs in its own thread and event loop, so asyncio clients (smpclient), blocking
Python sockets and CLIs in a subprocess all work. A client that holds the GIL while it waits
(mcumgr-toolkit 0.20) starves that thread: run it in a subprocess. Time is instant
(``time_scale=0``) unless the marker says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the board and the Web Bluetooth bench load when a fixture is first used
    from smpsim.config import Profile
    from smpsim.testing.emulated import DeviceState, EmulatedDevice
    from smpsim.testing.webbt import WebBluetooth

__all__ = ["DeviceState", "EmulatedDevice"]
"""Re-exported: client test suites import the board from here."""

DEFAULT_PROFILE = "nrf52840dk"
"""smpsim.config.DEFAULT_PROFILE, repeated so that loading this plugin (in every pytest session
where smpsim is installed) imports nothing of the simulator; a unit test keeps them equal."""


def __getattr__(name: str) -> Any:
    # The re-exports load the emulated board on first use, not with the plugin.
    if name in __all__:
        from smpsim.testing import emulated

        return getattr(emulated, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "smpsim(profile=..., time_scale=..., host=..., port=..., serial=...): "
                   "configure the smp_device fixture")


@pytest.fixture
def smp_device_factory() -> Iterator[Callable[..., EmulatedDevice]]:
    """Start any number of emulated boards: ``smp_device_factory(profile, time_scale=...)``;
    ``serial=True`` adds a PTY (``.serial_path``)."""
    started: list[EmulatedDevice] = []

    from smpsim.testing.emulated import EmulatedDevice

    def make(profile: str | Path | Profile = DEFAULT_PROFILE, **options: Any) -> EmulatedDevice:
        device = EmulatedDevice(profile, **options).start()
        started.append(device)
        return device

    yield make
    for device in started:
        device.stop()


@pytest.fixture
def smp_device(request: pytest.FixtureRequest,
               smp_device_factory: Callable[..., EmulatedDevice]) -> EmulatedDevice:
    """One emulated board on an ephemeral UDP port, torn down after the test.

    Configure it with ``@pytest.mark.smpsim(profile=..., time_scale=..., host=..., port=...)``
    or by indirect parametrisation with a profile name or a dict of the same options.
    """
    options: dict[str, Any] = {}
    marker = request.node.get_closest_marker("smpsim")
    if marker is not None:
        options.update(marker.kwargs)
        if marker.args:
            options["profile"] = marker.args[0]
    param = getattr(request, "param", None)
    if isinstance(param, dict):
        options.update(param)
    elif param is not None:
        options["profile"] = param
    return smp_device_factory(**options)


@pytest.fixture
def web_bluetooth() -> Iterator[Callable[..., WebBluetooth]]:
    """Start Web Bluetooth benches (``pip install 'smpsim[webbt]'``, and a Chromium): each is a
    mock BlueZ bus, a board serving SMP over BLE on it, a local web server and a headless
    Chromium (:class:`smpsim.testing.webbt.WebBluetooth`). ``web_bluetooth(root, files=...,
    profile=..., time_scale=...)``; everything stops after the test."""
    try:
        from smpsim.testing.webbt import WebBluetooth
    except ImportError as exc:
        pytest.fail(f"web_bluetooth needs smpsim's webbt extra: pip install 'smpsim[webbt]' "
                    f"({exc})", pytrace=False)
    started: list[WebBluetooth] = []

    def make(root: str | Path | None = None, **options: Any) -> WebBluetooth:
        bench = WebBluetooth(root, **options).start()
        started.append(bench)
        return bench

    yield make
    for bench in reversed(started):
        bench.stop()
