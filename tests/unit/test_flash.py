"""The NOR flash model: erase and write rules, timing, the operation counter and power cuts."""

from __future__ import annotations

from pathlib import Path

import pytest

from smpsim.config import FlashGeometry, Partition, SectorGroup, load_profile
from smpsim.device.clock import Clock
from smpsim.device.flash import (
    ERASED,
    FlashError,
    Misaligned,
    NorFlash,
    NotErased,
    OutOfBounds,
    PowerLoss,
    layout,
)
from smpsim.device.partitions import PartitionTable

SMALL = FlashGeometry(size=0x4000, erase_block=0x1000, write_block=4, erase_ms=85.0,
                      write_us=41.0)


def flash(geometry: FlashGeometry = SMALL, path: Path | None = None) -> NorFlash:
    return NorFlash(geometry, Clock(0.0), path)


def test_in_memory_flash_starts_erased_and_new() -> None:
    f = flash()
    assert f.read(0, f.size) == bytes([ERASED]) * f.size
    assert f.path is None and f.created


@pytest.mark.parametrize(("offset", "length"), [(-1, 1), (0, 0x4001), (0x4000, 1), (10, -1)])
def test_reads_outside_the_chip_fail(offset: int, length: int) -> None:
    with pytest.raises(OutOfBounds):
        flash().read(offset, length)


def test_file_is_created_erased_at_the_profile_size(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "flash.bin"
    f = flash(path=path)
    try:
        assert f.created
        assert path.stat().st_size == 0x4000
        f.write(0x10, b"\x01\x02\x03\x04")
    finally:
        f.close()
    data = path.read_bytes()
    assert data[0x10:0x14] == b"\x01\x02\x03\x04"
    assert data.count(ERASED) == 0x4000 - 4
    again = flash(path=path)
    try:
        assert not again.created
        assert again.read(0x10, 4) == b"\x01\x02\x03\x04"
    finally:
        again.close()


def test_file_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "flash.bin"
    path.write_bytes(b"\xff" * 100)
    with pytest.raises(FlashError, match="100 bytes"):
        flash(path=path)


def test_write_may_only_target_erased_bytes() -> None:
    f = flash()
    f.write(0, b"\x00\xff\xff\xff")
    with pytest.raises(NotErased):
        f.write(0, b"\x00\x00\x00\x00")  # clearing more bits is still a second write
    assert f.read(0, 4) == b"\x00\xff\xff\xff"


@pytest.mark.parametrize(("offset", "data"), [(1, b"\0" * 4), (0, b"\0" * 3), (2, b"\0" * 6)])
def test_write_must_be_aligned_to_write_blocks(offset: int, data: bytes) -> None:
    with pytest.raises(Misaligned):
        flash().write(offset, data)


@pytest.mark.parametrize(("offset", "length"), [(0x800, 0x1000), (0, 0x800), (0x1000, 0x1001)])
def test_erase_must_cover_whole_sectors(offset: int, length: int) -> None:
    with pytest.raises(Misaligned):
        flash().erase(offset, length)


def test_erase_restores_the_erased_value() -> None:
    f = flash()
    f.write(0x1000, b"\0" * 8)
    f.erase(0x1000, 0x1000)
    assert f.is_erased(0x1000, 0x1000)
    assert f.erases == 1 and f.writes == 1 and f.bytes_written == 8


def test_every_operation_costs_the_profile_time() -> None:
    clock = Clock(0.0)
    f = NorFlash(SMALL, clock)
    f.erase(0, 0x2000)  # two pages
    assert clock.now() == pytest.approx(2 * 0.085)
    f.write(0, b"\0" * 16)  # four words
    assert clock.now() == pytest.approx(2 * 0.085 + 4 * 41e-6)
    f.read(0, 0x4000)  # reads are free
    assert clock.now() == pytest.approx(2 * 0.085 + 4 * 41e-6)


def test_power_cut_before_the_nth_operation_leaves_it_undone() -> None:
    f = flash()
    f.cut_power_before(2)
    f.write(0, b"\x11" * 4)
    with pytest.raises(PowerLoss):
        f.write(4, b"\x22" * 4)
    assert f.read(0, 8) == b"\x11" * 4 + b"\xff" * 4
    assert f.ops == 1
    f.write(4, b"\x22" * 4)  # the hook is one-shot: the next power-on works
    assert f.ops == 2


def test_mixed_sector_layout_with_per_size_erase_times() -> None:
    geometry = FlashGeometry(size=0x100000, write_block=1, sectors=(
        SectorGroup(0x4000, 4, 250.0), SectorGroup(0x10000, 1, 550.0),
        SectorGroup(0x20000, 7, 1000.0)))
    sectors = layout(geometry)
    assert [s.size for s in sectors] == [0x4000] * 4 + [0x10000] + [0x20000] * 7
    assert sectors[5].offset == 0x20000
    clock = Clock(0.0)
    f = NorFlash(geometry, clock)
    f.erase(0x10000, 0x30000)  # the 64 KiB sector and the first 128 KiB one
    assert clock.now() == pytest.approx(1.55)
    with pytest.raises(Misaligned):
        f.erase(0x20000, 0x10000)  # half a 128 KiB sector


def test_program_is_a_probe_write_without_time_or_operations() -> None:
    clock = Clock(0.0)
    f = NorFlash(SMALL, clock)
    f.write(0x1ff0, b"\x00" * 16)
    f.program(0x1000, b"\xab" * 10)
    assert f.read(0x1000, 10) == b"\xab" * 10
    assert f.is_erased(0x100a, 0xff6)  # the rest of the touched sector was erased first
    assert f.ops == 1 and clock.now() == pytest.approx(4 * 41e-6)


def test_partitions_read_and_write_relative_to_their_start() -> None:
    f = flash()
    table = PartitionTable(f, (Partition("slot0", 0x1000, 0x1000),
                               Partition("slot1", 0x2000, 0x2000)))
    area = table.areas["slot1"]
    area.write(0x10, b"\x01\x02\x03\x04")
    assert f.read(0x2010, 4) == b"\x01\x02\x03\x04"
    assert [s.offset for s in area.sectors] == [0, 0x1000]
    with pytest.raises(OutOfBounds):
        area.read(0x1ffe, 4)
    assert table.image_count == 1
    assert table.primary(0) is table.areas["slot0"] and table.secondary(0) is area


def test_every_builtin_board_has_a_consistent_flash() -> None:
    for name in ("nrf52840dk", "nrf5340dk", "stm32f4", "esp32c3", "fast",
                 "qemu_cortex_m0_img"):
        profile = load_profile(name)
        f = NorFlash(profile.board.flash, Clock(0.0))
        assert f.sectors[-1].offset + f.sectors[-1].size == profile.board.flash.size
        table = PartitionTable(f, profile.board.partitions)  # every partition on sector edges
        assert table.image_count >= 1
