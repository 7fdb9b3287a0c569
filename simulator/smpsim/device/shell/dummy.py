"""The shell's dummy backend, which the SMP shell group runs commands on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from smpsim.device.shell.commands import roots
from smpsim.device.shell.core import Shell, ShellRam, dummy_shell

if TYPE_CHECKING:
    from smpsim.device.mcu import Device


def dummy(device: Device) -> Shell:
    """The dummy backend's shell instance of this boot."""
    ram = device.ram.get(ShellRam)
    if ram is not None and ram.dummy is not None:
        return ram.dummy
    return dummy_shell(device, roots(device.profile))


def run_dummy(device: Device, line: str) -> tuple[str, int]:
    """Run ``line`` on the dummy backend: (captured output, return value).

    The backend keeps ``SHELL_BACKEND_DUMMY_BUF_SIZE - 1`` bytes of output and drops the rest.
    """
    output, ret = dummy(device).run(line)
    limit = device.profile.firmware.shell.dummy_buf_size - 1
    raw = output.encode("utf-8", "surrogateescape")
    if len(raw) > limit:
        output = raw[:max(limit, 0)].decode("utf-8", "surrogateescape")
    return output, ret


def execute(device: Device, argv: list[str]) -> tuple[str, int]:
    """Run ``argv`` joined with spaces on the dummy backend, as the SMP shell group does."""
    return run_dummy(device, " ".join(argv))
