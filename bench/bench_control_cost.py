"""``make bench`` (g): what the control plane costs the board per SMP echo, in-process, where a
busy machine disturbs the figure least.

(e) and (f) measure throughput over UDP with a client, a listener or a browser sharing two CPUs
with whatever else runs; their ratios move by 0.1 with the machine's load. This measures only
the board's process: four boards in one event loop (as ``smpsim run`` has), each fed the same
echoes through its runner at about the rate a UDP client reaches (40 per 2 ms), rounds
alternating between them:

- ``plain``: no control plane;
- ``control``: ``--control`` on, nobody listening (the trace of every exchange is kept);
- ``listener``: a WebSocket client following every event (a child process);
- ``dashboard``: a WebSocket client asking what the dashboard asks (``?smp=60``).

It prints the board's CPU time per echo for each (the minimum over rounds: the run least
disturbed, and the median) and what each adds to ``plain``.

    .venv/bin/python bench/bench_control_cost.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from bench_udp import HOST, echo_request

ECHOES = 4000
"""Echoes per round (0.2 s at the pace below)."""
BURST = 40
"""Echoes between two 2 ms sleeps of the loop: about 20,000 a second, as over UDP."""
MODES = {"plain": None, "control": None, "listener": "", "dashboard": "?smp=60"}
"""Mode -> the WebSocket query its listener uses (None: no listener)."""
LISTENER = """
import asyncio, sys, aiohttp
async def main():
    async with aiohttp.ClientSession() as session, session.ws_connect(sys.argv[1]) as ws:
        print("connected", flush=True)
        async for _ in ws:
            pass
asyncio.run(main())
"""


async def start(mode: str) -> tuple[Any, Any, Any]:
    """A booted board for ``mode``: (board, control service or None, listener or None)."""
    from smpsim.board import Board
    from smpsim.config import load_profile
    from smpsim.control.service import ControlService

    service = ControlService(f"{HOST}:0") if mode != "plain" else None
    board = Board(load_profile("native_sim_udp"), [],
                  before_boot=service.attach if service else None)
    await board.start()
    listener = None
    if service is not None:
        await service.start()
        query = MODES[mode]
        if query is not None:
            assert service.server is not None
            listener = await asyncio.create_subprocess_exec(
                sys.executable, "-c", LISTENER,
                f"ws://{HOST}:{service.server.port}/api/events{query}",
                stdout=asyncio.subprocess.PIPE)
            assert listener.stdout is not None
            if await listener.stdout.readline() != b"connected\n":
                raise RuntimeError(f"the {mode} listener did not connect")
    return board, service, listener


async def one_round(board: Any, frames: list[bytes]) -> float:
    """The process's CPU microseconds per echo over one round (its send cycles included)."""
    from smpsim.transports.origin import Origin

    answers: list[bytes] = []
    submit = board.runner.submit
    cpu = time.process_time()
    for n in range(ECHOES):
        submit(frames[n % len(frames)], answers.append, Origin("udp", "127.0.0.1:50000"))
        if n % BURST == BURST - 1:
            await asyncio.sleep(0.002)
    await asyncio.sleep(0.06)  # the last send cycle
    assert len(answers) == ECHOES
    return (time.process_time() - cpu) / ECHOES * 1e6


async def main(rounds: int) -> None:
    frames = [echo_request(seq, "hello") for seq in range(256)]
    boards = {mode: await start(mode) for mode in MODES}
    costs: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for _ in range(rounds):
            for mode, (board, _, _) in boards.items():
                costs[mode].append(await one_round(board, frames))
    finally:
        for board, service, listener in boards.values():
            if listener is not None:
                listener.kill()
                await listener.wait()
            if service is not None:
                await service.stop()
            await board.stop()
    print(f"\n(g) the board's CPU time per echo 'hello', in-process ({rounds} alternating rounds "
          f"of {ECHOES} echoes)")
    print(f"{'':10} {'min':>8} {'median':>8} {'+ min':>8}")
    plain = min(costs["plain"])
    for mode, values in costs.items():
        added = "" if mode == "plain" else f"{min(values) - plain:+7.2f}"
        print(f"{mode:10} {min(values):8.2f} {statistics.median(values):8.2f} {added:>8}")
    print("  us per echo; control: --control with nobody listening; listener: a WebSocket "
          "client of every event; dashboard: one asking ?smp=60")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25, help="rounds per board (default 25)")
    asyncio.run(main(parser.parse_args().rounds))
