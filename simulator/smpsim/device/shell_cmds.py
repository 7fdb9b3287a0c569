"""The shell's built-in root commands (``clear``, ``help``, ``history``, ``rem``, ``resize``,
``retval``, ``shell``) and the choice of root commands for a profile.

The board commands (``kernel``, ``device``, ``date``, ``mcuboot``) are in
:mod:`smpsim.device.shell_board`. Texts, argument counts and return values follow Zephyr's
``subsys/shell`` (``shell_cmds.c``, ``shell.c``).

Adding a root command elsewhere (``stats`` with the stat group, ``fs`` with the fs group):
build a :class:`~smpsim.device.shell.Command`, pass it to
:func:`~smpsim.device.shell.register_root` in a module imported at the end of this one, and it
appears in every profile whose group set includes the group :data:`OPTIONAL_COMMANDS` names
(or whose ``firmware.shell.commands`` lists it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smpsim.device.shell import (
    ENOEXEC,
    ROOT_COMMANDS,
    Command,
    Shell,
    dummy_shell,
    instances,
    register_root,
)
from smpsim.errors import ConfigError

if TYPE_CHECKING:
    from smpsim.config import Profile

EINVAL = 22

SMP_SVR_COMMANDS = ("clear", "device", "help", "history", "kernel", "rem", "resize", "retval",
                    "shell")
"""Root commands of smp_svr with the shell enabled, on any board."""

OPTIONAL_COMMANDS = {"date": None, "mcuboot": None, "stats": "stat", "fs": "fs"}
"""Root commands present only on some builds; for the last two, the management group whose
build brings them (``STATS_SHELL``, ``FILE_SYSTEM_SHELL``). ``date`` comes with the POSIX clock
of native_sim, ``mcuboot`` with MCUboot."""


def root_commands(profile: Profile) -> list[Command]:
    """The root commands of ``profile``'s firmware, sorted by name as the linker sorts them."""
    names = list(profile.firmware.shell.commands)
    if not names:
        names = list(SMP_SVR_COMMANDS)
        if profile.board.arch == "posix":
            names.append("date")
        if profile.mcuboot is not None:
            names.append("mcuboot")
        for name, group in OPTIONAL_COMMANDS.items():
            if group is not None and group in profile.firmware.groups and name in ROOT_COMMANDS \
                    and (name != "fs" or profile.firmware.fs.shell):
                names.append(name)
    unknown = [n for n in names if n not in ROOT_COMMANDS]
    if unknown:
        raise ConfigError(f"{profile.source or profile.name}: firmware.shell.commands: unknown "
                          f"{', '.join(unknown)}; known: {', '.join(sorted(ROOT_COMMANDS))}")
    return sorted((ROOT_COMMANDS[n] for n in set(names)), key=lambda c: c.syntax.encode())


# ----------------------------------------------------------------------------- help

def _cmd_help(shell: Shell, argv: list[str]) -> int:
    shell.print("Please press the <Tab> button to see all available commands.")
    shell.print("You can also use the <Tab> button to prompt or auto-complete all commands or "
                "its subcommands.")
    shell.print("You can try to call commands with <-h> or <--help> parameter for more "
                "information.")
    shell.print("\nShell supports following meta-keys:\n"
                "  Ctrl + (a key from: abcdefklnptuw)\n"
                "  Alt  + (a key from: bf)\n"
                "Please refer to shell documentation for more details.")
    shell.help_subcmd_print(None, "\nAvailable commands:\n")
    return 0


register_root(Command("help", "Prints the help message.", _cmd_help, mandatory=1))


# ----------------------------------------------------------------------------- small ones

def _cmd_clear(shell: Shell, argv: list[str]) -> int:
    shell.vt100("\x1b[H")
    shell.vt100("\x1b[2J")
    return 0


def _cmd_rem(shell: Shell, argv: list[str]) -> int:
    return 0


def _cmd_retval(shell: Shell, argv: list[str]) -> int:
    shell.print(str(shell.ret_val))
    return 0


def _cmd_history(shell: Shell, argv: list[str]) -> int:
    for index, line in enumerate(reversed(shell.history)):
        shell.print(f"[{index:3d}] {line}")
    return 0


register_root(Command("clear", "Clear screen.", _cmd_clear, mandatory=1))
register_root(Command("rem", "Ignore lines beginning with 'rem '", _cmd_rem))
register_root(Command("retval", "Print return value of most recent command", _cmd_retval,
                      mandatory=1))
register_root(Command("history", "Command history.", _cmd_history, mandatory=1))


