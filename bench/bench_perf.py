"""``make bench`` (second half): the figures of issue 15 next to their goals, in one run.

- plugin overhead: the CPU time of an empty pytest project's session with smpsim's
  ``pytest11`` plugin and with ``-p no:smpsim`` (the least of 10 alternating sessions each
  way, the medians' difference beside it), and the plugin module's import by itself;
- time to first echo: ``smpsim run`` launched until its first SMP echo answer over UDP
  (bytecode cached; median of 5), in turns with a bare asyncio UDP echo server launched the
  same way (the reference: what the machine's Python takes to start serving at all);
- upload chunk cost in ``Server.handle``, in-process: a steady chunk (mid-upload), beside the
  floor of cbor2 decoding it and encoding its answer, and the first chunk (with its slot
  erase check; one on each of 50 fresh boards), on the default board at time scale 0;
- pacing error at time scale 1, in-process on the default board: an upload of 96 KiB in 1 KiB
  chunks (the time from each request to its answer, summed, against the busy time the model
  gives them) and the swap of a 32 KiB sample image (reset to online against the boot's busy
  time);
- the power-cut sweep: a cut before every flash operation of a full-slot swap on the default
  board, each followed by a recovery boot and its checks, the cut points shared by two
  processes (``--sweep-workers``), beside the plain sweep (replaying the boot up to each cut,
  in one process) estimated from one cut point in 50.

The echo ratio against a bare asyncio server is the first half of ``make bench``
(bench/bench_udp.py). ``.venv/bin/python bench/bench_perf.py [--runs N]``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cbor2

if TYPE_CHECKING:
    from smpsim.device.flash import Checkpoint
    from smpsim.device.mcu import Device
    from smpsim.device.partitions import FlashArea

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PROFILE = "nrf52840dk"
CHUNK = 1024
"""Image bytes per upload request: a 1.1 KiB SMP frame, as smpclient sends over UDP."""


CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""Child processes write and use cached bytecode, as an installed smpsim does."""


# --- plugin overhead ----------------------------------------------------------------------

def _pytest_seconds(project: Path, *args: str) -> float:
    """CPU seconds (user + system) of one pytest session: steadier than wall time on a
    machine that other work shares."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args,
                    str(project)], check=True, capture_output=True, cwd=project, env=CHILD_ENV)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def plugin_overhead_ms(runs: int) -> tuple[float, float, float]:
    """(median CPU ms of a session with the plugin, CPU ms added by it: the difference of the
    two kinds' least sessions, and of their medians). A session costs some 300 CPU ms, and on a
    shared machine the noise, which only ever adds, moves medians of a few sessions by 20 ms
    or more: the least of each kind is the steadier estimate of what the plugin adds."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        _pytest_seconds(project)  # bytecode cached for both
        with_plugin, without = [], []
        for run in range(2 * runs):  # each kind first in every other pair
            if run % 2:
                without.append(_pytest_seconds(project, "-p", "no:smpsim"))
            with_plugin.append(_pytest_seconds(project))
            if not run % 2:
                without.append(_pytest_seconds(project, "-p", "no:smpsim"))
    return (statistics.median(with_plugin) * 1e3, (min(with_plugin) - min(without)) * 1e3,
            (statistics.median(with_plugin) - statistics.median(without)) * 1e3)


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


_BARE_ECHO = """
import asyncio, sys

class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(bytes([data[0] | 1]) + data[1:], addr)  # the request, as answer

async def main():
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Echo, local_addr=(sys.argv[1], int(sys.argv[2])))
    await asyncio.Event().wait()

asyncio.run(main())
"""
"""The reference for the first echo: a bare asyncio UDP server, launched the same way."""


def first_echo_ms(bare: bool = False) -> float:
    """Milliseconds from launching ``smpsim run`` (or, with ``bare``, a bare asyncio echo
    server on the same Python) to its first echo answer."""
    port = _free_udp_port()
    command = [sys.executable, "-c", _BARE_ECHO, HOST, str(port)] if bare else [
        str(Path(sys.executable).with_name("smpsim")), "run", "--udp", f"{HOST}:{port}",
        "--time-scale", "0", "--log-level", "warning"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.002)
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=CHILD_ENV)
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
        raise RuntimeError(f"{command[0]} did not answer an echo within 10 s")
    finally:
        sock.close()
        proc.terminate()
        proc.wait()


