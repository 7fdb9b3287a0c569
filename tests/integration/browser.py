"""The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-python
(its own browser download is never used), against ``smpsim run --dashboard`` in a child process.

Imported by the dashboard test modules of this package.
"""

from __future__ import annotations

import json
import random
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

from .itsupport import smpsim_run

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}
DASHBOARD = re.compile(r"dashboard at (http://\S+)")


@contextmanager
def chromium(profile_dir: Path) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile in ``profile_dir``."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport=VIEWPORT)  # type: ignore[arg-type]
        try:
            yield context
        finally:
            context.close()


@dataclass
class Board:
    """A ``smpsim run --dashboard`` child process."""

    url: str
    """The dashboard (and the API under it), as the ready line prints it (with a token, the
    token in the fragment)."""
    smp_host: str
    smp_port: int
    proc: subprocess.Popen[str]
    token: str | None = None

    def api(self, path: str) -> Any:
        """GET an API path (with the board's token, if it has one); the decoded JSON."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        request = urllib.request.Request(self.url.split("#")[0].rstrip("/") + path,
                                         headers=headers)
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())


def free_1337_host() -> str:
    """A 127.0.0.N whose port 1337 is free now (smpmgr's UDP port is fixed)."""
    for last in random.sample(range(2, 251), 30):
        host = f"127.0.0.{last}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((host, 1337))
            except OSError:
                continue
        return host
    raise AssertionError("no free 127.0.0.N:1337; is something bound to 0.0.0.0:1337?")


@contextmanager
def dashboard_board(*args: str, udp: str = "127.0.0.1:0",
                    token: str | None = None) -> Iterator[Board]:
    """``smpsim run --dashboard`` on a free control port, serving SMP on ``udp``."""
    guard = ["--control-token", token] if token else []
    with smpsim_run("--dashboard", "--control", "127.0.0.1:0", "--udp", udp, *guard, *args,
                    ready_lines=2) as (proc, lines):
        smp = re.search(r"serving SMP over UDP on (\S+):(\d+)", lines[0])
        page = DASHBOARD.search(lines[1])
        assert smp and page, lines
        yield Board(page[1], smp[1], int(smp[2]), proc, token)


@dataclass
class Dashboard:
    """One page of the dashboard, and what its console said."""

    page: Page
    errors: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, context: BrowserContext, url: str, link: str = "live") -> Dashboard:
        """Load the page (in a new tab) and wait until its event stream is ``link``."""
        dashboard = cls(context.new_page())
        dashboard.page.on("console", dashboard._console)
        dashboard.page.on("pageerror", lambda error: dashboard.errors.append(str(error)))
        dashboard.page.goto(url)
        dashboard.page.wait_for_selector(f"#link[data-link={link}]", timeout=10_000)
        return dashboard

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text}")

    def slots(self) -> dict[int, tuple[str, frozenset[str]]]:
        """{slot: (version or "", flags)} as the slot cards show them (image 0)."""
        cards = self.page.eval_on_selector_all(
            ".slot[data-image='0']",
            "cards => cards.map(c => [c.dataset.slot, c.dataset.version, c.dataset.flags])")
        return {int(slot): (version, frozenset(flags.split()))
                for slot, version, flags in cards}

    def attribute(self, selector: str, name: str) -> str | None:
        """An attribute of the first element ``selector`` finds."""
        return self.page.get_attribute(selector, name)

    def wait(self, what: Callable[[], Any], expected: Any, timeout_s: float = 20.0) -> None:
        """Poll ``what()`` (read from the DOM) until it equals ``expected``."""
        deadline = time.monotonic() + timeout_s
        seen = what()
        while seen != expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"the page shows {seen!r}, not {expected!r}, after "
                                     f"{timeout_s} s")
            self.page.wait_for_timeout(50)
            seen = what()


def flags(*names: str) -> frozenset[str]:
    return frozenset(names)
