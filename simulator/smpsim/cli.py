"""Command line: ``smpsim run`` serves an emulated board; ``smpsim profiles`` lists the boards;
``smpsim ctl`` drives a running board's control plane; ``smpsim flash`` works on flash files."""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from smpsim import __version__
from smpsim.errors import ConfigError

if TYPE_CHECKING:
    from types import ModuleType

TIME_SCALE_MAX = 1000.0
"""Slowest time scale: a board 1000 times slower than real (an erase of 85 ms takes 85 s)."""

COMMANDS = {"run": "smpsim.serve", "fleet": "smpsim.fleet.cli", "profiles": None,
            "flash": "smpsim.flashtool", "ctl": "smpsim.control.ctl",
            "demo": "smpsim.demo.command", "image": "smpsim.imagetool"}
"""Each command, in the order ``--help`` lists them, with the module that adds its options and
carries it out (``profiles`` is here). A command line that starts with a command imports that
one's module alone: ``smpsim run`` does not load the fleet, the flash tool, the control client,
the demo or the image tool (issue 15: start in a blink)."""


def _time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= TIME_SCALE_MAX:  # nan fails this too
        raise argparse.ArgumentTypeError(
            f"must be from 0 (instant) to {TIME_SCALE_MAX:g} (1.0 is real time), not {text}")
    return value


class _Help(argparse.HelpFormatter):
    """argparse's formatter, told the width: argparse makes one for every option it adds (to
    check its metavar), and one told nothing imports shutil (with zlib, bz2 and lzma) to ask
    the terminal, 2 % of ``smpsim run``'s start-up (issue 15). The width is ``$COLUMNS``, else
    the terminal's on standard output, else 80, less argparse's margin of 2."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_columns() - 2)


def _columns() -> int:
    try:
        if (columns := int(os.environ["COLUMNS"])) > 0:
            return columns
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):  # not a terminal, or no stdout
        return 80


class _Parser(argparse.ArgumentParser):
    """Errors as every other error of smpsim: ``smpsim: error: ...``, exit 2; help formatted
    by :class:`_Help` (sub-commands' parsers are made of this class too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

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
        if name == "profiles":
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
    only = argv[0] if argv and argv[0] in COMMANDS else None
    if only == "run":
        # Everything `smpsim run` imports and builds before it serves lives until it exits, so
        # the cyclic collector's passes over it while starting are wasted: 3 % of the
        # start-up's instructions (issue 15). The run turns it back on once the board is up.
        gc.disable()
        _import_asyncio_without_tls()
    try:
        return _command(_parser(only).parse_args(argv))
    finally:
        gc.enable()


def _import_asyncio_without_tls() -> None:
    """Import asyncio as on a Python built without ``ssl``, unless something has already.

    ``smpsim run`` speaks no TLS (its control plane is plain HTTP), but asyncio imports ``ssl``
    as it loads, with OpenSSL's libssl and a dozen enums: 6 % of the run's start-up (issue 15).
    asyncio takes a missing ``ssl`` as a Python without it (``ssl = None``: no TLS transports,
    https://docs.python.org/3/library/sys.html#sys.modules says how ``None`` there blocks an
    import); ``ssl`` itself imports normally afterwards (aiohttp does, for the control plane).
    """
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]


def _command(args: argparse.Namespace) -> int:
    _setup_logging(getattr(args, "log_level", "warning"))
    try:
        if args.command == "profiles":
            return _list_profiles()
        status: int = _command_module(args.command).run(args)
        return status
    except ConfigError as exc:
        print(f"smpsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `smpsim flash info ... | head`: the reader has seen enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # what is still buffered goes nowhere at exit
        return 0


def _list_profiles() -> int:
    from smpsim.config import builtin_profiles, load_profile

    for name in builtin_profiles():
        print(f"{name:28} {load_profile(name).description}")
    return 0
