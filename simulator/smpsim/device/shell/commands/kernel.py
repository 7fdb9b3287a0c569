"""The shell's ``kernel`` command: version, uptime, cycles, threads, reboot, sleep, log levels.

Texts follow Zephyr's ``subsys/shell/modules/kernel_service/``; the values come from the device
model (its clock and the profile's threads).
"""

from __future__ import annotations

from smpsim.config import Thread
from smpsim.device.errno import EINVAL, EIO, ERANGE
from smpsim.device.shell.core import HELP_PRINTED, Command, Shell

THREAD_NAME_LEN = 32
"""``THREAD_MAX_NAME_LEN``: the name column of ``kernel thread stacks``."""
LOG_LEVEL_DBG = 4


class ParseError(ValueError):
    """A number that ``shell_strtoul`` refuses; ``errno`` is the negative error."""

    def __init__(self, errno: int) -> None:
        super().__init__(errno)
        self.errno = errno


def strtoul(text: str, base: int = 10, limit: int = 0xFFFFFFFF) -> int:
    """``shell_strtoul``: the whole string must be a number; a minus sign is refused."""
    if text.startswith("-"):
        raise ParseError(-EINVAL)
    body = text.lstrip(" \t\n\v\f\r").removeprefix("+")
    if base in (0, 16) and body[:2].lower() == "0x":
        body, base = body[2:], 16
    elif base == 0:
        base = 8 if body.startswith("0") and len(body) > 1 else 10
    try:
        value = int(body, base) if body and body.isalnum() else None
    except ValueError:
        value = None
    if value is None:
        raise ParseError(-EINVAL)
    if value > limit:
        raise ParseError(-ERANGE)
    return value


# ----------------------------------------------------------------------------- kernel

def _cmd_version(shell: Shell, argv: list[str]) -> int:
    shell.print(f"Zephyr version {shell.device.profile.firmware.kernel_version}")
    return 0


def _uptime_ms(shell: Shell) -> int:
    return int(shell.device.uptime_s() * 1000)


