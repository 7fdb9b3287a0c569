"""Command line: ``smpsim run`` serves an emulated board; ``smpsim profiles`` lists the boards;
``smpsim ctl`` drives a running board's control plane; ``smpsim flash`` works on flash files."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from smpsim import __version__
from smpsim.board import DEFAULT_UDP, Board
from smpsim.config import DEFAULT_PROFILE, builtin_profiles, load_profile
from smpsim.control.service import DEFAULT_CONTROL, ControlService
from smpsim.errors import ConfigError
from smpsim.transports.ble.link import CENTRALS, DEFAULT_CENTRAL
from smpsim.transports.endpoint import EndpointSpec
from smpsim.transports.udp import parse_hostport

if TYPE_CHECKING:
    from types import ModuleType

TIME_SCALE_MAX = 1000.0
"""Slowest time scale: a board 1000 times slower than real (an erase of 85 ms takes 85 s)."""

COMMANDS = {"run": None, "fleet": "smpsim.fleet.cli", "profiles": None,
            "flash": "smpsim.flashtool", "ctl": "smpsim.control.ctl",
            "demo": "smpsim.demo.command", "image": "smpsim.imagetool"}
"""Each command, in the order ``--help`` lists them, with the module that adds its options and
carries it out (``run`` and ``profiles`` are here). A command line that starts with a command
imports that one's module alone: ``smpsim run`` does not load the fleet, the flash tool, the
control client, the demo or the image tool (issue 15: start in a blink)."""


def _time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= TIME_SCALE_MAX:  # nan fails this too
        raise argparse.ArgumentTypeError(
            f"must be from 0 (instant) to {TIME_SCALE_MAX:g} (1.0 is real time), not {text}")
    return value


def _baud(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


class _Parser(argparse.ArgumentParser):
    """Errors as every other error of smpsim: ``smpsim: error: ...``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"smpsim: error: {message}\n")


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``only``, that command's alone (see :data:`COMMANDS`)."""
    parser: argparse.ArgumentParser = _Parser(
        prog="smpsim",
        description="A simulated Zephyr smp_svr board under MCUboot, for SMP (MCUmgr) clients.")
    parser.add_argument("--version", action="version", version=f"smpsim {__version__}")
    # The usage line of an error names every command, even when only one was added.
    sub = parser.add_subparsers(dest="command", required=True, metavar=None if only is None
                                else "{" + ",".join(COMMANDS) + "}")
    for name in COMMANDS if only is None else (only,):
        if name == "run":
            _add_run(sub)
        elif name == "profiles":
            sub.add_parser("profiles", help="list the built-in profiles")
        elif name in ("flash", "image"):
            _command_module(name).add_parsers(sub)
        elif name == "ctl":
            _command_module(name).add_parser(sub)
        else:
            _command_module(name).add_parser(sub, _time_scale)
    return parser


def _command_module(name: str) -> ModuleType:
    module = COMMANDS[name]
    assert module is not None, name
    return importlib.import_module(module)


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="serve an emulated board until Ctrl-C or SIGTERM")
    run.add_argument("--profile", default=DEFAULT_PROFILE, metavar="NAME|FILE.toml",
                     help=f"built-in profile or profile file (default {DEFAULT_PROFILE})")
    run.add_argument("--flash", type=Path, metavar="PATH",
                     help="flash file, created from the profile when missing "
                          "(default: flash kept in memory, lost on exit)")
    run.add_argument("--udp", action="append", metavar="HOST:PORT",
                     help="serve SMP over UDP here; repeatable; [::1]:1337 for IPv6 "
                          f"(default {' and '.join(DEFAULT_UDP)})")
    run.add_argument("--no-udp", action="store_true", help="serve no UDP endpoint")
    run.add_argument("--serial", nargs="?", const="", metavar="LINK",
                     help="serve SMP (and the console) on a PTY, reachable through the symlink "
                          "LINK (default: smpsim-<profile>-<pid> in the temporary folder, "
                          "printed on the ready line); no UDP then unless --udp is given")
    run.add_argument("--serial-device", metavar="DEV",
                     help="serve SMP on a real serial port (/dev/ttyUSB0) through pyserial; "
                          "no UDP then unless --udp is given")
    run.add_argument("--baud", type=_baud, metavar="N",
                     help="baud rate of --serial-device (default: the profile's)")
    run.add_argument("--ble", action="store_true",
                     help="serve SMP over Bluetooth LE as a peripheral through BlueZ (needs "
                          "smpsim[ble]); no UDP then unless --udp is given")
    run.add_argument("--adapter", metavar="HCI",
                     help="BlueZ adapter for --ble (default hci0)")
    run.add_argument("--hold-button", action="store_true",
                     help="power on with the recovery button held: MCUboot enters serial "
                          "recovery on builds that check it (released once the board is up)")
    run.add_argument("--ble-central", choices=sorted(CENTRALS), metavar="KIND",
                     help="on the BlueZoo mock: the central the link model stands for, "
                          f"{' or '.join(sorted(CENTRALS))} (default {DEFAULT_CENTRAL})")
    run.add_argument("--time-scale", type=_time_scale, default=1.0, metavar="X",
                     help="1.0 real time (default), 0 instant, 0.1 ten times faster")
    run.add_argument("--log-level", default="info",
                     choices=["debug", "info", "warning", "error"], help="default info")
    control = run.add_argument_group(
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
        for line in lines:
            print(line, flush=True)
        await stop.wait()
        return board.failures()
    finally:
        await control.stop()
        await board.stop()


def _run(args: argparse.Namespace) -> int:
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


class _Lines(logging.Formatter):
    """stderr as a user reads it: the board's console lines bare, as a serial monitor shows
    them, and the simulator's own lines marked ``smpsim:``. At debug level every line carries
    time, level and logger."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if record.name == "smpsim.console":
            return message
        level = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        return f"smpsim: {level}{message}"


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if level == "debug":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_Lines())
    logging.basicConfig(level=level.upper(), handlers=[handler])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``smpsim`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
    if args.command == "profiles":
        for name in builtin_profiles():
            profile = load_profile(name)
            print(f"{name:28} {profile.description}")
        return 0
    _setup_logging(getattr(args, "log_level", "warning"))
    try:
        if args.command == "run":
            return _run(args)
        status: int = _command_module(args.command).run(args)
        return status
    except ConfigError as exc:
        print(f"smpsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `smpsim flash info ... | head`: the reader has seen enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # what is still buffered goes nowhere at exit
        return 0
