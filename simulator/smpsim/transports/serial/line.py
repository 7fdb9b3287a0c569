"""SMP over a serial line: the bytes of the board's UART on a host file descriptor.

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

A paced line takes input no faster than its speed: it reads at most ``RX_BACKLOG`` bytes ahead
of what has reached the board and stops reading until the line catches up, so the host's writer
blocks once the PTY's own small buffer is full, as behind a real USB-serial adapter. Memory stays
bounded and requests are answered as they come in, however much a client writes at once.

While MCUboot is in serial recovery the line carries MCUboot's own framing instead (its
receivers and encoder, :mod:`smpsim.mcumgr.boot_serial.framing`), console or raw as its build
says, and no shell runs.

Output nobody reads is dropped once the port's buffer is full, as a UART sends into the void.
What the text means (console, colours, the shell) is the device's :class:`~smpsim.device.uart.Uart`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections import deque
from collections.abc import Callable

from smpsim.device.uart import Uart
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
from smpsim.transports.origin import Origin
from smpsim.transports.runner import Runner

log = logging.getLogger(__name__)

BITS_PER_BYTE = 10
"""8N1: start bit, 8 data bits, stop bit."""
WRITE_STALL_S = 1.0
"""How long output may wait for room in the port's buffer before it is dropped (nobody reads)."""
PIECE_HOST_S = 0.004
"""Paced output is written in pieces of about this much host time."""
READ_SIZE = 65536
RX_BACKLOG = 512
"""Bytes a paced line reads ahead of the line's speed (44 ms at 115200 baud) before it stops
reading; it reads again when half of them have reached the board."""


class SerialLine:
    """The board's SMP UART on an open, non-blocking host file descriptor.

    ``speed_bps`` is the line's speed in bytes per emulated second (0: none);
    ``software_paced`` says whether smpsim must pace it (a PTY) or the hardware does (a port).
    """

    def __init__(self, runner: Runner, fd: int, *, speed_bps: float,
                 software_paced: bool, name: str = "") -> None:
        self.runner = runner
        self.device = runner.device
        self.fd = fd
        self.origin = Origin("serial", name)
        """What the line's requests are traced as."""
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
        self.uart = Uart(self.device)
        """What the firmware makes of the UART's text: console output, the shell."""
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
        self._tasks: set[asyncio.Task[None]] = set()
        self._resume: asyncio.TimerHandle | None = None
        """Set while a paced line has stopped reading (its backlog is full)."""
        if self.uart.has_shell:
            runner.boot_listeners.append(self._booted)
            if runner.online.is_set() and self.device.running:
                self._booted()
        if self.uart.carries_console:
            self.device.console.subscribe(self._console_line)
        self._loop.add_reader(fd, self._readable)

    # -- input -----------------------------------------------------------------------------

    def _readable(self) -> None:
        size = READ_SIZE if not self._paced else max(1, RX_BACKLOG - self._backlog())
        try:
            data = os.read(self.fd, size)
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
        if self.runner.link_faults is not None:
            data = self.runner.link_faults.noise(data, "serial", "requests")
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
        if self._backlog() >= RX_BACKLOG:
            # Back-pressure: leave the bytes in the PTY until the line has room for them.
            self._loop.remove_reader(self.fd)
            self._resume = self._loop.call_at(
                self._rx_until - RX_BACKLOG / 2 * self._byte_host_s, self._read_again)

    def _backlog(self) -> int:
        """Bytes read from the host that have not reached the board yet (paced lines)."""
        return round(max(0.0, self._rx_until - self._loop.time()) / self._byte_host_s)

    def _read_again(self) -> None:
        self._resume = None
        if not self._closed:
            self._loop.add_reader(self.fd, self._readable)

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
                self.runner.submit(event.data, self._send_frame, self.origin)
            elif isinstance(event, Text):
                self._typed(event.data)
            elif isinstance(event, Dropped) and event.reason == "no buffer":
                self.uart.rx_buffer_lost()

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
            self.runner.submit(packet, send, self.origin)

    def _send_recovery_lines(self, frame: bytes) -> None:
        self.write(recovery_framing.encode_console(frame))

    # -- output ----------------------------------------------------------------------------

    def _send_frame(self, frame: bytes) -> None:
        self.write(frame if self.raw is not None else encode_packet(frame))

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
        if not self._closed:
            self.write(self.uart.console_line(line, self.runner.online.is_set()))

    def _booted(self) -> None:
        if not self._closed:
            self.write(self.uart.booted())

    def _typed(self, data: bytes) -> None:
        out, reboot = self.uart.typed(data, self.runner.online.is_set())
        self.write(out)
        if reboot is not None:
            log.info("shell: kernel reboot %s", reboot)
            task = self._loop.create_task(self.runner.reset())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def write(self, data: bytes) -> None:
        """Put ``data`` on the line (paced at the line's speed); call in the loop's thread."""
        if self._closed or not data:
            return
        if self.runner.link_faults is not None:
            data = self.runner.link_faults.noise(data, "serial", "responses")
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
        if self._booted in self.runner.boot_listeners:
            self.runner.boot_listeners.remove(self._booted)
        self._loop.remove_reader(self.fd)
        self._loop.remove_writer(self.fd)
        if self._resume is not None:
            self._resume.cancel()
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
