"""``make bench``: SMP echo over UDP loopback against smpsim, next to a bare asyncio UDP echo
server measured in the same run, and the in-process cost of ``Server.handle``; then smpsim with
its control plane on (``--control``) and one WebSocket listener following the event stream,
against smpsim without it.

Each server runs in its own process (one event loop, as ``smpsim run`` has); the client is a
blocking socket in this process with one request in flight, as smpclient and mcumgr-toolkit
do. Rounds alternate between the servers, each bounded by a request count and a time limit,
after a warm-up; the table shows the median round. Beside each server's rate: its CPU time and
its loop's busy time per request. A round trip also holds two wake-ups (the server's, then the
client's), which in a virtual machine whose idle vCPUs halt cost more than either side's work;
the table's header says what this machine's idle CPUs do.

    .venv/bin/python bench/bench_udp.py [--rounds N] [--seconds S] [--profile]

``--profile`` also runs smpsim's server process under cProfile for one round and prints where
its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import multiprocessing
import os
import signal
import socket
import statistics
import struct
import sys
import time
import timeit
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import cbor2

HOST = "127.0.0.1"
WARMUP_REQUESTS = 2000
GOAL_RATIO = 0.9
"""Issue 15: smpsim answers echoes at 0.9 of the bare server's rate or better."""
CONTROL_GOAL_RATIO = 0.9


# --- SMP frames ------------------------------------------------------------------------------

def echo_request(seq: int, text: str) -> bytes:
    """os echo (group 0, command 0), WRITE, SMP v2."""
    body = cbor2.dumps({"d": text})
    return struct.pack(">BBHHBB", 2 | 1 << 3, 0, len(body), 0, seq, 0) + body


def echo_text_for_frame(frame_size: int) -> str:
    """An echo string that makes the whole request frame exactly ``frame_size`` bytes."""
    text = "x" * (frame_size - 8)
    while len(echo_request(0, text)) > frame_size:
        text = text[:-1]
    assert len(echo_request(0, text)) == frame_size
    return text


# --- servers (child processes) -----------------------------------------------------------

class BareEcho(asyncio.DatagramProtocol):
    """The baseline: every datagram goes straight back to its sender."""

    transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.transport.sendto(data, addr)


async def _bare_server(ready: Callable[[int], None]) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(BareEcho, local_addr=(HOST, 0))
    ready(transport.get_extra_info("sockname")[1])
    await _until_terminated()
    transport.close()


async def _smpsim_server(ready: Callable[[int], None], control: bool = False) -> None:
    from smpsim.board import Board
    from smpsim.config import load_profile
    from smpsim.control.service import ControlService
    from smpsim.transports.endpoint import EndpointSpec
    from smpsim.transports.udp import UdpEndpoint

    # As `smpsim run --control 127.0.0.1:0`: the plane watches from the first boot on.
    service = ControlService(f"{HOST}:0") if control else None
    board = Board(load_profile("native_sim_udp"), [EndpointSpec("udp", f"{HOST}:0")],
                  before_boot=service.attach if service else None)
    await board.start()
    if service is not None:
        await service.start()
    ready(board.endpoint(UdpEndpoint).address[1])
    if service is not None and service.server is not None:
        ready(service.server.port)
    await _until_terminated()
    if service is not None:
        await service.stop()
    await board.stop()


async def _control_server(ready: Callable[[int], None]) -> None:
    await _smpsim_server(ready, control=True)


async def _until_terminated() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


SERVERS = {"bare": _bare_server, "smpsim": _smpsim_server, "control": _control_server}


async def _busy_clocked(server: Coroutine[Any, Any, None], busy: ctypes.c_double) -> None:
    """Run ``server`` with ``busy.value`` adding up the seconds its loop works: from each
    return of the selector's wait to its next call, so without the time the machine takes to
    wake the process (which the round trip holds, and the CPU time in part)."""
    # asyncio has no hook around the loop's wait: its selector (private) is wrapped instead.
    selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
    wait, clock = selector.select, time.perf_counter
    woke = clock()

    def select(timeout: float | None = None) -> Any:
        nonlocal woke
        busy.value += clock() - woke
        events = wait(timeout)
        woke = clock()
        return events

    selector.select = select  # the loop looks it up at every pass
    await server


