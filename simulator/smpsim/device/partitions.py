"""Flash partitions as the board's devicetree fixes them, and flash areas to work in them."""

from __future__ import annotations

import bisect
import functools

from smpsim.config import Partition
from smpsim.device.flash import NorFlash, OutOfBounds, Sector


class FlashArea:
    """One partition: reads, writes and erases relative to its start (Zephyr ``flash_area``)."""

    def __init__(self, flash: NorFlash, partition: Partition) -> None:
        self.flash = flash
        self.name = partition.name
        self.offset = partition.offset
        self.size = partition.size
        self.sectors = _relative(flash.sectors_in(self.offset, self.size), self.offset)
        """Sectors with offsets relative to the area."""
        self._starts = _starts(self.sectors)
        self.sector_sizes = _sizes(self.sectors)
        """Each sector's size, in order (MCUboot compares two slots' at every boot)."""
        self.write_block = flash.write_block

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise OutOfBounds(f"{offset:#x}+{length:#x} outside {self.name} "
                              f"({self.size:#x} bytes)")

    def read(self, offset: int, length: int) -> bytes:
        """Bytes at ``offset`` within the area."""
        if offset < 0 or length < 0 or offset + length > self.size:
            self._check(offset, length)
        return self.flash.read(self.offset + offset, length)

    def is_erased(self, offset: int = 0, length: int | None = None) -> bool:
        """Whether the range (default: the whole area) reads erased."""
        length = self.size - offset if length is None else length
        self._check(offset, length)
        return self.flash.is_erased(self.offset + offset, length)

    def write(self, offset: int, data: bytes) -> None:
        """Program ``data`` at ``offset`` within the area (one flash operation)."""
        if offset < 0 or offset + len(data) > self.size:
            self._check(offset, len(data))
        self.flash.write(self.offset + offset, data)

    def erase(self, offset: int, length: int) -> None:
        """Erase whole sectors of the area (one flash operation)."""
        if offset < 0 or length < 0 or offset + length > self.size:
            self._check(offset, length)
        self.flash.erase(self.offset + offset, length)

    def sector_index(self, offset: int) -> int:
        """Index of the sector holding ``offset``."""
        self._check(offset, 1)
        return bisect.bisect_right(self._starts, offset) - 1


@functools.cache
def _starts(sectors: tuple[Sector, ...]) -> tuple[int, ...]:
    return tuple(s.offset for s in sectors)


@functools.cache
def _sizes(sectors: tuple[Sector, ...]) -> tuple[int, ...]:
    return tuple(s.size for s in sectors)


@functools.cache
def _relative(sectors: tuple[Sector, ...], base: int) -> tuple[Sector, ...]:
    # One tuple per partition of a geometry, shared by every board of a fleet.
    return tuple(Sector(s.offset - base, s.size, s.erase_s) for s in sectors)


class PartitionTable:
    """The board's partitions over one flash."""

    def __init__(self, flash: NorFlash, partitions: tuple[Partition, ...]) -> None:
        self.flash = flash
        self.areas = {p.name: FlashArea(flash, p) for p in partitions}

    def get(self, name: str) -> FlashArea | None:
        """The area called ``name``, if the board has one."""
        return self.areas.get(name)

    def primary(self, image: int) -> FlashArea | None:
        """Primary slot of ``image`` (``slot0``, ``slot2``, ...)."""
        return self.areas.get(f"slot{2 * image}")

    def secondary(self, image: int) -> FlashArea | None:
        """Secondary slot of ``image`` (``slot1``, ``slot3``, ...)."""
        return self.areas.get(f"slot{2 * image + 1}")

    @property
    def image_count(self) -> int:
        """Number of images with both slots."""
        count = 0
        while self.primary(count) is not None and self.secondary(count) is not None:
            count += 1
        return count
