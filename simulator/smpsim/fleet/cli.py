"""``smpsim fleet``: the command line, and every check made before any board starts."""

from __future__ import annotations

import argparse
import collections
import os
import resource
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smpsim.errors import ConfigError
from smpsim.fleet import control, manifest, shard
from smpsim.fleet.addressing import Addressing, bind_all, check_distinct
from smpsim.fleet.control import DEFAULT_CONTROL
from smpsim.fleet.spec import PlannedBoard, parse_spec, plan
from smpsim.fleet.workers import Supervisor

FDS_PER_BOARD = 3
"""A UDP socket, the flash file and its lock."""
FDS_PER_PTY = 3
"""The PTY's master and slave ends, and the claim on its link."""
FDS_SPARE = 64
"""The process's own (standard streams, the event loop, pipes to the workers)."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               time_scale: Callable[[str], float]) -> None:
    """Add ``fleet`` to the command line."""
    fleet = sub.add_parser(
        "fleet", help="serve many boards, each with its own flash file, identity and address",
        description="Serve many boards from one process (or --workers processes) until Ctrl-C "
                    "or SIGTERM. Prints a line per endpoint, then writes the manifest.")
    fleet.add_argument("--board", action="append", required=True, metavar="PROFILE:N",
                       help="N boards of a profile (name or FILE.toml); repeatable; "
                            "PROFILE:N@FIRST starts these boards at address (or port) FIRST")
    fleet.add_argument("--flash-dir", type=Path, required=True, metavar="DIR",
                       help="where each board keeps its flash file, <board id>.bin (kept "
                            "across restarts: the same board id finds its flash again)")
    where = fleet.add_mutually_exclusive_group(required=True)
    where.add_argument("--addresses", metavar="FIRST_IP",
                       help="one address per board on port 1337, from FIRST_IP up "
                            "(127.0.1.1, 127.0.1.2, ...): for clients with a fixed port")
    where.add_argument("--host", metavar="H",
                       help="one port per board on address H, from --base-port up")
    fleet.add_argument("--base-port", type=int, metavar="P", help="the first board's port")
    fleet.add_argument("--serial", action="store_true",
                       help="also serve each board on a PTY, linked as <flash dir>/<id>.tty")
    fleet.add_argument("--manifest", type=Path, metavar="FILE",
                       help="where to write the manifest (default <flash dir>/manifest.json)")
    fleet.add_argument("--workers", type=int, default=1, metavar="K",
                       help="split the boards across K processes (default 1)")
    fleet.add_argument("--control", nargs="?", const=DEFAULT_CONTROL, metavar="HOST:PORT",
                       help=f"serve the control API of every board here (default off; "
                            f"{DEFAULT_CONTROL} if no address): GET /api/boards lists them, "
                            "/api/boards/<id>/... is one board's API (see smpsim ctl --board)")
    fleet.add_argument("--control-token", metavar="TOKEN",
                       help="bearer token every API request must carry; needed to serve off "
                            "loopback (default: $SMPSIM_CONTROL_TOKEN)")
    fleet.add_argument("--time-scale", type=time_scale, default=1.0, metavar="X",
                       help="1.0 real time (default), 0 instant, 0.1 ten times faster")
    fleet.add_argument("--log-level", default="warning",
                       choices=["debug", "info", "warning", "error"],
                       help="default warning; info shows every board's console")


def run(args: argparse.Namespace) -> int:
    """Check everything, bind every address, then start the boards and serve."""
    addressing = _addressing(args)
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    specs = [parse_spec(text) for text in args.board]
    flash_dir: Path = args.flash_dir
    _check_writable(flash_dir, "flash dir")
    manifest_path: Path = args.manifest or flash_dir / "manifest.json"
    _check_writable(manifest_path.parent, "manifest's folder")
    boards = plan(specs, flash_dir)
    endpoints = addressing.assign([(spec.count, spec.first) for spec in specs])
    check_distinct(endpoints, [board.board_id for board in boards])
    _check_flash_files(boards, flash_dir)
    workers = min(args.workers, len(boards))
    _check_descriptors(len(boards), workers, args.serial)
    if args.serial:
        _check_ptys(len(boards))
    if args.control_token and args.control is None:
        raise ConfigError("--control-token goes with --control")
    token = args.control_token or os.environ.get("SMPSIM_CONTROL_TOKEN") or None
    api = None if args.control is None else control.bind(args.control, token)
    sockets = bind_all(endpoints)
    fleet = shard.Shard(boards, sockets, args.time_scale, args.serial,
                        control=api if workers == 1 else None)

    def ready(lines: list[str], entries: list[dict[str, Any]]) -> None:
        for line in lines:
            print(line)
        if api is not None:
            print(f"smpsim: fleet serving the control plane on {api.url} (GET /api/boards "
                  f"lists the boards; dashboard at {api.url}/?board=<id>)")
        manifest.write(manifest_path, manifest.document(entries, args.time_scale, workers))
        kinds = collections.Counter(board.profile_name for board in boards)
        print(f"smpsim: fleet of {len(boards)} boards ready ("
              + ", ".join(f"{name} {n}" for name, n in kinds.items())
              + f"; {workers} worker{'s' if workers > 1 else ''}); "
              f"manifest {manifest_path.resolve()}", flush=True)

    if workers == 1:
        shard.run(fleet, ready)
        return 0
    return Supervisor(fleet, workers, api).run(ready)


def _addressing(args: argparse.Namespace) -> Addressing:
    if args.host is None:
        if args.base_port is not None:
            raise ConfigError("--base-port goes with --host (with --addresses every board "
                              "is on port 1337)")
        return Addressing(first=args.addresses)
    if args.base_port is None:
        raise ConfigError("--host needs --base-port, the first board's port")
    if not 1 <= args.base_port <= 65535:
        raise ConfigError(f"--base-port {args.base_port} out of range (1 to 65535)")
    return Addressing(host=args.host, base_port=args.base_port)


def _check_writable(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and write a file in it: permission bits alone do not say
    (root ignores them; a read-only mount does not)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"{what} {folder} is not writable: {exc.strerror}") from None


def _check_flash_files(boards: list[PlannedBoard], flash_dir: Path) -> None:
    """Existing flash files fit their boards; the new ones fit on the disk."""
    needed = 0
    for board in boards:
        size = board.profile.board.flash.size
        try:
            actual = board.flash.stat().st_size
        except FileNotFoundError:
            needed += size
            continue
        if actual != size:
            raise ConfigError(f"flash file {board.flash} has {actual} bytes; {board.board_id}'s "
                              f"profile {board.profile_name} has {size} bytes of flash")
    free = shutil.disk_usage(flash_dir).free
    if needed > free:
        raise ConfigError(f"the new flash files need {needed >> 20} MiB; {flash_dir} has "
                          f"{free >> 20} MiB free")


def _check_descriptors(boards: int, workers: int, serial: bool) -> None:
    """Each process can open what its boards need; the soft limit is raised to that."""
    per_board = FDS_PER_BOARD + (FDS_PER_PTY if serial else 0)
    share = -(-boards // workers)
    needed = max(share * per_board, boards if workers > 1 else 0) + FDS_SPARE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise ConfigError(f"{boards} boards need about {needed} open files per process; the "
                          f"limit is {hard} (ulimit -n): use fewer boards or more --workers")
    if soft != resource.RLIM_INFINITY and needed > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _check_ptys(boards: int) -> None:
    """There are PTYs for every board (``kernel.pty.max`` counts those of the whole host)."""
    try:
        limit = int(Path("/proc/sys/kernel/pty/max").read_text())
        used = int(Path("/proc/sys/kernel/pty/nr").read_text())
    except (OSError, ValueError):
        return  # not Linux: opening them will tell
    if boards > limit - used:
        raise ConfigError(f"--serial needs {boards} PTYs; the system has {limit - used} free "
                          f"(kernel.pty.max {limit}, {used} in use)")