def serve(kind: str, conn: Connection, profile: bool, cpu: int | None,
          busy: ctypes.c_double) -> None:
    """Child process body: run one server until SIGTERM; send its port, then its profile."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    profiler = None
    if profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    asyncio.run(_busy_clocked(SERVERS[kind](conn.send), busy))
    if profiler is not None:
        import io
        import pstats
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(18)
        stats.sort_stats("cumulative").print_stats(30)
        conn.send(out.getvalue())


@dataclass
class ServerProcess:
    """A server in a child process."""

    kind: str
    profile: bool = False
    cpu: int | None = None
    """Pin the server to this CPU."""

    def __enter__(self) -> ServerProcess:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.busy = ctx.RawValue("d", 0.0)
        """Seconds the server's loop has worked so far (:func:`_busy_clocked`)."""
        self.proc = ctx.Process(target=serve, daemon=True, args=(
            self.kind, child, self.profile, self.cpu, self.busy))
        self.proc.start()
        if not self.conn.poll(30):
            raise RuntimeError(f"{self.kind} server did not start")
        self.port: int = self.conn.recv()
        self.control_port: int | None = self.conn.recv() if self.kind == "control" else None
        return self

    def stop(self) -> str | None:
        """Stop the server (once); its profile report when it was profiled."""
        if self.proc.exitcode is not None:
            return None
        self.proc.terminate()
        report = self.conn.recv() if self.profile and self.conn.poll(30) else None
        self.proc.join(10)
        return report

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the WebSocket listener (a child process) --------------------------------------------

def listen(port: int, conn: Connection, cpu: int | None) -> None:
    """Follow ``/api/events`` until SIGTERM; send (events received, events the server dropped
    for this client, the listener's CPU seconds)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    import json

    import aiohttp

    async def main() -> tuple[int, int, float]:
        received = dropped = 0
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(f"http://{HOST}:{port}/api/events") as ws:
            conn.send("connected")
            reader = asyncio.ensure_future(stop.wait())
            while not stop.is_set():
                receive = asyncio.ensure_future(ws.receive())
                await asyncio.wait({receive, reader}, return_when=asyncio.FIRST_COMPLETED)
                if not receive.done():
                    receive.cancel()
                    break
                message = receive.result()
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                # Counted, not parsed: the client's own work would load the client's CPU.
                for line in message.data.splitlines():
                    if line.startswith('{"kind":"gap"'):
                        dropped += json.loads(line)["dropped"]
                    else:
                        received += 1
        return received, dropped, time.process_time()

    conn.send(asyncio.run(main()))


@dataclass
class Listener:
    """A WebSocket listener in a child process."""

    port: int
    cpu: int | None = None

    def __enter__(self) -> Listener:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=listen, args=(self.port, child, self.cpu), daemon=True)
        self.proc.start()
        if not self.conn.poll(30) or self.conn.recv() != "connected":
            raise RuntimeError("the WebSocket listener did not connect")
        return self

    def stop(self) -> tuple[int, int, float]:
        """(events received, events dropped for it, its CPU seconds)."""
        self.proc.terminate()
        counts: tuple[int, int, float] = self.conn.recv() if self.conn.poll(30) \
            else (-1, -1, 0.0)
        self.proc.join(10)
        return counts

    def __exit__(self, *exc: object) -> None:
        if self.proc.exitcode is None:
            self.stop()


# --- the client ----------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux ``/proc``), else None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    """One measured round."""

    rate: float
    """Round trips per second."""
    server_cpu_us: float | None
    """Server process CPU microseconds per request."""
    server_busy_us: float
    """Microseconds per request the server's loop worked, from its wake to its next wait."""


def measure(server: ServerProcess, frames: list[bytes], max_requests: int,
            max_seconds: float) -> Round:
    """One round against ``server``, with the server's CPU time per request."""
    cpu_before, busy_before = cpu_seconds(server.proc.pid or 0), server.busy.value
    done, elapsed = round_trips(server.port, frames, max_requests, max_seconds)
    cpu_after, busy_after = cpu_seconds(server.proc.pid or 0), server.busy.value
    cpu_us = None if cpu_before is None or cpu_after is None \
        else (cpu_after - cpu_before) / done * 1e6
    return Round(done / elapsed, cpu_us, (busy_after - busy_before) / done * 1e6)


