"""Shared helpers of the integration tests: real clients, real sockets, real processes.

Imported by the test modules of this package.
"""

from __future__ import annotations

import asyncio
import json
import queue
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import cbor2
from smpclient import SMPClient
from smpclient.transport.udp import SMPUDPTransport

from smpsim.errors import ConfigError
from smpsim.pytest_plugin import EmulatedDevice

T = TypeVar("T")

BIN = Path(sys.executable).parent
"""The venv's scripts: smpsim, smpmgr."""
HERE = Path(__file__).resolve().parent
TOOLKIT_WORKER = HERE / "toolkit_worker.py"


class PortUDP(SMPUDPTransport):
    """smpclient's UDP transport on any port: ``SMPClient.connect()`` never passes one."""

    def __init__(self, port: int, mtu: int = 1500) -> None:
        super().__init__(mtu=mtu)
        self._port = port

    async def connect(self, address: str, timeout_s: float) -> None:
        await super().connect(address, timeout_s, port=self._port)


def smp_session(host: str, port: int, body: Callable[[SMPClient], Awaitable[T]],
                timeout_s: float = 2.0) -> T:
    """Connect smpclient (it reads MCUmgr params first), run ``body(client)``, disconnect."""
    async def main() -> T:
        async with SMPClient(PortUDP(port), host, timeout_s=timeout_s) as client:
            return await body(client)
    return asyncio.run(main())


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0,
               interval_s: float = 0.005) -> float:
    """Poll until ``predicate()`` holds; returns the monotonic time it was seen to hold."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


def device_on_port_1337(factory: Callable[..., EmulatedDevice], profile: str = "nrf52840dk",
                        **options: Any) -> EmulatedDevice:
    """A device on 127.0.0.N:1337 for clients with a fixed port (smpmgr).

    Never 127.0.0.1, where a developer's ``make run`` may be listening; another address is
    tried when one is taken (parallel test runs).
    """
    candidates = random.sample(range(2, 251), 20)
    for last in candidates:
        try:
            return factory(profile, host=f"127.0.0.{last}", port=1337, **options)
        except ConfigError:
            continue
    raise AssertionError("no free 127.0.0.N:1337 for smpmgr; is something bound to 0.0.0.0:1337?")


# --- raw SMP frames, for clients we write ourselves ---------------------------------------

READ, READ_RSP, WRITE, WRITE_RSP = 0, 1, 2, 3
V1, V2 = 0, 1
_HEADER = struct.Struct(">BBHHBB")


def smp_frame(op: int, group: int, cmd: int, seq: int, body: Any = None, *,
              version: int = V2) -> bytes:
    """One SMP frame: header + CBOR body (``{}`` when ``body`` is None)."""
    payload = cbor2.dumps({} if body is None else body)
    return _HEADER.pack(op | version << 3, 0, len(payload), group, seq, cmd) + payload


def parse_frame(frame: bytes) -> tuple[dict[str, int], Any]:
    """(header fields, decoded body) of one response frame."""
    byte0, _flags, length, group, seq, cmd = _HEADER.unpack_from(frame)
    header = {"op": byte0 & 7, "version": byte0 >> 3 & 3, "length": length, "group": group,
              "seq": seq, "cmd": cmd}
    assert len(frame) == 8 + length, f"frame of {len(frame)} B, header says {8 + length}"
    return header, cbor2.loads(frame[8:])


def udp_socket(address: tuple[str, int], timeout_s: float = 2.0) -> socket.socket:
    """A blocking UDP socket connected to ``address``."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(timeout_s)
    sock.connect(address)
    return sock


def echo_frame(seq: int, text: str, op: int = WRITE) -> bytes:
    """An os echo request."""
    return smp_frame(op, 0, 0, seq, {"d": text})


RESET = (0, 5)
"""os reset: group, command."""


# --- mcumgr-toolkit in a child process ----------------------------------------------------

def run_toolkit(host: str, port: int, *ops: list[Any], timeout_ms: int = 1000) -> list[Any]:
    """Run mcumgr-toolkit calls in a child process; returns one JSON result per op.

    mcumgr-toolkit 0.20.0 holds the GIL while it waits for an answer, so an in-process
    device thread could not answer until the call times out; a child process has its own.
    Each op is ``[method, *args]``; a raised error comes back as ``{"error": message}``.
    """
    proc = subprocess.run(
        [sys.executable, str(TOOLKIT_WORKER), host, str(port), str(timeout_ms),
         json.dumps(list(ops))],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"toolkit worker failed:\n{proc.stdout}\n{proc.stderr}"
    results: list[Any] = json.loads(proc.stdout.splitlines()[-1])
    return results


@contextmanager
def smpsim_run(*args: str, ready_lines: int = 1, command: str = "run",
               ) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Start ``smpsim COMMAND ARGS``; yield the process and its first ``ready_lines`` stdout
    lines. The process is killed (if still running) and its pipes closed afterwards."""
    proc = subprocess.Popen([str(BIN / "smpsim"), command, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()],
                              daemon=True)
    reader.start()
    try:
        ready = []
        while len(ready) < ready_lines:
            try:
                ready.append(lines.get(timeout=30).rstrip("\n"))
            except queue.Empty:
                raise AssertionError(f"no ready line within 30 s (exit {proc.poll()})") from None
        yield proc, ready
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
