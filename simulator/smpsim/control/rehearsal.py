"""How many flash operations a swap will take, found by rehearsing the boot on a copy of the
flash: MCUboot's work depends on the slots' contents, sector layout and any swap left half done,
so running the same code on the same bytes is the one count that is always right.
"""

from __future__ import annotations

from typing import Any

from smpsim.device.clock import Clock
from smpsim.device.console import Console
from smpsim.device.flash import NorFlash
from smpsim.device.mcu import Device
from smpsim.device.mcuboot.bootloader import Bootloader
from smpsim.device.partitions import PartitionTable


def swap_ops(device: Device, snapshot: bytes | None, image: int) -> int:
    """Flash operations of ``image``'s swap in a boot that starts from ``snapshot``; 0 if the
    rehearsal does no swap for it (or there is nothing to rehearse on)."""
    real = device.bootloader
    if real is None or snapshot is None:
        return 0
    clock = Clock(0.0)
    flash = NorFlash.from_snapshot(device.profile.board.flash, clock, snapshot)
    partitions = PartitionTable(flash, device.profile.board.partitions)
    boot = Bootloader(real.config, partitions, clock, Console(clock), keys=real.keys)
    marks: dict[str, int] = {}

    def watch(kind: str, fields: dict[str, Any]) -> None:
        if kind == "swap" and fields.get("image") == image:
            marks.setdefault(str(fields.get("phase")), flash.ops)

    boot.events.listeners.append(watch)
    boot.boot()
    return marks.get("done", 0) - marks.get("start", 0)