def round_trips(port: int, frames: list[bytes], max_requests: int,
                max_seconds: float) -> tuple[int, float]:
    """Stop-and-wait round trips: (count, seconds); every answer's sequence is checked."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.connect((HOST, port))
        send, recv, n_frames = sock.send, sock.recv, len(frames)
        done = 0
        start = time.perf_counter()
        deadline = start + max_seconds
        while done < max_requests:
            frame = frames[done % n_frames]
            send(frame)
            answer = recv(65536)
            if answer[6] != frame[6]:
                raise RuntimeError(f"answer seq {answer[6]} to request seq {frame[6]}")
            done += 1
            if done & 255 == 0 and time.perf_counter() > deadline:
                break
        return done, time.perf_counter() - start


def check_smp_answer(port: int, frame: bytes) -> None:
    """The smpsim server answers the echo with ``{"r": d}`` (not an error)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.connect((HOST, port))
        sock.send(frame)
        answer = sock.recv(65536)
    assert answer[0] & 7 == 3, answer  # WRITE_RSP
    assert cbor2.loads(answer[8:]) == {"r": cbor2.loads(frame[8:])["d"]}, answer


def cpu_idle() -> str:
    """What an idle CPU does here (Linux cpuidle), which sets what a wake-up costs: in a
    virtual machine whose guest does not poll, each round trip wakes two halted vCPUs."""
    try:
        with open("/sys/devices/system/cpu/cpuidle/current_driver", encoding="ascii") as f:
            driver = f.read().strip()
    except OSError:
        return "unknown (no cpuidle)"
    try:
        with open("/sys/module/haltpoll/parameters/guest_halt_poll_ns", encoding="ascii") as f:
            return f"{driver}, the guest polls {int(f.read())} ns before halting"
    except (OSError, ValueError):
        return driver


def verdict(figure: str, ratio: float, goal: float) -> str:
    """The closing line of a ratio's table: its value against its goal."""
    return (f"\n{figure} = {ratio:.3f}: {'meets' if ratio >= goal else 'is BELOW'} the goal "
            f"of {goal}")


# --- in-process cost ---------------------------------------------------------------------

def handle_cost_us(profile_name: str, frame: bytes, repeat: int = 7) -> float:
    """Median microseconds per ``Server.handle(frame)`` on a fresh device."""
    from smpsim.config import load_profile
    from smpsim.device.mcu import Device
    from smpsim.mcumgr.server import Server

    server = Server(Device(load_profile(profile_name)))
    reply = server.handle(frame)
    assert len(reply.frames) == 1 and reply.frames[0][0] & 7 == 3, reply
    assert cbor2.loads(reply.frames[0][8:]) == {"r": cbor2.loads(frame[8:])["d"]}
    timer = timeit.Timer(lambda: server.handle(frame))
    number, _ = timer.autorange()
    return statistics.median(timer.repeat(repeat, number)) / number * 1e6


# --- main ----------------------------------------------------------------------------------

Results = dict[tuple[str, str], list[Round]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per server (default 5)")
    parser.add_argument("--seconds", type=float, default=1.5,
                        help="time limit of one round (default 1.5)")
    parser.add_argument("--requests", type=int, default=100_000,
                        help="request limit of one round (default 100000)")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="client on one CPU, servers on another (default on, if >= 2 CPUs)")
    parser.add_argument("--profile", action="store_true",
                        help="profile smpsim's server process for one round")
    parser.add_argument("--control-rounds", type=int, default=21,
                        help="rounds per server in (e) (default 21: many short rounds, whose "
                             "median shrugs off a machine shared with other work)")
    parser.add_argument("--control-seconds", type=float, default=0.5,
                        help="time limit of one round of (e) (default 0.5)")
    parser.add_argument("--control-only", action="store_true",
                        help="measure only (e): with the control plane and a listener, and "
                             "without")
    parser.add_argument("--profile-kind", choices=("smpsim", "control"), default="smpsim",
                        help="the server --profile profiles (control: with --control and a "
                             "WebSocket listener)")
    return parser.parse_args()


