"""Headless Chromium driven over the DevTools protocol (CDP), for testing Web Bluetooth pages.

The system's Chromium (Debian's ``chromium``) is started with a fresh profile and a DevTools
port, and driven through one WebSocket (aiohttp) with flat sessions: a page is opened, clicked
like a user (a trusted click is the user gesture ``navigator.bluetooth.requestDevice()`` needs),
and the device chooser is answered through the ``DeviceAccess`` domain
(``deviceRequestPrompted``, then ``selectPrompt``), as a person would pick the board in it.

:class:`Chromium` and :class:`Page` are blocking: the protocol runs in an event loop of its own
thread, so a test needs no asyncio (and the board's own thread is left alone).

Web Bluetooth on Linux is behind the ``WebBluetooth`` feature; BlueZ is reached on the D-Bus
system bus, so ``DBUS_SYSTEM_BUS_ADDRESS`` decides which BlueZ (or BlueZoo) Chromium sees. It
always uses BlueZ's first adapter (``hci0``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--mute-audio",
    # Web Bluetooth is off by default on Linux.
    "--enable-features=WebBluetooth",
    "--remote-debugging-port=0",
)
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 30.0


class ChromiumError(RuntimeError):
    """Chromium could not start, or the protocol failed."""


class JavaScriptError(ChromiumError):
    """A script evaluated in the page threw."""


@dataclass(frozen=True)
class ConsoleMessage:
    """One ``console.*`` call of the page (or an uncaught exception, type ``exception``)."""

    type: str
    """``log``, ``info``, ``warning``, ``error``, ``debug``... or ``exception``."""
    text: str
    """The arguments, as the console shows them, joined by spaces."""


def find_executable(name: str | None = None) -> str:
    """The Chromium to run: ``name`` (a path or a command), ``$SMPSIM_CHROMIUM``, or the first
    of chromium, chromium-browser, google-chrome on the ``PATH``."""
    candidates = [name] if name else [os.environ.get("SMPSIM_CHROMIUM") or "", *EXECUTABLES]
    for candidate in filter(None, candidates):
        found = shutil.which(candidate)
        if found:
            return found
    raise ChromiumError(f"no Chromium found (tried {', '.join(filter(None, candidates))}): "
                        "Debian's is `apt-get install chromium` (`make test` installs it)")


def _remote_text(obj: dict[str, Any]) -> str:
    if "value" in obj:
        value = obj["value"]
        return value if isinstance(value, str) else repr(value)
    return str(obj.get("description") or obj.get("unserializableValue") or obj.get("type"))


class _Connection:
    """The DevTools WebSocket: calls by id, events by (session, method) to listeners."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.listeners: list[Callable[[str | None, str, dict[str, Any]], None]] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = message.json()
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                for listener in list(self.listeners):
                    listener(data.get("sessionId"), data["method"], data.get("params", {}))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ChromiumError("the DevTools connection closed"))

    async def call(self, method: str, session: str | None = None, *,
                   wait_s: float = CALL_TIMEOUT_S, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self.ws.send_json(message)
        reply = await asyncio.wait_for(future, wait_s)
        if "error" in reply:
            raise ChromiumError(f"{method}: {reply['error'].get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class Chromium:
    """A headless Chromium process and its DevTools connection."""

    def __init__(self, env: dict[str, str] | None = None, executable: str | None = None,
                 extra_flags: tuple[str, ...] = ()) -> None:
        self.executable = find_executable(executable)
        self.env = dict(os.environ if env is None else env)
        self.extra_flags = extra_flags
        self.folder = Path(tempfile.mkdtemp(prefix="smpsim-chromium-"))
        self.log_path = self.folder / "chromium.log"
        """Chromium's own stderr."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="smpsim-cdp",
                                        daemon=True)
        self._session: aiohttp.ClientSession | None = None
        self._conn: _Connection | None = None
        self.pages: list[Page] = []

    # -- the thread and its loop ------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = CALL_TIMEOUT_S) -> T:
        """Run ``coro`` in the protocol's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    @property
    def connection(self) -> _Connection:
        if self._conn is None:
            raise ChromiumError("Chromium is not running")
        return self._conn

    # -- start and stop -----------------------------------------------------------------------

    def start(self) -> Chromium:
        """Start the browser and connect to it."""
        profile = self.folder / "profile"
        with self.log_path.open("wb") as log:
            # A session of its own: stop() ends Chromium's helpers (zygote, renderers) with it.
            self._proc = subprocess.Popen(
                [self.executable, *FLAGS, *self.extra_flags, f"--user-data-dir={profile}",
                 "about:blank"],
                env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self._thread.start()
        try:
            port, path = self._wait_for_devtools(profile / "DevToolsActivePort")
            self.run(self._connect(f"ws://127.0.0.1:{port}{path}"))
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_devtools(self, port_file: Path) -> tuple[int, str]:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert self._proc is not None
        while True:
            if self._proc.poll() is not None:
                raise ChromiumError(f"{self.executable} exited ({self._proc.returncode}):\n"
                                    f"{self.log()[-4000:]}")
            with contextlib.suppress(FileNotFoundError, ValueError):
                lines = port_file.read_text().splitlines()
                if len(lines) >= 2:
                    return int(lines[0]), lines[1]
            if time.monotonic() > deadline:
                raise ChromiumError(f"Chromium gave no DevTools port in {START_TIMEOUT_S} s:\n"
                                    f"{self.log()[-4000:]}")
            time.sleep(0.02)

    async def _connect(self, url: str) -> None:
        self._session = aiohttp.ClientSession()
        ws = await self._session.ws_connect(url, max_msg_size=0)
        self._conn = _Connection(ws)

    def log(self) -> str:
        """What Chromium printed (its stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def new_page(self) -> Page:
        """A new tab, with its console recorded and the device chooser reported."""
        page = self.run(Page.open(self))
        self.pages.append(page)
        return page

    def stop(self) -> None:
        """Close the connection, end Chromium and its helpers, remove the profile."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.run(self._disconnect(), 10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()
        if self._proc is not None:
            if self._proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGTERM)
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self._proc.pid, signal.SIGKILL)
                    self._proc.wait(10)
            # Helpers left in the group once the browser is gone.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc = None
        shutil.rmtree(self.folder, ignore_errors=True)

    async def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.call("Browser.close")
            await self._conn.close()
        if self._session is not None:
            await self._session.close()

    def __enter__(self) -> Chromium:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Page:
    """One tab: navigate, click, evaluate JavaScript, answer the Bluetooth chooser, read the
    console."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session
        self.console: list[ConsoleMessage] = []
        """Every console message and uncaught exception so far, in order."""
        self.prompts: list[dict[str, Any]] = []
        """The device chooser prompts seen (``DeviceAccess.deviceRequestPrompted``)."""
        self._changed = asyncio.Event()
        self._loaded = asyncio.Event()

    @classmethod
    async def open(cls, browser: Chromium) -> Page:
        conn = browser.connection
        target = await conn.call("Target.createTarget", url="about:blank")
        attached = await conn.call("Target.attachToTarget", targetId=target["targetId"],
                                   flatten=True)
        page = cls(browser, attached["sessionId"])
        conn.listeners.append(page._event)
        for domain in ("Page", "Runtime", "DeviceAccess"):
            await conn.call(f"{domain}.enable", page.session)
        return page

    def _event(self, session: str | None, method: str, params: dict[str, Any]) -> None:
        if session != self.session:
            return
        if method == "Runtime.consoleAPICalled":
            text = " ".join(_remote_text(arg) for arg in params.get("args", []))
            self.console.append(ConsoleMessage(params.get("type", "log"), text))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = _remote_text(details.get("exception", {})) if "exception" in details \
                else details.get("text", "")
            self.console.append(ConsoleMessage("exception", text))
        elif method == "DeviceAccess.deviceRequestPrompted":
            self.prompts.append(params)
        elif method == "Page.loadEventFired":
            self._loaded.set()
        self._changed.set()

    async def _call(self, method: str, *, wait_s: float = CALL_TIMEOUT_S,
                    **params: Any) -> dict[str, Any]:
        return await self.browser.connection.call(method, self.session, wait_s=wait_s, **params)

    async def _until(self, ready: Callable[[], T | None], timeout_s: float, what: str) -> T:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = ready()
            if found is not None:
                return found
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"{what} within {timeout_s} s; console so far:\n"
                                   + "\n".join(f"  {m.type}: {m.text}" for m in self.console))
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    # -- blocking API -------------------------------------------------------------------------

    def goto(self, url: str, timeout_s: float = CALL_TIMEOUT_S) -> None:
        """Load ``url`` and wait for its load event."""
        async def go() -> None:
            self._loaded.clear()
            result = await self._call("Page.navigate", url=url)
            if result.get("errorText"):
                raise ChromiumError(f"cannot load {url}: {result['errorText']}")
            await asyncio.wait_for(self._loaded.wait(), timeout_s)
        self.browser.run(go(), timeout_s + 1)

    def evaluate(self, expression: str, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        """The value of a JavaScript expression (a promise is awaited), as JSON would give it;
        a throw raises :class:`JavaScriptError` with its message."""
        async def evaluate() -> Any:
            result = await self._call("Runtime.evaluate", wait_s=timeout_s,
                                      expression=expression, awaitPromise=True,
                                      returnByValue=True)
            if "exceptionDetails" in result:
                details = result["exceptionDetails"]
                raise JavaScriptError(_remote_text(details.get("exception", {}))
                                      if "exception" in details else details.get("text"))
            return result["result"].get("value")
        return self.browser.run(evaluate(), timeout_s + 1)

    def click(self, selector: str, timeout_s: float = CALL_TIMEOUT_S) -> None:
        """Click the element ``selector`` names with the mouse, as a user does (a trusted
        event: it lets the page call ``requestDevice()``)."""
        where = self.evaluate(
            f"(() => {{ const e = document.querySelector({selector!r});"
            "  if (!e) return null; e.scrollIntoView({block: 'center'});"
            "  const r = e.getBoundingClientRect();"
            "  return [r.left + r.width / 2, r.top + r.height / 2]; })()", timeout_s)
        if where is None:
            raise ChromiumError(f"no element matches {selector!r}")
        x, y = where

        async def click() -> None:
            for kind in ("mousePressed", "mouseReleased"):
                await self._call("Input.dispatchMouseEvent", type=kind, x=x, y=y,
                                 button="left", clickCount=1)
        self.browser.run(click(), timeout_s)

    def choose_device(self, match: str | Callable[[dict[str, str]], bool],
                      timeout_s: float = CALL_TIMEOUT_S) -> dict[str, str]:
        """Answer the open Bluetooth chooser with the first device ``match`` accepts (an
        address or a name, or a predicate on ``{"id", "name"}``); returns that device. Waits
        until the chooser lists it (it fills in as the scan finds devices)."""
        accept = match if callable(match) else \
            (lambda d: match in (d.get("id"), d.get("name")))

        async def choose() -> dict[str, str]:
            def ready() -> tuple[str, dict[str, str]] | None:
                for prompt in reversed(self.prompts):
                    for device in prompt.get("devices", []):
                        if accept(device):
                            return prompt["id"], device
                return None
            prompt_id, device = await self._until(ready, timeout_s,
                                                  f"no device chooser listing {match!r}")
            self.prompts.clear()
            await self._call("DeviceAccess.selectPrompt", id=prompt_id, deviceId=device["id"])
            return device
        return self.browser.run(choose(), timeout_s + 1)

    def wait_for_console(self, pattern: str, timeout_s: float = CALL_TIMEOUT_S) -> ConsoleMessage:
        """The first console message (from the start) whose text matches the regular
        expression ``pattern``; waits for it."""
        regex = re.compile(pattern)

        async def wait() -> ConsoleMessage:
            return await self._until(
                lambda: next((m for m in self.console if regex.search(m.text)), None),
                timeout_s, f"no console message matching {pattern!r}")
        return self.browser.run(wait(), timeout_s + 1)
