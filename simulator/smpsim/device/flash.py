"""NOR flash with real rules, kept sector by sector in memory and written through to the flash
file (or kept in memory only).

Rules, as MCUboot's own flash simulator enforces them:

* the erased value is 0xFF; an erase covers whole sectors, starting and ending on sector edges;
* a write starts and ends on write-block boundaries and may only target erased bytes (NOR can
  only clear bits, and MCUboot never relies on writing a byte twice);
* every erase and write is one atomic operation that costs the profile's time on the clock;
* an operation counter and a power-cut hook: :meth:`NorFlash.cut_power_before` makes the Nth
  operation from now raise :class:`PowerLoss` *before* it changes anything, so a cut always falls
  between two operations, never inside one.

Storage is sparse, so a board costs what it has written, not its whole flash (a fleet holds
thousands): an erased sector holds nothing, a written one its bytes. Sectors read from a flash
file or programmed by the factory are shared, read-only, between every flash holding the same
bytes (the factory image of a thousand boards is kept once) and copied on their first write. The
flash file stays exactly the chip's flash (0xFF where erased); each operation writes its bytes
into it at once, so a killed process leaves every finished operation in the file.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

from smpsim.config import FlashGeometry
from smpsim.device.clock import Clock
from smpsim.errors import SmpsimError
from smpsim.records import Frozen, frozen

ERASED = 0xFF


class FlashError(SmpsimError):
    """A flash operation that real NOR flash (or its driver) refuses."""


class OutOfBounds(FlashError):
    """The operation reaches outside the flash."""


class Misaligned(FlashError):
    """Not on sector edges (erase) or write-block boundaries (write)."""


class NotErased(FlashError):
    """A write over bytes that are not erased."""


class PowerLoss(SmpsimError):
    """Power was cut before a flash operation; nothing of that operation happened."""


class DriverError(FlashError):
    """The flash driver reported a failure (a worn-out sector, an injected fault): what
    Zephyr's ``flash_write``/``flash_erase`` return as -EIO."""


class FaultHook(Protocol):
    """Injected flash faults, consulted before each operation changes anything."""

    def before(self, kind: str, offset: int, length: int) -> float:
        """``kind`` is ``erase`` or ``write``: raise :class:`DriverError` to fail the operation,
        else return extra seconds it takes (a slow sector)."""
        ...


Monitor = Callable[[str, int, int], None]
"""Told (``erase``/``write``, offset, length) after each operation."""


@dataclass(frozen=True)
class Sector:
    """One erase unit."""

    offset: int
    """Offset from the start of the flash."""
    size: int
    """Bytes."""
    erase_s: float
    """Time to erase it."""


@functools.cache
def layout(geometry: FlashGeometry) -> tuple[Sector, ...]:
    """The sectors of ``geometry``: the mixed list when given, else uniform erase blocks.

    One tuple per geometry, shared by every flash of that geometry (a fleet has thousands).
    """
    sectors = []
    offset = 0
    groups = geometry.sectors or ()
    if groups:
        for group in groups:
            for _ in range(group.count):
                sectors.append(Sector(offset, group.size, group.erase_ms / 1000))
                offset += group.size
    else:
        for offset in range(0, geometry.size, geometry.erase_block):
            sectors.append(Sector(offset, geometry.erase_block, geometry.erase_ms / 1000))
    return tuple(sectors)


@functools.cache
def _starts(geometry: FlashGeometry) -> tuple[int, ...]:
    return tuple(s.offset for s in layout(geometry))


