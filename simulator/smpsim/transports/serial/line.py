"""SMP over a serial line: a PTY that clients open like a port, or a real port through pyserial.

The line carries what a board's UART carries: SMP responses in Zephyr's console framing (or bare
packets on a raw UART), the console where the profile shares it (MCUboot's lines, the Zephyr
banner, the application's log), and, with the shell transport, the shell.

Timing follows the profile's ``firmware.serial.baud`` (8N1: 10 bit times a byte) times the time
scale, in both directions, as a PTY has no speed of its own: a request is taken in when its last
byte would have arrived, a response leaves the line byte by byte. So an upload at 115200 baud runs
at the ~8.4 KB/s of SMP data a board gives. At time scale 0, or on a profile without line speed
(native_sim, baud 0), bytes go through at once. A real port is paced by its own hardware.

Input reaches Zephyr's receiver in bursts: a line with a speed delivers each line by itself (the
work queue keeps up with 115200 baud), a line without one delivers whatever the host handed over
in one read, so that the RX buffer pool of small builds overflows as on the native_sim fixtures.

While MCUboot is in serial recovery the line carries MCUboot's own framing instead (its
receivers and encoder, :mod:`smpsim.mcumgr.boot_serial.framing`), console or raw as its build
says, and no shell runs.

A PTY endpoint keeps its slave side open itself, so clients may come and go (and open and close
the port repeatedly) without the line ever seeing EOF or EIO; output nobody reads is dropped once
the PTY's buffer is full, as a UART sends into the void. The symlink to the PTY is removed on exit.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import pty
import re
import tempfile
import tty
from collections import deque
from collections.abc import Callable
from pathlib import Path

from smpsim.device.shell.line import ShellLine
from smpsim.errors import ConfigError
from smpsim.mcumgr.boot_serial import framing as recovery_framing
from smpsim.mcumgr.framing.serial import (
    ConsoleReceiver,
    Dropped,
    Event,
    Packet,
    RawReceiver,
    Text,
    encode_packet,
    split_lines,
)
from smpsim.transports.runner import Runner

log = logging.getLogger(__name__)

BITS_PER_BYTE = 10
"""8N1: start bit, 8 data bits, stop bit."""
WRITE_STALL_S = 1.0
"""How long output may wait for room in the port's buffer before it is dropped (nobody reads)."""
PIECE_HOST_S = 0.004
"""Paced output is written in pieces of about this much host time."""
READ_SIZE = 65536
LOG_LINE = re.compile(r"(\[\d\d:\d\d:\d\d\.\d{3},\d{3}\] )<(err|wrn|inf|dbg)> (.*)", re.S)
"""A log line as ``Console.log`` prints it: timestamp, level, module and message."""
LOG_COLORS = {"err": "\x1b[1;31m", "wrn": "\x1b[1;33m", "inf": "\x1b[0m", "dbg": "\x1b[0m"}
"""Zephyr's ``log_output`` colours (``LOG_COLOR_CODE_RED``, ``_YELLOW``, ``_DEFAULT``); info is
not green unless ``LOG_INFO_COLOR_GREEN``."""
COLOR_END = "\x1b[0m"


def colorize(line: str) -> str:
    """A log line as a UART log backend with ``LOG_BACKEND_SHOW_COLOR`` writes it; other console
    lines (printk, MCUboot's) unchanged."""
    match = LOG_LINE.fullmatch(line)
    if match is None:
        return line
    stamp, level, rest = match.groups()
    return f"{stamp}{LOG_COLORS[level]}<{level}> {rest}{COLOR_END}"

TextHandler = Callable[[bytes], None]


