"""The settings storage backend: an append-only log of name/value records in a flash partition.

The partition is a ring of sectors. Each sector in use starts with a header (magic, sequence
number, CRC); records follow one after the other, each programmed by one flash write::

    5A | flags (0 value, 1 deleted) | name length | value length (le16) | name | value | CRC32

padded with 0xFF to the write block. A record is valid only with its CRC, so a power cut at any
flash operation leaves the previous value or the new one, never a mixture: a write either
happened whole or not at all, and nothing is ever rewritten in place.

One sector is always kept erased. When the active sector is full, the log moves to that spare
sector (header first), copies there the live records of the sector after it (the oldest), and
only then erases the oldest sector, which becomes the new spare. A power cut in the middle of
this leaves the oldest sector still valid behind the new active one; :meth:`SettingsLog.mount`
sees that and finishes the job. Everything is read back from flash at mount; the in-memory index
is only a cache of it.
"""

from __future__ import annotations

import struct
import zlib

from smpsim.device.flash import ERASED
from smpsim.device.partitions import FlashArea
from smpsim.records import Record, record

SECTOR_MAGIC = b"SMPS"
"""First bytes of a sector in use."""
RECORD_MAGIC = 0x5A
"""First byte of a record; never 0xFF, so an erased byte ends a sector's records."""
_SECTOR = struct.Struct("<4sII")  # magic, sequence, crc32 of magic + sequence
_RECORD = struct.Struct("<BBBH")  # magic, flags, name length, value length
_CRC = struct.Struct("<I")
FLAG_DELETED = 0x01
"""Record flag: the name was deleted."""
NAME_MAX = 255
"""Longest name a record can hold."""


class NoSpace(Exception):
    """The live settings do not fit the partition even after garbage collection (-ENOSPC)."""


@record
class _Entry(Record):
    sector: int
    """Sector holding the name's latest record."""
    value: bytes | None
    """Its value; ``None`` for a deletion."""


