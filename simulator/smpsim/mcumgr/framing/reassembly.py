"""SMP requests from GATT writes, sans-IO: Zephyr's ``smp_reassembly.c`` as ``smp_bt.c`` uses it.

With reassembly (``MCUMGR_TRANSPORT_BT_REASSEMBLY``, on in smp_svr's ``bt.conf``) a request may
span several writes of up to MTU - 3 bytes, joined by the header's length field:

* The first write of a packet must hold the whole 8-byte header, or it is dropped.
* The packet (8 + header ``len``) and the first write must fit the netbuf
  (``MCUMGR_TRANSPORT_NETBUF_SIZE``), or the write is dropped.
* A write that goes past the packet's end ("overshoot") is dropped, and with it the part of the
  packet collected so far; the next write starts a new packet.
* No framing, no timeout: a partial packet waits for its next write until the notifications are
  turned off (CCC 0), which is what a disconnect does to an unbonded central.

Zephyr answers a dropped write with an ATT error, which a write *command* (write without
response, all SMP clients use) never reports back: the request is just lost.

Without reassembly every write is handed to SMP as it is, as a UDP datagram is: it must hold
whole packets (a partial one is answered ``rc`` 9 by the SMP layer), and it must fit the netbuf.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

HEADER_SIZE: Final = 8
"""``sizeof(struct smp_hdr)``."""
_LEN = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class Collected:
    """What one write did."""

    packet: bytes | None = None
    """The unit to hand to SMP, when this write completed one."""
    dropped: str | None = None
    """Why the write was refused (Zephyr's ``-ENODATA``, ``-ENOSR``, ``-EOVERFLOW``), if it was;
    any partial packet went with it."""


class Reassembler:
    """One reassembly context (smp_bt has one for the transport)."""

    def __init__(self, buf_size: int, *, reassembly: bool = True) -> None:
        self.buf_size = buf_size
        """``MCUMGR_TRANSPORT_NETBUF_SIZE``."""
        self.reassembly = reassembly
        """``MCUMGR_TRANSPORT_BT_REASSEMBLY``."""
        self._current: bytearray | None = None
        self._expected = 0

    @property
    def pending(self) -> int:
        """Bytes still expected for the packet being collected; 0 when none is."""
        return self._expected if self._current is not None else 0

    def drop(self) -> None:
        """Forget the partial packet (notifications turned off, disconnect, reset)."""
        self._current = None
        self._expected = 0

    def collect(self, data: bytes) -> Collected:
        """Take one write."""
        if not data:
            return Collected()  # an empty write carries nothing (BlueZ never sends one)
        if not self.reassembly:
            if len(data) > self.buf_size:
                return Collected(dropped="longer than the netbuf")
            return Collected(packet=bytes(data))
        if self._current is None:
            if len(data) < HEADER_SIZE:
                return Collected(dropped="first write shorter than the SMP header")
            expected = HEADER_SIZE + _LEN.unpack_from(data, 2)[0]
            if len(data) > self.buf_size or expected > self.buf_size:
                return Collected(dropped="packet longer than the netbuf")
            if len(data) > expected:
                return Collected(dropped="write longer than its packet")
            self._current = bytearray()
            self._expected = expected
        if len(data) > self._expected:
            self.drop()
            return Collected(dropped="write goes past the end of its packet")
        self._current += data
        self._expected -= len(data)
        if self._expected:
            return Collected()
        packet = bytes(self._current)
        self.drop()
        return Collected(packet=packet)
