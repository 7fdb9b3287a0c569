"""Every group and command smp_svr can enable, and every shell root command, by the names
profiles use.

These are the lists profiles are checked against when they load. A group or command listed here
but not yet implemented by a handler module answers ``{"rc": 8}``, exactly as a build without it.
"""

from __future__ import annotations

from smpsim.records import Frozen, frozen


@frozen
class GroupInfo(Frozen):
    """A management group as Zephyr registers it."""

    group_id: int
    """Group id on the wire."""
    name: str
    """Name reported by enum details (``mg_group_name``)."""
    symbol: str
    """``MCUMGR_HANDLER_DEFINE`` name; the linker sorts registration by it."""
    commands: dict[str, int]
    """Profile name of each command -> command id."""


GROUPS: dict[str, GroupInfo] = {
    "os": GroupInfo(0, "os mgmt", "os_mgmt", {
        "echo": 0, "taskstat": 2, "datetime": 4, "reset": 5, "params": 6, "info": 7,
        "bootloader_info": 8,
    }),
    "img": GroupInfo(1, "img mgmt", "img_mgmt", {
        "state": 0, "upload": 1, "erase": 5, "slot_info": 6,
    }),
    "stat": GroupInfo(2, "stat mgmt", "stat_mgmt", {"show": 0, "list": 1}),
    "settings": GroupInfo(3, "settings mgmt", "settings_mgmt", {
        "read_write": 0, "delete": 1, "commit": 2, "load_save": 3,
    }),
    "fs": GroupInfo(8, "fs mgmt", "fs_mgmt", {
        "file": 0, "status": 1, "hash": 2, "supported_hashes": 3, "close": 4,
    }),
    "shell": GroupInfo(9, "shell mgmt", "shell_mgmt", {"exec": 0}),
    "enum": GroupInfo(10, "enum mgmt", "enum_mgmt", {
        "count": 0, "list": 1, "single": 2, "details": 3,
    }),
    "zbasic": GroupInfo(63, "zephyr basic mgmt", "zephyr_basic_mgmt", {"erase_storage": 0}),
}

SHELL_COMMANDS = ("clear", "date", "device", "fs", "help", "history", "kernel", "mcuboot", "rem",
                  "resize", "retval", "shell", "stats")
"""Root commands the board's shell can have (``firmware.shell.commands`` picks from them)."""
