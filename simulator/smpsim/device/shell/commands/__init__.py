"""The shell's root commands: the explicit table of every command smpsim has, and the choice a
build makes from it.

Adding a root command: write it in a module here, add it to :data:`ROOT_COMMANDS` and its name
to :data:`smpsim.config.catalog.SHELL_COMMANDS` (profiles are checked against that list when they
load); if only some builds have it, say which in :data:`OPTIONAL_COMMANDS`.
"""

from __future__ import annotations

from smpsim.config import Profile
from smpsim.device.shell.commands import board, builtin, fs, kernel, stats
from smpsim.device.shell.core import Command

ROOT_COMMANDS: dict[str, Command] = {command.syntax: command for command in (
    builtin.CLEAR, builtin.HELP, builtin.HISTORY, builtin.REM, builtin.RESIZE, builtin.RETVAL,
    builtin.SHELL, board.DATE, board.DEVICE, board.MCUBOOT, fs.FS, kernel.KERNEL, stats.STATS,
)}
"""Every root command smpsim knows, by name (``SHELL_CMD_REGISTER``)."""

SMP_SVR_COMMANDS = ("clear", "device", "help", "history", "kernel", "rem", "resize", "retval",
                    "shell")
"""Root commands of smp_svr with the shell enabled, on any board."""

OPTIONAL_COMMANDS = {"date": None, "mcuboot": None, "stats": "stat", "fs": "fs"}
"""Root commands present only on some builds; for the last two, the management group whose
build brings them (``STATS_SHELL``, ``FILE_SYSTEM_SHELL``). ``date`` comes with the POSIX clock
of native_sim, ``mcuboot`` with MCUboot."""


def roots(profile: Profile) -> list[Command]:
    """The root commands of ``profile``'s firmware, sorted by name as the linker sorts them.

    ``firmware.shell.commands`` names were checked against the catalog when the profile loaded.
    """
    names = list(profile.firmware.shell.commands)
    if not names:
        names = list(SMP_SVR_COMMANDS)
        if profile.board.arch == "posix":
            names.append("date")
        if profile.mcuboot is not None:
            names.append("mcuboot")
        for name, group in OPTIONAL_COMMANDS.items():
            if group is not None and group in profile.firmware.groups \
                    and (name != "fs" or profile.firmware.fs.shell):
                names.append(name)
    return sorted((ROOT_COMMANDS[n] for n in set(names)), key=lambda c: c.syntax.encode())
