"""A tiny board for MCUboot tests: 1 KiB sectors, a few of them per slot, images from imgtool."""

from __future__ import annotations

import functools
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from smpsim.config import Bootloader as BootloaderConfig
from smpsim.config import FlashGeometry, Partition
from smpsim.device.clock import Clock
from smpsim.device.console import Console
from smpsim.device.flash import NorFlash
from smpsim.device.mcuboot.bootloader import Bootloader, BootResult
from smpsim.device.mcuboot.trailer import (
    Mode,
    SwapState,
    SwapType,
    Trailer,
    TrailerLayout,
    set_pending,
    swap_type,
)
from smpsim.device.partitions import FlashArea, PartitionTable

SECTOR = 1024
"""Sector (erase block) size of the test flash."""

SWAP_MODES = (Mode.MOVE, Mode.SCRATCH, Mode.OFFSET)
"""The modes that swap (and can revert)."""

ALL_MODES = (*SWAP_MODES, Mode.OVERWRITE)
"""Every mode."""


def imgtool(*args: str) -> None:
    """Run imgtool's command line with this interpreter."""
    subprocess.run([sys.executable, "-m", "imgtool.main", *args], check=True,
                   capture_output=True)


@functools.cache
def ecdsa_key() -> str:
    """A fresh ECDSA P-256 private key (PEM), made by ``imgtool keygen``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "key.pem")
        imgtool("keygen", "-k", str(path), "-t", "ecdsa-p256")
        return path.read_text()


@functools.cache
def signed(version: str, payload_size: int, slot_size: int, *extra: str) -> bytes:
    """An image of ``payload_size`` deterministic bytes, made by ``imgtool sign``: hash only,
    unless ``extra`` holds ``"-k", "KEY"`` (signed with :func:`ecdsa_key`)."""
    payload = random.Random(f"{version}/{payload_size}").randbytes(payload_size)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.bin"), Path(tmp, "out.bin")
        src.write_bytes(payload)
        if "KEY" in extra:
            key = Path(tmp, "key.pem")
            key.write_text(ecdsa_key())
            extra = tuple(str(key) if arg == "KEY" else arg for arg in extra)
        imgtool("sign", "--version", version, "--header-size", "0x200", "--pad-header",
                "--align", "8", "--slot-size", str(slot_size), "-M", "32", *extra,
                str(src), str(dst))
        return dst.read_bytes()


@dataclass
class Rig:
    """Flash, partitions, console and MCUboot for one test board."""

    mode: Mode
    flash: NorFlash
    table: PartitionTable
    clock: Clock
    console: Console
    loader: Bootloader
    lines: list[str] = field(default_factory=list)

    def area(self, name: str) -> FlashArea:
        """The partition called ``name``."""
        area = self.table.get(name)
        assert area is not None
        return area

    @property
    def primary(self) -> FlashArea:
        """slot0."""
        return self.area("slot0")

    @property
    def secondary(self) -> FlashArea:
        """slot1."""
        return self.area("slot1")

    def boot(self) -> BootResult:
        """One MCUboot run."""
        return self.loader.boot()

    def install(self, area: FlashArea, data: bytes, off: int = 0) -> None:
        """Program ``data`` at ``off`` in ``area`` (0xFF-padded to whole write blocks)."""
        block = area.write_block
        data += b"\xff" * (-len(data) % block)
        for start in range(0, len(data), SECTOR):
            chunk = data[start:start + SECTOR]
            if chunk.count(0xFF) != len(chunk):
                area.write(off + start, chunk)

    def upload_offset(self) -> int:
        """Where a new image goes in the secondary slot."""
        return SECTOR if self.mode is Mode.OFFSET else 0

    def trailer(self, area: FlashArea) -> Trailer:
        """The trailer of a slot in this build."""
        return Trailer(area, TrailerLayout(area.size, 8, area.write_block, self.mode,
                                           self.loader.max_img_sectors))

    def states(self, image: int = 0) -> tuple[SwapState, SwapState]:
        """(primary, secondary) decoded trailers."""
        primary, secondary = self.table.primary(image), self.table.secondary(image)
        assert primary is not None and secondary is not None
        return self.trailer(primary).read_state(), self.trailer(secondary).read_state()

    def swap_type(self, image: int = 0) -> SwapType:
        """What MCUboot would decide now."""
        return swap_type(*self.states(image), self.mode)

    def snapshot(self) -> bytes:
        """The whole flash."""
        return self.flash.read(0, self.flash.size)

    def restore(self, image: bytes) -> None:
        """Program a snapshot into this (erased) flash."""
        for start in range(0, len(image), SECTOR):
            chunk = image[start:start + SECTOR]
            if chunk.count(0xFF) != len(chunk):
                self.flash.write(start, chunk)


def make_rig(mode: Mode, *, sectors: int = 8, write_block: int = 8, scratch_sectors: int = 2,
             images: int = 1, base: int = 0, secondary_extra: int = 0,
             zephyr_build: str | None = None, **options: object) -> Rig:
    """A board with ``images`` pairs of ``sectors``-sector slots (and a scratch partition)."""
    parts = []
    offset = base
    for index in range(images):
        for slot, count in ((2 * index, sectors), (2 * index + 1, sectors + secondary_extra)):
            parts.append(Partition(f"slot{slot}", offset, count * SECTOR))
            offset += count * SECTOR
    if mode is Mode.SCRATCH:
        parts.append(Partition("scratch", offset, scratch_sectors * SECTOR))
        offset += scratch_sectors * SECTOR
    geometry = FlashGeometry(size=offset, erase_block=SECTOR, write_block=write_block,
                             erase_ms=1.0, write_us=10.0)
    clock = Clock()
    flash = NorFlash(geometry, clock)
    table = PartitionTable(flash, tuple(parts))
    console = Console(clock)
    config = BootloaderConfig(mode=str(mode), **options)  # type: ignore[arg-type]
    loader = Bootloader(config, table, clock, console, zephyr_build=zephyr_build)
    rig = Rig(mode, flash, table, clock, console, loader)
    console.subscribe(rig.lines.append)
    return rig


def slot_image(version: str, payload: int, rig: Rig) -> bytes:
    """A signed image sized for the rig's secondary slot (minus the offset mode's sector)."""
    return signed(version, payload, rig.secondary.size - rig.upload_offset())


def stage(rig: Rig, old: bytes, new: bytes, *, permanent: bool = False) -> None:
    """``old`` running in the primary, ``new`` uploaded and marked pending."""
    rig.install(rig.primary, old)
    rig.install(rig.secondary, new, rig.upload_offset())
    set_pending(rig.secondary, 0, permanent)
