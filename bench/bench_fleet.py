"""``make bench-fleet``: fleets of boards, ``smpsim fleet`` as users run it.

1. A fleet of ``--boards`` (1,000) boards in one process at time scale 1, one loopback address
   each from 127.0.1.1 on port 1337: start-up time (new flash files, then a restart on them),
   resident memory per board, every board answering an echo, the aggregate echo rate.
2. ``--big`` (10,000) boards across ``--workers`` (2) processes: the same figures.
3. A fleet-wide reset at time scale 1: every board of a fleet gets ``os reset`` at once over
   UDP; each board's boot is timed inside the fleet process (the moment it goes down and the
   moment it answers again, against the emulated length of that boot). A board is late by what
   its boot took beyond its own emulated length; the goal is at most 5 % of one boot. Several
   fleet sizes, one process each, then the largest across the workers.

    .venv/bin/python bench/bench_fleet.py [--boards N] [--big N] [--workers K] [--skip-big]
        [--reset-only] [--reset-sizes N,N...]

Flash files go to a temporary folder (``--dir`` to choose; 1 MiB each for nrf52840dk), removed
at the end. The client is this process: one UDP socket, many requests in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import multiprocessing
import os
import queue
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import cbor2

from bench_udp import echo_request

BIN = Path(sys.executable).parent
FIRST = "127.0.1.1"
LATE_GOAL = 0.05
"""A board may come back at most this fraction of one boot late after a fleet-wide reset."""


def addresses(count: int, first: str = FIRST) -> list[tuple[str, int]]:
    """Where the boards of a fleet from ``first`` listen."""
    base = ipaddress.ip_address(first)
    return [(str(base + i), 1337) for i in range(count)]


def reset_request(seq: int) -> bytes:
    """os reset (group 0, command 5), WRITE, SMP v2, empty map."""
    body = cbor2.dumps({})
    return bytes([2 | 1 << 3, 0, 0, len(body), 0, 0, seq & 0xFF, 5]) + body


# --- the fleet as a process ---------------------------------------------------------------

@dataclass
class Fleet:
    """``smpsim fleet`` running in a child process."""

    proc: subprocess.Popen[str]
    ready_s: float
    """From starting the command to its fleet-ready line."""

    def pids(self) -> list[int]:
        """The fleet process and its workers."""
        pids = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            pids += [int(p) for p in children.split()]
        except OSError:
            pass
        return pids

    def memory_kib(self) -> tuple[int, int]:
        """(sum of RSS, sum of PSS) of its processes, KiB: PSS splits pages workers share with
        the parent they were forked from."""
        rss = pss = 0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                name, _, value = line.partition(":")
                if name == "Rss":
                    rss += int(value.split()[0])
                elif name == "Pss":
                    pss += int(value.split()[0])
        return rss, pss

    def cpu_s(self) -> float:
        """CPU seconds used by its processes so far."""
        total = 0.0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> float:
        """SIGTERM; seconds until it has exited."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        return time.monotonic() - start


