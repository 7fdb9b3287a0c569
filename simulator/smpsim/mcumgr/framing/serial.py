"""SMP over a serial line, sans-IO: Zephyr's console framing and its raw UART variant.

**SMP over console** (``MCUMGR_TRANSPORT_UART`` and ``MCUMGR_TRANSPORT_SHELL``; Zephyr's
``serial_util.c``, ``uart_mcumgr.c``, ``smp_shell.c``). A packet (8-byte header + CBOR) travels as
``len16 ‖ packet ‖ crc16``, base64-encoded and cut into lines::

    06 09 <base64>\\n     first line: 93 raw bytes (the length and 91 packet bytes) -> 127 bytes
    04 14 <base64>\\n     continuation lines: 90 raw bytes -> 123 bytes

``len16`` is big-endian ``len(packet) + 2``; ``crc16`` is big-endian CRC-16/XMODEM of the packet
alone (:func:`binascii.crc_hqx` with 0). :func:`encode_packet` writes exactly Zephyr's lines.
:class:`ConsoleReceiver` takes the bytes of the line in whatever chunks they arrive and returns
the packets (and the text between them), with the quirks of the real receiver:

* A line is collected up to ``\\n`` in an RX buffer of ``rx_buf_size`` bytes (marker and ``\\n``
  included); a longer line is dropped whole.
* RX buffers are a pool of ``rx_buf_count``: a buffer is taken at a line's first byte and given
  back when the management work queue has decoded the line, which it does once the burst being
  received has been taken in. Lines that find no free buffer are lost ("Insufficient buffers,
  fragment dropped"): with two buffers, a third line written back to back is lost. A line whose
  sender paces its bytes (a UART at its baud rate) never finds the pool empty; feed such a line
  as its own burst.
* Lines not starting with a marker are console text: ignored by SMP and returned as
  :class:`Text`. So is a line with junk before its marker.
* A ``06 09`` line starts a packet, discarding any unfinished one; a ``04 14`` line with no
  packet started is dropped. Trailing ``\\r`` (CRLF) is accepted.
* Bad base64, a length field that disagrees with the data, a packet whose decoded size
  (length + packet + CRC) does not fit ``buf_size`` (``MCUMGR_TRANSPORT_NETBUF_SIZE``), or a bad
  CRC: the packet is dropped silently. A length field larger than the data leaves the packet
  waiting for continuation lines; the next start line discards it.
* A line without ``\\n`` stays unfinished, so it swallows the next line sent.

With the shell transport (``shell=True``) the shell owns the line: bytes from a ``06 09`` or
``04 14`` marker up to ``\\n`` are taken for SMP wherever they appear (they are not echoed), and
every other byte is returned as :class:`Text` at once, for the shell to echo and interpret.

**Raw UART** (``MCUMGR_TRANSPORT_RAW_UART``): bare packets, delimited only by the header's length
field. :class:`RawReceiver` follows ``mcumgr_serial_process_frag``'s raw branch: a fragment is
what the UART driver hands over in one go; it has no resynchronisation.

Nothing here does I/O or keeps time: the transport passes the time in when it matters.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from typing import Final

START: Final = b"\x06\x09"
"""``MCUMGR_SERIAL_HDR_PKT``: marker of a packet's first line."""
CONTINUATION: Final = b"\x04\x14"
"""``MCUMGR_SERIAL_HDR_FRAG``: marker of the following lines."""
MAX_LINE: Final = 127
"""``MCUMGR_SERIAL_MAX_FRAME``: longest line the transmitter writes, marker and ``\\n`` included."""
FIRST_LINE_RAW: Final = ((MAX_LINE - 3) >> 2) * 3
"""Raw bytes on the first line (93): the length field and 91 packet bytes."""
NEXT_LINE_RAW: Final = FIRST_LINE_RAW - 3
"""Raw bytes on every continuation line (90): Zephyr never gives back the 3 bytes spent on the
length triplet."""
_LEN = struct.Struct(">H")
_B64_CHARS = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
HEADER_SIZE: Final = 8
"""SMP header size: the raw receiver reads the packet length from it."""
_MGMT_OP_COUNT: Final = 4
"""Ops 0..3 are defined; the raw receiver drops a header with a higher op."""


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM (poly 0x1021, init 0, no reflection): Zephyr's ``crc16_itu_t(0, ...)``."""
    return binascii.crc_hqx(data, 0)


