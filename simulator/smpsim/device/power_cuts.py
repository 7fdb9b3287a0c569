"""Cut the power before every flash operation of a piece of work, one cut at a time.

The plain way replays the work from the start for each cut: restore the flash, arm
:meth:`~smpsim.device.flash.NorFlash.cut_power_before` ``n``, run until the cut. For a swap of
N operations that is N runs of up to N operations before any recovery is even tried. Here the
work runs once, uncut, and the flash is checkpointed before each of its operations (sparsely: a
checkpoint shares every sector it did not change with the one before); each cut then starts
from its checkpoint, and going from one to the next puts back only the sectors that differ.

The flash is exactly what the replayed cut leaves (its contents and its operation counters;
the read counters stop at the operation before the cut): the work must be deterministic,
depending on nothing but the flash (MCUboot's boot is: it reads its state from flash).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from smpsim.device.flash import Checkpoint, NorFlash

T = TypeVar("T")


def every_power_cut(flash: NorFlash, work: Callable[[], T],
                    recover: Callable[[int], None]) -> tuple[int, T]:
    """Run ``work`` uncut, then for each of its N flash operations ``n`` (1 = the first): set the
    flash as ``work`` cut before operation ``n`` leaves it and call ``recover(n)`` (boot again,
    check). Returns N and what the uncut ``work`` returned; the flash is left as that run left
    it. Same as, for each ``n``: restoring the flash, ``flash.cut_power_before(n)``, ``work()``
    raising :class:`~smpsim.device.flash.PowerLoss`, ``recover(n)``."""
    before = [flash.checkpoint()]
    """``before[k]``: the flash before operation k + 1."""
    watcher = flash.monitor

    def record(kind: str, offset: int, length: int) -> None:
        if watcher is not None:
            watcher(kind, offset, length)
        before.append(flash.checkpoint())

    flash.monitor = record
    try:
        result = work()
    finally:
        flash.monitor = watcher
    done: Checkpoint = before.pop()
    for n, checkpoint in enumerate(before, 1):
        flash.restore(checkpoint)
        recover(n)
    flash.restore(done)
    return len(before), result
