"""Serial recovery on the UART, sans-IO: MCUboot's receivers and its encoder.

**Console framing** (``boot_serial_read_console``, Zephyr's ``serial_adapter.c``): the UART
driver keeps at most ``max_line_input_len`` bytes of a line (``\\n`` included; the rest of a
longer line is dropped), and hands over a line at ``\\n``. A line starting with ``06 09``
starts a frame (the decode buffer is emptied), one starting with ``04 14`` continues it, any
other line is ignored without touching the frame (text between continuation lines is
harmless). Each line's base64 is decoded on its own by Zephyr's ``base64_decode`` -- all of the
line but its last byte, which should be the ``\\n``: a ``\\r`` before it is a decode error, a
line cut at the limit loses its last character -- into a buffer of ``max_receive_size + 1``
bytes (a line that would not fit is refused). Once the first two bytes (the length) equal the
bytes decoded after them, the CRC must check and the length exceed 2; then the frame minus
length and CRC is the SMP packet. The buffer is only emptied by a start line: continuation
lines after a complete (or failed) frame pile up behind it.

**Raw framing** (``BOOT_SERIAL_RAW_PROTOCOL``): what the UART hands over in one interrupt (at
most ``max_line_input_len`` bytes a fragment) is appended to a ``max_receive_size + 1`` byte
buffer, and every complete packet at its front (length from the SMP header) is served. A
header with an op other than READ or WRITE, or a packet longer than the buffer, discards
everything buffered; a partial packet is discarded after ``raw_input_timeout_ms`` of silence.

**Output** (``boot_serial_output``): ``len16 ‖ packet ‖ crc16`` base64-encoded as a whole, in
lines of at most 124 characters (``06 09`` first, ``04 14`` after); raw: the bare packet.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

START: Final = b"\x06\x09"
CONTINUATION: Final = b"\x04\x14"
LINE_CHARS: Final = 124
"""``BOOT_SERIAL_FRAME_MTU``: base64 characters per output line."""
HEADER_SIZE: Final = 8
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DEC = [127] * 256
for _i, _c in enumerate(_ALPHABET):
    _DEC[_c] = _i
_DEC[ord("=")] = 64
_SPACE, _CR, _LF, _PAD = 0x20, 0x0D, 0x0A, ord("=")


def crc16(data: bytes) -> int:
    """``crc16_itu_t(0, ...)``: CRC-16/XMODEM."""
    return binascii.crc_hqx(data, 0)


def zephyr_base64_decode(src: bytes, room: int) -> bytes | None:
    """Zephyr's ``base64_decode`` into ``room`` bytes; None where it returns an error.

    Spaces before a line end (or the end) and ``\\r\\n``/``\\n`` are skipped; a space inside
    a line, a byte outside the alphabet, a third ``=`` or data after ``=`` is an error; so is a
    result claiming more than ``room`` bytes. Only whole groups of four produce output.
    """
    count = pads = 0
    i, size = 0, len(src)
    while i < size:
        spaces = 0
        while i < size and src[i] == _SPACE:
            i += 1
            spaces += 1
        if i == size:
            break
        char = src[i]
        if char == _CR and i + 1 < size and src[i + 1] == _LF:
            i += 2
            continue
        if char == _LF:
            i += 1
            continue
        if spaces:
            return None
        if char == _PAD:
            pads += 1
            if pads > 2:
                return None
        if _DEC[char] == 127 or (_DEC[char] < 64 and pads):
            return None
        count += 1
        i += 1
    if count == 0:
        return b""
    claimed = 6 * (count >> 3) + ((6 * (count & 7) + 7) >> 3) - pads
    if room < claimed:
        return None
    out = bytearray()
    keep, group, value = 3, 0, 0
    for char in src:
        if char in (_CR, _LF, _SPACE):
            continue
        keep -= _DEC[char] == 64
        value = ((value << 6) | (_DEC[char] & 0x3F)) & 0xFFFFFF
        group += 1
        if group == 4:
            group = 0
            out += value.to_bytes(3, "big")[:max(keep, 0)]
    return bytes(out)


def encode_console(packet: bytes) -> bytes:
    """The lines ``boot_serial_output`` writes for one response packet."""
    raw = (len(packet) + 2).to_bytes(2, "big") + packet + crc16(packet).to_bytes(2, "big")
    text = base64.b64encode(raw)
    lines = []
    for start in range(0, len(text), LINE_CHARS):
        marker = START if start == 0 else CONTINUATION
        lines.append(marker + text[start:start + LINE_CHARS] + b"\n")
    return b"".join(lines)


class ConsoleReceiver:
    """MCUboot's console-framed receiver (see the module docstring)."""

    def __init__(self, max_receive_size: int, max_line_input_len: int) -> None:
        self.in_size = max_receive_size + 1
        """``sizeof(in_buf)`` (and of ``dec_buf``)."""
        self.line_len = max_line_input_len
        self.reset()

    def reset(self) -> None:
        """The board rebooted: every buffer starts empty."""
        self._line = bytearray()
        self._dec = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Bytes off the UART -> the SMP packets they complete, in order."""
        packets: list[bytes] = []
        pos = 0
        while pos < len(data):
            newline = data.find(b"\n", pos)
            end = len(data) if newline < 0 else newline + 1
            room = self.line_len - len(self._line)
            self._line += data[pos:min(end, pos + max(room, 0))]
            pos = end
            if newline >= 0:
                line, self._line = bytes(self._line), bytearray()
                packet = self._process(line[:self.in_size - 1])
                if packet is not None:
                    packets.append(packet)
        return packets

    def _process(self, line: bytes) -> bytes | None:
        marker = line[:2]
        if marker == START:
            self._dec = bytearray()
        elif marker != CONTINUATION:
            return None
        decoded = zephyr_base64_decode(line[2:len(line) - 1], self.in_size - len(self._dec))
        if decoded is None:
            return None
        self._dec += decoded
        if len(self._dec) <= 2:
            return None
        length = int.from_bytes(self._dec[:2], "big")
        if length != len(self._dec) - 2:
            return None
        frame = bytes(self._dec[2:])
        if crc16(frame) or length <= 2:
            return None
        del self._dec[-2:]  # *out_off -= 2: the CRC leaves the buffer, the rest stays
        return frame[:-2]


class RawReceiver:
    """MCUboot's raw receiver (see the module docstring); times are emulated seconds."""

    def __init__(self, max_receive_size: int, max_line_input_len: int,
                 input_timeout_s: float) -> None:
        self.in_size = max_receive_size + 1
        self.fragment = max_line_input_len
        self.timeout_s = input_timeout_s
        self.reset()

    def reset(self) -> None:
        """The board rebooted."""
        self._buf = bytearray()
        self._last = 0.0

    def feed(self, data: bytes, now: float) -> list[bytes]:
        """Bytes that arrived together at ``now`` -> the SMP packets they complete."""
        if self._buf and self.timeout_s > 0 and now - self._last >= self.timeout_s:
            self._buf.clear()  # the stalled partial packet expired
        self._last = now
        packets: list[bytes] = []
        for start in range(0, len(data), self.fragment):
            pending = data[start:start + self.fragment]
            while pending:
                take = self.in_size - len(self._buf)
                self._buf += pending[:take]
                pending = pending[take:]
                self._serve(packets)
        return packets

    def _serve(self, packets: list[bytes]) -> None:
        """``boot_serial_input_raw``."""
        while len(self._buf) >= HEADER_SIZE:
            total = HEADER_SIZE + int.from_bytes(self._buf[2:4], "big")
            if self._buf[0] & 0x07 not in (0, 2) or total > self.in_size:
                self._buf.clear()
                return
            if len(self._buf) < total:
                return
            packets.append(bytes(self._buf[:total]))
            del self._buf[:total]
