"""The board's UART apart from SMP: the console text it prints and the shell that reads it.

A serial transport moves the bytes; this decides what they are, as the firmware would. Per the
profile's ``firmware.serial``: console lines go out as they are, log lines in Zephyr's colours
when ``log_color`` is set (``console``: the boot log shares the UART); with the ``shell``
transport a UART shell starts at every boot, takes the text typed at the board, and prints the
log lines through its own log backend once it is up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smpsim.device.console import LOG_LINE, colorize
from smpsim.device.shell.line import ShellLine

if TYPE_CHECKING:
    from smpsim.device.mcu import Device


class Uart:
    """The text side of the UART of one board; every method returns the bytes to send."""

    def __init__(self, device: Device) -> None:
        serial = device.profile.firmware.serial
        self.device = device
        self.has_shell = serial.transport == "shell"
        """The UART runs the Zephyr shell (SMP travels inside it)."""
        self.console_shared = serial.console and serial.transport != "raw"
        """The console (boot log, log lines) is printed on this UART."""
        self.carries_console = self.console_shared or self.has_shell
        """Console lines can reach the line (directly or through the shell's log backend)."""
        self._log_color = serial.log_color
        self.shell: ShellLine | None = None
        """The UART shell of the current boot, once the board is up."""
        self._shell_boot = -1

    def booted(self) -> bytes:
        """The board is up: the shell lives in its RAM, so every boot starts a new one."""
        if not self.has_shell:
            return b""
        self.shell = ShellLine(self.device)
        self._shell_boot = self.device.boot_count
        return self.shell.start()

    def shell_up(self, online: bool) -> bool:
        """The shell of this boot is running (``online``: the board answers)."""
        return self.shell is not None and self._shell_boot == self.device.boot_count and online

    def console_line(self, line: str, online: bool) -> bytes:
        """A console line reaches the UART: through the shell's log backend once the shell is
        up (log lines only), else as it is where the console shares the UART."""
        match = LOG_LINE.fullmatch(line)
        if match is not None and self.shell_up(online):
            assert self.shell is not None
            return self.shell.print_line(line, match.group(2))
        if not self.console_shared:
            return b""
        if self._log_color:
            line = colorize(line)
        return line.encode("utf-8", "surrogateescape") + b"\r\n"

    def typed(self, data: bytes, online: bool) -> tuple[bytes, str | None]:
        """Text typed at the board: (the shell's echo and output, ``"cold"``/``"warm"`` when
        ``kernel reboot`` ran and the board must reset, else None)."""
        if not self.shell_up(online):
            return b"", None
        assert self.shell is not None
        out = self.shell.feed(data)
        reboot = self.shell.reboot
        if reboot is not None:
            self.shell = None
        return out, reboot

    def rx_buffer_lost(self) -> None:
        """A frame found no free RX buffer: the transport logs it, as Zephyr's does."""
        if self.has_shell:
            self.device.console.log("wrn", "smp_shell", "Failed to alloc SMP buf")
        else:
            self.device.console.log("wrn", "uart_mcumgr", "Insufficient buffers, fragment dropped")
