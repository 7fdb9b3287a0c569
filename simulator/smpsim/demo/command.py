"""The ``smpsim demo`` command: start a board in this process (SMP over UDP, the control plane
and its dashboard, on ephemeral loopback ports unless told), print where they are, run the
scenario, and stop (or, with ``--stay``, keep serving until Ctrl-C)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable

from smpsim.board import Board
from smpsim.config import load_profile
from smpsim.control.service import ControlService
from smpsim.demo.scenario import SCENARIOS, Demo, Options
from smpsim.transports.endpoint import EndpointSpec
from smpsim.transports.udp import parse_hostport

PROFILE = "nrf52840dk"
"""The board the demo images are built for (slot size, signing key)."""
DEFAULT_SCALE = 1.0
"""A real nRF52840's pace: each swap of the demo takes about 4 s, long enough to follow on the
dashboard (at 0.2 it is over in under a second)."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               time_scale: Callable[[str], float]) -> None:
    """``smpsim demo``'s options (``time_scale``: the CLI's checked float type)."""
    demo = sub.add_parser(
        "demo", help="run a firmware-update story on a board, with its dashboard",
        description="Start an nrf52840dk board with its dashboard (open the printed address "
                    "in a browser), then drive a scenario through SMP over UDP, one narrated "
                    "step at a time. rollback: upload a build that crashes, test it, reset; "
                    "MCUboot swaps it in, it crashes, MCUboot swaps back to 1.0.0. update: "
                    "upload 1.1.0, test it, reset, confirm it.")
    demo.add_argument("scenario", choices=sorted(SCENARIOS))
    demo.add_argument("--time-scale", type=time_scale, default=DEFAULT_SCALE, metavar="X",
                      help=f"board speed: 1.0 real time, 0 instant, 2 twice as slow "
                           f"(default {DEFAULT_SCALE:g})")
    demo.add_argument("--step-delay", type=float, default=1.5, metavar="S",
                      help="seconds between steps (default 1.5)")
    demo.add_argument("--pause", action="store_true",
                      help="wait for Enter before each step instead")
    demo.add_argument("--udp", default="127.0.0.1:0", metavar="HOST:PORT",
                      help="where the board serves SMP (default: a free loopback port)")
    demo.add_argument("--control", default="127.0.0.1:0", metavar="HOST:PORT",
                      help="where the control plane and the dashboard are served "
                           "(default: a free loopback port)")
    demo.add_argument("--stay", action="store_true",
                      help="keep the board and the dashboard up after the scenario, until "
                           "Ctrl-C")
    # The narration tells what happens; the board's own warnings (a crash) would repeat it.
    demo.set_defaults(log_level="error")


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when the board ended as the scenario promises."""
    parse_hostport(args.udp)
    if args.step_delay < 0:
        args.step_delay = 0.0
    control = ControlService(args.control, dashboard=True)
    control.check(load_profile(PROFILE))
    board = Board(load_profile(PROFILE), [EndpointSpec("udp", args.udp)],
                  time_scale=args.time_scale, before_boot=control.attach)
    ok = asyncio.run(_demo(board, control, args))
    return 0 if ok else 1


async def _demo(board: Board, control: ControlService, args: argparse.Namespace) -> bool:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await board.start()
        await control.start()
        assert control.plane is not None
        smp = board.endpoints[0].describe()
        print(f"smpsim demo {args.scenario}: {board.profile.name} at time scale "
              f"{args.time_scale:g}\n  dashboard  {control.dashboard_url}\n"
              f"  SMP (UDP)  {smp}", flush=True)
        demo = Demo(control.plane, smp, Options(args.step_delay, args.pause))
        scenario = loop.create_task(demo.run(args.scenario))
        stopped = loop.create_task(stop.wait())
        await asyncio.wait({scenario, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not scenario.done():
            scenario.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scenario
            print("stopped", flush=True)
            return False
        ok = scenario.result()
        if args.stay and not stop.is_set():
            print(f"the board stays up: {control.dashboard_url} (Ctrl-C to stop)", flush=True)
            await stopped
        stopped.cancel()
        return ok
    finally:
        await control.stop()
        await board.stop()