def _cmd_uptime(shell: Shell, argv: list[str]) -> int:
    ms = _uptime_ms(shell)
    if len(argv) == 1:
        shell.print(f"Uptime: {ms} ms")
        return 0
    if argv[1] not in ("-p", "--pretty"):
        shell.error(f"Unsupported option: {argv[1]}")
        return -EIO
    days, ms = divmod(ms, 86_400_000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    seconds, ms = divmod(ms, 1000)
    shell.print(f"uptime: {days} days, {hours} hours, {minutes} minutes, {seconds} seconds, "
                f"{ms} milliseconds")
    return 0


def _cmd_cycles(shell: Shell, argv: list[str]) -> int:
    # k_cycle_get_32: the hardware cycle counter, running since power-on, 32 bits wide.
    cycles = int(shell.device.clock.now() * shell.config.cycles_per_sec) & 0xFFFFFFFF
    shell.print(f"cycles: {cycles} hw cycles")
    return 0


def _reboot(kind: str) -> Command:
    def handler(shell: Shell, argv: list[str]) -> int:
        shell.reboot = kind  # sys_reboot does not return: the caller resets the board
        return 0
    return Command(kind, f"{kind.capitalize()} reboot.", handler)


def _cmd_sleep(shell: Shell, argv: list[str]) -> int:
    try:
        ms = strtoul(argv[1])
    except ParseError as exc:
        shell.error(f"Unable to parse input (err {exc.errno})")
        return exc.errno
    shell.device.clock.spend(ms / 1000)  # the command blocks the shell that long
    return 0


def _log_sources(shell: Shell) -> set[str]:
    fw = shell.device.profile.firmware
    return {line.module for line in fw.boot_log} | {
        "os", "mcuboot_util", "mcumgr_smp", "mcumgr_shell_grp", "smp_sample", "shell"}


def _cmd_log_level(shell: Shell, argv: list[str]) -> int:
    try:
        severity = strtoul(argv[2], limit=0xFF)
    except ParseError as exc:
        shell.error(f"Unable to parse log severity (err {exc.errno})")
        return exc.errno
    if severity > LOG_LEVEL_DBG:
        shell.error(f"Invalid log level: {severity}")
        shell.help()
        return HELP_PRINTED
    if argv[1] not in _log_sources(shell):
        shell.error(f"Unable to find log source: {argv[1]}")
        return -EINVAL
    return 0


def _thread_addr(shell: Shell, index: int) -> int:
    # struct k_thread objects in RAM; the address is what %p prints as the thread ID.
    return shell.config.ram_base + 0x800 + index * 0xE8


def _fmt_ptr(value: int) -> str:
    return f"0x{value:x}"


def _state_str(state: int) -> str:
    names = ("dummy", "pending", "sleeping", "dead", "suspended", "aborting", "suspending",
             "queued")
    return "+".join(name for bit, name in enumerate(names) if state & (1 << bit))


def _options(thread: Thread) -> int:
    return 0x1 if thread.name in ("main", "idle", "sysworkq") else 0x0  # K_ESSENTIAL


def _cmd_thread_list(shell: Shell, argv: list[str]) -> int:
    cfg = shell.config
    ticks = int(shell.device.uptime_s() * cfg.ticks_per_sec)
    shell.print(f"Scheduler: {ticks % 97} since last call")
    shell.print("Threads:")
    for index, thread in enumerate(shell.device.profile.firmware.threads):
        star = "*" if thread.name == shell.current_thread else " "
        timeout = (cfg.ticks_per_sec - ticks % cfg.ticks_per_sec) if thread.state & 4 else 0
        size = thread.stack_size
        used = min(thread.stack_used, size)
        pct = used * 100 // size if size else 0
        shell.print(f"{star}{_fmt_ptr(_thread_addr(shell, index))} {thread.name:<10}")
        shell.print(f"\toptions: 0x{_options(thread):x}, priority: {thread.prio} "
                    f"timeout: {timeout}")
        shell.print(f"\tstate: {_state_str(thread.state)}, "
                    f"entry: {_fmt_ptr(0x1000 + 0x140 * index + 1)}")
        shell.print(f"\tstack size {size}, unused {size - used}, usage {used} / {size} "
                    f"({pct} %)\n")
    return 0


def _stack_line(addr: str, label: str, size: int, used: int) -> str:
    pct = used * 100 // size if size else 0
    return (f"{addr} {label}(real size {size:4d}):\tunused {size - used:4d}\tusage "
            f"{used:4d} / {size:4d} ({pct:2d} %)")


def _cmd_thread_stacks(shell: Shell, argv: list[str]) -> int:
    for index, thread in enumerate(shell.device.profile.firmware.threads):
        used = min(thread.stack_used, thread.stack_size)
        shell.print(_stack_line(_fmt_ptr(_thread_addr(shell, index)),
                                f"{thread.name:<{THREAD_NAME_LEN}} ", thread.stack_size, used))
    isr = shell.config.isr_stack_size
    pad = " " * (THREAD_NAME_LEN - len("IRQ 00"))
    shell.print(_stack_line(_fmt_ptr(shell.config.ram_base + 0x400), f"IRQ 00 {pad}", isr,
                            min(isr, 368)))
    return 0


def _thread_op(verb: str, done: str) -> Command:
    def handler(shell: Shell, argv: list[str]) -> int:
        try:
            tid = strtoul(argv[1], 16)
        except ParseError:
            tid = 0
        threads = shell.device.profile.firmware.threads
        index = next((i for i in range(len(threads)) if _thread_addr(shell, i) == tid), None)
        if index is None:
            shell.error(f"Thread ID {_fmt_ptr(tid)} is not valid")
            return -EINVAL
        if threads[index].name == shell.current_thread and verb != "resume":
            shell.error(f"Error:Shell thread cannot be {done}")
            return -EINVAL
        lead = "\n " if verb == "kill" else ""
        shell.print(f"{lead}Thread {_fmt_ptr(tid)} {done}")
        return 0
    return Command(verb, f"kernel thread {verb} <thread_id>", handler, mandatory=2)


# SHELL_SUBCMD_ADD sets live in linker sections sorted by name, hence alphabetical order.
_THREAD = Command("thread", "Kernel threads.", subcmds=(
    _thread_op("kill", "killed"),
    Command("list", "List kernel threads.", _cmd_thread_list),
    _thread_op("resume", "resumed"),
    Command("stacks", "List threads stack usage.", _cmd_thread_stacks),
    _thread_op("suspend", "suspended"),
))

KERNEL = (Command("kernel", "Kernel commands", subcmds=(
    Command("cycles", "Kernel cycles.", _cmd_cycles),
    Command("log_level", "<module name> <severity (0-4)>", _cmd_log_level, mandatory=3),
    Command("reboot", "Reboot.", _reboot("cold").handler, (_reboot("cold"), _reboot("warm"))),
    Command("sleep", "ms", _cmd_sleep, mandatory=2),
    _THREAD,
    Command("uptime", "Kernel uptime. Can be called with the -p or --pretty options",
            _cmd_uptime, mandatory=1, optional=1),
    Command("version", "Kernel version.", _cmd_version),
)))