def first_echoes_ms(runs: int) -> tuple[float, float]:
    """(median ms to smpsim's first echo, median ms to the bare server's), launched in turns
    so that both meet the same moments of a shared machine."""
    first_echo_ms()  # bytecode cached
    smpsim, bare = [], []
    for _ in range(runs):
        smpsim.append(first_echo_ms())
        bare.append(first_echo_ms(bare=True))
    return statistics.median(smpsim), statistics.median(bare)


# --- upload chunk costs -------------------------------------------------------------------

def _upload_frame(seq: int, body: dict[str, object]) -> bytes:
    raw = cbor2.dumps(body)
    return struct.pack(">BBHHBB", 2 | 1 << 3, 0, len(raw), 1, seq & 0xFF, 1) + raw


FIRSTS_PER_RUN = 10
"""Boards per run that each take one first chunk: a single call is a noisy sample."""


def upload_chunk_us(runs: int) -> tuple[float, float, float]:
    """(median µs of a steady chunk, median µs of a first chunk, the floor's µs: cbor2 loads
    of a steady chunk's body and dumps of its answer) in ``Server.handle``."""
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
        for _ in range(FIRSTS_PER_RUN):
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
    bodies = [frame[8:] for frame in rest]
    floor = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for off, body in enumerate(bodies):
            cbor2.dumps({"off": cbor2.loads(body)["off"] + off})
        floor.append((time.perf_counter() - t0) / len(bodies))
    return (statistics.median(steady) * 1e6, statistics.median(firsts) * 1e6,
            statistics.median(floor) * 1e6)


# --- pacing at time scale 1 ---------------------------------------------------------------

def _upload_image(size: int) -> bytes:
    from smpsim.device.mcuboot.header import IMAGE_MAGIC
    image = bytearray(hashlib.shake_256(b"bench image").digest(size))
    image[:4] = struct.pack("<I", IMAGE_MAGIC)
    return bytes(image)


async def _paced_upload(size: int) -> tuple[float, float, float, int]:
    """(seconds from each request to its answer leaving the board, summed; the model's busy
    seconds; the whole upload's seconds; requests) for an upload at time scale 1 through a
    runner."""
    from smpsim.config import load_profile
    from smpsim.device.mcu import Device
    from smpsim.transports.runner import Runner

    image = _upload_image(size)
    frames = [_upload_frame(0, {"image": 0, "len": size, "sha": hashlib.sha256(image).digest(),
                                "off": 0, "data": image[:CHUNK]})]
    frames += [_upload_frame(i, {"off": off, "data": image[off:off + CHUNK]})
               for i, off in enumerate(range(CHUNK, size, CHUNK), 1)]
    device = Device(load_profile(PROFILE), time_scale=1.0)
    runner = Runner(device)
    await runner.start()
    loop = asyncio.get_running_loop()
    busy = device.clock.busy_total
    answering = 0.0
    start = time.perf_counter()
    for frame in frames:
        answer: asyncio.Future[float] = loop.create_future()
        sent = time.perf_counter()
        runner.submit(frame, lambda _out, answer=answer: answer.done()
                      or answer.set_result(time.perf_counter()))
        answering += await answer - sent
    whole = time.perf_counter() - start
    model = device.clock.busy_total - busy
    await runner.close()
    device.close()
    return answering, model, whole, len(frames)