def pin_cpus(pin: bool) -> tuple[str, int | None, int | None]:
    """Pin this process to one CPU; (description, the CPU for the servers, the client's)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not pin or len(cpus) < 2:
        return "not pinned", None, None
    os.sched_setaffinity(0, {cpus[0]})
    return f"client on CPU {cpus[0]}, servers on CPU {cpus[1]}", cpus[1], cpus[0]


def run_udp(args: argparse.Namespace, loads: dict[str, list[bytes]],
            server_cpu: int | None) -> Results:
    """Alternate rounds against both servers, after a check and a warm-up per load."""
    results: Results = {}
    with ServerProcess("bare", cpu=server_cpu) as bare, \
            ServerProcess("smpsim", cpu=server_cpu) as smp:
        servers = {"bare": bare, "smpsim": smp}
        for load, frames in loads.items():
            check_smp_answer(smp.port, frames[0])
            for server in servers.values():
                round_trips(server.port, frames, WARMUP_REQUESTS, 10.0)
            for _ in range(args.rounds):
                for kind, server in servers.items():
                    results.setdefault((load, kind), []).append(
                        measure(server, frames, args.requests, args.seconds))
    return results


def print_udp(args: argparse.Namespace, pinning: str, results: Results,
              loads: dict[str, list[bytes]]) -> dict[str, float]:
    """The (a) (b) (c) table; returns b/a per load."""
    print(f"\nUDP loopback, stop-and-wait, one client process ({pinning}); median of "
          f"{args.rounds} rounds of <= {args.seconds:g} s / {args.requests} requests "
          f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print(f"  CPU idle: {cpu_idle()}")
    print(f"{'load':21} {'bare asyncio (a)':>17} {'smpsim (b)':>12} {'b/a':>5}"
          f" {'a us/rt':>8} {'b us/rt':>8} {'a srv CPU':>10} {'b srv CPU':>10}"
          f" {'a busy':>8} {'b busy':>8}")
    ratios = {}
    for load in loads:
        rounds = {kind: results[(load, kind)] for kind in ("bare", "smpsim")}
        a = statistics.median(r.rate for r in rounds["bare"])
        b = statistics.median(r.rate for r in rounds["smpsim"])
        # Rounds alternate a, b, a, b...: the ratio of each adjacent pair cancels slow drift.
        ratios[load] = statistics.median(rb.rate / ra.rate for ra, rb
                                         in zip(rounds["bare"], rounds["smpsim"], strict=True))
        cpu_text, busy = [], []
        for kind_rounds in rounds.values():
            cpu = [r.server_cpu_us for r in kind_rounds if r.server_cpu_us is not None]
            cpu_text.append(f"{statistics.median(cpu):7.1f} us" if cpu else "n/a")
            busy.append(statistics.median(r.server_busy_us for r in kind_rounds))
        print(f"{load:21} {a:15,.0f}/s {b:10,.0f}/s {ratios[load]:5.2f} {1e6 / a:8.1f}"
              f" {1e6 / b:8.1f} {cpu_text[0]:>10} {cpu_text[1]:>10}"
              f" {busy[0]:5.1f} us {busy[1]:5.1f} us")
    for load in loads:
        spread = {kind: [r.rate for r in results[(load, kind)]] for kind in ("bare", "smpsim")}
        print(f"  {load}: round rates " + "; ".join(
            f"{kind} {min(v):,.0f}..{max(v):,.0f}/s" for kind, v in spread.items()))
    print("  b/a: median over rounds of smpsim's rate / the bare rate of the round before it")
    print("  srv CPU: the server process's CPU time per request (user + system)")
    print("  busy: the server loop's time per request from its wake to its next wait (the rest "
          "of a round trip is the client's and the wake-ups')")
    return ratios


def run_control(args: argparse.Namespace, frames: list[bytes], server_cpu: int | None,
                client_cpu: int | None) -> tuple[list[Round], list[Round], tuple[int, int, float]]:
    """Alternate rounds: smpsim, then smpsim with the control plane and a WebSocket listener
    following its events; the listener's (events received, events dropped for it)."""
    plain: list[Round] = []
    watched: list[Round] = []
    with ServerProcess("smpsim", cpu=server_cpu) as smp, \
            ServerProcess("control", cpu=server_cpu) as ctl:
        assert ctl.control_port is not None
        with Listener(ctl.control_port, client_cpu) as listener:
            check_smp_answer(ctl.port, frames[0])
            for server in (smp, ctl):
                round_trips(server.port, frames, WARMUP_REQUESTS, 10.0)
            for _ in range(args.control_rounds):
                plain.append(measure(smp, frames, args.requests, args.control_seconds))
                watched.append(measure(ctl, frames, args.requests, args.control_seconds))
            time.sleep(0.2)  # the last send cycle reaches the listener
            counts = listener.stop()
    return plain, watched, counts