class _Shared:
    """Read-only sector contents, one copy for every flash that holds these bytes."""

    __slots__ = ("__weakref__", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data


_shared: weakref.WeakValueDictionary[bytes, _Shared] = weakref.WeakValueDictionary()
"""Live shared contents by digest; an entry goes when no flash holds it any more."""


def _share(data: bytes) -> _Shared:
    key = hashlib.blake2b(data, digest_size=16).digest()
    found = _shared.get(key)
    if found is not None and found.data == data:
        return found
    entry = _Shared(data)
    _shared[key] = entry
    return entry


Contents = _Shared | bytearray | None
"""A sector's bytes: ``None`` when erased (every byte 0xFF), shared until written, else own."""


@frozen
class Checkpoint(Frozen):
    """A flash as it was (:meth:`NorFlash.checkpoint`): sector contents, none of them owned."""

    contents: tuple[_Shared | None, ...]
    counters: tuple[int, ...]
    """ops, erases, writes, bytes_written, erase_calls, reads, bytes_read."""
    sector_erases: tuple[int, ...]


class NorFlash:
    """The chip's flash. A new flash file is created erased, at the profile's size."""

    def __init__(self, geometry: FlashGeometry, clock: Clock,
                 path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.geometry = geometry
        self.size = geometry.size
        self.write_block = geometry.write_block
        self.sectors = layout(geometry)
        self._starts = _starts(geometry)
        self._clock = clock
        self._write_s = geometry.write_us / 1_000_000
        self.path = Path(path) if path is not None else None
        self.ops = 0
        """Erase and write operations carried out since start."""
        self.changes = 0
        """Bumped by every change of the contents (operations, programming, a restore, flipped
        bits): work done ahead on what flash read holds still stands while it is the same."""
        self.erases = 0
        """Sectors erased since start (flash statistics)."""
        self.writes = 0
        """Write operations since start (flash statistics)."""
        self.bytes_written = 0
        """Bytes programmed since start."""
        self.erase_calls = 0
        """Erase operations since start (one may cover several sectors)."""
        self.reads = 0
        """Read calls since start."""
        self.bytes_read = 0
        """Bytes read since start."""
        self.sector_erases = [0] * len(self.sectors)
        """Erase count of each sector since start, by sector index (wear)."""
        self._cut_at: int | None = None
        self.faults: FaultHook | None = None
        """Injected faults (the control plane's); ``None``: a healthy chip."""
        self.monitor: Monitor | None = None
        """Watcher of the operations (the control plane's)."""
        self._fd: int | None = None
        self._data: list[Contents] = [None] * len(self.sectors)
        self._owned: set[int] = set()
        """Sectors made own (a bytearray) since the last :meth:`checkpoint`, maybe since
        erased or restored: the only ones it may have to freeze."""
        self.created = self.path is None or not self.path.exists()
        """The flash is new (no flash file existed): the factory has not programmed it yet."""
        if self.path is None:
            return
        if self.created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("xb") as new:
                for sector in self.sectors:
                    new.write(_erased(sector.size))
        actual = self.path.stat().st_size
        if actual != self.size:
            raise FlashError(f"flash file {self.path} has {actual} bytes; the profile's flash "
                             f"has {self.size}")
        # read_only: a probe's look (``flash info``), which must work on a read-only file.
        self._fd = os.open(self.path, os.O_RDONLY if read_only else os.O_RDWR)
        if not self.created:
            self._load(self._fd)

    def _load(self, fd: int) -> None:
        self._fill(os.pread(fd, self.size, 0))

    def _fill(self, image: bytes) -> None:
        """Hold ``image`` (the whole flash): erased sectors as nothing, the rest shared."""
        for index, sector in enumerate(self.sectors):
            # startswith compares memory as a whole; a fleet reads thousands of files.
            if not image.startswith(_erased(sector.size), sector.offset):
                self._data[index] = _share(image[sector.offset:sector.offset + sector.size])

    # -- geometry -----------------------------------------------------------------------------

    def sector_at(self, offset: int) -> Sector:
        """The sector holding ``offset``."""
        return self.sectors[self.sector_index(offset)]

    def sector_index(self, offset: int) -> int:
        """Index of the sector holding ``offset``."""
        if not 0 <= offset < self.size:
            raise OutOfBounds(f"offset {offset:#x} outside flash of {self.size:#x} bytes")
        return bisect.bisect_right(self._starts, offset) - 1

    def sectors_in(self, offset: int, length: int) -> tuple[Sector, ...]:
        """The sectors exactly covering ``[offset, offset + length)``; raises if not on edges."""
        first, last = self._span(offset, length)
        return self.sectors[first:last]

    def _span(self, offset: int, length: int) -> tuple[int, int]:
        """Indices (first, past the last) of the sectors exactly covering the range."""
        self._check_bounds(offset, length)
        starts = self._starts
        first = bisect.bisect_left(starts, offset)
        if length == 0:
            return first, first
        if first >= len(starts) or starts[first] != offset:
            raise Misaligned(f"erase at {offset:#x} does not start on a sector edge")
        end = offset + length
        if first + 1 < len(starts) and starts[first + 1] == end:
            return first, first + 1  # one sector, as MCUboot erases
        last = bisect.bisect_left(starts, end)
        if end != self.size and (last >= len(starts) or starts[last] != end):
            raise Misaligned(f"erase to {end:#x} does not end on a sector edge")
        return first, last

    def _check_bounds(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise OutOfBounds(f"{offset:#x}+{length:#x} outside flash of {self.size:#x} bytes")

    def _pieces(self, offset: int, length: int) -> list[tuple[int, int, int]]:
        """``(sector index, start, end)`` within each sector the range touches."""
        pieces = []
        end = offset + length
        index = self.sector_index(offset) if length else 0
        while offset < end:
            sector = self.sectors[index]
            stop = min(end, sector.offset + sector.size)
            pieces.append((index, offset - sector.offset, stop - sector.offset))
            offset = stop
            index += 1
        return pieces

    # -- state --------------------------------------------------------------------------------

    def sector_erased(self, index: int) -> bool:
        """Whether sector ``index`` is erased throughout (known without reading it)."""
        return self._data[index] is None

    def is_erased(self, offset: int, length: int) -> bool:
        """Whether every byte of the range reads 0xFF; whole erased sectors cost nothing."""
        self._check_bounds(offset, length)
        if not length:
            return True
        first = bisect.bisect_right(self._starts, offset) - 1
        last = bisect.bisect_right(self._starts, offset + length - 1)
        if self._data[first:last].count(None) == last - first:
            return True  # every sector the range touches is known erased (a slot before upload)
        for index, start, stop in self._pieces(offset, length):
            contents = self._data[index]
            if contents is None:
                continue
            data = contents.data if isinstance(contents, _Shared) else contents
            if data.count(ERASED, start, stop) != stop - start:
                return False
        return True

    @property
    def stored_bytes(self) -> int:
        """Bytes this flash holds in memory of its own (shared sectors not counted)."""
        return sum(len(c) for c in self._data if isinstance(c, bytearray))

    # -- operations ---------------------------------------------------------------------------

    def cut_power_before(self, n: int) -> None:
        """Make the ``n``-th flash operation from now (1 = the next) raise :class:`PowerLoss`."""
        self._cut_at = self.ops + n

    def cancel_power_cut(self) -> None:
        """Forget a cut armed by :meth:`cut_power_before` that has not happened."""
        self._cut_at = None

    @property
    def power_cut_armed(self) -> bool:
        """A cut is armed and has not happened yet."""
        return self._cut_at is not None

    def _begin(self, kind: str, offset: int, length: int, seconds: float) -> None:
        """Start an operation that takes ``seconds``: the power cut, the injected faults and
        the time come before it changes anything."""
        if self._cut_at is not None and self.ops + 1 >= self._cut_at:
            self._cut_at = None
            raise PowerLoss(f"power cut before flash operation {self.ops + 1}")
        self.ops += 1
        if self.faults is not None:
            seconds += self.faults.before(kind, offset, length)
        try:
            self._clock.spend(seconds)
        except PowerLoss:  # a paced boot cut short while waiting: the operation never happened
            self.ops -= 1
            raise

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``; reads are free and never interrupted."""
        if offset < 0 or length < 0 or offset + length > self.size:
            self._check_bounds(offset, length)
        self.reads += 1
        self.bytes_read += length
        if length:  # most reads stay inside one sector (littlefs reads 16 bytes at a time)
            index = bisect.bisect_right(self._starts, offset) - 1
            start = offset - self._starts[index]
            if start + length <= self.sectors[index].size:
                contents = self._data[index]
                if contents is None:
                    return b"\xff" * length
                if isinstance(contents, _Shared):
                    return contents.data[start:start + length]
                return bytes(contents[start:start + length])
        # Across sectors (an image's hash, a snapshot): one pass, no copy of whole shared ones.
        parts: list[bytes | bytearray] = []
        data, starts, sectors = self._data, self._starts, self.sectors
        index = bisect.bisect_right(starts, offset) - 1 if length else 0
        end = offset + length
        while offset < end:
            base = starts[index]
            stop = min(end, base + sectors[index].size)
            contents = data[index]
            if contents is None:
                parts.append(_erased(stop - offset))
            else:
                parts.append((contents.data if isinstance(contents, _Shared) else contents)
                             [offset - base:stop - base])
            offset = stop
            index += 1
        return b"".join(parts)

    def _slice(self, index: int, start: int, stop: int) -> bytes:
        contents = self._data[index]
        if contents is None:
            return _erased(stop - start)
        if isinstance(contents, _Shared):
            return contents.data[start:stop]
        return bytes(contents[start:stop])

    def erase(self, offset: int, length: int) -> None:
        """Erase whole sectors covering exactly ``[offset, offset + length)``: one operation."""
        first, last = self._span(offset, length)
        sectors = self.sectors[first:last]
        # Time first: when a transport paces the clock, a kill during the erase leaves it undone.
        self._begin("erase", offset, length, sectors[0].erase_s if len(sectors) == 1 else
                    sum(s.erase_s for s in sectors))
        self.changes += 1
        for index in range(first, last):
            self._data[index] = None
            self.sector_erases[index] += 1
        if self._fd is not None:
            for sector in sectors:
                os.pwrite(self._fd, _erased(sector.size), sector.offset)
        self.erases += len(sectors)
        self.erase_calls += 1
        if self.monitor is not None:
            self.monitor("erase", offset, length)

    def write(self, offset: int, data: bytes) -> None:
        """Program ``data`` at ``offset`` (aligned, over erased bytes only): one operation."""
        length = len(data)
        if offset < 0 or offset + length > self.size:
            self._check_bounds(offset, length)
        write_block = self.write_block
        if offset % write_block or length % write_block:
            raise Misaligned(f"write {offset:#x}+{length} not aligned to "
                             f"{write_block}-byte write blocks")
        # Most writes stay inside one sector (a swap's buffers, a status entry, an upload's
        # 512-byte buffers): found once.
        starts = self._starts
        index = bisect.bisect_right(starts, offset) - 1
        start = offset - starts[index]
        single = 0 < length <= self.sectors[index].size - start
        if single:
            contents = self._data[index]
            blank = _blank(length)
            # startswith compares memory as a whole (count goes byte by byte: 0.4 us a KiB).
            if contents is not None and not (contents.data if isinstance(contents, _Shared)
                                             else contents).startswith(blank, start):
                raise NotErased(f"write at {offset:#x}+{length} over bytes that are not erased")
        elif not self.is_erased(offset, length):
            raise NotErased(f"write at {offset:#x}+{length} over bytes that are not erased")
        self._begin("write", offset, length, length // write_block * self._write_s)
        self.changes += 1
        if single:
            if data != blank:  # 0xFF over erased bytes changes nothing
                own = self._data[index]
                if not isinstance(own, bytearray):
                    own = self._own(index)
                own[start:start + length] = data
        else:
            pos = 0
            for index, start, stop in self._pieces(offset, length):
                piece = data[pos:pos + stop - start]
                pos += stop - start
                if piece.count(ERASED) != len(piece):
                    self._own(index)[start:stop] = piece
        if self._fd is not None:
            os.pwrite(self._fd, data, offset)
        self.writes += 1
        self.bytes_written += length
        if self.monitor is not None:
            self.monitor("write", offset, length)

    def _own(self, index: int) -> bytearray:
        """Sector ``index``'s bytes to change: materialised if erased, copied if shared."""
        contents = self._data[index]
        if isinstance(contents, bytearray):
            return contents
        own = bytearray(contents.data) if contents is not None \
            else bytearray(_blank(self.sectors[index].size))
        self._data[index] = own
        self._owned.add(index)
        return own

    def program(self, offset: int, data: bytes) -> None:
        """Program ``data`` as a debug probe does: erase every sector it touches, then write.

        Manufacturing and ``smpsim flash import``: no emulated time, no operation counted, no
        power cut, and the untouched rest of each touched sector reads erased afterwards.
        """
        self._check_bounds(offset, len(data))
        if not data:
            return
        self.changes += 1
        pos = 0
        for index, start, stop in self._pieces(offset, len(data)):
            size = self.sectors[index].size
            piece = data[pos:pos + stop - start]
            pos += stop - start
            contents = _erased(start) + piece + _erased(size - stop)
            self._data[index] = None if contents.count(ERASED) == size else _share(contents)
            if self._fd is not None:
                os.pwrite(self._fd, contents, self.sectors[index].offset)

    def snapshot(self) -> bytes:
        """The whole flash as it is now, read as a probe reads it (no statistics)."""
        return b"".join(self._slice(i, 0, s.size) for i, s in enumerate(self.sectors))

    def checkpoint(self) -> Checkpoint:
        """The flash's contents and counters now, to :meth:`restore` later. Costs a reference per
        sector: the sectors written since the last checkpoint are frozen (shared, copied on
        their next write), the others are shared with it already. Frozen sectors no longer
        count in :attr:`stored_bytes` (a sweep's flash, never a fleet board's)."""
        data = self._data
        for index in self._owned:
            contents = data[index]
            if isinstance(contents, bytearray):
                data[index] = _Shared(bytes(contents))
        self._owned.clear()
        counters = (self.ops, self.erases, self.writes, self.bytes_written, self.erase_calls,
                    self.reads, self.bytes_read)
        return Checkpoint(tuple(cast("list[_Shared | None]", data)), counters,
                          tuple(self.sector_erases))

    def restore(self, checkpoint: Checkpoint) -> None:
        """Go back to a :meth:`checkpoint` of this flash: only the sectors changed since are
        put back (and written through to the flash file). An armed power cut stays armed."""
        data = self._data
        self.changes += 1
        for index, contents in enumerate(checkpoint.contents):
            if data[index] is not contents:
                data[index] = contents
                if self._fd is not None:
                    sector = self.sectors[index]
                    os.pwrite(self._fd, self._slice(index, 0, sector.size), sector.offset)
        (self.ops, self.erases, self.writes, self.bytes_written, self.erase_calls, self.reads,
         self.bytes_read) = checkpoint.counters
        self.sector_erases = list(checkpoint.sector_erases)

    @classmethod
    def from_snapshot(cls, geometry: FlashGeometry, clock: Clock, data: bytes) -> NorFlash:
        """A flash in memory holding ``data`` (a :meth:`snapshot`), to try things on."""
        flash = cls(geometry, clock)
        flash._fill(data)
        return flash

    def flip_bits(self, positions: list[int]) -> None:
        """Invert the bits at ``positions`` (bit numbers from the start of the flash): charge
        lost from cells, as radiation or a marginal cell does; no operation, no time."""
        for bit in positions:
            if not 0 <= bit < self.size * 8:
                raise OutOfBounds(f"bit {bit} outside flash of {self.size:#x} bytes")
        touched: set[int] = set()
        self.changes += 1
        for bit in positions:
            offset = bit // 8
            index = self.sector_index(offset)
            own = self._own(index)
            own[offset - self.sectors[index].offset] ^= 1 << (bit % 8)
            touched.add(index)
            if self._fd is not None:
                os.pwrite(self._fd, bytes([own[offset - self.sectors[index].offset]]), offset)
        for index in touched:  # a flip may leave a sector erased again
            contents = self._data[index]
            if isinstance(contents, bytearray) and contents.count(ERASED) == len(contents):
                self._data[index] = None

    def close(self) -> None:
        """Release the flash file (every operation is in it already)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@functools.lru_cache(maxsize=16)
def _blank(length: int) -> bytes:
    """``length`` erased bytes, kept for the few lengths writes have (at most a sector)."""
    return _erased(length)


def _erased(length: int) -> bytes:
    """``length`` erased bytes."""
    return b"\xff" * length