def encode_lines(packet: bytes) -> list[bytes]:
    """The lines Zephyr's ``mcumgr_serial_tx_pkt`` writes for ``packet``, each ending in ``\\n``.

    The CRC is never split from the last data byte: when fewer than 2 raw bytes would be left
    for it on a line, one data byte is held back for the next line. An empty packet writes
    nothing, as in Zephyr.
    """
    size = len(packet)
    crc = _LEN.pack(crc16(packet))
    lines = []
    off = 0
    max_input = FIRST_LINE_RAW
    first = True
    while off < size:
        raw = bytearray()
        if first:
            raw += _LEN.pack(size + 2)
            raw.append(packet[0])
            off = 1
            max_input -= 3
        remaining = size - off
        to_process = min(max_input, remaining)
        spare = max_input - remaining
        last = spare >= 2
        if spare in (0, 1):
            to_process -= 1
        whole = max(to_process, 0) // 3 * 3
        raw += packet[off:off + whole]
        off += whole
        if last:
            raw += packet[off:]  # 0, 1 or 2 bytes: they travel with the CRC
            off = size
            raw += crc
        marker = START if first else CONTINUATION
        lines.append(marker + base64.b64encode(bytes(raw)) + b"\n")
        first = False
    return lines


def encode_packet(packet: bytes) -> bytes:
    """All of :func:`encode_lines`, as the bytes on the line."""
    return b"".join(encode_lines(packet))


@dataclass(frozen=True, slots=True)
class Packet:
    """A complete SMP packet received: header + CBOR, the serial length and CRC removed."""

    data: bytes
    """The packet, as a transport unit for ``Server.handle``."""


@dataclass(frozen=True, slots=True)
class Text:
    """Bytes of the line that are not SMP framing: console text, or keys typed at the shell."""

    data: bytes
    """The bytes, in arrival order (a whole line with the UART transport, as they come with
    the shell transport)."""


@dataclass(frozen=True, slots=True)
class Dropped:
    """A line lost before it could be decoded (the transport logs it as Zephyr does)."""

    reason: str
    """``"no buffer"`` (the RX pool was empty) or ``"too long"`` (longer than an RX buffer)."""


Event = Packet | Text | Dropped
"""What a receiver returns for the bytes fed to it."""


def _zephyr_base64(text: bytes, room: int) -> bytes | None:
    """Zephyr's ``base64_decode`` of one line's text (marker removed), or None if it refuses.

    ``\\n`` and ``\\r\\n`` at the end and trailing spaces are skipped; any other byte outside
    the alphabet, or data after ``=``, is an error. Only whole quadruples are decoded: a
    shorter tail is silently ignored. ``room`` is the tailroom of the packet buffer: a line
    that claims more decoded bytes is refused.
    """
    if text.endswith(b"\r\n"):
        text = text[:-2]
    elif text.endswith(b"\n"):
        text = text[:-1]
    text = text.rstrip(b" ")
    if not _B64_CHARS.fullmatch(text):
        return None
    n, pad = len(text), text.count(b"=")
    claimed = 6 * (n >> 3) + ((6 * (n & 7) + 7) >> 3) - pad
    if claimed > room:
        return None
    whole = n // 4 * 4
    try:
        return binascii.a2b_base64(text[:whole], strict_mode=True)
    except binascii.Error:
        return None


