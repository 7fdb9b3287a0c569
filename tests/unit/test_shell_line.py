"""The UART shell's line discipline: echo, editing keys, Enter, Tab, history, log lines.

Byte sequences are those Zephyr's ``shell.c``/``shell_ops.c`` write for each key; the console
text of the recorded shell-transport build (native_sim_shell.jsonl, colour codes stripped by
the recorder) is checked at the end.
"""

from __future__ import annotations

import re

import pytest

import golden
from smpsim.config import load_profile
from smpsim.device.mcu import Device
from smpsim.device.shell.line import ShellLine

PROMPT = b"\x1b[1;32muart:~$ \x1b[m"
RED, OFF = b"\x1b[1;31m", b"\x1b[m"


@pytest.fixture
def line() -> ShellLine:
    device = Device(load_profile("native_sim_shell"))
    device.boot()
    shell_line = ShellLine(device)
    shell_line.start()
    return shell_line


def test_start_and_prompt() -> None:
    device = Device(load_profile("native_sim_shell"))
    device.boot()
    shell_line = ShellLine(device)
    assert shell_line.start() == b"\x1b[m\r\n\r\n" + PROMPT
    assert shell_line.prompt() == PROMPT


def test_command_is_echoed_run_and_prompted(line: ShellLine) -> None:
    assert line.feed(b"kernel version\r") == (
        b"kernel version\r\nZephyr version 4.4.0\r\n" + PROMPT)


def test_bytes_may_come_one_at_a_time(line: ShellLine) -> None:
    out = b"".join(line.feed(bytes([b])) for b in b"kernel version\n")
    assert out == b"kernel version\r\nZephyr version 4.4.0\r\n" + PROMPT


@pytest.mark.parametrize(("keys", "prompts"), [
    (b"\r\n", 1), (b"\n\r", 1), (b"\r\r", 2), (b"\n\n", 2), (b"\r\n\r\n", 2),
])
def test_crlf_counts_once_but_repeats_count(line: ShellLine, keys: bytes, prompts: int) -> None:
    assert line.feed(keys) == (b"\r\n" + PROMPT) * prompts


def test_unknown_command_in_red(line: ShellLine) -> None:
    assert line.feed(b"nosuch\r") == (
        b"nosuch\r\n" + RED + b"nosuch: command not found\r\n" + OFF + PROMPT)


@pytest.mark.parametrize("key", [b"\x7f", b"\x08"])
def test_backspace(line: ShellLine, key: bytes) -> None:
    assert line.feed(b"ab" + key) == b"ab\x1b[1D\x1b[J"
    assert line.feed(key + key) == b"\x1b[1D\x1b[J"  # the second finds nothing to erase
    assert line.shell.cmd_buff == ""


def test_delete_key_when_not_in_delete_mode(line: ShellLine) -> None:
    line.feed(b"shell backspace_mode backspace\r")
    assert line.feed(b"ab\x1b[D\x7f") == b"ab\x1b[1D\x1b[J"
    assert line.shell.cmd_buff == "a"


def test_insert_in_the_middle_reprints_the_tail(line: ShellLine) -> None:
    assert line.feed(b"ab\x1b[DX") == b"ab\x1b[1DXb\x1b[1D"
    assert line.feed(b"\r") == (b"\x1b[1C\r\n" + RED + b"aXb: command not found\r\n" + OFF
                                + PROMPT)


def test_home_end_delete_and_insert_mode(line: ShellLine) -> None:
    assert line.feed(b"abc\x1b[H") == b"abc\x1b[3D"
    assert line.feed(b"\x1b[3~") == b"\x1b[Jbc\x1b[2D"
    assert line.feed(b"\x1b[F") == b"\x1b[2C"
    assert line.feed(b"\x1b[D\x1b[2~Z") == b"\x1b[1DZ"  # insert key: overwrite mode
    assert line.shell.cmd_buff == "bZ"


def test_ctrl_keys(line: ShellLine) -> None:
    assert line.feed(b"abc\x01") == b"abc\x1b[3D"  # Ctrl+A
    assert line.feed(b"\x05") == b"\x1b[3C"  # Ctrl+E
    assert line.feed(b"\x15") == b"\x1b[3D\x1b[J"  # Ctrl+U
    assert line.feed(b"kernel ver\x17") == b"kernel ver\x1b[3D\x1b7\x1b[J\x1b8"  # Ctrl+W
    assert line.shell.cmd_buff == "kernel "
    assert line.feed(b"\x03") == b"\r\n" + PROMPT  # Ctrl+C: the line is dropped
    assert line.feed(b"ab\x0c") == b"ab\x1b[H\x1b[2J" + PROMPT + b"ab"  # Ctrl+L


