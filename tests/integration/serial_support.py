"""Helpers of the serial integration tests: the far end of a board's serial line, and clients in
child processes (the Rust clients hold the GIL while they wait)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from smpsim.mcumgr.framing.serial import ConsoleReceiver, Packet, encode_packet

from .itsupport import TOOLKIT_WORKER, parse_frame


class Port:
    """A serial port opened like a client opens it: raw bytes in and out, SMP frames decoded."""

    def __init__(self, path: str, *, flush: bool = True) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        if flush:
            termios.tcflush(self.fd, termios.TCIFLUSH)
        self.received = b""
        """Every byte read so far."""
        self._rx = ConsoleReceiver(65536, rx_buf_size=65536, rx_buf_count=1_000_000,
                                   shell=True)
        self._frames: list[bytes] = []

    @classmethod
    def on_fd(cls, fd: int) -> Port:
        """A Port on an already open descriptor (the test's end of a pty pair)."""
        port = cls.__new__(cls)
        port.fd = fd
        port.received = b""
        port._rx = ConsoleReceiver(65536, rx_buf_size=65536, rx_buf_count=1_000_000,
                                   shell=True)
        port._frames = []
        return port

    def __enter__(self) -> Port:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                select.select([], [self.fd], [], 1.0)

    def send(self, frame: bytes) -> None:
        """Send one SMP frame in console framing."""
        self.write(encode_packet(frame))

    def pump(self, timeout: float) -> bytes:
        """Read what arrives within ``timeout`` (or what is there, at 0); returns it."""
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return b""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return b""
        self.received += data
        self._frames += [e.data for e in self._rx.feed(data) if isinstance(e, Packet)]
        return data

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> float:
        """Read until ``predicate()``; the monotonic time it first held."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"not seen within {timeout} s; line so far: "
                                     f"{self.received[-600:]!r}")
            self.pump(min(left, 0.05))
        return time.monotonic()

    def frame(self, timeout: float = 5.0) -> tuple[dict[str, int], Any]:
        """The next SMP response frame, decoded."""
        self.wait_for(lambda: bool(self._frames), timeout)
        return parse_frame(self._frames.pop(0))

    def answer(self, seq: int, timeout: float = 5.0) -> Any:
        """The body of the response with sequence number ``seq`` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            header, body = self.frame(max(deadline - time.monotonic(), 0.001))
            if header["seq"] == seq:
                return body

    def text(self) -> str:
        """Everything received that is not SMP framing, as text."""
        kept = [line for line in self.received.split(b"\n")
                if not line.startswith((b"\x06\x09", b"\x04\x14"))]
        return b"\n".join(kept).decode("utf-8", "replace")

    def quiet(self, seconds: float) -> bytes:
        """Whatever arrives within ``seconds``."""
        got = b""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            got += self.pump(left)
        return got


def run_toolkit_serial(path: str, *ops: list[Any], timeout_ms: int = 2000) -> list[Any]:
    """mcumgr-toolkit on a serial port, in a child process (see ``itsupport.run_toolkit``)."""
    proc = subprocess.run(
        [sys.executable, str(TOOLKIT_WORKER), "serial", path, str(timeout_ms),
         json.dumps(list(ops))],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"toolkit worker failed:\n{proc.stdout}\n{proc.stderr}"
    results: list[Any] = json.loads(proc.stdout.splitlines()[-1])
    return results


WRAPPER = """
import json, sys
import mcumgr_client
path, ops = sys.argv[1], json.loads(sys.argv[2])
session = mcumgr_client.SerialSession(device=path, baudrate=115200, initial_timeout_s=10,
                                      subsequent_timeout_ms=2000, nb_retry=2)
out = []
for method, *args in ops:
    if method == "test":
        args = [bytes.fromhex(args[0]), *args[1:]]
    if method == "upload":
        args = [*args, lambda off, total: None]
    result = getattr(session, method)(*args)
    if method == "list":
        result = [{**i, "hash": bytes(i["hash"]).hex()} for i in result]
    out.append(result)
print(json.dumps(out))
"""
"""mcumgr-client-wrapper 0.3.0 driver: ``python -c WRAPPER PATH OPS_JSON``."""


def run_wrapper(path: str, *ops: list[Any]) -> list[Any]:
    """mcumgr-client-wrapper (SMP v1) on a serial port, in a child process; one result per op
    (``list`` hashes as hex)."""
    proc = subprocess.run([sys.executable, "-c", WRAPPER, path, json.dumps(list(ops))],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"wrapper failed:\n{proc.stdout}\n{proc.stderr}"
    results: list[Any] = json.loads(proc.stdout.splitlines()[-1])
    return results
