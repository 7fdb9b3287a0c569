"""The Zephyr-like shell on its dummy backend: parsing, help, colours and every command's text.

Expected texts are Zephyr 4.4.0's (``subsys/shell``, ``kernel_service/``, ``device_service.c``,
``date_service.c``, ``mcuboot_shell.c``); where a real answer was recorded (``kernel version``,
``kernel`` help, ``help``, an unknown command) it is the recorded one.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from smpsim.config import Profile, ShellDevice, Thread, load_profile
from smpsim.config.catalog import SHELL_COMMANDS
from smpsim.device.mcu import Device
from smpsim.device.shell import commands
from smpsim.device.shell.args import split_args
from smpsim.device.shell.commands import roots as root_commands
from smpsim.device.shell.core import Command, Shell
from smpsim.device.shell.dummy import dummy as dummy_shell
from smpsim.device.shell.dummy import execute, run_dummy
from smpsim.errors import ConfigError

RED, YELLOW, OFF = "\x1b[1;31m", "\x1b[1;33m", "\x1b[m"


def _device(profile: Profile | str = "native_sim_udp") -> Device:
    device = Device(profile if isinstance(profile, Profile) else load_profile(profile))
    device.boot()
    return device


def _with_shell(name: str, **changes: object) -> Profile:
    prof = load_profile(name)
    fw = prof.firmware
    return dataclasses.replace(prof, firmware=dataclasses.replace(
        fw, shell=dataclasses.replace(fw.shell, **changes)))


@pytest.fixture
def native() -> Device:
    return _device()


# ----------------------------------------------------------------------------- parsing

@pytest.mark.parametrize(("line", "words", "open_quote"), [
    ("kernel  version ", ["kernel", "version"], ""),
    ('echo "a b" c', ["echo", "a b", "c"], ""),
    ("say 'it\\'s'", ["say", "it's"], ""),
    ('x "\\x41\\0101"', ["x", "AA"], ""),
    ("a\\ b", ["a b"], ""),
    ('x "open', ["x", "open"], '"'),
])
def test_split_args(line: str, words: list[str], open_quote: str) -> None:
    assert split_args(line) == (words, open_quote)


def test_output_starts_with_a_newline_unless_the_cursor_wrapped(native: Device) -> None:
    assert run_dummy(native, "rem short") == ("\r\n", 0)
    # Prompt "~$ " (3) + 77 typed characters end exactly at column 80: no newline first.
    assert run_dummy(native, "rem " + "x" * 73) == ("", 0)


def test_unknown_command(native: Device) -> None:
    assert execute(native, ["nosuchcmd"]) == (
        f"\r\n{RED}nosuchcmd: command not found\r\n{OFF}", -8)


def test_empty_line_is_enoexec_without_text(native: Device) -> None:
    assert run_dummy(native, "   ") == ("\r\n", -8)


def test_unterminated_quote(native: Device) -> None:
    assert run_dummy(native, 'rem "abc') == (f"\r\n{RED}not terminated: \"\r\n{OFF}", -8)


def test_group_without_subcommand_prints_help_ret_1(native: Device) -> None:
    out, ret = execute(native, ["kernel", "thread"])
    assert ret == 1
    assert out == ("\r\nthread - Kernel threads.\r\nSubcommands:\r\n"
                   "  kill     : kernel thread kill <thread_id>\r\n"
                   "  list     : List kernel threads.\r\n"
                   "  resume   : kernel thread resume <thread_id>\r\n"
                   "  stacks   : List threads stack usage.\r\n"
                   "  suspend  : kernel thread suspend <thread_id>\r\n")


def test_help_option(native: Device) -> None:
    assert execute(native, ["kernel", "version", "-h"]) == (
        "\r\nversion - Kernel version.\r\n", 1)
    assert execute(native, ["kernel", "--help"])[0].startswith("\r\nkernel - Kernel commands")
    assert execute(native, ["nosuch", "-h"]) == (
        f"\r\n{RED}nosuch: command not found\r\n{OFF}{RED}Please specify a subcommand.\r\n{OFF}",
        -8)


def test_wrong_argument_count_prints_the_error_and_help(native: Device) -> None:
    assert execute(native, ["kernel", "uptime", "a", "b"]) == (
        f"\r\n{RED}uptime: wrong parameter count\r\n{OFF}"
        "uptime - Kernel uptime. Can be called with the -p or --pretty options\r\n", -22)
    assert execute(native, ["help", "me"]) == (
        f"\r\n{RED}help: wrong parameter count\r\n{OFF}help - Prints the help message.\r\n", -22)


def test_too_many_arguments(native: Device) -> None:
    assert run_dummy(native, "rem " + "a " * 20) == (
        f"\r\n{RED}Too many arguments in the command.\r\n\r\n{OFF}", -8)
    assert run_dummy(native, "rem " + "a " * 19) == ("\r\n", 0)


def test_extra_words_go_to_a_command_without_a_count(native: Device) -> None:
    assert execute(native, ["kernel", "version", "please"]) == (
        "\r\nZephyr version 4.4.0\r\n", 0)


def test_long_help_wraps_at_word_edges_with_cursor_indent(native: Device) -> None:
    out, ret = execute(native, ["resize", "-h"])
    assert ret == 1
    lines = out.split("\r\n")
    assert lines[1] == ("resize - Console gets terminal screen size or assumes default in case "
                        "the")
    assert lines[2] == ("\x1b[9Creadout fails. It must be executed after each terminal width "
                        "change to")
    assert lines[3] == "\x1b[9Censure correct text display."
    assert lines[4:6] == ["Subcommands:", "  default  : Assume 80 chars screen width and send "
                          "this setting to the terminal."]


def test_help_text_with_a_newline_breaks_there(native: Device) -> None:
    out, _ = execute(native, ["device"])
    assert out == ("\r\ndevice - Device commands\r\nSubcommands:\r\n"
                   "  list  : List configured devices, with an optional filter\r\n"
                   "\x1b[10CUsage: [<device filter>]\r\n")


def test_colors_and_vt100_can_be_switched_off(native: Device) -> None:
    assert execute(native, ["shell", "colors", "off"]) == ("\r\n", 0)
    assert execute(native, ["nosuch"]) == ("\r\nnosuch: command not found\r\n", -8)
    assert execute(native, ["clear"]) == ("\r\n\x1b[H\x1b[2J", 0)
    execute(native, ["shell", "vt100", "off"])
    assert execute(native, ["clear"]) == ("\r\n", 0)


def test_dummy_buffer_keeps_511_bytes(native: Device) -> None:
    out, _ = execute(native, ["help"])
    assert len(out) == 511
    assert out.endswith("  device   : Device commands\r\n")
    small = _device(_with_shell("native_sim_udp", dummy_buf_size=16))
    assert execute(small, ["kernel", "version"]) == ("\r\nZephyr versio", 0)


def test_cut_keeps_bytes_not_characters() -> None:
    device = _device(_with_shell("native_sim_udp", dummy_buf_size=11))
    out, ret = run_dummy(device, "é\u20ac")  # "é€: command not found" in red
    assert ret == -8
    assert out.encode("utf-8", "surrogateescape") == b"\r\n\x1b[1;31m\xc3"


# ----------------------------------------------------------------------------- help & built-ins

def test_help_lists_root_commands_sorted(native: Device) -> None:
    out, ret = execute(native, ["help"])
    assert ret == 0
    assert out.startswith("\r\nPlease press the <Tab> button to see all available commands.\r\n")
    assert "\r\n\r\nAvailable commands:\r\n  clear    : Clear screen.\r\n" in out
    big = _device(_with_shell("native_sim_udp", dummy_buf_size=2048))
    names = re.findall(r"\r\n  (\w+) +: ", execute(big, ["help"])[0])
    assert names == ["clear", "date", "device", "help", "history", "kernel", "rem", "resize",
                     "retval", "shell", "stats"]


def test_board_decides_date_and_mcuboot() -> None:
    nrf = [c.syntax for c in root_commands(load_profile("nrf52840dk"))]
    assert "mcuboot" in nrf and "date" not in nrf
    sim = [c.syntax for c in root_commands(load_profile("native_sim_udp"))]
    assert "date" in sim and "mcuboot" not in sim


def test_profile_can_list_the_commands(tmp_path: Path) -> None:
    prof = _with_shell("native_sim_udp", commands=("kernel", "help"))
    assert [c.syntax for c in root_commands(prof)] == ["help", "kernel"]
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "native_sim_udp"\n[firmware.shell]\ncommands = ["nosuch"]\n')
    with pytest.raises(ConfigError, match=r"firmware\.shell\.commands: unknown nosuch"):
        load_profile(bad)  # refused when the profile loads, before any board is built


def test_the_catalog_names_every_root_command() -> None:
    assert set(SHELL_COMMANDS) == set(commands.ROOT_COMMANDS)


def test_stats_command_joins_the_stat_groups_builds() -> None:
    assert "stats" in [c.syntax for c in root_commands(load_profile("native_sim_udp"))]
    assert "stats" in [c.syntax for c in root_commands(load_profile("qemu_cortex_m0_img"))]
    nostat = dataclasses.replace(load_profile("native_sim_udp"), firmware=dataclasses.replace(
        load_profile("native_sim_udp").firmware, groups={"os": ("echo",)}))
    assert "stats" not in [c.syntax for c in root_commands(nostat)]


def test_a_command_in_the_table_joins_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    def hello(shell: Shell, argv: list[str]) -> int:
        shell.print("hello!")
        return 0
    monkeypatch.setitem(commands.ROOT_COMMANDS, "hello", Command("hello", "Says hello", hello))
    prof = _with_shell("native_sim_udp", commands=("hello", "help"))
    assert execute(_device(prof), ["hello"]) == ("\r\nhello!\r\n", 0)


def test_retval_and_history(native: Device) -> None:
    execute(native, ["kernel", "uptime", "--bad"])
    assert execute(native, ["retval"]) == ("\r\n-5\r\n", 0)
    execute(native, ["kernel", "uptime", "--bad"])
    for refused in (["nosuch"], ["kernel"], ["help", "x"]):  # no handler ran: -5 is kept
        execute(native, ["kernel", "uptime", "--bad"])
        execute(native, refused)
        assert execute(native, ["retval"]) == ("\r\n-5\r\n", 0)
    assert execute(native, ["retval"]) == ("\r\n0\r\n", 0)  # retval itself returned 0
    execute(native, ["retval"])  # a repeat is not stored twice
    assert execute(native, ["history"])[0].startswith(
        "\r\n[  0] history\r\n[  1] retval\r\n[  2] help x\r\n[  3] kernel uptime --bad\r\n"
        "[  4] retval\r\n[  5] kernel\r\n")


def test_history_drops_the_oldest_when_full() -> None:
    device = _device(_with_shell("native_sim_udp", history_size=40))
    for word in ("first", "second", "third"):
        run_dummy(device, f"rem {word}")
    assert dummy_shell(device).history == ["rem second", "rem third"]


def test_shell_backends_and_echo(native: Device) -> None:
    assert execute(native, ["shell", "backends"]) == (
        "\r\nActive shell backends:\r\n   0. :~$  (shell_dummy)\r\n", 0)
    assert execute(native, ["shell", "echo"]) == ("\r\nEcho status: on\r\n", 0)
    assert execute(native, ["shell", "echo", "x"]) == (
        f"\r\n{RED}echo: unknown parameter: x\r\n{OFF}", -22)


def test_resize_times_out_without_a_terminal(native: Device) -> None:
    before = native.clock.now()
    assert execute(native, ["resize"]) == (
        f"\r\n\x1b7\x1b[250B\x1b[250C\x1b[6n\x1b8{YELLOW}No response from the terminal, assumed "
        f"80x24 screen size\r\n{OFF}", -8)
    assert native.clock.now() - before == pytest.approx(1.0)
    assert execute(native, ["resize", "default"]) == ("\r\n\x1b[?3l", 0)


# ----------------------------------------------------------------------------- kernel

def test_kernel_version(native: Device) -> None:
    assert execute(native, ["kernel", "version"]) == ("\r\nZephyr version 4.4.0\r\n", 0)


def test_kernel_uptime(native: Device) -> None:
    native.clock.advance(19.56)
    assert execute(native, ["kernel", "uptime"]) == ("\r\nUptime: 19560 ms\r\n", 0)
    native.clock.advance(90061.001 - 19.56)
    assert execute(native, ["kernel", "uptime", "-p"]) == (
        "\r\nuptime: 1 days, 1 hours, 1 minutes, 1 seconds, 1 milliseconds\r\n", 0)
    assert execute(native, ["kernel", "uptime", "-x"]) == (
        f"\r\n{RED}Unsupported option: -x\r\n{OFF}", -5)


def test_kernel_cycles_counts_from_power_on_and_wraps(native: Device) -> None:
    native.clock.advance(2.5)
    now = native.clock.now()
    assert execute(native, ["kernel", "cycles"]) == (
        f"\r\ncycles: {int(now * 1_000_000)} hw cycles\r\n", 0)
    native.clock.advance(4295.0)
    cycles = int(re.findall(r"\d+", execute(native, ["kernel", "cycles"])[0])[0])
    assert cycles == int(native.clock.now() * 1_000_000) & 0xFFFFFFFF


def _two_threads() -> Device:
    prof = load_profile("native_sim_udp")
    threads = (Thread("mcumgr smp", 3, 128, 2048, 512), Thread("main", 0, 4, 1024, 1000))
    fw = dataclasses.replace(prof.firmware, threads=threads,
                             shell=dataclasses.replace(prof.firmware.shell, ram_base=0x20000000))
    return _device(dataclasses.replace(prof, firmware=fw))


def test_kernel_thread_list() -> None:
    device = _two_threads()
    device.clock.advance(0.25)  # 2500 ticks into the second: main wakes in 7500
    assert execute(device, ["kernel", "thread", "list"]) == (
        "\r\nScheduler: 75 since last call\r\nThreads:\r\n"
        "*0x20000800 mcumgr smp\r\n"
        "\toptions: 0x0, priority: 3 timeout: 0\r\n"
        "\tstate: queued, entry: 0x1001\r\n"
        "\tstack size 2048, unused 1536, usage 512 / 2048 (25 %)\r\n\r\n"
        " 0x200008e8 main      \r\n"
        "\toptions: 0x1, priority: 0 timeout: 7500\r\n"
        "\tstate: sleeping, entry: 0x1141\r\n"
        "\tstack size 1024, unused 24, usage 1000 / 1024 (97 %)\r\n\r\n", 0)


def test_kernel_thread_stacks() -> None:
    assert execute(_two_threads(), ["kernel", "thread", "stacks"]) == (
        "\r\n0x20000800 mcumgr smp" + " " * 23 + "(real size 2048):\tunused 1536\tusage  512 / "
        "2048 (25 %)\r\n0x200008e8 main" + " " * 29 + "(real size 1024):\tunused   24\tusage "
        "1000 / 1024 (97 %)\r\n0x20000400 IRQ 00" + " " * 27 + "(real size 2048):\tunused 1680"
        "\tusage  368 / 2048 (17 %)\r\n", 0)


def test_kernel_thread_suspend_resume_kill() -> None:
    device = _two_threads()
    assert execute(device, ["kernel", "thread", "suspend", "200008e8"]) == (
        "\r\nThread 0x200008e8 suspended\r\n", 0)
    assert execute(device, ["kernel", "thread", "resume", "0x200008e8"]) == (
        "\r\nThread 0x200008e8 resumed\r\n", 0)
    assert execute(device, ["kernel", "thread", "kill", "200008e8"]) == (
        "\r\n\r\n Thread 0x200008e8 killed\r\n", 0)
    assert execute(device, ["kernel", "thread", "kill", "20000800"]) == (
        f"\r\n{RED}Error:Shell thread cannot be killed\r\n{OFF}", -22)
    assert execute(device, ["kernel", "thread", "kill", "1"]) == (
        f"\r\n{RED}Thread ID 0x1 is not valid\r\n{OFF}", -22)


def test_kernel_reboot_sets_the_flag(native: Device) -> None:
    assert execute(native, ["kernel", "reboot"]) == ("\r\n", 0)
    assert dummy_shell(native).reboot == "cold"
    dummy_shell(native).reboot = None
    execute(native, ["kernel", "reboot", "warm"])
    assert dummy_shell(native).reboot == "warm"


def test_kernel_sleep_spends_the_time(native: Device) -> None:
    before = native.clock.now()
    assert execute(native, ["kernel", "sleep", "250"]) == ("\r\n", 0)
    assert native.clock.now() - before == pytest.approx(0.25)
    assert execute(native, ["kernel", "sleep", "-1"]) == (
        f"\r\n{RED}Unable to parse input (err -22)\r\n{OFF}", -22)
    assert execute(native, ["kernel", "sleep"])[1] == -22


def test_kernel_log_level(native: Device) -> None:
    assert execute(native, ["kernel", "log_level", "smp_sample", "3"]) == ("\r\n", 0)
    assert execute(native, ["kernel", "log_level", "smp_sample", "9"]) == (
        f"\r\n{RED}Invalid log level: 9\r\n{OFF}log_level - <module name> <severity (0-4)>\r\n",
        1)
    assert execute(native, ["kernel", "log_level", "nope", "1"]) == (
        f"\r\n{RED}Unable to find log source: nope\r\n{OFF}", -22)


# ----------------------------------------------------------------------------- device, date

def test_device_list(native: Device) -> None:
    assert execute(native, ["device", "list"]) == (
        "\r\ndevices:\r\n- rng (READY)\r\n  DT node labels: rng\r\n- uart (READY)\r\n"
        "  DT node labels: uart0\r\n- flash-controller@0 (READY)\r\n"
        "  DT node labels: flashcontroller0\r\n", 0)
    assert execute(native, ["device", "list", "ar"]) == (
        "\r\ndevices:\r\n- uart (READY)\r\n  DT node labels: uart0\r\n", 0)


def test_device_list_disabled_and_unlabelled() -> None:
    device = _device(_with_shell("native_sim_udp", devices=(
        ShellDevice("eeprom", (), ready=False), ShellDevice("gpio@800", ("gpio0",)))))
    assert execute(device, ["device", "list"]) == (
        "\r\ndevices:\r\n- eeprom (DISABLED)\r\n- gpio@800 (READY)\r\n"
        "  DT node labels: gpio0\r\n", 0)
    # Ready devices are subcommands of "list" (dynamic), shown in its help.
    assert execute(device, ["device", "list", "-h"])[0].endswith(
        "Subcommands:\r\n  gpio@800  : device\r\n")


def test_date_runs_from_the_epoch_and_can_be_set(native: Device) -> None:
    native.clock.advance(61)
    assert execute(native, ["date", "get"]) == ("\r\n1970-01-01 00:01:01 UTC\r\n", 0)
    assert execute(native, ["date", "set", "2026-06-03", "22:19:37"]) == (
        "\r\n2026-06-03 22:19:37 UTC\r\n", 0)
    native.clock.advance(3)
    assert execute(native, ["date", "get"]) == ("\r\n2026-06-03 22:19:40 UTC\r\n", 0)
    assert execute(native, ["date", "set", "::5"]) == ("\r\n2026-06-03 22:19:05 UTC\r\n", 0)


def test_date_set_refusals(native: Device) -> None:
    out, ret = execute(native, ["date", "set", "2026-13-01", "1:2:3"])
    assert ret == -22
    assert out.startswith(f"\r\n{RED}Invalid month\r\n{OFF}set - [Y-m-d] <H:M:S>\r\n")
    out, ret = execute(native, ["date", "set"])
    assert (out, ret) == ("\r\nset - [Y-m-d] <H:M:S>\r\n", -22)
    assert execute(native, ["date", "set", "25:00:00"])[0].startswith(
        f"\r\n{RED}Invalid hour\r\n")


# ----------------------------------------------------------------------------- mcuboot

def test_mcuboot_info_on_a_factory_image() -> None:
    device = _device("nrf52840dk")
    assert execute(device, ["mcuboot"]) == (
        "\r\nswap type: none\r\nconfirmed: 1\r\n\r\nprimary area (1):\r\n"
        "  version: 1.0.0+0\r\n  image size: 24576\r\n  magic: unset\r\n  swap type: none\r\n"
        "  copy done: unset\r\n  image ok: unset\r\n\r\n"
        f"{RED}failed to read secondary area (2) header: -5\r\n{OFF}", 0)


def test_mcuboot_request_upgrade_erase_confirm() -> None:
    device = _device("nrf52840dk")
    assert execute(device, ["mcuboot", "request_upgrade", "now"]) == (
        f"\r\n{YELLOW}invalid argument!\r\n{OFF}", -22)
    assert execute(device, ["mcuboot", "request_upgrade"]) == ("\r\n", 0)
    assert execute(device, ["mcuboot"])[0].startswith("\r\nswap type: test\r\n")
    assert execute(device, ["mcuboot", "erase", "2"]) == ("\r\n", 0)
    assert execute(device, ["mcuboot"])[0].startswith("\r\nswap type: none\r\n")
    assert execute(device, ["mcuboot", "request_upgrade", "permanent"]) == ("\r\n", 0)
    assert execute(device, ["mcuboot"])[0].startswith("\r\nswap type: perm\r\n")
    assert execute(device, ["mcuboot", "confirm"]) == ("\r\n", 0)
    assert execute(device, ["mcuboot", "erase", "9"]) == (
        f"\r\n{RED}failed to erase bank 9\r\n{OFF}", -2)
