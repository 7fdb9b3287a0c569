"""Soak: does a board grow with resets or requests? ``make soak`` (not a test: minutes long).

Starts ``smpsim run`` (nrf52840dk: MCUboot with ECDSA, littlefs, settings, at time scale 0) and
talks SMP to it over UDP: RESETS resets (os reset, then echoes until it answers again), then
REQUESTS requests of a dozen kinds (echo, params, info, taskstat, image state, statistics, a
settings read, a file's status and download, enumeration), 32 in flight. Prints the process's
RSS after a warm-up, after the resets and after the requests, and the growth per 10,000 resets
and per million requests. Set RESETS, REQUESTS, PROFILE in the environment to change them.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import cbor2

BIN = Path(sys.executable).parent
RESETS = int(os.environ.get("RESETS", "10000"))
REQUESTS = int(os.environ.get("REQUESTS", "1000000"))
PROFILE = os.environ.get("PROFILE", "nrf52840dk")
WARMUP_RESETS = 300
WINDOW = 32
HEADER = struct.Struct(">BBHHBB")

# (op, group, cmd, body): requests the board answers without changing its flash.
MIX = [
    (2, 0, 0, {"d": "soak"}), (0, 0, 6, {}), (0, 0, 7, {"format": "a"}), (0, 0, 2, {}),
    (0, 1, 0, {}), (0, 2, 1, {}), (0, 2, 0, {"name": "smp_svr_stats"}),
    (0, 3, 0, {"name": "app/greeting"}), (0, 8, 1, {"name": "/lfs1/app.log"}),
    (0, 8, 0, {"name": "/lfs1/app.log", "off": 0}), (0, 10, 0, {}), (2, 0, 0, {"d": "x" * 200}),
]


def frame(op: int, group: int, cmd: int, seq: int, body: dict[str, object]) -> bytes:
    payload = cbor2.dumps(body)
    return HEADER.pack(op | 1 << 3, 0, len(payload), group, seq, cmd) + payload


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


class Board:
    """``smpsim run`` in a child process, and a UDP socket to it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "smpsim"), "run", "--profile", PROFILE, "--time-scale", "0",
             "--udp", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        ready = self.proc.stdout.readline()
        port = int(ready.rsplit(":", 1)[1])
        self.boots = 0
        threading.Thread(target=self._count_boots, daemon=True).start()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(2.0)
        self.seq = 0

    def _count_boots(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "*** Booting Zephyr OS" in line:
                self.boots += 1

    def ask(self, op: int, group: int, cmd: int, body: dict[str, object]) -> bytes:
        self.seq = (self.seq + 1) % 256
        self.sock.send(frame(op, group, cmd, self.seq, body))
        while True:
            answer = self.sock.recv(4096)
            if answer[6] == self.seq:
                return answer

    def reset(self) -> None:
        self.ask(2, 0, 5, {})
        while True:  # silent while it reboots (at time scale 0, hardly at all)
            try:
                self.ask(2, 0, 0, {"d": "up?"})
                return
            except TimeoutError:
                continue

    def requests(self, count: int) -> int:
        """Send ``count`` requests, WINDOW in flight; returns how many were answered."""
        self.sock.settimeout(1.0)
        sent = answered = 0
        outstanding = 0
        while answered < count:
            while outstanding < WINDOW and sent < count:
                op, group, cmd, body = MIX[sent % len(MIX)]
                self.sock.send(frame(op, group, cmd, sent % 256, body))
                sent += 1
                outstanding += 1
            try:
                self.sock.recv(4096)
            except TimeoutError:
                if sent >= count:
                    break
                outstanding = 0  # lost in the socket buffers: refill the window
                continue
            answered += 1
            outstanding -= 1
        return answered

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        self.sock.close()


def main() -> int:
    board = Board()
    try:
        for _ in range(WARMUP_RESETS):
            board.reset()
        board.requests(20000)
        start_rss = rss_kb(board.proc.pid)
        boots_before = board.boots
        print(f"smpsim run --profile {PROFILE}: RSS {start_rss} kB after a warm-up of "
              f"{WARMUP_RESETS} resets and 20000 requests", flush=True)
        started = time.monotonic()
        for done in range(1, RESETS + 1):
            board.reset()
            if done % 2000 == 0:
                print(f"  {done} resets: RSS {rss_kb(board.proc.pid)} kB", flush=True)
        took = time.monotonic() - started
        time.sleep(0.5)  # the last boot lines
        after_resets = rss_kb(board.proc.pid)
        booted = board.boots - boots_before
        grow = (after_resets - start_rss) * 10000 / max(RESETS, 1)
        print(f"{RESETS} resets ({booted} boots seen) in {took:.0f} s: RSS {start_rss} -> "
              f"{after_resets} kB, {grow:+.0f} kB per 10,000 resets", flush=True)
        started = time.monotonic()
        answered = board.requests(REQUESTS)
        took = time.monotonic() - started
        after_requests = rss_kb(board.proc.pid)
        grow = (after_requests - after_resets) * 1_000_000 / max(REQUESTS, 1)
        print(f"{REQUESTS} requests ({answered} answered) in {took:.0f} s: RSS {after_resets} "
              f"-> {after_requests} kB, {grow:+.0f} kB per million requests", flush=True)
    finally:
        board.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
