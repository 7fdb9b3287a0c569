"""The shell's ``stats`` command (``STATS_SHELL``, ``subsys/stats/stats_shell.c``).

``stats list`` walks every registered group and prints, for each, its header line and one line
per field with the field's offset in the group's structure and its RAM address. The structures
are laid out as a 32-bit build lays them: a 24-byte ``struct stats_hdr`` followed by the 4-byte
counters, one group after the other in the application's RAM.
"""

from __future__ import annotations

from smpsim.device.shell.core import Command, Shell

HDR_SIZE = 24
"""``sizeof(struct stats_hdr)`` with ``STATS_NAMES`` on a 32-bit target."""
ENTRY_SIZE = 4
"""``STATS_SIZE_32``."""
RAM_OFFSET = 0x1400
"""Where the first group's structure sits, from the start of RAM."""


def _ptr(value: int) -> str:
    return f"0x{value:x}"  # cbprintf's %p


def _cmd_stats_list(shell: Shell, argv: list[str]) -> int:
    stats = shell.device.stats
    addr = shell.config.ram_base + RAM_OFFSET
    for group in stats.groups:
        shell.print(f"Stats Group {group.name} (hdr addr: {_ptr(addr)})")
        for index, (name, value) in enumerate(stats.values(group)):
            off = HDR_SIZE + index * ENTRY_SIZE
            shell.print(f"\t{name} (offset: {off}, addr: {_ptr(addr + off)}): {value}")
        addr += HDR_SIZE + len(group.field_names) * ENTRY_SIZE
    return 0


STATS = (Command("stats", "Stats commands", subcmds=(
    Command("list", "List all statistics groups", _cmd_stats_list),
)))
