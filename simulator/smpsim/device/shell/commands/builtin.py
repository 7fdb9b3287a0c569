"""The shell's built-in root commands: ``clear``, ``help``, ``history``, ``rem``, ``resize``,
``retval``, ``shell``.

Texts, argument counts and return values follow Zephyr's ``subsys/shell`` (``shell_cmds.c``,
``shell.c``).
"""

from __future__ import annotations

from smpsim.device.errno import EINVAL, ENOEXEC
from smpsim.device.shell.core import Command, Shell, dummy_shell, instances

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


HELP = (Command("help", "Prints the help message.", _cmd_help, mandatory=1))


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


CLEAR = (Command("clear", "Clear screen.", _cmd_clear, mandatory=1))
REM = (Command("rem", "Ignore lines beginning with 'rem '", _cmd_rem))
RETVAL = (Command("retval", "Print return value of most recent command", _cmd_retval,
                      mandatory=1))
HISTORY = (Command("history", "Command history.", _cmd_history, mandatory=1))


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


RESIZE = (Command(
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
        dummy_shell(shell.device, shell.roots)  # the dummy backend exists from boot then
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


SHELL = (Command("shell", "Useful, not Unix-like shell commands.", subcmds=(
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
