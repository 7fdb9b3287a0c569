"""A shard: fleet boards in one process and one event loop, started together, stopped together.

Each board is a :class:`~smpsim.board.Board`, the composition ``smpsim run`` serves, on its
own bound socket, flash file and (with ``--serial``) PTY.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from smpsim.board import Board
from smpsim.fleet import control
from smpsim.fleet.control import ControlOptions
from smpsim.fleet.manifest import board_entry
from smpsim.fleet.spec import PlannedBoard
from smpsim.transports.endpoint import EndpointSpec
from smpsim.transports.serial.endpoints import PtyEndpoint
from smpsim.transports.udp import UdpEndpoint

START_AT_ONCE = 1024
"""Boards booting at the same time while the fleet starts: bounds the boots (and their greenlets'
stacks) of a large shard at a time scale above 0. A reset later is not bounded: every board
comes back on its own schedule."""

FULL_COLLECTION_EVERY = 100
"""Once the fleet is up: middle-generation collections between two full ones (Python's default
is 10). A full collection walks every object made since the fleet was frozen: at a fleet-wide
reset of a thousand boards, one came every time, and every board stalled for its 30 to 50 ms."""

PARENT_CHECK_S = 1.0
"""How often a worker looks whether its parent is still there."""

Ready = Callable[[list[str], list[dict[str, Any]]], None]
"""Called once every board is up: the ready lines and the manifest entries, in plan order."""


@dataclass(frozen=True)
class Shard:
    """Boards served by one process."""

    boards: Sequence[PlannedBoard]
    """Its boards, in plan order."""
    sockets: Sequence[socket.socket]
    """Each board's bound UDP socket."""
    time_scale: float
    """1.0 real time, 0 instant."""
    serial: bool
    """A PTY per board too, linked as ``<flash dir>/<id>.tty``."""
    worker: int = 0
    """Which worker serves it (in the manifest)."""
    control: ControlOptions | None = None
    """Serve the boards' control API (``--control``)."""


def run(shard: Shard, ready: Ready, parent: int | None = None) -> None:
    """Serve the shard until SIGTERM or SIGINT; ``parent``: also stop when that process is
    gone (a worker whose supervisor was killed)."""
    asyncio.run(_main(shard, ready, parent))


async def _main(shard: Shard, ready: Ready, parent: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watch = None if parent is None else loop.create_task(_watch_parent(parent, stop))
    try:
        await serve(shard, ready, stop)
    finally:
        if watch is not None:
            watch.cancel()


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_S)
    stop.set()


def make_boards(shard: Shard) -> list[Board]:
    """The shard's boards, ready to start."""
    return [Board(board.profile, _specs(board, sock, shard.serial),
                  time_scale=shard.time_scale, flash_path=board.flash, name=board.board_id)
            for board, sock in zip(shard.boards, shard.sockets, strict=True)]


def _specs(board: PlannedBoard, sock: socket.socket, serial: bool) -> list[EndpointSpec]:
    specs = [EndpointSpec("udp", sock=sock)]
    if serial:
        specs.append(EndpointSpec("pty", str(board.flash.with_suffix(".tty"))))
    return specs


async def serve(shard: Shard, ready: Ready, stop: asyncio.Event,
                boards: Sequence[Board] | None = None) -> None:
    """Start every board, report them ready, serve until ``stop`` is set, stop every board.

    ``boards``: the shard's :func:`make_boards` when the caller wants to watch them (the
    benchmark does). A board that fails to start stops the shard: its error is raised once all
    are stopped.
    """
    running = make_boards(shard) if boards is None else boards
    gate = asyncio.Semaphore(START_AT_ONCE)

    async def start(board: Board) -> list[str]:
        async with gate:
            return await board.start()

    starting: asyncio.Future[list[list[str]]] = asyncio.ensure_future(
        asyncio.gather(*(start(b) for b in running)))
    stopping: asyncio.Future[bool] = asyncio.ensure_future(stop.wait())
    api = None
    collecting = gc.isenabled()
    # Starting thousands of boards makes thousands of long-lived objects: the cycle collector
    # would walk them all again and again (half the start-up). Once they are up they are
    # frozen out of its way; what a board makes later is collected as usual, only the full
    # collections less often (FULL_COLLECTION_EVERY).
    thresholds = gc.get_threshold()
    gc.disable()
    try:
        either: list[asyncio.Future[Any]] = [starting, stopping]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if collecting:
            gc.collect()
            gc.freeze()
            young, middle, _ = thresholds
            gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
            gc.enable()
        if starting.done():
            lines = [line for board_lines in starting.result() for line in board_lines]
            entries = [_entry(planned, board, shard.worker)
                       for planned, board in zip(shard.boards, running, strict=True)]
            if shard.control is not None:
                api = await control.serve(shard.control, running, entries)
            ready(lines, entries)
            await stopping
    finally:
        if collecting:
            gc.set_threshold(*thresholds)
            gc.enable()
        for future in (starting, stopping):
            future.cancel()
        await asyncio.gather(starting, stopping, return_exceptions=True)
        if api is not None:
            await api.close()
        await asyncio.gather(*(b.stop() for b in running), return_exceptions=True)
        for sock in shard.sockets:
            sock.close()


def _entry(planned: PlannedBoard, board: Board, worker: int) -> dict[str, Any]:
    ptys = [e for e in board.endpoints if isinstance(e, PtyEndpoint)]
    return board_entry(planned, board.endpoint(UdpEndpoint).address,
                       str(ptys[0].link) if ptys else None, worker)