def _cmd_resize(shell: Shell, argv: list[str]) -> int:
    if len(argv) != 1:
        shell.error(f"{argv[0]}: unknown parameter: {argv[1]}")
        return -EINVAL
    # Asks the terminal where the cursor is after moving it far down-right, and waits about a
    # second for the answer; the model has no terminal that answers, so it times out.
    shell.vt100("\x1b7")
    shell.cursor_vert_move(-250)
    shell.cursor_horiz_move(250)
    shell.raw("\x1b[6n")
    shell.device.clock.spend(1.0)
    shell.vt100("\x1b8")
    shell.terminal_width = shell.config.terminal_width
    shell.warn("No response from the terminal, assumed 80x24 screen size")
    return -ENOEXEC


def _cmd_resize_default(shell: Shell, argv: list[str]) -> int:
    shell.vt100("\x1b[?3l")
    shell.terminal_width = shell.config.terminal_width
    return 0


register_root(Command(
    "resize", "Console gets terminal screen size or assumes default in case the readout fails. "
    "It must be executed after each terminal width change to ensure correct text display.",
    _cmd_resize, (Command("default", "Assume 80 chars screen width and send this setting to "
                          "the terminal.", _cmd_resize_default, mandatory=1),),
    mandatory=1, optional=1))


# ----------------------------------------------------------------------------- shell

def _flag_setter(attr: str, value: bool) -> Command:
    def handler(shell: Shell, argv: list[str]) -> int:
        setattr(shell, attr, value)
        return 0
    return Command("on" if value else "off", None, handler, mandatory=1)


def _on_off(attr: str, what: str, off_help: str | None = None) -> tuple[Command, ...]:
    off, on = _flag_setter(attr, False), _flag_setter(attr, True)
    return (Command(off.syntax, off_help or f"Disable {what}.", off.handler, mandatory=1),
            Command(on.syntax, f"Enable {what}.", on.handler, mandatory=1))


def _cmd_backends(shell: Shell, argv: list[str]) -> int:
    if "shell" in shell.device.profile.firmware.groups:
        dummy_shell(shell.device)  # the dummy backend exists from boot in such a build
    shell.print("Active shell backends:")
    for index, instance in enumerate(instances(shell.device)):
        shell.print(f"  {index:2d}. :{instance.prompt} ({instance.name})")
    return 0


def _cmd_echo(shell: Shell, argv: list[str]) -> int:
    if len(argv) == 2:
        shell.error(f"{argv[0]}: unknown parameter: {argv[1]}")
        return -EINVAL
    shell.print(f"Echo status: {'on' if shell.echo else 'off'}")
    return 0


def _prompt_setter(on: bool) -> Command:
    def handler(shell: Shell, argv: list[str]) -> int:
        shell.prompt = shell.default_prompt if on else ""
        return 0
    return Command("on" if on else "off", f"{'Enable' if on else 'Disable'} prompt.", handler,
                   mandatory=1)


def _cmd_stats_show(shell: Shell, argv: list[str]) -> int:
    shell.print("Lost logs: 0")
    return 0


def _cmd_noop(shell: Shell, argv: list[str]) -> int:
    return 0


def _mode_delete(value: bool) -> Command:
    def handler(shell: Shell, argv: list[str]) -> int:
        shell.mode_delete = value
        return 0
    if value:
        return Command("delete", "Set the same escape code for backspace and delete key.",
                       handler, mandatory=1)
    return Command("backspace", "Set different escape code for backspace and delete key.",
                   handler, mandatory=1)


register_root(Command("shell", "Useful, not Unix-like shell commands.", subcmds=(
    Command("backends", "List active shell backends.\n", _cmd_backends, mandatory=1),
    Command("backspace_mode", "Toggle backspace key mode.\nSome terminals are not sending "
            "separate escape code for backspace and delete button. This command forces shell "
            "to interpret delete key as backspace.", subcmds=(_mode_delete(False),
                                                              _mode_delete(True))),
    Command("colors", "Toggle colored syntax.", subcmds=_on_off("use_colors", "colored syntax")),
    Command("vt100", "Toggle vt100 commands.", subcmds=_on_off("use_vt100", "vt100 commands")),
    Command("prompt", "Toggle prompt.", subcmds=(_prompt_setter(False), _prompt_setter(True))),
    Command("echo", "Toggle shell echo.", _cmd_echo, _on_off(
        "echo", "shell echo", "Disable shell echo. Editing keys and meta-keys are not handled"),
        mandatory=1, optional=1),
    Command("stats", "Shell statistics.", subcmds=(
        Command("reset", "Reset shell statistics for the Logger module.", _cmd_noop,
                mandatory=1),
        Command("show", "Get shell statistics for the Logger module.", _cmd_stats_show,
                mandatory=1))),
)))

# Modules that register more root commands; imported last so they can import this one.
from smpsim.device import shell_board, shell_fs, shell_kernel, shell_stats  # noqa: E402, F401
