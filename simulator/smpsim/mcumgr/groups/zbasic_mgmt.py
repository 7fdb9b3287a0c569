"""Group 63, Zephyr basic: storage erase (``basic_mgmt.c``).

Erases the whole ``storage`` partition, sector by sector, each a flash operation with its erase
time. Nothing tells the file system: littlefs stays mounted on flash that is now blank, and
answers corruption (fs status: ``err {8, 1}`` and littlefs's "Corrupted dir pair" line) until
the next boot formats it, as on the recorded builds.
"""

from __future__ import annotations

from smpsim.device.flash import FlashError
from smpsim.mcumgr.dispatcher import Body, GroupHandlers, Request
from smpsim.mcumgr.errors import GroupError, ZephyrBasicErr

ZBASIC = GroupHandlers("zbasic")

LOG_MODULE = "mcumgr_zbasic_grp"


@ZBASIC.write("erase_storage")
def erase_storage(req: Request) -> Body:
    """``{}`` (the payload is ignored) -> ``{}`` once the storage partition is erased."""
    device = req.device
    area = device.partitions.get("storage")
    if area is None:
        device.console.log("err", LOG_MODULE, "Failed to open flash area")
        raise GroupError(ZephyrBasicErr.FLASH_OPEN_FAILED)
    try:
        for sector in area.sectors:  # flash_area_flatten: the driver erases page by page
            area.erase(sector.offset, sector.size)
    except FlashError:
        device.console.log("err", LOG_MODULE, "Failed to erase flash area")
        raise GroupError(ZephyrBasicErr.FLASH_ERASE_FAILED) from None
    return None
