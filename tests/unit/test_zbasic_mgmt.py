"""Group 63, Zephyr basic: storage erase wipes the storage partition sector by sector, and
littlefs answers corruption until the next boot formats it."""

from __future__ import annotations

import dataclasses

import pytest

from smpsim.config import load_profile
from smpsim.device.flash import PowerLoss

from .fs_support import READ, STATUS, V1, WRITE, ZBASIC_GROUP, FsBoard, err

ERASE = 0


def erase(board: FsBoard, version: int = 1) -> bytes:
    return board.raw(WRITE, ERASE, {}, version=version, group=ZBASIC_GROUP)[8:]


def test_erase_storage_answers_empty_and_wipes_the_partition() -> None:
    board = FsBoard()
    board.upload("/lfs1/f", b"data")
    area = board.device.partitions.get("storage")
    assert area is not None and not area.is_erased()
    before = board.device.flash.read(0, area.offset)
    assert erase(board) == b"\xbf\xff"
    assert area.is_erased()
    assert board.device.flash.read(0, area.offset) == before  # nothing else touched


def test_each_sector_is_one_timed_erase() -> None:
    board = FsBoard("nrf52840dk")
    area = board.device.partitions.get("storage")
    assert area is not None
    flash = board.device.flash
    ops, erases = flash.ops, flash.erases
    assert erase(board) == b"\xbf\xff"
    sectors = area.size // 4096
    assert flash.ops - ops == sectors and flash.erases - erases == sectors
    assert board.last is not None and board.last.busy_s == pytest.approx(sectors * 0.085)


def test_littlefs_is_corrupt_until_the_next_boot() -> None:
    board = FsBoard()
    board.upload("/lfs1/f", b"data")
    erase(board)
    board.console.clear()
    assert board.call(READ, STATUS, {"name": "/lfs1/f"}) == err(1)
    assert board.call(READ, STATUS, {"name": "/lfs1/missing"}) == err(1)
    assert board.chunk("/lfs1/new", 0, b"x", len=1) == err(1)
    assert any(line.endswith("Corrupted dir pair at {0x0, 0x1}") for line in board.console)
    assert board.call(READ, STATUS, {"name": "/lfs1"}) == err(4)  # the mount point itself
    board.device.reset()
    assert board.lines("can't mount (LFS -84); formatting")
    assert board.call(READ, STATUS, {"name": "/lfs1/f"}) == err(3)
    assert board.upload("/lfs1/f", b"again") == {"off": 5}


def test_v1_and_the_read_op() -> None:
    board = FsBoard()
    assert erase(board, version=V1) == b"\xbf\xff"
    assert board.call(READ, ERASE, {}, group=ZBASIC_GROUP) == {"rc": 8}
    assert board.raw(WRITE, ERASE, b"", group=ZBASIC_GROUP)[8:] == b"\xbf\xff"  # no payload


def test_no_storage_partition() -> None:
    prof = load_profile("native_sim_serial_raw")  # zbasic without the fs group
    prof = dataclasses.replace(prof, board=dataclasses.replace(prof.board, partitions=()))
    board = FsBoard(prof)
    assert board.call(WRITE, ERASE, {}, group=ZBASIC_GROUP) == {
        "err": {"group": 63, "rc": 2}}
    assert board.lines("<err> mcumgr_zbasic_grp: Failed to open flash area")
    assert board.call(WRITE, ERASE, {}, group=ZBASIC_GROUP, version=V1) == {"rc": 5}


def test_a_power_cut_between_sectors() -> None:
    board = FsBoard("nrf52840dk")
    area = board.device.partitions.get("storage")
    assert area is not None
    board.device.flash.cut_power_before(2)
    with pytest.raises(PowerLoss):
        erase(board)
    assert area.is_erased(0, 4096) and not area.is_erased(4096, 4096)