@contextmanager
def fleet(flash_dir: Path, boards: str, workers: int = 1,
          timeout_s: float = 600) -> Iterator[Fleet]:
    """Run ``smpsim fleet --board BOARDS``; yields once it says the fleet is ready."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [str(BIN / "smpsim"), "fleet", "--board", boards, "--flash-dir", str(flash_dir),
         "--addresses", FIRST, "--workers", str(workers), "--time-scale", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()],
                     daemon=True).start()
    try:
        while True:
            try:
                line = lines.get(timeout=max(timeout_s - (time.monotonic() - start), 0.1))
            except queue.Empty:
                raise RuntimeError(f"no fleet-ready line within {timeout_s} s") from None
            if line.startswith("smpsim: fleet of"):
                break
        yield Fleet(proc, time.monotonic() - start)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# --- the client ---------------------------------------------------------------------------

def client_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setblocking(False)
    return sock


def echo_sweep(targets: list[tuple[str, int]], rounds: int = 5) -> int:
    """How many boards answer an echo (each board asked again, up to ``rounds`` times, while it
    has not answered: a datagram may be dropped in a full socket buffer)."""
    frame = echo_request(1, "sweep")
    answered: set[tuple[str, int]] = set()
    with client_socket() as sock:
        for _ in range(rounds):
            missing = [t for t in targets if t not in answered]
            if not missing:
                break
            for start in range(0, len(missing), 256):
                for target in missing[start:start + 256]:
                    sock.sendto(frame, target)
                _drain(sock, answered, 0.02)
            _drain(sock, answered, 1.0)
    return len(answered)


def _drain(sock: socket.socket, answered: set[tuple[str, int]], quiet_s: float) -> None:
    while select.select([sock], [], [], quiet_s)[0]:
        while True:
            try:
                data, source = sock.recvfrom(4096)
            except BlockingIOError:
                break
            if data[0] & 7 == 3 and cbor2.loads(data[8:]) == {"r": "sweep"}:
                answered.add(source)


def echo_rate(targets: list[tuple[str, int]], seconds: float, window: int = 256) -> float:
    """Echo round trips per second over the whole fleet, ``window`` requests in flight, each
    to the next board in turn."""
    frame = echo_request(1, "rate")
    done = sent = 0
    with client_socket() as sock:
        start = time.monotonic()
        end = start + seconds
        in_flight = 0
        while time.monotonic() < end:
            while in_flight < window:
                sock.sendto(frame, targets[sent % len(targets)])
                sent += 1
                in_flight += 1
            if not select.select([sock], [], [], 0.2)[0]:
                in_flight = 0  # lost datagrams: start the window again
                continue
            while True:
                try:
                    sock.recvfrom(4096)
                except BlockingIOError:
                    break
                done += 1
                in_flight -= 1
        return done / (time.monotonic() - start)


# --- a fleet-wide reset, timed inside the fleet -----------------------------------------------

@dataclass(frozen=True)
class Part:
    """Boards ``first`` to ``end`` (excluded) of a ``total``-board fleet of ``profile``."""

    profile: str
    total: int
    first: int
    end: int
    flash_dir: str


def timed_shard(conn: Connection, part: Part) -> None:
    """Child process: a part of a fleet, as ``smpsim fleet`` runs it, with every boot's down
    and up moments recorded."""
    from smpsim.fleet import shard
    from smpsim.fleet.addressing import Addressing, bind_all
    from smpsim.fleet.spec import BoardSpec, plan

    boards = plan([BoardSpec(part.profile, part.total)], Path(part.flash_dir))
    endpoints = Addressing(first=FIRST).assign([(part.total, None)])
    mine = shard.Shard(boards[part.first:part.end],
                       bind_all(endpoints[part.first:part.end]), 1.0, False)
    asyncio.run(_timed(mine, conn))


def _cpu_s() -> float:
    usage = os.times()
    return usage.user + usage.system


async def _timed(part: Any, conn: Connection) -> None:
    from smpsim.fleet import shard

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    running = shard.make_boards(part)
    times: dict[str, list[float]] = {}
    cpu_at_ready = 0.0

    def watch(board: Any) -> None:
        name, runner, clock = board.name, board.runner, board.device.clock
        runner.down_listeners.append(
            lambda: times.__setitem__(name, [time.monotonic(), clock.busy_total]))
        runner.boot_listeners.append(
            lambda: times[name].extend((time.monotonic(), clock.busy_total))
            if name in times else None)

    def ready(lines: list[str], entries: list[dict[str, Any]]) -> None:
        nonlocal cpu_at_ready
        for board in running:
            watch(board)
        cpu_at_ready = _cpu_s()
        conn.send("ready")

    def command() -> None:
        if conn.recv() == "report":
            hwm = next(int(line.split()[1]) for line in
                       Path("/proc/self/status").read_text().splitlines()
                       if line.startswith("VmHWM"))
            conn.send((times, _cpu_s() - cpu_at_ready, hwm))
        else:
            stop.set()

    loop.add_reader(conn.fileno(), command)
    await shard.serve(part, ready, stop, running)


@dataclass
class Lateness:
    """One fleet-wide reset."""

    boards: int
    back: int
    """Boards that went down and came back."""
    boot_s: float
    """Median emulated length of a boot."""
    late: list[float]
    """Each board's lateness, sorted."""
    cpu_s: float
    """CPU the fleet processes used from the resets to the report."""
    peak_kib: int
    """Largest peak RSS of a fleet process."""
    all_back_s: float
    """From the first reset sent to the last board back: what a client waits for the whole
    fleet (the lateness above does not count a reset that starts late)."""

    def row(self, workers: int) -> str:
        late = self.late
        p50, p95, worst = (statistics.median(late), late[int(0.95 * (len(late) - 1))],
                           late[-1])
        goal = LATE_GOAL * self.boot_s
        verdict = "meets" if worst <= goal and self.back == self.boards else "MISSES"
        return (f"{self.boards:6} {workers:3} {self.back:6} {self.boot_s * 1e3:7.0f}"
                f" {p50 * 1e3:8.1f} {p95 * 1e3:8.1f} {worst * 1e3:8.1f} {goal * 1e3:7.1f}"
                f"  {verdict:6} {self.cpu_s / self.boards * 1e3:9.2f} {self.peak_kib >> 10:9}"
                f" {self.all_back_s * 1e3:8.0f}")