class ConsoleReceiver:
    """Zephyr's SMP-over-console receiver: RX line buffers, then reassembly and checks."""

    def __init__(self, buf_size: int, *, rx_buf_size: int = 128, rx_buf_count: int = 2,
                 shell: bool = False) -> None:
        if buf_size < 4 or rx_buf_size < 3 or rx_buf_count < 1:
            raise ValueError("buf_size >= 4, rx_buf_size >= 3 and rx_buf_count >= 1 needed")
        self.buf_size = buf_size
        """``MCUMGR_TRANSPORT_NETBUF_SIZE``: decoded length + packet + CRC must fit."""
        self.rx_buf_size = rx_buf_size
        """``UART_MCUMGR_RX_BUF_SIZE``: longest line kept, marker and ``\\n`` included."""
        self.rx_buf_count = rx_buf_count
        """``UART_MCUMGR_RX_BUF_COUNT``: lines that can wait for the work queue at once."""
        self.shell = shell
        """Shell transport: SMP lines are picked out of the shell's input."""
        self.reset()

    def reset(self) -> None:
        """Forget everything (the board rebooted: RAM is lost)."""
        self._line: bytearray | None = None
        """The RX buffer of the line being received, or None when none is held."""
        self._ignoring = False
        """The rest of the current line is dropped (no buffer, or too long)."""
        self._in_smp = False
        """Shell transport: inside an SMP line (marker seen, no ``\\n`` yet)."""
        self._marker_half = b""
        """Shell transport: a chunk ended on the first byte of a marker."""
        self._packet: bytearray | None = None
        """Decoded bytes of the packet being reassembled (length field removed)."""
        self._pkt_len = 0
        """The length field of that packet: packet + CRC."""

    def feed(self, data: bytes) -> list[Event]:
        """Take in one burst of bytes; return what it completes, in order."""
        events: list[Event] = []
        completed: list[bytes] = []
        if self.shell:
            self._split_shell(data, events, completed)
        else:
            self._split_uart(data, events, completed)
        # The burst is in: the work queue now decodes the complete lines and frees their
        # buffers. Text is reported where it arrived, before or after the lines.
        for line in completed:
            self._process_line(line, events)
        return events

    # -- RX buffers (uart_mcumgr.c uart_mcumgr_rx_byte) ------------------------------------

    def _take(self, piece: bytes, ends_line: bool, held: list[bytes], events: list[Event],
              ) -> None:
        """Add ``piece`` (the rest of a line, or all of it) to the current RX buffer.

        ``held`` are the lines completed in this burst: each still holds its buffer.
        """
        if not self._ignoring and piece:
            if self._line is None:
                if len(held) + 1 > self.rx_buf_count:
                    self._ignoring = True
                    events.append(Dropped("no buffer"))
                else:
                    self._line = bytearray()
            if self._line is not None:
                if len(self._line) + len(piece) > self.rx_buf_size:
                    self._line = None
                    self._ignoring = True
                    events.append(Dropped("too long"))
                else:
                    self._line += piece
        if ends_line:
            if self._ignoring:
                self._ignoring = False
            elif self._line is not None:
                held.append(bytes(self._line))
                self._line = None

    def _split_uart(self, data: bytes, events: list[Event], completed: list[bytes]) -> None:
        held: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            nl = data.find(b"\n", pos)
            stop = end if nl < 0 else nl + 1
            self._take(data[pos:stop], nl >= 0, held, events)
            pos = stop
        completed.extend(held)

    def _split_shell(self, data: bytes, events: list[Event], completed: list[bytes]) -> None:
        held: list[bytes] = []
        text = bytearray()
        data = self._marker_half + data
        self._marker_half = b""
        pos, end = 0, len(data)
        while pos < end:
            if not self._in_smp:
                nxt = _find_marker(data, pos)
                if nxt < 0:
                    if data[end - 1:] in (START[:1], CONTINUATION[:1]):
                        self._marker_half = data[end - 1:]
                        end -= 1
                    text += data[pos:end]
                    break
                text += data[pos:nxt]
                pos = nxt
                self._in_smp = True
            nl = data.find(b"\n", pos)
            stop = end if nl < 0 else nl + 1
            self._take(data[pos:stop], nl >= 0, held, events)
            if nl >= 0:
                self._in_smp = False
            pos = stop
        if text:
            events.append(Text(bytes(text)))
        completed.extend(held)

    # -- reassembly (serial_util.c mcumgr_serial_process_frag) -----------------------------

    def _process_line(self, line: bytes, events: list[Event]) -> None:
        marker = line[:2]
        if marker == START:
            self._packet = bytearray()
            self._pkt_len = 0
        elif marker == CONTINUATION:
            if not self._packet:
                self._packet = None  # continuation without a start: dropped
                return
        else:
            if not self.shell:
                events.append(Text(line))
            return
        packet = self._packet
        assert packet is not None
        used = len(packet) + (2 if marker == CONTINUATION else 0)
        decoded = _zephyr_base64(line[2:], self.buf_size - used)
        if decoded is None:
            self._packet = None
            return
        packet += decoded
        if marker == START:
            if len(packet) < 2:
                self._packet = None
                return
            self._pkt_len = _LEN.unpack_from(packet)[0]
            del packet[:2]
        if len(packet) < self._pkt_len:
            return  # more lines to come
        self._packet = None
        if len(packet) > self._pkt_len or crc16(bytes(packet)) != 0:
            return
        events.append(Packet(bytes(packet[:-2])))


