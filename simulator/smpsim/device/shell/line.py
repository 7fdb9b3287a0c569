"""The UART shell's line discipline: what Zephyr's shell echoes and prints for each byte typed.

Sans-IO, byte in, bytes out. Follows ``state_collect`` and the editing operations of Zephyr's
``shell.c`` / ``shell_ops.c``: echo with wrapping at the terminal width, backspace and delete,
cursor keys and VT100 escape sequences, the Ctrl/Alt meta keys, history, Tab completion, and
running the command line on Enter.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from smpsim.device.shell.args import SPACE, split_args
from smpsim.device.shell.commands import roots
from smpsim.device.shell.core import INFO, OPTION, Color, Command, Shell

if TYPE_CHECKING:
    from smpsim.device.mcu import Device

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


class _Rx(enum.Enum):
    """``enum shell_receive_state``."""

    DEFAULT = enum.auto()
    ESC = enum.auto()
    ESC_SEQ = enum.auto()
    TILDE_EXP = enum.auto()


class ShellLine:
    """Zephyr's shell on a serial line (the ``shell_uart`` backend of ``MCUMGR_TRANSPORT_SHELL``).

    For the serial transport whose profile asks for the shell transport::

        line = ShellLine(device)        # at every boot: the shell lives in RAM
        port.write(line.start())        # shell_start: colour reset, two newlines, the prompt
        ...
        port.write(line.feed(data))     # bytes the SMP interceptor did not take
        if line.reboot:                 # "kernel reboot" ran: reset the board now
            ...
        port.write(line.print_line(text))  # a log line while the prompt is shown

    ``feed`` must only get bytes that are not part of an SMP frame: Zephyr's ``smp_shell``
    takes a line starting ``06 09`` or ``04 14`` up to its ``\\n`` before the shell sees it
    (no echo, no new prompt). Everything ``feed`` returns is what the board writes back:
    the echo of typed characters, the escape sequences of line editing, the command's output
    with ``\\r\\n`` line ends and colour codes, and a fresh green ``uart:~$ `` prompt. After
    ``kernel reboot`` nothing more is printed and the rest of the input is ignored.
    """

    def __init__(self, device: Device) -> None:
        cfg = device.profile.firmware.shell
        self.shell = Shell(device, roots(device.profile), name="shell_uart", prompt=cfg.prompt,
                           current_thread="shell_uart")
        self.shell.color = Color.BLACK  # the zeroed context; shell_start resets it
        self._rx = _Rx.DEFAULT
        self._last_nl = ""
        self._history_exit = False
        self._history_index: int | None = None
        self._history_backup = ""
        self._tab_printed = 0

    @property
    def reboot(self) -> str | None:
        """``"cold"`` or ``"warm"`` once ``kernel reboot`` was typed, else ``None``."""
        return self.shell.reboot

    def _out(self) -> bytes:
        return self.shell.take_output().encode("utf-8", "surrogateescape")

    def prompt(self) -> bytes:
        """The prompt as the shell prints it: ``ESC[1;32muart:~$ ESC[m``."""
        sh = self.shell
        text = sh.prompt
        if sh.use_colors and sh.use_vt100:
            text = f"\x1b[1;3{int(INFO)}m{text}\x1b[m"
        return text.encode("utf-8", "surrogateescape")

    def start(self) -> bytes:
        """``shell_start``: what the shell prints when it comes up after boot."""
        sh = self.shell
        sh.set_color(Color.DEFAULT)
        if sh.default_prompt:
            sh.raw("\n\n")
        self._state_active()
        return self._out()

    def print_line(self, text: str, level: str | None = None) -> bytes:
        """A line printed while the shell waits for input (a log message): the command line is
        erased, ``text`` printed, then the prompt and what was typed so far come back.

        With ``level`` ``"err"`` or ``"wrn"``, the ``<err>``/``<wrn>`` part onwards is coloured
        as the shell log backend colours it (red, yellow).
        """
        sh = self.shell
        self._cmd_line_erase()
        color = {"err": "\x1b[1;31m", "wrn": "\x1b[1;33m"}.get(level or "")
        marker = text.find(f"<{level}>")
        if color and sh.use_colors and sh.use_vt100 and marker >= 0:
            text = f"{text[:marker]}{color}{text[marker:]}\x1b[0m"
        sh.raw(text + "\n")
        self._print_prompt_and_cmd()
        return self._out()

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes) -> bytes:
        """Process received bytes; returns what the board writes back."""
        for byte in data:
            if self.shell.reboot is not None:
                break
            if byte > 127:
                continue  # SHELL_ASCII_FILTER
            self._collect(chr(byte))
        return self._out()

    def _process_nl(self, c: str) -> bool:
        if c not in "\r\n":
            self._last_nl = ""
            return False
        if not self._last_nl or c == self._last_nl:
            self._last_nl = c
            return True
        return False  # the \n of a \r\n pair (or the reverse): ignored

    def _collect(self, c: str) -> None:
        sh = self.shell
        if self._rx is _Rx.DEFAULT:
            if self._process_nl(c):
                if not sh.cmd_buff:
                    self._history_index = None
                    sh.newline()
                else:
                    sh.execute_line()
                    self._history_index = None  # history_put leaves history mode
                    if sh.reboot is not None:
                        return
                self._state_active()
            elif c == "\x1b":
                self._rx = _Rx.ESC
            elif c == "\t":
                if sh.echo:
                    self._history_exit = True
                    self._tab()
            elif c == "\x08" or (c == "\x7f" and sh.mode_delete):
                if sh.echo:
                    self._history_exit = True
                    self._backspace()
            elif c == "\x7f":
                if sh.echo:
                    self._history_exit = True
                    self._delete()
            elif " " <= c <= "~":
                self._history_exit = True
                self._char_insert(c)
            elif c != "\0" and sh.echo:
                self._ctrl_key(c)
        elif self._rx is _Rx.ESC:
            self._rx = _Rx.DEFAULT
            if c == "[":
                self._rx = _Rx.ESC_SEQ
            elif sh.echo and c in "bf":
                self._word_move(-1 if c == "b" else 1)
        elif self._rx is _Rx.ESC_SEQ:
            self._rx = _Rx.DEFAULT
            if sh.echo:
                self._esc_seq(c)
        else:
            self._rx = _Rx.DEFAULT  # the ~ closing ESC [ n ~

    def _esc_seq(self, c: str) -> None:
        sh = self.shell
        if c in "1234":
            self._rx = _Rx.TILDE_EXP
        if c == "A":
            self._history(up=True)
        elif c == "B":
            self._history(up=False)
        elif c == "C" and sh.cmd_pos < len(sh.cmd_buff):
            sh.cursor_move(1)
        elif c == "D" and sh.cmd_pos > 0:
            sh.cursor_move(-1)
        elif c in "4F":
            sh.cursor_move(len(sh.cmd_buff) - sh.cmd_pos)
        elif c in "1H":
            sh.cursor_move(-sh.cmd_pos)
        elif c in "2L":
            sh.insert_mode = not sh.insert_mode
        elif c == "3":
            self._delete()

    def _ctrl_key(self, c: str) -> None:
        sh = self.shell
        key = chr(ord(c) + 0x60)
        if key == "a":
            sh.cursor_move(-sh.cmd_pos)
        elif key == "b" and sh.cmd_pos > 0:
            sh.cursor_move(-1)
        elif key == "c":
            sh.cursor_move(len(sh.cmd_buff) - sh.cmd_pos)
            if not sh.cursor_in_empty_line():
                sh.newline()
            self._history_exit = True
            self._state_active()
        elif key == "d":
            self._delete()
        elif key == "e":
            sh.cursor_move(len(sh.cmd_buff) - sh.cmd_pos)
        elif key == "f" and sh.cmd_pos < len(sh.cmd_buff):
            sh.cursor_move(1)
        elif key == "k":
            sh.cmd_buff = sh.cmd_buff[:sh.cmd_pos]
            sh.vt100("\x1b[J")
        elif key == "l":
            sh.vt100("\x1b[H")
            sh.vt100("\x1b[2J")
            self._print_prompt_and_cmd()
        elif key in "np":
            self._history(up=key == "p")
        elif key == "u":
            sh.cursor_move(-sh.cmd_pos)
            sh.cmd_buff, sh.cmd_pos = "", 0
            self._history_exit = True
            sh.vt100("\x1b[J")
        elif key == "w":
            self._word_remove()
            self._history_exit = True

    # ------------------------------------------------------------------ screen

    def _state_active(self) -> None:
        """``state_set(SHELL_STATE_ACTIVE)``: empty command line, fresh prompt."""
        self.shell.cmd_buff, self.shell.cmd_pos = "", 0
        self._print_prompt_and_cmd()

    def _print_prompt_and_cmd(self) -> None:
        sh = self.shell
        sh.fprintf(INFO, sh.prompt)
        if sh.echo:
            self._print_cmd()
            self._cursor_sync()

    def _print_cmd(self) -> None:
        """``z_shell_print_cmd``: the command line, broken where the terminal wraps."""
        sh = self.shell
        text, width = sh.cmd_buff, sh.terminal_width
        room = width - len(sh.prompt)
        while len(text) > room:
            sh.raw(text[:room] + "\n")
            text, room = text[room:], width
        if text:
            sh.raw(text)

    def _cursor_sync(self) -> None:
        """``z_shell_op_cursor_position_synchronize``: from the line's end back to the cursor."""
        sh = self.shell
        width, name = sh.terminal_width, len(sh.prompt)
        cur, end = sh.cmd_pos + name, len(sh.cmd_buff) + name
        if sh.full_line_cmd():
            sh.newline()
        if cur // width != end // width:
            sh.cursor_vert_move(end // width - cur // width)
        sh.cursor_horiz_move(cur % width - end % width)

    def _cmd_line_erase(self) -> None:
        sh = self.shell
        width, name = sh.terminal_width, len(sh.prompt)
        cur = sh.cmd_pos + name
        sh.cursor_horiz_move(-(cur % width))
        sh.cursor_vert_move(cur // width)
        sh.vt100("\x1b[J")

    def _reprint_from_cursor(self, diff: int, removed: bool) -> None:
        sh = self.shell
        width, name = sh.terminal_width, len(sh.prompt)
        if removed:
            sh.vt100("\x1b[J")
        line_len = len(sh.cmd_buff) + name
        buff_pos = sh.cmd_pos + name
        if buff_pos // width != line_len // width:
            pos = sh.cmd_pos
            while buff_pos < line_len:
                if buff_pos % width == 0:
                    sh.newline()
                buff_pos += 1
                sh.raw(sh.cmd_buff[pos])
                pos += 1
        else:
            sh.raw(sh.cmd_buff[sh.cmd_pos:])
        sh.cmd_pos = len(sh.cmd_buff)
        if sh.full_line_cmd() and (diff > 0 or not removed):
            sh.newline()
        sh.cursor_move(-diff)

    # ------------------------------------------------------------------ editing

    def _data_insert(self, text: str) -> None:
        sh = self.shell
        if len(sh.cmd_buff) + len(text) >= sh.config.cmd_buff_size:
            return
        after = len(sh.cmd_buff) - sh.cmd_pos
        sh.cmd_buff = sh.cmd_buff[:sh.cmd_pos] + text + sh.cmd_buff[sh.cmd_pos:]
        if not sh.echo:
            sh.cmd_pos += len(text)
            return
        self._reprint_from_cursor(after, removed=False)

    def _char_insert(self, c: str) -> None:
        sh = self.shell
        if sh.insert_mode and sh.cmd_pos != len(sh.cmd_buff):
            sh.cmd_buff = sh.cmd_buff[:sh.cmd_pos] + c + sh.cmd_buff[sh.cmd_pos + 1:]
            sh.cmd_pos += 1
            if sh.echo:
                sh.raw(c)
                if sh.cursor_in_empty_line():
                    sh.newline()
        else:
            self._data_insert(c)

    def _delete(self) -> None:
        sh = self.shell
        diff = len(sh.cmd_buff) - sh.cmd_pos
        if diff == 0:
            return
        sh.cmd_buff = sh.cmd_buff[:sh.cmd_pos] + sh.cmd_buff[sh.cmd_pos + 1:]
        self._reprint_from_cursor(diff - 1, removed=True)

    def _backspace(self) -> None:
        sh = self.shell
        if not sh.cmd_buff or sh.cmd_pos == 0:
            return
        sh.cursor_move(-1)
        self._delete()

    def _word_move(self, sign: int) -> None:
        """``z_shell_op_cursor_word_move``: to the next/previous word edge."""
        sh = self.shell
        text, pos, shift, found = sh.cmd_buff, sh.cmd_pos, 0, False
        while True:
            idx = pos + shift * sign
            if (idx == 0 and sign < 0) or (idx == len(text) and sign > 0):
                break
            if idx < len(text) and text[idx] in _ALNUM:  # the C string ends in a NUL
                found = True
            elif found:
                break
            shift += 1
        sh.cursor_move(sign * shift)

    def _word_remove(self) -> None:
        sh = self.shell
        if not sh.cmd_buff or sh.cmd_pos == 0:
            return
        start = sh.cmd_pos
        while start > 0 and sh.cmd_buff[start - 1] == " ":
            start -= 1
        while start > 0 and sh.cmd_buff[start - 1] != " ":
            start -= 1
        count = sh.cmd_pos - start
        tail = sh.cmd_buff[sh.cmd_pos:]
        sh.cmd_buff = sh.cmd_buff[:start] + tail
        sh.cursor_move(-count)
        sh.vt100("\x1b7")
        sh.raw(tail)
        sh.vt100("\x1b[J")
        sh.vt100("\x1b8")

    def _history(self, up: bool) -> None:
        """``history_handle``: Up/Down (Ctrl+P/N) walk the executed lines; past either end the
        line typed before comes back."""
        sh = self.shell
        if sh.config.history_size <= 0:
            return
        if self._history_exit:
            self._history_exit = False
            self._history_index = None
        if self._history_index is None:
            if not up:
                return
            self._history_backup = sh.cmd_buff
        line = self._history_step(up)
        if line is None:
            line = self._history_backup
        sh.cursor_move(-sh.cmd_pos)
        sh.vt100("\x1b[J")
        sh.cmd_buff = line
        self._print_cmd()
        sh.cmd_pos = len(line)
        if sh.cursor_in_empty_line() or sh.full_line_cmd():
            sh.newline()

    def _history_step(self, up: bool) -> str | None:
        """``z_shell_history_get``: the next older (or newer) line, ``None`` off either end."""
        entries = self.shell.history
        index = self._history_index
        if not entries or (index is None and not up):
            return None
        if index is None:
            index = len(entries) - 1
        else:
            index += -1 if up else 1
        if not 0 <= index < len(entries):
            self._history_index = None
            return None
        self._history_index = index
        return entries[index]

    # ------------------------------------------------------------------ Tab

    def _tab(self) -> None:
        """``tab_handle``: complete a unique match, or list the candidates and complete their
        common beginning."""
        sh = self.shell
        if sh.config.cmd_buff_size - 1 - len(sh.cmd_buff) <= 0:
            return
        words, _ = split_args(sh.cmd_buff[:sh.cmd_pos])
        if len(words) > sh.config.argc_max:
            return
        space = sh.cmd_pos > 0 and sh.cmd_buff[sh.cmd_pos - 1] in SPACE
        parent: Command | None = None
        index = 0
        if words and (space or len(words) > 1):
            wanted = len(words) if space else len(words) - 1
            while index < wanted:
                found = sh.find(parent, words[index])
                if found is None:
                    break
                parent, index = found, index + 1
            if parent is None:
                return
        partial = words[index] if index < len(words) else ""
        items = sh.roots if parent is None else parent.children(sh)
        matches = [c for c in items if c.syntax.startswith(partial)]
        if len(matches) == 1:
            self._autocomplete(matches[0].syntax, partial)
        elif matches:
            self._tab_options(matches)
            common = matches[0].syntax
            for other in matches[1:]:
                while not other.syntax.startswith(common):
                    common = common[:-1]
            if common:
                self._data_insert(common[len(partial):])

    def _autocomplete(self, syntax: str, partial: str) -> None:
        sh = self.shell
        if len(syntax) != len(partial):
            self._data_insert(syntax[len(partial):])
        following = sh.cmd_buff[sh.cmd_pos:sh.cmd_pos + 1]
        if not following or following not in SPACE:
            insert_mode, sh.insert_mode = sh.insert_mode, False
            self._char_insert(" ")
            sh.insert_mode = insert_mode
        else:
            sh.cursor_move(1)

    def _tab_options(self, matches: list[Command]) -> None:
        """``tab_options_print``: the candidates in columns, in the option colour."""
        sh = self.shell
        longest = max(len(c.syntax) for c in matches) + 2
        columns = max((sh.terminal_width - 2) // longest, 1)
        for printed, command in enumerate(matches):
            if printed % columns == 0:
                sh.fprintf(OPTION, f"\n  {command.syntax}")
            else:
                sh.fprintf(OPTION, command.syntax)
            sh.cursor_horiz_move(longest - len(command.syntax))
        sh.newline()
        self._print_prompt_and_cmd()
