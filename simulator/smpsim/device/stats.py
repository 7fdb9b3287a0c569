"""Zephyr's statistics groups (``subsys/stats``) as the profile declares them.

Each group counts what its kind counts (:data:`smpsim.config.STATS_KINDS`):

* ``smp_svr``: ``ticks``, which the sample's main loop increments once a second after a
  one-second sleep, so it reads the whole seconds since the application started;
* ``flash_sim``: the flash simulator driver's counters, taken from the flash model's own
  (:class:`~smpsim.device.flash.NorFlash`): read, write and erase calls, bytes read and written,
  erase cycles of each erase unit. Its ``*_time_us`` fields count only with
  ``FLASH_SIMULATOR_SIMULATE_TIMING``, and writes over programmed bytes are refused before any
  counting, so those fields and ``double_writes`` and ``dirty_read_unit<N>`` stay 0;
* ``flash_sim_thresholds``: the driver's fault-injection thresholds, 0 unless a test sets them;
* ``none``: counters nothing increments.

All of them are RAM: :meth:`Stats.reset` runs when the application starts (after MCUboot, whose
flash work the application never sees), and values count from there. Every group here is
``STATS_SIZE_32``: values wrap at 2**32.
"""

from __future__ import annotations

from collections.abc import Callable

from smpsim.config import StatsGroup
from smpsim.device.flash import NorFlash

_U32 = 0xFFFFFFFF
_FLASH_COUNTERS = {
    "bytes_read": "bytes_read",
    "bytes_written": "bytes_written",
    "flash_read_calls": "reads",
    "flash_write_calls": "writes",
    "flash_erase_calls": "erase_calls",
}
"""flash_sim_stats field -> NorFlash counter."""


class Stats:
    """The statistics groups registered on one device, in registration order."""

    def __init__(self, groups: tuple[StatsGroup, ...], flash: NorFlash,
                 ticks: Callable[[], int]) -> None:
        self._flash = flash
        self._ticks = ticks
        """The sample's ``ticks``: whole seconds the application has run (0 when it is not)."""
        self.groups = groups
        """Registered groups, in registration order (``stats_group_get_next``)."""
        self._flash_base: dict[str, int] = {}
        self._unit_base: list[int] = []
        self.reset()

    def reset(self) -> None:
        """Zero every counter: the application (re)starts."""
        flash = self._flash
        self._flash_base = {attr: getattr(flash, attr) for attr in _FLASH_COUNTERS.values()}
        self._unit_base = list(flash.sector_erases)

    def find(self, name: str) -> StatsGroup | None:
        """``stats_group_find``: the group registered as ``name``."""
        for group in self.groups:
            if group.name == name:
                return group
        return None

    def values(self, group: StatsGroup) -> list[tuple[str, int]]:
        """``stats_walk``: (field, value) of every field of ``group``, in order."""
        return [(name, self._value(group, name) & _U32) for name in group.field_names]

    def _value(self, group: StatsGroup, field: str) -> int:
        if group.kind == "smp_svr" and field == "ticks":
            return self._ticks()
        if group.kind != "flash_sim":
            return 0
        flash = self._flash
        attr = _FLASH_COUNTERS.get(field)
        if attr is not None:
            return int(getattr(flash, attr)) - self._flash_base[attr]
        if field.startswith("erase_cycles_unit"):
            unit = int(field.removeprefix("erase_cycles_unit"))
            if unit < len(flash.sector_erases):
                return flash.sector_erases[unit] - self._unit_base[unit]
        return 0