def test_alt_b_and_f_jump_words(line: ShellLine) -> None:
    # As shift_calc counts: back to the space before the word, then to the line start.
    assert line.feed(b"kernel version\x1bb") == b"kernel version\x1b[8D"
    assert line.feed(b"\x1bb") == b"\x1b[6D"
    assert line.feed(b"\x1bf") == b"\x1b[6C"


def test_non_ascii_bytes_are_ignored(line: ShellLine) -> None:
    assert line.feed("é".encode()) == b""
    assert line.shell.cmd_buff == ""


def test_line_full_of_characters_takes_no_more(line: ShellLine) -> None:
    line.feed(b"r" * 255)
    assert len(line.shell.cmd_buff) == 255
    assert line.feed(b"s") == b""


def test_echo_wraps_at_the_terminal_width(line: ShellLine) -> None:
    # Prompt (8) + 72 characters fill the 80-column line: the cursor goes to the next one.
    assert line.feed(b"rem " + b"x" * 68).endswith(b"x\r\n")
    assert line.feed(b"\x7f") == b"\x1b[1A\x1b[79C\x1b[J"
    assert line.feed(b"x") == b"x\r\n"
    assert line.feed(b"\r") == PROMPT  # already in column 0: no newline first


def test_echo_off(line: ShellLine) -> None:
    line.feed(b"shell echo off\r")
    assert line.feed(b"abc") == b""
    assert line.feed(b"\r") == b"\r\n" + RED + b"abc: command not found\r\n" + OFF + PROMPT


def test_history_up_and_down(line: ShellLine) -> None:
    line.feed(b"kernel version\r")
    line.feed(b"retval\r")
    assert line.feed(b"re") == b"re"
    assert line.feed(b"\x1b[A") == b"\x1b[2D\x1b[Jretval"
    assert line.feed(b"\x1b[A") == b"\x1b[6D\x1b[Jkernel version"
    assert line.feed(b"\x1b[A") == b"\x1b[14D\x1b[Jre"  # past the oldest: the typed line
    assert line.feed(b"\x10") == b"\x1b[2D\x1b[Jretval"  # Ctrl+P
    assert line.feed(b"\x1b[B") == b"\x1b[6D\x1b[Jre"  # past the newest: the typed line
    assert line.feed(b"\x1b[B") == b""  # not browsing: Down does nothing


def test_tab_completes_a_unique_match(line: ShellLine) -> None:
    assert line.feed(b"kern\t") == b"kernel "
    assert line.feed(b"vers\t") == b"version "
    assert line.shell.cmd_buff == "kernel version "


def test_tab_lists_candidates(line: ShellLine) -> None:
    assert line.feed(b"kernel thread s\t") == (
        b"kernel thread s\x1b[1;36m\r\n  stacks\x1b[m\x1b[3C\x1b[1;36msuspend\x1b[m\x1b[2C\r\n"
        + PROMPT + b"kernel thread s")


def test_tab_completes_the_common_beginning(line: ShellLine) -> None:
    out = line.feed(b"re\t")
    assert out.endswith(PROMPT + b"re")  # rem, resize, retval: only "re" in common
    assert line.feed(b"t\t") == b"tval "


def test_kernel_reboot_stops_the_line(line: ShellLine) -> None:
    assert line.feed(b"kernel reboot warm\rmore") == b"kernel reboot warm\r\n"
    assert line.reboot == "warm"
    assert line.feed(b"x\r") == b""


def test_log_line_redraws_prompt_and_typed_text(line: ShellLine) -> None:
    line.feed(b"ker")
    assert line.print_line("[00:00:01.000,000] <wrn> app: hot", "wrn") == (
        b"\x1b[11D\x1b[J[00:00:01.000,000] \x1b[1;33m<wrn> app: hot\x1b[0m\r\n" + PROMPT
        + b"ker")
    assert line.print_line("[00:00:01.000,000] <inf> app: ok", "inf") == (
        b"\x1b[11D\x1b[J[00:00:01.000,000] <inf> app: ok\r\n" + PROMPT + b"ker")


def _console_lines(data: bytes) -> list[str]:
    """As the recorder kept console text: colour codes dropped, split at line ends."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", data.decode())
    return [part for part in text.split("\r\n") if part]


def test_recorded_console_text_of_the_shell_build() -> None:
    records = {r["case"]: r for r in golden.records("native_sim_shell.jsonl")}
    device = Device(load_profile("native_sim_shell"))
    device.boot()
    shell_line = ShellLine(device)
    assert _console_lines(shell_line.start()) == records["boot.echo"]["console_text"]
    logged = b"".join(shell_line.print_line(text, "wrn")
                      for text in records["proto.oversize"]["server_log"])
    assert _console_lines(logged)[:3] == records["proto.oversize"]["console_text"]
