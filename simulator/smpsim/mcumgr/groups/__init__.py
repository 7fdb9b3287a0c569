"""Group handler modules, one per management group, and the table of those implemented."""

from __future__ import annotations

from smpsim.mcumgr.dispatcher import GroupHandlers
from smpsim.mcumgr.groups.enum_mgmt import ENUM
from smpsim.mcumgr.groups.fs_mgmt import FS
from smpsim.mcumgr.groups.img_mgmt import IMG
from smpsim.mcumgr.groups.os_mgmt import OS
from smpsim.mcumgr.groups.settings_mgmt import SETTINGS
from smpsim.mcumgr.groups.shell_mgmt import SHELL
from smpsim.mcumgr.groups.stat_mgmt import STAT
from smpsim.mcumgr.groups.zbasic_mgmt import ZBASIC

IMPLEMENTED: dict[str, GroupHandlers] = {g.name: g for g in (
    OS, IMG, STAT, SETTINGS, FS, SHELL, ENUM, ZBASIC)}
"""Group name -> handlers. Groups absent here answer ``{"rc": 8}`` even when enabled."""