def _find_marker(data: bytes, pos: int) -> int:
    """Index of the first ``06 09`` or ``04 14`` at or after ``pos``, or -1."""
    a, b = data.find(START, pos), data.find(CONTINUATION, pos)
    if a < 0:
        return b
    return a if b < 0 else min(a, b)


class RawReceiver:
    """Zephyr's raw UART receiver: bare SMP packets, delimited by the header's length field.

    Each :meth:`feed` is one fragment as the UART driver hands it over. With ``bytewise`` the
    bytes are taken as they come off a paced UART, one at a time, so back-to-back packets are
    split where their headers say.
    """

    def __init__(self, buf_size: int, *, input_timeout_s: float = 0.0) -> None:
        self.buf_size = buf_size
        """``MCUMGR_TRANSPORT_NETBUF_SIZE``: header + payload must fit."""
        self.input_timeout_s = input_timeout_s
        """``MCUMGR_TRANSPORT_RAW_UART_INPUT_TIMEOUT_TIME_MS`` in seconds; 0: no timeout."""
        self.reset()

    def reset(self) -> None:
        """Forget any partial packet (reboot)."""
        self._buf = bytearray()
        self._last = 0.0

    def feed(self, data: bytes, now: float = 0.0, *, bytewise: bool = False) -> list[Event]:
        """Take in a fragment received at emulated time ``now``; return the packets it ends."""
        events: list[Event] = []
        if (self._buf and self.input_timeout_s > 0
                and now - self._last >= self.input_timeout_s):
            self._buf.clear()  # the input timer expired: the partial packet is flushed
        self._last = now
        if not bytewise:
            self._fragment(data, events)
            return events
        pos = 0
        while pos < len(data):
            want = HEADER_SIZE if len(self._buf) < HEADER_SIZE else self._total()
            take = max(want - len(self._buf), 1)
            self._fragment(data[pos:pos + take], events)
            pos += take
        return events

    def _total(self) -> int:
        return int(_LEN.unpack_from(self._buf, 2)[0]) + HEADER_SIZE

    def _fragment(self, data: bytes, events: list[Event]) -> None:
        if len(self._buf) + len(data) > self.buf_size:
            self._buf.clear()  # more than the packet buffer holds
            return
        self._buf += data
        if len(self._buf) < HEADER_SIZE:
            return
        total = self._total()
        if total > self.buf_size or self._buf[0] & 0x07 >= _MGMT_OP_COUNT:
            self._buf.clear()
        elif len(self._buf) > total:
            self._buf.clear()  # longer than its header says: dropped whole
        elif len(self._buf) == total:
            events.append(Packet(bytes(self._buf)))
            self._buf.clear()


def split_lines(data: bytes) -> list[bytes]:
    """``data`` cut after each ``\\n`` (the last piece may have none): how a paced UART's bytes
    reach the receiver, one line per burst."""
    pieces = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        stop = len(data) if nl < 0 else nl + 1
        pieces.append(data[pos:stop])
        pos = stop
    return pieces
