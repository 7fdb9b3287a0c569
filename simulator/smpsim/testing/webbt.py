"""A Web Bluetooth test bench: the mock BlueZ bus, a board on it, a local web server for the
page under test and a headless Chromium that uses the bus, all in one object.

    with WebBluetooth("web/") as bench:              # serves web/ on http://127.0.0.1:PORT/
        page = bench.open("index.html", click="#connect")   # the chooser is answered
        page.wait_for_console("connected")
        assert page.evaluate("window.myTool.state") == "ready"

The board serves SMP over BLE on the mock's ``hci1`` (``bench.board`` is its
:class:`~smpsim.testing.emulated.EmulatedDevice`: reset it, read its flash) and Chromium is the
central on ``hci0``, as it always takes BlueZ's first adapter. Pages are served from
``127.0.0.1``, a secure context, as Web Bluetooth requires. The pytest plugin's ``web_bluetooth``
fixture is one of these per test.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from smpsim.config import DEFAULT_PROFILE, Profile
from smpsim.testing import mockbus
from smpsim.testing.chromium import Chromium, Page
from smpsim.testing.emulated import EmulatedDevice


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files from the root, plus the extra files by their URL path."""

    extra: Mapping[str, Path] = {}

    def translate_path(self, path: str) -> str:
        name = path.split("?", 1)[0].split("#", 1)[0].lstrip("/")
        if name in self.extra:
            return str(self.extra[name])
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a test edits and reloads pages
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebBluetooth:
    """The mock bus, a board serving SMP over BLE, a web server and Chromium, started together.

    ``root``: the folder served at ``/`` (the page under test); ``files``: more files, by URL
    path (``{"app.bin": Path("build/app.bin")}``); the board's ``profile``, ``time_scale``
    (default 0, instant) and any other :class:`~smpsim.testing.emulated.EmulatedDevice` option;
    ``ble_central``: the central the board's link model assumes (default ``desktop-chrome``).
    """

    def __init__(self, root: str | Path | None = None, *,
                 files: Mapping[str, str | Path] | None = None,
                 profile: str | Path | Profile = DEFAULT_PROFILE, time_scale: float = 0.0,
                 ble_central: str = "desktop-chrome", chromium: str | None = None,
                 **board_options: Any) -> None:
        self.root = Path(root) if root is not None else None
        self.files = {name.lstrip("/"): Path(path) for name, path in (files or {}).items()}
        self.board_options = {"profile": profile, "time_scale": time_scale,
                              "ble_central": ble_central, **board_options}
        self.chromium_executable = chromium
        self.bus: mockbus.MockBus
        self.board: EmulatedDevice
        """The board (on the mock's hci1, as :data:`~smpsim.testing.mockbus.PERIPHERAL`)."""
        self.browser: Chromium
        self._stack = contextlib.ExitStack()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        """The board's Bluetooth address, as the chooser lists it."""
        return mockbus.PERIPHERAL

    def start(self) -> WebBluetooth:
        """Bring everything up (the bus first, Chromium last)."""
        try:
            self.bus = self._stack.enter_context(mockbus.start())
            self._stack.enter_context(_system_bus(self.bus.address))
            self.board = self._stack.enter_context(
                EmulatedDevice(ble_adapter=mockbus.BOARD_ADAPTER, **self.board_options))
            self._serve()
            # The session bus too: Chromium asks it for things (power, secrets) and logs errors
            # without one; the private bus answers "nobody here" quietly.
            env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.bus.address,
                   "DBUS_SESSION_BUS_ADDRESS": self.bus.address}
            self.browser = self._stack.enter_context(
                Chromium(env, executable=self.chromium_executable))
        except BaseException:
            self._stack.close()
            raise
        return self

    def _serve(self) -> None:
        handler = type("Handler", (_Handler,), {"extra": self.files})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(self.root or os.devnull)))
        server.daemon_threads = True
        self._server = server
        thread = threading.Thread(target=server.serve_forever, name="smpsim-http", daemon=True)
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)
        self._stack.callback(stop)

    def url(self, path: str = "") -> str:
        """The URL of ``path`` on the local server."""
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/{path.lstrip('/')}"

    def open(self, path: str = "", *, click: str | None = None,
             choose: str | Callable[[dict[str, str]], bool] | None = None,
             timeout_s: float = 30.0) -> Page:
        """Open ``path`` (relative to the server, or a full URL) in a new tab. With ``click``:
        click that element (the page's connect button), then answer the device chooser with
        the board (or with what ``choose`` names)."""
        page = self.browser.new_page()
        page.goto(path if "://" in path else self.url(path), timeout_s)
        if click is not None:
            page.click(click, timeout_s)
            page.choose_device(choose or self.address, timeout_s)
        return page

    def stop(self) -> None:
        """Stop everything (Chromium first, the bus last)."""
        self._stack.close()

    def __enter__(self) -> WebBluetooth:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def _system_bus(address: str) -> Iterator[None]:
    # bless and bleak read the system bus address when they connect: the board's thread and
    # any Python client of the test meet Chromium on the mock.
    before = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = before