async def _paced_swap() -> tuple[float, float, int]:
    """(seconds from the reset to the board online again, the model's busy seconds of that
    boot, flash operations) for the swap of a sample image at time scale 1."""
    from smpsim.config import load_profile
    from smpsim.device.mcu import Device
    from smpsim.transports.runner import Runner

    device = Device(load_profile(PROFILE), time_scale=1.0)
    runner = Runner(device)
    await runner.start()
    secondary = device.partitions.secondary(0)
    assert secondary is not None and device.dfu is not None
    device.flash.program(secondary.offset, (ROOT / "flash_images" / "app-1.1.0.bin").read_bytes())
    device.dfu.set_pending(0, False)
    busy, ops = device.clock.busy_total, device.flash.ops
    start = time.perf_counter()
    await runner.reset()
    took = time.perf_counter() - start
    assert device.build_version == "1.1.0", "the sample image did not swap in"
    result = took, device.clock.busy_total - busy, device.flash.ops - ops
    await runner.close()
    device.close()
    return result


# --- power-cut sweep ----------------------------------------------------------------------

def _full_slot_image(size: int, slot_size: int) -> bytes:
    """An image of ``size`` bytes at most for a slot of ``slot_size``, signed by imgtool with
    the default board's key."""
    key = ROOT / "flash_images" / "keys" / "insecure-test-ecdsa-p256.pem"
    body = bytes(0x200) + hashlib.shake_256(b"bench full slot").digest(size - 0x200 - 0x200)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.bin"), Path(tmp, "out.bin")
        src.write_bytes(body)
        subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--version", "2.0.0",
                        "--header-size", "0x200", "--align", "4", "--slot-size", hex(slot_size),
                        "-k", str(key), str(src), str(dst)], check=True, capture_output=True)
        return dst.read_bytes()


@dataclass(frozen=True)
class _Sweep:
    """The default board with a full-slot image pending, what its recoveries must show, and
    the flash as staged."""

    device: Device
    primary: FlashArea
    secondary: FlashArea
    image: bytes
    old: bytes
    staged: Checkpoint


_SWEEP: list[_Sweep] = []
"""The staged board, inherited by the sweep's worker processes (forked)."""


def _stage_sweep() -> _Sweep:
    from smpsim.config import load_profile
    from smpsim.device.mcu import Device

    device = Device(load_profile(PROFILE))
    primary, secondary = device.partitions.primary(0), device.partitions.secondary(0)
    assert primary is not None and secondary is not None and device.dfu is not None
    image = _full_slot_image(device.dfu.max_image_size(0), secondary.size)
    old = primary.read(0, 0x8000)
    secondary.write(0, image + b"\xff" * (-len(image) % secondary.write_block))
    device.dfu.set_pending(0, False)
    return _Sweep(device, primary, secondary, image, old, device.flash.checkpoint())


def _recover(sweep: _Sweep, n: int) -> None:
    """The recovery boot after a cut before operation ``n``: the new image comes up, the old
    one kept in the secondary for a revert."""
    assert sweep.device.bootloader is not None
    assert sweep.device.bootloader.boot().ok, f"no boot after a cut before operation {n}"
    assert sweep.primary.read(0, len(sweep.image)) == sweep.image
    assert sweep.secondary.read(0, len(sweep.old)) == sweep.old


def _sweep_share(share: tuple[int, int]) -> tuple[int, int, float]:
    """A worker's part of the sweep, the cut points ``n`` with ``n % workers == worker``
    (interleaved: an early cut's recovery is the longest): (cut points, checked, CPU s)."""
    from smpsim.device.power_cuts import every_power_cut

    worker, workers = share
    sweep = _SWEEP[0]
    assert sweep.device.bootloader is not None
    checked = 0

    def recover(n: int) -> None:
        nonlocal checked
        if n % workers == worker:
            _recover(sweep, n)
            checked += 1

    cpu = time.process_time()
    cuts, result = every_power_cut(sweep.device.flash, sweep.device.bootloader.boot, recover)
    assert result.ok
    return cuts, checked, time.process_time() - cpu


