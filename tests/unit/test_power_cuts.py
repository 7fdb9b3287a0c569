"""every_power_cut: each cut point sees the flash as a cut there leaves it, the work runs once
uncut, a watcher of the flash keeps watching, and the flash ends as the uncut work left it."""

from __future__ import annotations

import pytest

from smpsim.config import FlashGeometry
from smpsim.device.clock import Clock
from smpsim.device.flash import NorFlash, PowerLoss
from smpsim.device.power_cuts import every_power_cut

SMALL = FlashGeometry(size=0x4000, erase_block=0x1000, write_block=4, erase_ms=85.0,
                      write_us=41.0)


def work(flash: NorFlash) -> str:
    flash.write(0x1000, b"\x01" * 4)
    flash.erase(0x1000, 0x1000)
    flash.write(0x1000, b"\x02" * 8)
    flash.write(0x2ffc, b"\x03" * 8)  # across two sectors
    return "done"


def replayed_cut(n: int) -> tuple[bytes, int]:
    flash = NorFlash(SMALL, Clock())
    flash.write(0, b"\x00" * 4)
    flash.cut_power_before(n)
    with pytest.raises(PowerLoss):
        work(flash)
    return flash.snapshot(), flash.ops


def test_each_cut_point_sees_the_flash_a_replayed_cut_leaves() -> None:
    flash = NorFlash(SMALL, Clock())
    flash.write(0, b"\x00" * 4)
    watched: list[tuple[str, int, int]] = []
    flash.monitor = lambda kind, offset, length: watched.append((kind, offset, length))
    seen: list[tuple[int, bytes, int]] = []

    def recover(n: int) -> None:
        seen.append((n, flash.snapshot(), flash.ops))
        flash.erase(0x1000, 0x2000)  # whatever a recovery does is undone for the next cut

    total, result = every_power_cut(flash, lambda: work(flash), recover)
    assert (total, result) == (4, "done")
    assert seen == [(n, *replayed_cut(n)) for n in range(1, 5)]
    uncut = NorFlash(SMALL, Clock())
    uncut.write(0, b"\x00" * 4)
    work(uncut)
    assert (flash.snapshot(), flash.ops) == (uncut.snapshot(), uncut.ops)
    # The watcher saw the uncut run and each recovery's erase, and watches on.
    assert watched[:4] == [("write", 0x1000, 4), ("erase", 0x1000, 0x1000),
                           ("write", 0x1000, 8), ("write", 0x2ffc, 8)]
    assert watched[4:] == [("erase", 0x1000, 0x2000)] * 4
    assert flash.monitor is not None