class SerialLine:
    """The board's SMP UART on an open, non-blocking host file descriptor.

    ``speed_bps`` is the line's speed in bytes per emulated second (0: none);
    ``software_paced`` says whether smpsim must pace it (a PTY) or the hardware does (a port).
    """

    def __init__(self, runner: Runner, fd: int, *, speed_bps: float,
                 software_paced: bool) -> None:
        self.runner = runner
        self.device = runner.device
        self.fd = fd
        serial = self.device.profile.firmware.serial
        self.kind = serial.transport
        """``uart``, ``shell`` or ``raw``."""
        self.speed_bps = speed_bps
        self.scale = runner.scale
        self._paced = software_paced and speed_bps > 0 and self.scale > 0
        self._byte_host_s = self.scale / speed_bps if self._paced else 0.0
        buf_size = self.device.profile.firmware.buf_size
        self.raw: RawReceiver | None = None
        self.console: ConsoleReceiver | None = None
        if self.kind == "raw":
            self.raw = RawReceiver(buf_size, input_timeout_s=serial.input_timeout_ms / 1000)
        else:
            self.console = ConsoleReceiver(buf_size, rx_buf_size=serial.rx_buf_size,
                                           rx_buf_count=serial.rx_buf_count,
                                           shell=self.kind == "shell")
        self.recovery = _recovery_receiver(runner)
        """MCUboot's receiver, used while the board is in serial recovery."""
        self.text_handler: TextHandler | None = None
        """Where console text typed at the board goes (the shell); None: it is ignored."""
        self._loop = asyncio.get_running_loop()
        self._boot_seen = self.device.boot_count
        self._rx_until = 0.0
        self._tx_until = 0.0
        self._out: deque[bytes] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._stalled = False
        """The port stayed full: output is dropped at once until it takes bytes again."""
        self._closed = False
        self.bytes_in = 0
        """Bytes read from the line so far."""
        self.bytes_out = 0
        """Bytes written to the line so far (dropped output not counted)."""
        self.dropped_out = 0
        """Bytes of output dropped because nobody read them."""
        self._log_color = serial.log_color
        self._console_shared = serial.console and self.kind != "raw"
        self.shell: ShellLine | None = None
        """The UART shell of the current boot (shell transport, once the board is up)."""
        self._shell_boot = -1
        self._tasks: set[asyncio.Task[None]] = set()
        if self.kind == "shell":
            self.text_handler = self._shell_input
            runner.boot_listeners.append(self._start_shell)
            if runner.online.is_set() and self.device.running:
                self._start_shell()
        if self._console_shared or self.kind == "shell":
            self.device.console.subscribe(self._console_line)
        self._loop.add_reader(fd, self._readable)

    # -- input -----------------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            # A PTY never gets here (its slave is held open); a real port was unplugged.
            log.error("serial line: %s; no longer reading", exc.strerror)
            self._loop.remove_reader(self.fd)
            return
        if not data:
            return
        self.bytes_in += len(data)
        if not self._paced:
            self._arrive(data)
            return
        # The bytes reach the board at the line's speed: each line when its last byte is in.
        now = self._loop.time()
        raw = self.raw is not None if not self.runner.in_recovery \
            else isinstance(self.recovery, recovery_framing.RawReceiver)
        for piece in [data] if raw else split_lines(data):
            self._rx_until = max(self._rx_until, now) + len(piece) * self._byte_host_s
            self._loop.call_at(self._rx_until, self._arrive, piece)

    def _arrive(self, data: bytes) -> None:
        """Bytes have fully arrived at the board's UART."""
        if self._closed or not self.runner.online.is_set():
            return  # a board that is off or booting has no UART running
        if self.device.boot_count != self._boot_seen:
            self._boot_seen = self.device.boot_count
            if self.console is not None:
                self.console.reset()
            if self.raw is not None:
                self.raw.reset()
            if self.recovery is not None:
                self.recovery.reset()
        if self.runner.in_recovery:
            self._arrive_recovery(data)
            return
        events: list[Event] = []
        if self.raw is not None:
            events = self.raw.feed(data, self.device.clock.now(), bytewise=self.speed_bps > 0)
        else:
            assert self.console is not None
            bursts = [data] if self.speed_bps == 0 else split_lines(data)
            for burst in bursts:
                events += self.console.feed(burst)
        for event in events:
            if isinstance(event, Packet):
                self._submit(event.data)
            elif isinstance(event, Text):
                if self.text_handler is not None:
                    self.text_handler(event.data)
            elif isinstance(event, Dropped) and event.reason == "no buffer":
                if self.kind == "shell":
                    self.device.console.log("wrn", "smp_shell", "Failed to alloc SMP buf")
                else:
                    self.device.console.log("wrn", "uart_mcumgr",
                                            "Insufficient buffers, fragment dropped")

    def _arrive_recovery(self, data: bytes) -> None:
        """MCUboot's serial recovery reads the UART."""
        recovery = self.recovery
        send: Callable[[bytes], None]
        if isinstance(recovery, recovery_framing.RawReceiver):
            packets = recovery.feed(data, self.device.clock.now())
            send = self.write
        else:
            assert recovery is not None
            packets = recovery.feed(data)
            send = self._send_recovery_lines
        for packet in packets:
            self.runner.submit(packet, send, serial=True)

    def _send_recovery_lines(self, frame: bytes) -> None:
        self.write(recovery_framing.encode_console(frame))

    # -- output ----------------------------------------------------------------------------

    def _send_frame(self, frame: bytes) -> None:
        self.write(frame if self.raw is not None else encode_packet(frame))

    def _submit(self, unit: bytes) -> None:
        self.runner.submit(unit, self._send_frame, serial=True)

    def _console_line(self, line: str) -> None:
        if self._closed:
            return
        try:
            in_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            in_loop = False
        if in_loop:
            self._print(line)
        else:  # the boot's worker thread at a time scale: hop to the loop, in order
            self._loop.call_soon_threadsafe(self._print, line)

    def _print(self, line: str) -> None:
        """A console line reaches the UART: through the shell's log backend once the shell
        is up (log lines only), else as it is where the console shares the UART."""
        if self._closed:
            return
        match = LOG_LINE.fullmatch(line)
        if self._shell_up() and match is not None:
            assert self.shell is not None
            self.write(self.shell.print_line(line, match.group(2)))
            return
        if self._console_shared:
            if self._log_color:
                line = colorize(line)
            self.write(line.encode("utf-8", "surrogateescape") + b"\r\n")

    # -- the UART shell (shell transport) ----------------------------------------------------

    def _shell_up(self) -> bool:
        return (self.shell is not None and self._shell_boot == self.device.boot_count
                and self.runner.online.is_set())

    def _start_shell(self) -> None:
        """The board is up: the shell lives in its RAM, so every boot starts a new one."""
        if self._closed:
            return
        self.shell = ShellLine(self.device)
        self._shell_boot = self.device.boot_count
        self.write(self.shell.start())

    def _shell_input(self, data: bytes) -> None:
        if not self._shell_up():
            return
        assert self.shell is not None
        self.write(self.shell.feed(data))
        if self.shell.reboot is not None:
            log.info("shell: kernel reboot %s", self.shell.reboot)
            self.shell = None
            task = self._loop.create_task(self.runner.reset())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def write(self, data: bytes) -> None:
        """Put ``data`` on the line (paced at the line's speed); call in the loop's thread."""
        if self._closed or not data:
            return
        self._out.append(data)
        if self._writer is None or self._writer.done():
            self._writer = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        # While there is output the UART sends back to back: each piece is due a fixed time
        # after the one before, however late the loop woke up for that one.
        self._tx_until = max(self._tx_until, self._loop.time())
        while self._out and not self._closed:
            data = self._out.popleft()
            if not self._paced:
                await self._put(data)
                continue
            piece_size = max(1, int(PIECE_HOST_S / self._byte_host_s))
            for start in range(0, len(data), piece_size):
                piece = data[start:start + piece_size]
                self._tx_until += len(piece) * self._byte_host_s
                # The piece is on the far side when its last bit is.
                delay = self._tx_until - self._loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._put(piece)

    async def _put(self, data: bytes) -> None:
        """Write all of ``data``. When the port stays full (nobody reads), drop what is left and
        everything queued, and keep dropping without waiting until the port takes bytes again:
        a UART sends into the void, it never stops the board."""
        view = memoryview(data)
        while view and not self._closed:
            try:
                written = os.write(self.fd, view)
            except BlockingIOError:
                written = 0
            except OSError as exc:
                if exc.errno not in (errno.EIO, errno.ENXIO):
                    raise
                written = 0
            self.bytes_out += written
            view = view[written:]
            if written:
                self._stalled = False
            if view and (self._stalled or not await self._writable()):
                self._stalled = True
                lost = len(view) + sum(len(d) for d in self._out)
                self._out.clear()
                self.dropped_out += lost
                log.debug("serial line: nobody reads; %d bytes dropped", lost)
                return

    async def _writable(self) -> bool:
        ready: asyncio.Future[None] = self._loop.create_future()

        def room() -> None:
            if not ready.done():
                ready.set_result(None)

        self._loop.add_writer(self.fd, room)
        try:
            await asyncio.wait_for(ready, WRITE_STALL_S)
        except TimeoutError:
            return False
        finally:
            self._loop.remove_writer(self.fd)
        return True

    @property
    def idle(self) -> bool:
        """Nothing left to write."""
        return not self._out and (self._writer is None or self._writer.done())

    async def close(self) -> None:
        """Stop reading and writing (the descriptor stays open: its owner closes it)."""
        if self._closed:
            return
        self._closed = True
        if self._start_shell in self.runner.boot_listeners:
            self.runner.boot_listeners.remove(self._start_shell)
        self._loop.remove_reader(self.fd)
        self._loop.remove_writer(self.fd)
        pending = [*self._tasks, *([self._writer] if self._writer is not None else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _recovery_receiver(
        runner: Runner) -> recovery_framing.ConsoleReceiver | recovery_framing.RawReceiver | None:
    """MCUboot's serial recovery receiver for the build, if it has serial recovery."""
    mcuboot = runner.device.profile.mcuboot
    if runner.recovery_server is None or mcuboot is None:
        return None
    rec = mcuboot.serial_recovery
    if rec.framing == "raw":
        return recovery_framing.RawReceiver(rec.max_receive_size, rec.max_line_input_len,
                                            rec.raw_input_timeout_ms / 1000)
    return recovery_framing.ConsoleReceiver(rec.max_receive_size, rec.max_line_input_len)


def default_link(profile: str) -> Path:
    """The symlink ``smpsim run --serial`` makes when given none: ``smpsim-<profile>-<pid>`` in
    the temporary folder (``-2``, ``-3``... for more boards of one profile in one process)."""
    base = Path(tempfile.gettempdir()) / f"smpsim-{profile}-{os.getpid()}"
    link, n = base, 1
    while link.is_symlink() or link.exists():
        n += 1
        link = base.with_name(f"{base.name}-{n}")
    return link


class PtyEndpoint:
    """A pseudo-terminal in raw mode, reachable through a stable symlink."""

    def __init__(self, runner: Runner, link: Path | None = None) -> None:
        profile = runner.device.profile
        self.link = link if link is not None else default_link(profile.name)
        """The symlink clients open."""
        self.master, self._slave = pty.openpty()
        try:
            tty.setraw(self._slave)
            os.set_blocking(self.master, False)
            self.path = os.ttyname(self._slave)
            """The PTY's own name (``/dev/pts/N``)."""
            self._make_link()
        except BaseException:
            os.close(self.master)
            os.close(self._slave)
            raise
        baud = profile.firmware.serial.baud
        self.line = SerialLine(runner, self.master, speed_bps=baud / BITS_PER_BYTE,
                               software_paced=True)

    def _make_link(self) -> None:
        link = self.link
        if link.is_symlink():
            link.unlink()  # left behind by an earlier run that was killed
        elif link.exists():
            raise ConfigError(f"cannot make the serial link {link}: a file is in the way")
        try:
            link.symlink_to(self.path)
        except OSError as exc:
            raise ConfigError(f"cannot make the serial link {link}: {exc.strerror}") from None

    def describe(self) -> str:
        """What the ready line says about the line."""
        serial = self.line.device.profile.firmware.serial
        speed = f"{serial.baud} baud" if serial.baud else "no line speed"
        return f"{self.link} ({self.path}, {serial.transport}, {speed})"

    async def close(self) -> None:
        """Close the PTY and remove the symlink (if it is still ours)."""
        await self.line.close()
        try:
            if self.link.is_symlink() and os.readlink(self.link) == self.path:
                self.link.unlink()
        except OSError:
            pass
        os.close(self.master)
        os.close(self._slave)


class PortEndpoint:
    """A real serial port (``/dev/ttyUSB0``) opened through pyserial: its hardware sets the
    pace, so nothing is paced in software."""

    def __init__(self, runner: Runner, device: str, baud: int | None = None) -> None:
        import serial  # type: ignore[import-untyped]  # only this endpoint needs pyserial

        profile_baud = runner.device.profile.firmware.serial.baud
        self.baud = baud or profile_baud or 115200
        """The port's baud rate: ``--baud``, else the profile's, else 115200."""
        self.device = device
        try:
            self.port = serial.Serial(device, baudrate=self.baud, timeout=0, exclusive=True)
        except (serial.SerialException, ValueError) as exc:
            raise ConfigError(f"cannot open serial port {device}: {exc}") from None
        fd = self.port.fileno()
        os.set_blocking(fd, False)
        self.line = SerialLine(runner, fd, speed_bps=self.baud / BITS_PER_BYTE,
                               software_paced=False)

    def describe(self) -> str:
        """What the ready line says about the port."""
        kind = self.line.device.profile.firmware.serial.transport
        return f"{self.device} ({kind}, {self.baud} baud)"

    async def close(self) -> None:
        """Stop serving and close the port."""
        await self.line.close()
        self.port.close()
