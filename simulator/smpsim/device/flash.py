"""NOR flash with real rules, backed byte for byte by the flash file (or by memory).

Rules, as MCUboot's own flash simulator enforces them:

* the erased value is 0xFF; an erase covers whole sectors, starting and ending on sector edges;
* a write starts and ends on write-block boundaries and may only target erased bytes (NOR can
  only clear bits, and MCUboot never relies on writing a byte twice);
* every erase and write is one atomic operation that costs the profile's time on the clock;
* an operation counter and a power-cut hook: :meth:`NorFlash.cut_power_before` makes the Nth
  operation from now raise :class:`PowerLoss` *before* it changes anything, so a cut always falls
  between two operations, never inside one.
"""

from __future__ import annotations

import bisect
import math
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from smpsim.config import FlashGeometry
from smpsim.device.clock import Clock
from smpsim.errors import SmpsimError

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


def layout(geometry: FlashGeometry) -> list[Sector]:
    """The sectors of ``geometry``: the mixed list when given, else uniform erase blocks."""
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
    return sectors


class NorFlash:
    """The chip's flash. A new flash file is created erased, at the profile's size."""

    def __init__(self, geometry: FlashGeometry, clock: Clock,
                 path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.geometry = geometry
        self.size = geometry.size
        self.write_block = geometry.write_block
        self.sectors = layout(geometry)
        self._starts = [s.offset for s in self.sectors]
        self._clock = clock
        self._write_s = geometry.write_us / 1_000_000
        self.path = Path(path) if path is not None else None
        self.ops = 0
        """Erase and write operations carried out since start."""
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
        self._mem: mmap.mmap | bytearray
        self.created = self.path is None or not self.path.exists()
        """The flash is new (no flash file existed): the factory has not programmed it yet."""
        if self.path is None:
            self._mem = bytearray([ERASED]) * self.size
            return
        if self.created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(bytes([ERASED]) * self.size)
        actual = self.path.stat().st_size
        if actual != self.size:
            raise FlashError(f"flash file {self.path} has {actual} bytes; the profile's flash "
                             f"has {self.size}")
        # read_only: a probe's look (``flash info``), which must work on a read-only file.
        self._fd = os.open(self.path, os.O_RDONLY if read_only else os.O_RDWR)
        self._mem = mmap.mmap(self._fd, self.size,
                              access=mmap.ACCESS_READ if read_only else mmap.ACCESS_WRITE)

    # -- geometry -----------------------------------------------------------------------------

    def sector_at(self, offset: int) -> Sector:
        """The sector holding ``offset``."""
        if not 0 <= offset < self.size:
            raise OutOfBounds(f"offset {offset:#x} outside flash of {self.size:#x} bytes")
        return self.sectors[bisect.bisect_right(self._starts, offset) - 1]

    def sector_index(self, offset: int) -> int:
        """Index of the sector holding ``offset``."""
        if not 0 <= offset < self.size:
            raise OutOfBounds(f"offset {offset:#x} outside flash of {self.size:#x} bytes")
        return bisect.bisect_right(self._starts, offset) - 1

    def sectors_in(self, offset: int, length: int) -> list[Sector]:
        """The sectors exactly covering ``[offset, offset + length)``; raises if not on edges."""
        self._check_bounds(offset, length)
        first = bisect.bisect_left(self._starts, offset)
        if length == 0:
            return []
        if first >= len(self.sectors) or self._starts[first] != offset:
            raise Misaligned(f"erase at {offset:#x} does not start on a sector edge")
        end = offset + length
        last = bisect.bisect_left(self._starts, end)
        if end != self.size and (last >= len(self._starts) or self._starts[last] != end):
            raise Misaligned(f"erase to {end:#x} does not end on a sector edge")
        return self.sectors[first:last]

    def _check_bounds(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise OutOfBounds(f"{offset:#x}+{length:#x} outside flash of {self.size:#x} bytes")

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

    def _operation(self) -> None:
        if self._cut_at is not None and self.ops + 1 >= self._cut_at:
            self._cut_at = None
            raise PowerLoss(f"power cut before flash operation {self.ops + 1}")
        self.ops += 1

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``; reads are free and never interrupted."""
        self._check_bounds(offset, length)
        self.reads += 1
        self.bytes_read += length
        return bytes(self._mem[offset:offset + length])

    def is_erased(self, offset: int, length: int) -> bool:
        """Whether every byte of the range reads 0xFF."""
        self._check_bounds(offset, length)
        chunk = self._mem[offset:offset + length]
        return chunk.count(ERASED) == length

    def erase(self, offset: int, length: int) -> None:
        """Erase whole sectors covering exactly ``[offset, offset + length)``: one operation."""
        sectors = self.sectors_in(offset, length)
        self._operation()
        extra = self.faults.before("erase", offset, length) if self.faults is not None else 0.0
        # Time first: when a transport paces the clock, a kill during the erase leaves it undone.
        self._clock.spend(sum(s.erase_s for s in sectors) + extra)
        self._mem[offset:offset + length] = bytes([ERASED]) * length
        self.erases += len(sectors)
        self.erase_calls += 1
        first = bisect.bisect_left(self._starts, offset)
        for index in range(first, first + len(sectors)):
            self.sector_erases[index] += 1
        if self.monitor is not None:
            self.monitor("erase", offset, length)

    def write(self, offset: int, data: bytes) -> None:
        """Program ``data`` at ``offset`` (aligned, over erased bytes only): one operation."""
        length = len(data)
        self._check_bounds(offset, length)
        if offset % self.write_block or length % self.write_block:
            raise Misaligned(f"write {offset:#x}+{length} not aligned to "
                             f"{self.write_block}-byte write blocks")
        if not self.is_erased(offset, length):
            raise NotErased(f"write at {offset:#x}+{length} over bytes that are not erased")
        self._operation()
        extra = self.faults.before("write", offset, length) if self.faults is not None else 0.0
        self._clock.spend(math.ceil(length / self.write_block) * self._write_s + extra)
        self._mem[offset:offset + length] = data
        self.writes += 1
        self.bytes_written += length
        if self.monitor is not None:
            self.monitor("write", offset, length)

    def program(self, offset: int, data: bytes) -> None:
        """Program ``data`` as a debug probe does: erase every sector it touches, then write.

        Manufacturing and ``smpsim flash import``: no emulated time, no operation counted, no
        power cut, and the untouched rest of each touched sector reads erased afterwards.
        """
        self._check_bounds(offset, len(data))
        if not data:
            return
        first = self.sector_at(offset)
        last = self.sector_at(offset + len(data) - 1)
        start, end = first.offset, last.offset + last.size
        self._mem[start:end] = bytes([ERASED]) * (end - start)
        self._mem[offset:offset + len(data)] = data

    def snapshot(self) -> bytes:
        """The whole flash as it is now, read as a probe reads it (no statistics)."""
        return bytes(self._mem)

    @classmethod
    def from_snapshot(cls, geometry: FlashGeometry, clock: Clock, data: bytes) -> NorFlash:
        """A flash in memory holding ``data`` (a :meth:`snapshot`), to try things on."""
        flash = cls(geometry, clock)
        flash._mem[:] = data
        return flash

    def flip_bits(self, positions: list[int]) -> None:
        """Invert the bits at ``positions`` (bit numbers from the start of the flash): charge
        lost from cells, as radiation or a marginal cell does; no operation, no time."""
        for bit in positions:
            if not 0 <= bit < self.size * 8:
                raise OutOfBounds(f"bit {bit} outside flash of {self.size:#x} bytes")
            self._mem[bit // 8] ^= 1 << (bit % 8)

    def flush(self) -> None:
        """Push the contents to the flash file."""
        if isinstance(self._mem, mmap.mmap):
            self._mem.flush()

    def close(self) -> None:
        """Flush and release the flash file."""
        if isinstance(self._mem, mmap.mmap):
            self._mem.flush()
            self._mem.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