class SettingsLog:
    """The settings log in one flash area. Call :meth:`mount` at every boot."""

    def __init__(self, area: FlashArea) -> None:
        self.area = area
        self._wb = area.write_block
        self._sector_header = self._padded(_SECTOR.size)
        self._index: dict[bytes, _Entry] = {}
        self._seq: dict[int, int] = {}
        """Sector index -> sequence number, for sectors with a valid header."""
        self._active: int | None = None
        self._free = 0
        """Offset in the active sector where the next record goes."""
        self.gc_runs = 0
        """Garbage collections done since mount (for tests and the curious)."""

    # ------------------------------------------------------------------ layout

    def _padded(self, length: int) -> int:
        return -(-length // self._wb) * self._wb

    def _sector(self, index: int) -> tuple[int, int]:
        """(offset in the area, size) of sector ``index``."""
        sector = self.area.sectors[index]
        return sector.offset, sector.size

    @property
    def sector_count(self) -> int:
        """Sectors in the partition."""
        return len(self.area.sectors)

    # ------------------------------------------------------------------ reading

    def _read_header(self, index: int) -> int | None:
        offset, size = self._sector(index)
        if size < self._sector_header:
            return None
        magic, seq, crc = _SECTOR.unpack(self.area.read(offset, _SECTOR.size))
        if magic != SECTOR_MAGIC or zlib.crc32(magic + seq.to_bytes(4, "little")) != crc:
            return None
        return int(seq)

    def _scan(self, index: int) -> int:
        """Index the records of sector ``index``; returns where free space starts (the sector
        size when a damaged record closes it)."""
        offset, size = self._sector(index)
        data = self.area.read(offset, size)
        pos = self._sector_header
        while pos < size:
            if data[pos] == ERASED:
                return pos
            if pos + _RECORD.size + _CRC.size > size:
                return size
            magic, flags, name_len, value_len = _RECORD.unpack_from(data, pos)
            end = pos + _RECORD.size + name_len + value_len
            if magic != RECORD_MAGIC or end + _CRC.size > size:
                return size
            (crc,) = _CRC.unpack_from(data, end)
            if zlib.crc32(data[pos:end]) != crc:
                return size
            name = data[pos + _RECORD.size:pos + _RECORD.size + name_len]
            value = data[pos + _RECORD.size + name_len:end]
            self._index[name] = _Entry(index, None if flags & FLAG_DELETED else value)
            pos += self._padded(end + _CRC.size - pos)
        return size

    def mount(self) -> None:
        """Read the log back from flash, and finish a garbage collection a power cut broke."""
        self._index.clear()
        self._seq = {i: seq for i in range(self.sector_count)
                     if (seq := self._read_header(i)) is not None}
        self._active = None
        self.gc_runs = 0
        free = 0
        for index in sorted(self._seq, key=self._seq.__getitem__):
            free = self._scan(index)
            self._active = index
        self._free = free
        if self._active is not None and self.sector_count > 1:
            spare = (self._active + 1) % self.sector_count
            if spare in self._seq:
                self._collect(spare)  # interrupted: its live records are not all copied yet
            elif not self._erased(spare):
                self.area.erase(*self._sector(spare))

    def _erased(self, index: int) -> bool:
        offset, size = self._sector(index)
        return self.area.is_erased(offset, size)

    # ------------------------------------------------------------------ queries

    def get(self, name: bytes) -> bytes | None:
        """The stored value of ``name``, or ``None`` when it has none."""
        entry = self._index.get(name)
        return None if entry is None else entry.value

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every stored (name, value), deleted names left out."""
        return [(name, e.value) for name, e in self._index.items() if e.value is not None]

    # ------------------------------------------------------------------ writing

    def save(self, name: bytes, value: bytes | None) -> None:
        """Store ``value`` (``None`` or empty: delete) under ``name`` unless it is stored already
        (``settings_save_one``'s duplicate check). Raises :class:`NoSpace`."""
        if not value:
            value = None
        entry = self._index.get(name)
        if (entry.value if entry is not None else None) == value:
            return  # the same value, or deleting what is not there: nothing to write
        if len(name) > NAME_MAX or len(value or b"") > 0xFFFF:
            raise NoSpace(f"record for {name!r} too large")
        self._append(name, value)

    def _record(self, name: bytes, value: bytes | None) -> bytes:
        flags = FLAG_DELETED if value is None else 0
        body = _RECORD.pack(RECORD_MAGIC, flags, len(name), len(value or b"")) + name
        body += value or b""
        raw = body + _CRC.pack(zlib.crc32(body))
        return raw + bytes([ERASED]) * (self._padded(len(raw)) - len(raw))

    def _append(self, name: bytes, value: bytes | None) -> None:
        raw = self._record(name, value)
        if self._active is None:
            self._open(0, 1)
        assert self._active is not None
        if self._free + len(raw) > self._sector(self._active)[1]:
            self._rotate(len(raw))
        self._write(name, value, raw)

    def _write(self, name: bytes, value: bytes | None, raw: bytes) -> None:
        assert self._active is not None
        offset, _ = self._sector(self._active)
        self.area.write(offset + self._free, raw)
        self._free += len(raw)
        self._index[name] = _Entry(self._active, value)

    def _open(self, index: int, seq: int) -> None:
        """Make sector ``index`` the active one: erase it if need be, then its header."""
        offset, _ = self._sector(index)
        if not self._erased(index):
            self.area.erase(*self._sector(index))
        self._seq.pop(index, None)
        magic_seq = SECTOR_MAGIC + seq.to_bytes(4, "little")
        header = _SECTOR.pack(SECTOR_MAGIC, seq, zlib.crc32(magic_seq))
        self.area.write(offset, header + bytes([ERASED]) * (self._sector_header - len(header)))
        self._seq[index] = seq
        self._active, self._free = index, self._sector_header

    def _live(self, index: int) -> list[tuple[bytes, bytes]]:
        return [(name, e.value) for name, e in self._index.items()
                if e.sector == index and e.value is not None]

    def _rotate(self, needed: int) -> None:
        """Move to the spare sector, collecting the oldest, so that ``needed`` more bytes fit;
        refused before any flash operation when they would not."""
        assert self._active is not None
        count = self.sector_count
        spare = (self._active + 1) % count
        oldest = (spare + 1) % count
        _, size = self._sector(spare)
        kept = sum(len(self._record(n, v)) for n, v in self._live(oldest)) if oldest != spare \
            else 0
        if count < 2 or self._sector_header + kept + needed > size:
            raise NoSpace("settings partition full")
        self._open(spare, self._seq[self._active] + 1)
        self._collect(oldest)

    def _collect(self, index: int) -> None:
        """Copy the live records of sector ``index`` to the active sector, then erase it."""
        if index == self._active or (index not in self._seq and self._erased(index)):
            return
        self.gc_runs += 1
        for name, entry in list(self._index.items()):
            if entry.sector != index:
                continue
            if entry.value is None:
                # Every older record of the name is in this sector too: the deletion can go.
                del self._index[name]
                continue
            self._write(name, entry.value, self._record(name, entry.value))
        self.area.erase(*self._sector(index))
        self._seq.pop(index, None)