def print_control(args: argparse.Namespace, load: str, plain: list[Round],
                  watched: list[Round], counts: tuple[int, int, float]) -> float:
    """The (e) table; returns the ratio."""
    ratio = statistics.median(w.rate / p.rate for p, w in zip(plain, watched, strict=True))
    cpu = {name: [r.server_cpu_us for r in rounds if r.server_cpu_us is not None]
           for name, rounds in (("plain", plain), ("watched", watched))}
    print(f"\n(e) {load} with the control plane on (--control) and one WebSocket listener "
          f"following every event; median of {args.control_rounds} rounds of <= "
          f"{args.control_seconds:g} s")
    print(f"{'smpsim (b)':>12} {'+control+WS (e)':>16} {'e/b':>5} {'b srv CPU':>10}"
          f" {'e srv CPU':>10}")
    texts = [f"{statistics.median(v):7.1f} us" if v else "n/a" for v in cpu.values()]
    print(f"{statistics.median(r.rate for r in plain):10,.0f}/s"
          f" {statistics.median(r.rate for r in watched):14,.0f}/s {ratio:5.2f}"
          f" {texts[0]:>10} {texts[1]:>10}")
    received, dropped, cpu_s = counts
    print(f"  the listener received {received:,} events, two per echo ({dropped:,} dropped for "
          f"it: gap markers), on the client's CPU: {cpu_s / max(received, 1) * 1e6:.1f} us "
          "of its CPU per event")
    return ratio


def print_handle() -> None:
    """The (d) table."""
    small = echo_request(1, "hello")
    big = echo_request(1, echo_text_for_frame(2048))
    big_d = len(cbor2.loads(big[8:])["d"])
    rows = [
        (f"echo 'hello' ({len(small)} B frame), native_sim_udp", "native_sim_udp", small),
        (f"echo 'hello' ({len(small)} B frame), nrf52840dk", "nrf52840dk", small),
        (f"echo 2 KiB frame (d of {big_d} B), nrf52840dk", "nrf52840dk", big),
    ]
    print("\n(d) Server.handle in-process (timeit, median of 7)")
    print(f"{'request':46} {'us/request':>10}")
    for label, profile, frame in rows:
        print(f"{label:46} {handle_cost_us(profile, frame):10.2f}")


def main() -> int:
    args = parse_args()
    small_frames = [echo_request(seq, "hello") for seq in range(256)]
    loads = {
        f"echo 'hello' ({len(small_frames[0])} B)": small_frames,
        "echo 1 KiB frame": [echo_request(seq, echo_text_for_frame(1024)) for seq in range(256)],
    }
    pinning, server_cpu, client_cpu = pin_cpus(args.pin)
    if not args.control_only:
        ratios = print_udp(args, pinning, run_udp(args, loads, server_cpu), loads)
        print_handle()
        small_ratio = ratios[next(iter(loads))]
        print(verdict("(c) small echo b/a", small_ratio, GOAL_RATIO))
    load = next(iter(loads))
    ratio = print_control(args, load, *run_control(args, loads[load], server_cpu, client_cpu))
    print(verdict("(e) small echo with --control and a listener / without", ratio,
                  CONTROL_GOAL_RATIO))
    if args.profile:
        with ServerProcess(args.profile_kind, profile=True, cpu=server_cpu) as prof:
            if prof.control_port is not None:
                with Listener(prof.control_port, client_cpu):
                    round_trips(prof.port, small_frames, args.requests, args.seconds)
            else:
                round_trips(prof.port, small_frames, args.requests, args.seconds)
            report = prof.stop()
        print("\ncProfile of the smpsim server process for one round:\n")
        print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
