"""``make bench`` (second half): the figures of issue 15 next to their goals, in one run.

- plugin overhead: the CPU time of an empty pytest project's session with smpsim's
  ``pytest11`` plugin and with ``-p no:smpsim`` (median of 5 alternating runs each), and the
  plugin module's import by itself;
- time to first echo: ``smpsim run`` launched until its first SMP echo answer over UDP
  (bytecode cached; median of 5);
- upload chunk cost in ``Server.handle``, in-process: a steady chunk (mid-upload) and the
  first chunk (with its slot erase check), on the default board at time scale 0.

The echo ratio against a bare asyncio server is the first half of ``make bench``
(bench/bench_udp.py). ``.venv/bin/python bench/bench_perf.py [--runs N]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cbor2

HOST = "127.0.0.1"
PROFILE = "nrf52840dk"
CHUNK = 1024
"""Image bytes per upload request: a 1.1 KiB SMP frame, as smpclient sends over UDP."""


CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""Child processes write and use cached bytecode, as an installed smpsim does."""


def _median_runs(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


# --- plugin overhead ----------------------------------------------------------------------

def _pytest_seconds(project: Path, *args: str) -> float:
    """CPU seconds (user + system) of one pytest session: steadier than wall time on a
    machine that other work shares."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args,
                    str(project)], check=True, capture_output=True, cwd=project, env=CHILD_ENV)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def plugin_overhead_ms(runs: int) -> tuple[float, float]:
    """(median CPU ms of a session with the plugin, median CPU ms added by it)."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        _pytest_seconds(project)  # bytecode cached for both
        with_plugin, without = [], []
        for _ in range(runs):
            with_plugin.append(_pytest_seconds(project))
            without.append(_pytest_seconds(project, "-p", "no:smpsim"))
    base = statistics.median(without)
    return statistics.median(with_plugin) * 1e3, (statistics.median(with_plugin) - base) * 1e3


def plugin_import_ms(runs: int) -> float:
    """Median wall ms of ``import smpsim.pytest_plugin`` in a fresh interpreter that has
    already imported pytest (what the ``pytest11`` entry point costs by itself)."""
    code = ("import time, pytest; t = time.perf_counter(); import smpsim.pytest_plugin; "
            "print(time.perf_counter() - t)")
    return 1e3 * statistics.median(
        float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True, env=CHILD_ENV).stdout) for _ in range(runs))


# --- time to first echo -------------------------------------------------------------------

def _echo_frame(seq: int) -> bytes:
    body = cbor2.dumps({"d": "hi"})
    return struct.pack(">BBHHBB", 2 | 1 << 3, 0, len(body), 0, seq, 0) + body


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def first_echo_ms() -> float:
    """Milliseconds from launching ``smpsim run`` to its first echo answer."""
    port = _free_udp_port()
    smpsim = Path(sys.executable).with_name("smpsim")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.002)
    start = time.perf_counter()
    proc = subprocess.Popen([str(smpsim), "run", "--udp", f"{HOST}:{port}", "--time-scale", "0",
                             "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CHILD_ENV)
    try:
        seq = 0
        while time.perf_counter() - start < 10:
            seq = (seq + 1) & 0xFF
            try:
                sock.sendto(_echo_frame(seq), (HOST, port))
                if sock.recv(2048)[:1] == b"\x0b":  # an echo answer (maybe to an earlier try)
                    return (time.perf_counter() - start) * 1e3
            except (TimeoutError, ConnectionRefusedError):
                continue
        raise RuntimeError("smpsim run did not answer an echo within 10 s")
    finally:
        sock.close()
        proc.terminate()
        proc.wait()


# --- upload chunk costs -------------------------------------------------------------------

def _upload_frame(seq: int, body: dict[str, object]) -> bytes:
    raw = cbor2.dumps(body)
    return struct.pack(">BBHHBB", 2 | 1 << 3, 0, len(raw), 1, seq & 0xFF, 1) + raw


def upload_chunk_us(runs: int) -> tuple[float, float]:
    """(median µs of a steady chunk, median µs of a first chunk) in ``Server.handle``."""
    from smpsim.config import load_profile
    from smpsim.device.mcu import Device
    from smpsim.device.mcuboot.header import IMAGE_MAGIC
    from smpsim.mcumgr.server import Server

    profile = load_profile(PROFILE)
    size = 200 * CHUNK
    image = bytearray(hashlib.shake_256(b"bench image").digest(size))
    image[:4] = struct.pack("<I", IMAGE_MAGIC)
    first = _upload_frame(0, {"image": 0, "len": size, "sha": hashlib.sha256(image).digest(),
                              "off": 0, "data": bytes(image[:CHUNK])})
    rest = [_upload_frame(i, {"off": off, "data": bytes(image[off:off + CHUNK])})
            for i, off in enumerate(range(CHUNK, size, CHUNK), 1)]
    steady, firsts = [], []
    for _ in range(runs):
        device = Device(profile)
        device.boot()
        server = Server(device)
        t0 = time.perf_counter()
        reply = server.handle(first)
        firsts.append(time.perf_counter() - t0)
        assert cbor2.loads(reply.frames[0][8:]) == {"off": CHUNK}, reply.frames
        t0 = time.perf_counter()
        for frame in rest:
            server.handle(frame)
        steady.append((time.perf_counter() - t0) / len(rest))
        assert cbor2.loads(server.handle(rest[-1]).frames[0][8:]) == {"off": 0}
    return statistics.median(steady) * 1e6, statistics.median(firsts) * 1e6


# --- report -------------------------------------------------------------------------------

def _row(name: str, value: float, unit: str, goal: float, lower_is_better: bool = True) -> None:
    met = value <= goal if lower_is_better else value >= goal
    ratio = value / goal
    print(f"  {name:<34} {value:>9.1f} {unit:<3} goal {'<=' if lower_is_better else '>='} "
          f"{goal:>6g} {unit:<3} ratio {ratio:5.2f}  {'ok' if met else 'MISSED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"\nIssue 15 figures (median of {args.runs}; {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]})")
    session_ms, plugin_ms = plugin_overhead_ms(args.runs)
    _row("pytest plugin overhead (CPU)", plugin_ms, "ms", 20)
    print(f"  {'':<34} (empty project, {session_ms:.0f} CPU ms per session with the plugin)")
    _row("import smpsim.pytest_plugin", plugin_import_ms(args.runs), "ms", 20)
    first_echo_ms()  # bytecode cached
    _row("smpsim run -> first echo", _median_runs(args.runs, first_echo_ms), "ms", 100)
    steady_us, first_us = upload_chunk_us(args.runs)
    _row(f"upload chunk, steady ({CHUNK} B)", steady_us, "us", 10)
    _row(f"upload chunk, first ({CHUNK} B)", first_us, "us", 100)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