def power_cut_sweep(workers: int) -> tuple[float, float, int, int, float]:
    """(wall s, CPU s of every worker, cut points, image bytes, wall s of the replayed sweep
    in one process, estimated from one cut point in 50) for a cut before every flash operation
    of a full-slot swap, each followed by a recovery boot and its checks, the cut points shared
    by ``workers`` processes."""
    from smpsim.device.flash import PowerLoss

    sweep = _stage_sweep()
    _SWEEP[:] = [sweep]
    wall = time.perf_counter()
    if workers == 1:
        results = [_sweep_share((0, 1))]
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_sweep_share, [(worker, workers) for worker in range(workers)])
    wall = time.perf_counter() - wall
    cuts = results[0][0]
    assert sum(checked for _, checked, _ in results) == cuts
    loader, flash = sweep.device.bootloader, sweep.device.flash
    assert loader is not None
    sample = range(1, cuts + 1, 50)
    replayed = time.perf_counter()
    for n in sample:  # the plain way: from the staged flash, boot up to the cut, recover
        flash.restore(sweep.staged)
        flash.cut_power_before(n)
        try:
            loader.boot()
        except PowerLoss:
            _recover(sweep, n)
        else:
            raise AssertionError(f"no cut before operation {n}")
    replayed = (time.perf_counter() - replayed) * cuts / len(sample)
    return wall, sum(cpu for _, _, cpu in results), cuts, len(sweep.image), replayed


# --- report -------------------------------------------------------------------------------

def _row(name: str, value: float, unit: str, goal: float, lower_is_better: bool = True, *,
         digits: int = 1) -> None:
    met = value <= goal if lower_is_better else value >= goal
    ratio = value / goal
    print(f"  {name:<34} {value:>9.{digits}f} {unit:<3} goal {'<=' if lower_is_better else '>='} "
          f"{goal:>6g} {unit:<3} ratio {ratio:5.2f}  {'ok' if met else 'MISSED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sweep-workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes sharing the power-cut sweep's cut points")
    args = parser.parse_args()
    print(f"\nIssue 15 figures (median of {args.runs}; {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]})")
    session_ms, plugin_ms, medians_ms = plugin_overhead_ms(args.runs)
    _row("pytest plugin overhead (CPU)", plugin_ms, "ms", 20)
    print(f"  {'':<34} (empty project, {2 * args.runs} alternating sessions each way, least "
          f"against least; medians {medians_ms:+.0f} ms; {session_ms:.0f} CPU ms per session)")
    _row("import smpsim.pytest_plugin", plugin_import_ms(args.runs), "ms", 20)
    echo_ms, bare_ms = first_echoes_ms(args.runs)
    _row("smpsim run -> first echo", echo_ms, "ms", 100)
    print(f"  {'':<34} (a bare asyncio UDP echo server launched alike, in turns: "
          f"{bare_ms:.1f} ms)")
    steady_us, first_us, floor_us = upload_chunk_us(args.runs)
    _row(f"upload chunk, steady ({CHUNK} B)", steady_us, "us", 10)
    print(f"  {'':<34} (the floor in this run, cbor2 loads of the chunk and dumps of its "
          f"answer: {floor_us:.1f} us)")
    _row(f"upload chunk, first ({CHUNK} B)", first_us, "us", 100)
    print(f"  {'':<34} (median of {FIRSTS_PER_RUN * args.runs} boards, each taking one)")
    uploads = [asyncio.run(_paced_upload(96 * CHUNK)) for _ in range(min(args.runs, 3))]
    answering, model, whole, requests = sorted(uploads)[len(uploads) // 2]
    _row("upload pacing error (time scale 1)", abs(answering / model - 1) * 100, "%", 0.5,
         digits=2)
    print(f"  {'':<34} ({requests} requests answered in {answering:.3f} s, model "
          f"{model:.3f} s; {whole:.3f} s with the in-process client)")
    took, model, ops = asyncio.run(_paced_swap())
    _row("swap pacing error (time scale 1)", abs(took / model - 1) * 100, "%", 0.5, digits=2)
    print(f"  {'':<34} ({ops} flash operations: online after {took:.3f} s, model "
          f"{model:.3f} s)")
    wall, cpu, cuts, size, replayed = power_cut_sweep(args.sweep_workers)
    _row("power-cut sweep, full-slot swap", wall, "s", 10)
    print(f"  {'':<34} ({cuts} cut points, {size // 1024} KiB image, {args.sweep_workers} "
          f"processes, {cpu:.1f} CPU s in all; replayed in one process ~{replayed:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