def fleet_reset(flash_dir: Path, profile: str, boards: int, workers: int) -> Lateness:
    """Reset every board of a fresh fleet at once; time each board's boot inside the fleet."""
    ctx = multiprocessing.get_context("spawn")
    procs, conns = [], []
    start = 0
    for index in range(workers):
        size = boards // workers + (index < boards % workers)
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=timed_shard, daemon=True,
                           args=(theirs, Part(profile, boards, start, start + size,
                                              str(flash_dir))))
        proc.start()
        procs.append(proc)
        conns.append(mine)
        start += size
    try:
        for conn in conns:
            if not conn.poll(600):
                raise RuntimeError("the timed fleet did not start")
            conn.recv()
        time.sleep(1.0)
        sent = time.monotonic()  # one clock for every process of the machine
        with client_socket() as sock:
            for seq, target in enumerate(addresses(boards)):
                sock.sendto(reset_request(seq), target)
        time.sleep(3.0 + boards * 0.003)  # reset delay, boot, and the CPU the boots need
        times: dict[str, list[float]] = {}
        cpu = 0.0
        peak = 0
        for conn in conns:
            conn.send("report")
            part, part_cpu, part_peak = conn.recv()
            times.update(part)
            cpu += part_cpu
            peak = max(peak, part_peak)
        for conn in conns:
            conn.send("stop")
        for proc in procs:
            proc.join(60)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    done = [t for t in times.values() if len(t) == 4]
    late = sorted((up - down) - (busy_up - busy_down) for down, busy_down, up, busy_up in done)
    boot = statistics.median(busy_up - busy_down for _, busy_down, _, busy_up in done)
    last_back = max((t[2] for t in done), default=sent)
    return Lateness(boards, len(done), boot, late, cpu, peak, last_back - sent)


# --- main ----------------------------------------------------------------------------------

