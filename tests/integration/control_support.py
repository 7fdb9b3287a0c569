"""Helpers of the control plane's process tests: a ``smpsim run --control`` on ephemeral ports,
plain HTTP calls, the WebSocket stream, ``smpsim ctl``."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from .itsupport import BIN, smpsim_run

UDP_READY = re.compile(r"^smpsim: (\S+) serving SMP over UDP on ([0-9.]+):(\d+)$")
CONTROL_READY = re.compile(r"^smpsim: (\S+) serving the control plane on (http://[0-9.]+:(\d+))$")


@dataclass
class Served:
    """A running ``smpsim run --control``."""

    proc: subprocess.Popen[str]
    udp: tuple[str, int]
    url: str
    """The control API's base URL, as the ready line prints it."""
    token: str | None = None

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None,
             token: str | None = None) -> tuple[int, Any]:
        """One HTTP request (with this server's token unless another is given); (status,
        decoded JSON answer)."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        sent = dict(headers or {})
        bearer = token if token is not None else self.token
        if bearer:
            sent["Authorization"] = f"Bearer {bearer}"
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str) -> Any:
        """GET that must succeed; its JSON."""
        status, answer = self.call("GET", path)
        assert status == 200, (status, answer)
        return answer

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``smpsim ctl --control URL [--token T] ARGS``."""
        token = ["--token", self.token] if self.token else []
        return subprocess.run([str(BIN / "smpsim"), "ctl", "--control", self.url, *token, *args],
                              capture_output=True, text=True, timeout=timeout, check=False)


@contextmanager
def control_board(*args: str, token: str | None = None) -> Iterator[Served]:
    """``smpsim run --time-scale 0 --udp 127.0.0.1:0 --control 127.0.0.1:0 ARGS``."""
    extra = ["--control-token", token] if token else []
    with smpsim_run("--time-scale", "0", "--udp", "127.0.0.1:0", "--control", "127.0.0.1:0",
                    *extra, *args, ready_lines=2) as (proc, lines):
        udp = UDP_READY.match(lines[0])
        control = CONTROL_READY.match(lines[1])
        assert udp and control, lines
        assert int(control[3]) != 0
        yield Served(proc, (udp[2], int(udp[3])), control[2], token)


def ws_url(served: Served, query: str = "") -> str:
    """The event stream's WebSocket URL."""
    return served.url.replace("http://", "ws://") + "/api/events" + query


class Stream:
    """The records (events and gap markers) of one WebSocket, one at a time, in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._buffer: deque[dict[str, Any]] = deque()
        self.messages = 0
        """WebSocket messages received (each carries a send cycle's events)."""

    async def next(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """The next record."""
        async with asyncio.timeout(timeout_s):
            while not self._buffer:
                message = await self.ws.receive()
                assert message.type == aiohttp.WSMsgType.TEXT, message
                self.messages += 1
                self._buffer.extend(json.loads(line) for line in message.data.splitlines())
        return self._buffer.popleft()

    async def take(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """The next ``count`` records."""
        return [await self.next(timeout_s) for _ in range(count)]

    async def until(self, predicate: Callable[[dict[str, Any]], bool],
                    timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Records up to and including the first one ``predicate`` holds for."""
        records = [await self.next(timeout_s)]
        while not predicate(records[-1]):
            records.append(await self.next(timeout_s))
        return records
