"""The 8-byte SMP header, and how Zephyr derives a response header from a request header."""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

HEADER_SIZE = 8
_STRUCT = struct.Struct(">BBHHBB")
_tuple_new = tuple.__new__


class Op(IntEnum):
    """The 3-bit ``op`` field."""

    READ = 0
    """Read request."""
    READ_RSP = 1
    """Read response."""
    WRITE = 2
    """Write request."""
    WRITE_RSP = 3
    """Write response."""


class Version(IntEnum):
    """The 2-bit ``ver`` field."""

    V1 = 0
    """SMP v1, the original protocol: group errors are translated to a generic ``rc``."""
    V2 = 1
    """SMP v2: group errors travel as ``err {group, rc}``."""


class Group(IntEnum):
    """Management group ids (``enum mcumgr_group_t``)."""

    OS = 0
    """OS management."""
    IMAGE = 1
    """Image management."""
    STAT = 2
    """Statistics."""
    SETTINGS = 3
    """Settings (called "config" in old clients)."""
    LOG = 4
    """Log (unused by Zephyr)."""
    CRASH = 5
    """Crash / run test (unused by Zephyr)."""
    SPLIT = 6
    """Split image (unused by Zephyr)."""
    RUN = 7
    """Run (unused by Zephyr)."""
    FS = 8
    """File system."""
    SHELL = 9
    """Shell."""
    ENUM = 10
    """Group enumeration."""
    TRANSPORT = 11
    """Transport management (experimental)."""
    ZEPHYR_BASIC = 63
    """Zephyr basic group (storage erase)."""
    PERUSER = 64
    """First user-defined group."""


class Header(NamedTuple):
    """A decoded SMP header. ``res`` bits are ignored on input and written as 0.

    A named tuple rather than a dataclass: it is built for every frame on the request path.
    """

    op: int
    """0 read, 1 read response, 2 write, 3 write response; 4..7 reach the error path."""
    version: int
    """0 = SMP v1, 1 = SMP v2, 2 and 3 are answered with UNSUPPORTED_TOO_NEW."""
    flags: int
    """No flags are defined: ignored on input, 0 on output."""
    length: int
    """Length of the CBOR payload after the header."""
    group: int
    """Management group id."""
    seq: int
    """Sequence number, echoed unchanged."""
    cmd: int
    """Command id within the group."""

    @classmethod
    def parse(cls, data: bytes | memoryview, offset: int = 0) -> Header:
        """Decode the header at ``offset``; the caller guarantees 8 bytes are there."""
        byte0, flags, length, group, seq, cmd = _STRUCT.unpack_from(data, offset)
        # The tuple made directly: the named tuple's own __new__ is one more Python call per
        # frame, only to pass the fields on.
        return _tuple_new(cls, (byte0 & 0x07, (byte0 >> 3) & 0x03, flags, length, group, seq,
                                cmd))

    def pack(self) -> bytes:
        """Encode the header."""
        return _STRUCT.pack((self.version << 3) | self.op, self.flags, self.length,
                            self.group, self.seq, self.cmd)

    def response(self, length: int) -> bytes:
        """The response header Zephyr writes for this request (smp.c ``smp_make_rsp_hdr``).

        READ gets READ_RSP and every other op WRITE_RSP; the version is copied, capped at v2;
        flags are cleared; group, seq and cmd are copied.
        """
        op = 1 if self.op == 0 else 3  # READ_RSP, WRITE_RSP
        version = self.version if self.version <= 1 else 1
        return _STRUCT.pack((version << 3) | op, 0, length, self.group, self.seq, self.cmd)
