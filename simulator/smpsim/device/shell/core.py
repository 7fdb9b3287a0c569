"""A Zephyr-like shell: the command tree, argument parsing, help and colours as Zephyr prints them.

Sans-IO: a :class:`Shell` collects what it prints and hands it back; nothing here reads or writes
a port. Two kinds of shell instance exist on a board, as in Zephyr:

* the dummy backend the SMP shell group runs commands on (:func:`execute`, :func:`run_dummy`):
  output captured, starting with ``"\\r\\n"``, cut to ``SHELL_BACKEND_DUMMY_BUF_SIZE - 1`` bytes;
* the UART shell on a serial line, driven byte by byte by
  :class:`smpsim.device.shell.line.ShellLine`.

Both run the same :class:`Command` tree (root commands sorted by name, as the linker sorts
Zephyr's ``shell_root_cmds`` section). The commands themselves live in
:mod:`smpsim.device.shell.commands`, whose table says which a build has.

Text goes through Zephyr's output path: ``\\n`` becomes ``\\r\\n`` (``SHELL_FLAG_OLF_CRLF``),
a change of colour is ``ESC[1;3<n>m`` and the way back to the default colour ``ESC[m``.
Strings are Python ``str``; bytes that are not UTF-8 travel as surrogate escapes, so byte
counts (buffer limits) are taken on the UTF-8 encoding with ``surrogateescape``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smpsim.config import ShellConfig
from smpsim.device.errno import EINVAL, ENOEXEC, ENOMEM
from smpsim.device.shell.args import SPACE, split_args

if TYPE_CHECKING:
    from smpsim.device.mcu import Device

HELP_PRINTED = 1
"""``SHELL_CMD_HELP_PRINTED``: a command printed its help instead of running."""

OPT_CHECK_SKIP = 0xFF
"""``SHELL_OPT_ARG_CHECK_SKIP``: any number of optional arguments."""

HELP_OPTIONS = ("-h", "--help")
"""``z_shell_help_request``: what asks a command for its help."""


class Color(enum.IntEnum):
    """``enum shell_vt100_color``: the colour digit in ``ESC[1;3<n>m``."""

    BLACK = 0
    RED = 1
    GREEN = 2
    YELLOW = 3
    BLUE = 4
    MAGENTA = 5
    CYAN = 6
    WHITE = 7
    DEFAULT = 8


NORMAL, INFO, OPTION, WARNING, ERROR = (Color.DEFAULT, Color.GREEN, Color.CYAN, Color.YELLOW,
                                        Color.RED)
"""``SHELL_NORMAL``, ``SHELL_INFO`` (prompt), ``SHELL_OPTION``, ``SHELL_WARNING``,
``SHELL_ERROR``."""

Handler = Callable[["Shell", list[str]], int]
"""A command handler: gets the shell (to print, and to reach the device) and ``argv`` (the
command's own name first); returns 0 or a negative errno."""


@dataclass(frozen=True)
class Command:
    """``struct shell_static_entry``: one node of the command tree."""

    syntax: str
    """The word that selects the command."""
    help: str | None = None
    """Help text; ``None`` for none (such a group answers -ENOEXEC instead of its help)."""
    handler: Handler | None = None
    """What runs; ``None`` for a pure command group."""
    subcmds: tuple[Command, ...] = ()
    """Static subcommands, in the order Zephyr lists them."""
    dynamic: Callable[[Shell], Sequence[Command]] | None = None
    """Dynamic subcommands (``SHELL_DYNAMIC_CMD_CREATE``), computed when looked at."""
    mandatory: int = 0
    """Mandatory arguments including the command's own name; 0 means no count check."""
    optional: int = 0
    """Optional arguments, or :data:`OPT_CHECK_SKIP`."""

    def children(self, shell: Shell) -> Sequence[Command]:
        """The subcommands as the shell sees them now."""
        return self.dynamic(shell) if self.dynamic is not None else self.subcmds


@dataclass
class ShellRam:
    """The statics of the shell and its commands, in the application's RAM (gone at a reset)."""

    instances: list[Shell] = field(default_factory=list)
    """Shell instances started this boot."""
    dummy: Shell | None = None
    """The dummy backend's instance, once something used it."""
    cwd: str = "/"
    """The fs shell's working directory (one for every instance, as in Zephyr)."""
    realtime_offset_s: float = 0.0
    """``date set``: CLOCK_REALTIME minus uptime (0 at boot: the epoch)."""


def shell_ram(device: Device) -> ShellRam:
    """The shell's RAM on ``device``."""
    return device.ram.setdefault(ShellRam, ShellRam)


class Shell:
    """One shell instance (``struct shell``): its flags, line buffer, history and output.

    Command handlers print through :meth:`print`, :meth:`info`, :meth:`warn`, :meth:`error`
    and :meth:`fprintf`; they reach the board through :attr:`device`.
    """

    def __init__(self, device: Device, roots: list[Command], *, name: str, prompt: str,
                 current_thread: str) -> None:
        self.device = device
        self.roots = roots
        """The build's root commands, sorted (:func:`smpsim.device.shell.commands.roots`)."""
        self.config: ShellConfig = device.profile.firmware.shell
        self.name = name
        """Instance name (``shell_dummy``, ``shell_uart``), as ``shell backends`` lists it."""
        self.default_prompt = prompt
        self.prompt = prompt
        self.current_thread = current_thread
        """The thread commands run in, starred in ``kernel thread list``."""
        self.use_colors = True
        self.use_vt100 = True
        self.echo = True
        self.mode_delete = True
        self.insert_mode = False
        self.terminal_width = self.config.terminal_width
        self.color = NORMAL
        """Colour currently set on the terminal (``vt100_ctx.col.col``)."""
        self.cmd_buff = ""
        self.cmd_pos = 0
        self.history: list[str] = []
        """Executed lines, oldest first."""
        self.ret_val = 0
        """``shell_get_return_value``: what the last command that ran returned."""
        self.reboot: str | None = None
        """``"cold"`` or ``"warm"`` once ``kernel reboot`` ran: the caller resets the board."""
        self.active: Command | None = None
        """The command being run or whose help is printed (``ctx->active_cmd``)."""
        self._out: list[str] = []
        shell_ram(device).instances.append(self)

    # ------------------------------------------------------------------ output

    def take_output(self) -> str:
        """Everything printed since the last call."""
        text = "".join(self._out)
        self._out.clear()
        return text

    def write(self, text: str) -> None:
        """``z_shell_write``: straight to the transport, no line-ending conversion."""
        self._out.append(text)

    def raw(self, text: str) -> None:
        """``z_shell_raw_fprintf``: formatted output without colour, ``\\n`` as ``\\r\\n``."""
        self._out.append(text.replace("\n", "\r\n"))

    def vt100(self, sequence: str) -> None:
        """``Z_SHELL_VT100_CMD``: an escape sequence, sent only with VT100 commands on."""
        if self.use_vt100:
            self.raw(sequence)

    def set_color(self, color: Color) -> None:
        """``z_shell_vt100_color_set``."""
        if self.color == color:
            return
        self.color = color
        self.vt100("\x1b[m" if color == NORMAL else f"\x1b[1;3{int(color)}m")

    def fprintf(self, color: Color, text: str) -> None:
        """``z_shell_fprintf``: ``text`` in ``color``, then back to the colour before."""
        if self.use_colors and color != self.color:
            before = self.color
            self.set_color(color)
            self.raw(text)
            self.set_color(before)
        else:
            self.raw(text)

    def print(self, text: str = "") -> None:
        """``shell_print``: one line in the default colour."""
        self.fprintf(NORMAL, text + "\n")

    def info(self, text: str) -> None:
        """``shell_info``: one line in green."""
        self.fprintf(INFO, text + "\n")

    def warn(self, text: str) -> None:
        """``shell_warn``: one line in yellow."""
        self.fprintf(WARNING, text + "\n")

    def error(self, text: str) -> None:
        """``shell_error``: one line in red."""
        self.fprintf(ERROR, text + "\n")

    def newline(self) -> None:
        """``z_cursor_next_line_move``."""
        self.raw("\n")

    # ------------------------------------------------------------------ cursor

    def _prompt_len(self) -> int:
        return len(self.prompt)

    def cursor_horiz_move(self, delta: int) -> None:
        """``z_shell_op_cursor_horiz_move``."""
        if delta:
            self.vt100(f"\x1b[{abs(delta)}{'C' if delta > 0 else 'D'}")

    def cursor_vert_move(self, delta: int) -> None:
        """``z_shell_op_cursor_vert_move``: positive is up."""
        if delta:
            self.vt100(f"\x1b[{abs(delta)}{'A' if delta > 0 else 'B'}")

    def cursor_in_empty_line(self) -> bool:
        """``z_shell_cursor_in_empty_line``: the cursor sits in column 0."""
        return (self.cmd_pos * self.echo + self._prompt_len()) % self.terminal_width == 0

    def full_line_cmd(self) -> bool:
        """``full_line_cmd``: prompt and command fill whole terminal lines."""
        length = len(self.cmd_buff) + self._prompt_len()
        return length != 0 and length % self.terminal_width == 0

    def cursor_move(self, delta: int) -> None:
        """``z_shell_op_cursor_move``: move within the command line, across wrapped lines."""
        width, name = self.terminal_width, self._prompt_len()
        new = self.cmd_pos + delta
        row_span = (new + name) // width - (self.cmd_pos + name) // width
        col_span = (new + name) % width - (self.cmd_pos + name) % width
        self.cursor_vert_move(-row_span)
        self.cursor_horiz_move(col_span)
        self.cmd_pos = new

    # ------------------------------------------------------------------ help

    def _formatted_text(self, text: str, offset: int) -> None:
        """``formatted_text_print``: wrap at word boundaries, continuation lines indented."""
        width = self.terminal_width
        pos = 0
        while pos < len(text) and text[pos] in SPACE:
            pos += 1
        while True:
            rest = len(text) - pos
            if rest <= width - offset:
                newline = text.find("\n", pos)
                if newline >= 0:
                    self.write(text[pos:newline])
                    pos = newline + 1
                    self.newline()
                    self.cursor_horiz_move(offset)
                self.raw(text[pos:])
                break
            length = width - offset
            idx = 0
            while True:
                c = text[pos + idx] if pos + idx < len(text) else "\0"  # NUL: not a space
                if c in SPACE:
                    length = idx
                    if c == "\n":
                        break
                if idx + offset >= width:
                    break
                idx += 1
            self.write(text[pos:pos + length])
            pos += length
            while pos < len(text) and text[pos] in SPACE:
                pos += 1
            self.newline()
            self.cursor_horiz_move(offset)
        self.newline()

    def help_cmd_print(self, command: Command) -> None:
        """``z_shell_help_cmd_print``: ``name - help``."""
        self.fprintf(NORMAL, f"{command.syntax} - ")
        if command.help is not None:
            self._formatted_text(command.help, len(command.syntax) + 3)

    def help_subcmd_print(self, parent: Command | None, description: str) -> None:
        """``z_shell_help_subcmd_print``: the subcommands (roots for ``None``) with their help."""
        items = self.roots if parent is None else parent.children(self)
        longest = max((len(c.syntax) for c in items), default=0)
        if longest == 0:
            return
        self.fprintf(NORMAL, description)
        for item in items:
            self.fprintf(NORMAL, f"  {item.syntax}")
            self.write(" " * (longest - len(item.syntax)))
            if item.help is None:
                self.fprintf(NORMAL, "  :")
                self.newline()
                continue
            self.fprintf(NORMAL, "  : ")
            self._formatted_text(item.help, longest + 6)

    def help(self) -> None:
        """``shell_help``: the active command's help and its subcommands."""
        if self.active is not None:
            self.help_cmd_print(self.active)
            self.help_subcmd_print(self.active, "Subcommands:\n")

    # ------------------------------------------------------------------ running

    def find(self, parent: Command | None, word: str) -> Command | None:
        """``z_shell_find_cmd``."""
        items = self.roots if parent is None else parent.children(self)
        return next((c for c in items if c.syntax == word), None)

    def history_put(self, line: str) -> None:
        """``z_shell_history_put``: not empty lines, not a repeat of the last one."""
        if not line or self.config.history_size <= 0:
            return
        if self.history and self.history[-1] == line:
            return
        self.history.append(line)
        # Each ring-buffer entry carries a small header; the oldest go when it is full.
        while sum(len(h.encode("utf-8", "surrogateescape")) + 8 for h in self.history) \
                > self.config.history_size:
            self.history.pop(0)

    def execute_line(self) -> int:
        """``execute``: run the command in the line buffer; output is collected."""
        self.cursor_move(len(self.cmd_buff) - self.cmd_pos)
        if not self.cursor_in_empty_line():
            self.newline()
        self.active = None
        if self.config.history_size > 0:
            self.cmd_buff = self.cmd_buff.strip(SPACE)
            self.cmd_pos = len(self.cmd_buff)
            self.history_put(self.cmd_buff)
        words, open_quote = split_args(self.cmd_buff)
        if not words:
            return -ENOEXEC
        argc_max = self.config.argc_max
        parent: Command | None = None
        active: Command | None = None
        help_entry: Command | None = None
        entry: Command | None = None
        level = handler_level = 0
        last_handler = False
        while level < len(words) and level < argc_max:
            word = words[level]
            if level == len(words) - 1 and open_quote:
                self.error(f"not terminated: {open_quote}")
                return -ENOEXEC
            if level > 0 and word in HELP_OPTIONS:
                if help_entry is not None:
                    self.active = help_entry
                    self.help()
                    return HELP_PRINTED
                self.error("Please specify a subcommand.")
                return -ENOEXEC
            if not last_handler:
                entry = self.find(parent, word)
            if entry is not None:
                if entry.handler is not None:
                    handler_level, active = level, entry
                if entry.help is not None:
                    help_entry = entry
                parent = entry
            else:
                if level == 0:
                    self.error(f"{words[0]}: command not found")
                last_handler = True
            level += 1
        if level >= argc_max and level < len(words):
            self.error("Too many arguments in the command.\n")
            return -ENOEXEC
        return self._exec_cmd(active, help_entry, words[handler_level:level])

    def _exec_cmd(self, active: Command | None, help_entry: Command | None,
                  argv: list[str]) -> int:
        """``exec_cmd``: help for a group, the argument count check, then the handler."""
        if active is None or active.handler is None:
            if help_entry is None:
                return -ENOEXEC
            self.active = help_entry
            self.help()
            return HELP_PRINTED
        self.active = active
        if active.mandatory:
            extra = 0xFFFF if active.optional == OPT_CHECK_SKIP else active.optional
            if not active.mandatory <= len(argv) <= active.mandatory + extra:
                self.error(f"{active.syntax}: wrong parameter count")
                self.help()
                return -EINVAL
        # Only a handler that ran sets what retval shows; help and refusals leave it.
        ret = active.handler(self, argv)
        self.ret_val = ret
        return ret

    def run(self, line: str) -> tuple[str, int]:
        """Run ``line`` as ``shell_execute_cmd`` does: (output, return value)."""
        self._out.clear()
        line = line.split("\0", 1)[0]  # strlen/strcpy: a NUL ends the line
        if len(line.encode("utf-8", "surrogateescape")) > self.config.cmd_buff_size - 1:
            return "", -ENOMEM
        self.cmd_buff = line
        self.cmd_pos = len(line)
        ret = self.execute_line()
        self.cmd_buff, self.cmd_pos = "", 0
        return self.take_output(), ret


def instances(device: Device) -> list[Shell]:
    """The shell instances running on ``device``, in the order Zephyr's section holds them."""
    return sorted(shell_ram(device).instances, key=lambda s: s.name)


def dummy_shell(device: Device, roots: list[Command]) -> Shell:
    """The dummy-backend shell of ``device`` (``shell_backend_dummy_get_ptr``), kept in RAM so a
    reset starts it afresh (history, last return value); made with ``roots`` the first time."""
    ram = shell_ram(device)
    if ram.dummy is None:
        ram.dummy = Shell(device, roots, name="shell_dummy",
                          prompt=device.profile.firmware.shell.dummy_prompt,
                          current_thread="mcumgr smp")
    return ram.dummy