def measure_fleet(root: Path, profile: str, boards: int, workers: int,
                  echo_seconds: float) -> None:
    """Start-up, memory, echo of one fleet (new files, then a restart)."""
    flash_dir = root / f"{profile}-{boards}"
    targets = addresses(boards)
    with fleet(root / f"{profile}-baseline-{workers}", f"{profile}:{workers}", workers) as base:
        time.sleep(2.0)
        _, base_pss = base.memory_kib()
        base.stop()
    with fleet(flash_dir, f"{profile}:{boards}", workers) as first:
        first_s = first.ready_s
        first.stop()
    with fleet(flash_dir, f"{profile}:{boards}", workers) as again:
        time.sleep(2.0)  # idle: the boots' threads are gone
        rss, pss = again.memory_kib()
        answered = echo_sweep(targets)
        cpu_before = again.cpu_s()
        rate = echo_rate(targets, echo_seconds)
        cpu_used = again.cpu_s() - cpu_before
        stop_s = again.stop()
    files = sum(f.stat().st_blocks * 512 for f in flash_dir.glob("*.bin"))
    label = f"{boards} x {profile}, {workers} process{'es' if workers > 1 else ''}"
    print(f"\n{label}, time scale 1, one address each from {FIRST}:1337")
    print(f"  start-up, new flash files   {first_s:7.2f} s  "
          f"({first_s / boards * 1e3:.2f} ms/board)")
    print(f"  start-up, restart           {again.ready_s:7.2f} s  "
          f"({again.ready_s / boards * 1e3:.2f} ms/board)")
    print(f"  memory, idle                RSS {rss / 1024:.0f} MiB, PSS {pss / 1024:.0f} MiB; "
          f"{(pss - base_pss) / (boards - workers):.0f} KiB per board beyond a fleet of "
          f"{workers} ({base_pss / 1024:.0f} MiB)")
    print(f"  answering echo              {answered} of {boards}")
    print(f"  aggregate echo rate         {rate:,.0f} round trips/s "
          f"(fleet CPU {cpu_used / max(rate * echo_seconds, 1) * 1e6:.0f} us/echo)")
    print(f"  stop on SIGTERM             {stop_s:.2f} s")
    print(f"  flash files on disk         {files >> 20} MiB")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--profile", default="nrf52840dk", help="board profile (nrf52840dk)")
    parser.add_argument("--boards", type=int, default=1000, help="one-process fleet (1000)")
    parser.add_argument("--big", type=int, default=10_000, help="multi-process fleet (10000)")
    parser.add_argument("--workers", type=int, default=2, help="its processes (2)")
    parser.add_argument("--skip-big", action="store_true", help="leave the big fleet out")
    parser.add_argument("--reset-only", action="store_true",
                        help="only the fleet-wide resets (part 3), for iterating on them")
    parser.add_argument("--reset-sizes", default="24,100,250,500",
                        help="one-process fleets to reset (24,100,250,500; plus --boards)")
    parser.add_argument("--echo-seconds", type=float, default=3.0, help="echo rate run (3)")
    parser.add_argument("--dir", type=Path, help="where the flash files go (a temporary folder)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-", dir=args.dir))
    print(f"bench-fleet: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f", flash files in {root}")
    try:
        if not args.reset_only:
            measure_fleet(root, args.profile, args.boards, 1, args.echo_seconds)
        if not args.skip_big and not args.reset_only:
            measure_fleet(root, args.profile, args.big, args.workers, args.echo_seconds)
        print("\nfleet-wide reset at time scale 1: os reset to every board at once; lateness "
              "of each board's return\nbeyond its own boot, timed inside the fleet "
              f"(goal: at most {LATE_GOAL:.0%} of one boot)")
        print(f"{'boards':>6} {'procs':>3} {'back':>6} {'boot ms':>7} {'p50 ms':>8} "
              f"{'p95 ms':>8} {'max ms':>8} {'goal ms':>7}  {'':6} {'CPU ms/bd':>9} "
              f"{'peak MiB':>9} {'all back':>8}")
        sizes = sorted({int(s) for s in args.reset_sizes.split(",")} | {args.boards})
        for size in sizes:
            result = fleet_reset(root / "reset", args.profile, size, 1)
            print(result.row(1), flush=True)
        if args.workers > 1:
            result = fleet_reset(root / "reset", args.profile, args.boards, args.workers)
            print(result.row(args.workers), flush=True)
        print("  CPU ms/bd: fleet CPU per board from the resets to the report (the boots and "
              "their replies)\n  all back: ms from the first reset sent to the last board back "
              "(the reset's own delay and one boot included)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
