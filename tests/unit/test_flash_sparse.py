"""The flash model's sparse storage: a board costs what it wrote, sectors read from flash files
or programmed by the factory are shared until written, and the flash file stays exactly the
chip's flash through every operation."""

from __future__ import annotations

from pathlib import Path

import pytest

from smpsim.config import FlashGeometry, load_profile
from smpsim.device.clock import Clock
from smpsim.device.flash import ERASED, NorFlash, NotErased, PowerLoss

SMALL = FlashGeometry(size=0x4000, erase_block=0x1000, write_block=4, erase_ms=85.0,
                      write_us=41.0)
NRF = load_profile("nrf52840dk").board.flash


def flash(geometry: FlashGeometry = SMALL, path: Path | None = None) -> NorFlash:
    return NorFlash(geometry, Clock(0.0), path)


def test_an_erased_flash_holds_nothing() -> None:
    f = flash(NRF)
    assert f.stored_bytes == 0
    assert all(f.sector_erased(i) for i in range(len(f.sectors)))
    assert f.is_erased(0, f.size)


def test_a_write_materialises_only_its_sector_and_an_erase_frees_it() -> None:
    f = flash(NRF)
    f.write(0x5000, b"\x00\x01\x02\x03")
    assert f.stored_bytes == 0x1000
    assert not f.sector_erased(5) and f.sector_erased(4) and f.sector_erased(6)
    assert not f.is_erased(0x4000, 0x3000) and f.is_erased(0x5004, 0xffc)
    f.erase(0x5000, 0x1000)
    assert f.stored_bytes == 0 and f.sector_erased(5)
    assert f.read(0x5000, 4) == b"\xff" * 4


def test_writing_erased_bytes_keeps_the_sector_erased() -> None:
    f = flash()
    f.write(0x1000, b"\xff" * 16)
    assert f.sector_erased(1) and f.stored_bytes == 0
    assert f.ops == 1 and f.writes == 1  # still an operation, with its time
    f.write(0x1000, b"\x00" * 4)  # and the bytes are still erased: they may be written
    assert not f.sector_erased(1)


def test_a_write_across_sectors_materialises_both() -> None:
    f = flash()
    f.write(0xffc, b"\x01" * 8)
    assert not f.sector_erased(0) and not f.sector_erased(1)
    assert f.read(0xff8, 16) == b"\xff" * 4 + b"\x01" * 8 + b"\xff" * 4


def test_nor_rules_hold_on_sectors_read_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "flash.bin"
    first = flash(path=path)
    first.write(0x2000, b"\x0f\xff\xff\xff")
    first.close()
    again = flash(path=path)
    try:
        assert again.stored_bytes == 0  # read-only until written: shared, not its own
        assert not again.sector_erased(2) and again.sector_erased(3)
        with pytest.raises(NotErased):
            again.write(0x2000, b"\x00\xff\xff\xff")
        again.write(0x2004, b"\x01\x02\x03\x04")  # erased bytes of a loaded sector
        assert again.read(0x2000, 8) == b"\x0f\xff\xff\xff\x01\x02\x03\x04"
    finally:
        again.close()


def test_identical_sectors_are_shared_and_copied_on_write(tmp_path: Path) -> None:
    image = bytes(range(256)) * 16
    boards = [flash(path=tmp_path / f"{n}.bin") for n in range(3)]
    for board in boards:
        board.program(0x1000, image)
    try:
        assert [b.stored_bytes for b in boards] == [0, 0, 0]
        boards[0].erase(0x1000, 0x1000)
        boards[1].erase(0x1000, 0x1000)
        boards[1].write(0x1000, b"\x00" * 4)
        assert boards[2].read(0x1000, 0x1000) == image  # the others' changes are their own
        assert boards[0].is_erased(0x1000, 0x1000)
        assert boards[1].read(0x1000, 8) == b"\x00" * 4 + b"\xff" * 4
    finally:
        for board in boards:
            board.close()


def test_the_file_is_the_chip_after_every_kind_of_operation(tmp_path: Path) -> None:
    path = tmp_path / "flash.bin"
    f = flash(path=path)
    try:
        f.program(0x100, b"\xab" * 300)
        f.write(0x3000, b"\x12\x34\x56\x78")
        f.write(0xffc, b"\x00" * 8)
        f.erase(0x2000, 0x1000)
        on_disk = path.read_bytes()  # no close, no flush: a killed process leaves this
        assert on_disk == f.read(0, f.size)
        assert on_disk[0x100:0x22c] == b"\xab" * 300
        assert on_disk[0x3000:0x3004] == b"\x12\x34\x56\x78"
    finally:
        f.close()
    again = flash(path=path)
    try:
        assert again.read(0, again.size) == on_disk
        assert [again.sector_erased(i) for i in range(4)] == [False, False, True, False]
    finally:
        again.close()


def test_a_new_file_is_erased_at_the_chip_size(tmp_path: Path) -> None:
    path = tmp_path / "new.bin"
    flash(NRF, path=path).close()
    data = path.read_bytes()
    assert len(data) == NRF.size and data.count(ERASED) == NRF.size


def test_a_power_cut_leaves_memory_and_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "flash.bin"
    f = flash(path=path)
    try:
        f.cut_power_before(1)
        with pytest.raises(PowerLoss):
            f.write(0, b"\x00" * 4)
        with pytest.raises(PowerLoss):
            f.cut_power_before(1)
            f.erase(0, 0x1000)
        assert f.stored_bytes == 0 and path.read_bytes().count(ERASED) == SMALL.size
    finally:
        f.close()


def test_a_thousand_idle_flashes_cost_little_memory() -> None:
    import tracemalloc

    from smpsim.device.mcuboot.builtin import factory_image
    image = factory_image("ecdsa-p256")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        boards = []
        for _ in range(1000):
            board = flash(NRF)
            board.program(0xC000, image)  # the factory image, shared by all
            boards.append(board)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(b.read(0xC000, len(image)) == image for b in boards[:3])
    # 1 MiB each if held whole; a flash of sparse sectors costs its lists (about 5 KB)
    assert used < 1000 * 8 * 1024, f"{used / 1000:.0f} bytes per flash"


def _state(f: NorFlash) -> tuple[bytes, tuple[int, ...], list[int]]:
    return (f.snapshot(), (f.ops, f.erases, f.writes, f.bytes_written, f.erase_calls),
            list(f.sector_erases))


def test_a_checkpoint_restores_contents_and_counters_and_stays_as_taken(
        tmp_path: Path) -> None:
    path = tmp_path / "flash.bin"
    f = flash(path=path)
    f.write(0x1000, b"\x01" * 8)
    f.write(0x2000, b"\x02" * 8)
    checkpoint = f.checkpoint()
    before = _state(f)
    f.write(0x1008, b"\x03" * 8)  # the frozen sector is copied, not changed under the checkpoint
    f.erase(0x2000, 0x1000)
    f.write(0x3ff8, b"\x04" * 8)
    f.restore(checkpoint)
    assert _state(f) == before and path.read_bytes() == before[0]
    f.write(0x1008, b"\x05" * 8)  # a restored sector is written as any other
    f.restore(checkpoint)
    assert _state(f) == before and path.read_bytes() == before[0]
    assert f.read(0x1008, 8) == b"\xff" * 8


def test_a_restore_leaves_an_armed_power_cut_armed() -> None:
    f = flash()
    checkpoint = f.checkpoint()
    f.cut_power_before(2)
    f.restore(checkpoint)
    f.write(0, b"\x00" * 4)
    with pytest.raises(PowerLoss):
        f.write(4, b"\x00" * 4)
