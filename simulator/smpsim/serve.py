"""``smpsim run``: serve one emulated board (SMP over UDP, a PTY, a serial port or BLE, and the
control plane when asked) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from smpsim.board import DEFAULT_UDP, Board
from smpsim.config import DEFAULT_PROFILE, load_profile
from smpsim.control.service import DEFAULT_CONTROL, ControlService
from smpsim.errors import ConfigError
from smpsim.transports.ble.link import CENTRALS, DEFAULT_CENTRAL
from smpsim.transports.endpoint import EndpointSpec
from smpsim.transports.udp import parse_hostport


def _baud(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               time_scale: Callable[[str], float]) -> None:
    """``smpsim run``'s options (``time_scale``: the CLI's checked float type)."""
    command = sub.add_parser("run", help="serve an emulated board until Ctrl-C or SIGTERM")
    command.add_argument("--profile", default=DEFAULT_PROFILE, metavar="NAME|FILE.toml",
                         help=f"built-in profile or profile file (default {DEFAULT_PROFILE})")
    command.add_argument("--flash", type=Path, metavar="PATH",
                         help="flash file, created from the profile when missing "
                              "(default: flash kept in memory, lost on exit)")
    command.add_argument("--udp", action="append", metavar="HOST:PORT",
                         help="serve SMP over UDP here; repeatable; [::1]:1337 for IPv6 "
                              f"(default {' and '.join(DEFAULT_UDP)})")
    command.add_argument("--no-udp", action="store_true", help="serve no UDP endpoint")
    command.add_argument("--serial", nargs="?", const="", metavar="LINK",
                         help="serve SMP (and the console) on a PTY, reachable through the symlink "
                              "LINK (default: smpsim-<profile>-<pid> in the temporary folder, "
                              "printed on the ready line); no UDP then unless --udp is given")
    command.add_argument("--serial-device", metavar="DEV",
                         help="serve SMP on a real serial port (/dev/ttyUSB0) through pyserial; "
                              "no UDP then unless --udp is given")
    command.add_argument("--baud", type=_baud, metavar="N",
                         help="baud rate of --serial-device (default: the profile's)")
    command.add_argument("--ble", action="store_true",
                         help="serve SMP over Bluetooth LE as a peripheral through BlueZ (needs "
                              "smpsim[ble]); no UDP then unless --udp is given")
    command.add_argument("--adapter", metavar="HCI",
                         help="BlueZ adapter for --ble (default hci0)")
    command.add_argument("--hold-button", action="store_true",
                         help="power on with the recovery button held: MCUboot enters serial "
                              "recovery on builds that check it (released once the board is up)")
    command.add_argument("--ble-central", choices=sorted(CENTRALS), metavar="KIND",
                         help="on the BlueZoo mock: the central the link model stands for, "
                              f"{' or '.join(sorted(CENTRALS))} (default {DEFAULT_CENTRAL})")
    command.add_argument("--time-scale", type=time_scale, default=1.0, metavar="X",
                         help="1.0 real time (default), 0 instant, 0.1 ten times faster")
    command.add_argument("--log-level", default="info",
                         choices=["debug", "info", "warning", "error"], help="default info")
    control = command.add_argument_group(
        "control plane", "watch the board, act on it and inject faults (see smpsim ctl)")
    control.add_argument("--control", nargs="?", const=DEFAULT_CONTROL, metavar="HOST:PORT",
                         help=f"serve the control API (HTTP and WebSocket) here (default off; "
                              f"{DEFAULT_CONTROL} when given without a value; port 0 picks one, "
                              "printed on the ready line)")
    control.add_argument("--dashboard", action="store_true",
                         help="watch the board in a browser: turns --control on (at "
                              f"{DEFAULT_CONTROL} unless given) and prints the page's address "
                              "on the ready line")
    control.add_argument("--control-token", metavar="TOKEN",
                         help="bearer token every API request must carry; needed to serve off "
                              "loopback (default: $SMPSIM_CONTROL_TOKEN)")
    control.add_argument("--faults", type=Path, metavar="FILE.toml",
                         help="faults to add when the board is up ([[fault]] tables)")
    control.add_argument("--trace", type=Path, metavar="FILE.jsonl",
                         help="append every event to this file, one JSON line each")


async def _serve(board: Board, control: ControlService) -> list[str]:
    """Serve until SIGINT or SIGTERM; returns what went wrong meanwhile (a radio lost)."""
    # Handlers first: whoever reads a ready line may signal at once, and must get a clean stop.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def signalled() -> None:
        if stop.is_set():  # a second signal while stopping: stop waiting for anything
            main.cancel()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signalled)
    lines = await board.start()  # stops what it started if it fails
    try:
        if control.wanted:
            lines += await control.start()
        if not gc.isenabled():
            # The CLI turned the cyclic collector off for the start-up (smpsim.cli.main): what
            # was built so far lives until exit, so it is frozen out of every later collection
            # (with the few hundred cycles start-up left behind) and collecting starts now.
            gc.freeze()
            gc.enable()
        for line in lines:
            print(line, flush=True)
        await stop.wait()
        return board.failures()
    finally:
        await control.stop()
        await board.stop()


def run(args: argparse.Namespace) -> int:
    """Serve the board the options describe until SIGINT or SIGTERM; the exit status."""
    profile = load_profile(args.profile)
    if args.no_udp and args.udp:
        raise ConfigError("--udp and --no-udp contradict each other")
    if args.baud is not None and args.serial_device is None:
        raise ConfigError("--baud sets the speed of --serial-device, which is not given")
    if args.adapter is not None and not args.ble:
        raise ConfigError("--adapter names the adapter of --ble, which is not given")
    if args.ble_central is not None and not args.ble:
        raise ConfigError("--ble-central names the central of --ble, which is not given")
    serial = args.serial is not None or args.serial_device is not None
    explicit = args.udp is not None
    no_udp = args.no_udp or ((serial or args.ble) and not explicit)
    udp = [] if no_udp else list(args.udp or DEFAULT_UDP)
    for address in udp:
        parse_hostport(address)  # a bad address is an error before anything starts
    if not explicit and not no_udp and not _ipv6_available():
        logging.getLogger("smpsim").warning("no IPv6 on this host: serving IPv4 only")
        udp = [a for a in udp if not a.startswith("[")]
    specs = [EndpointSpec("udp", a) for a in udp]
    if args.serial is not None:
        specs.append(EndpointSpec("pty", args.serial or None))
    if args.serial_device is not None:
        specs.append(EndpointSpec("serial-port", args.serial_device, args.baud))
    if args.ble:
        specs.append(EndpointSpec("ble", args.adapter or "hci0",
                                  central=args.ble_central or DEFAULT_CENTRAL))
    if args.dashboard and args.control is None:
        args.control = DEFAULT_CONTROL
    if args.control_token is not None and args.control is None:
        raise ConfigError("--control-token guards --control, which is not given")
    token = args.control_token or os.environ.get("SMPSIM_CONTROL_TOKEN") or None
    control = ControlService(args.control, token, args.faults, args.trace, args.dashboard)
    control.check(profile)
    board = Board(profile, specs, time_scale=args.time_scale, flash_path=args.flash,
                  hold_button=args.hold_button,
                  before_boot=control.attach if control.wanted else None)
    try:
        failures = asyncio.run(_serve(board, control))
    except asyncio.CancelledError:
        print("smpsim: error: stopped before closing cleanly (signalled twice)", file=sys.stderr)
        return 1
    for failure in failures:
        print(f"smpsim: error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _ipv6_available() -> bool:
    import socket
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True
