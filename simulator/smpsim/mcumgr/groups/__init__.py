"""Group handler modules, one per management group, and the table of those implemented."""

from __future__ import annotations

from smpsim.mcumgr.dispatcher import GroupHandlers
from smpsim.mcumgr.groups.img_mgmt import IMG
from smpsim.mcumgr.groups.os_mgmt import OS
from smpsim.mcumgr.groups.shell_mgmt import SHELL

IMPLEMENTED: dict[str, GroupHandlers] = {g.name: g for g in (OS, IMG, SHELL)}
"""Group name -> handlers. Groups absent here answer ``{"rc": 8}`` even when enabled."""
