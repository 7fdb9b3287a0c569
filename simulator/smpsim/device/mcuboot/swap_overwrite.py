"""Overwrite-only (``MCUBOOT_OVERWRITE_ONLY``, without the FAST option).

The secondary slot is copied over the whole primary slot, then its first and last sectors are
erased. There is no status and no revert: the secondary stays intact until the copy is done, so
a power cut just makes the next boot start over.
"""

from __future__ import annotations

from smpsim.device.mcuboot.header import ImageHeader
from smpsim.device.mcuboot.swap import (
    STATUS_SOURCE_NONE,
    BootStatus,
    SwapContext,
    copy_region,
    erase_region,
    image_size_at,
    scramble_region,
)
from smpsim.device.mcuboot.swap_scratch import tiles
from smpsim.device.mcuboot.trailer import Trailer


class Overwrite:
    """``MCUBOOT_OVERWRITE_ONLY``: copy the secondary over the primary; no status, no revert."""

    name = "overwrite"

    def status_source(self, ctx: SwapContext) -> int:
        """Overwrite keeps no status."""
        return STATUS_SOURCE_NONE

    def read_status_bytes(self, ctx: SwapContext, trailer: Trailer, bs: BootStatus) -> None:
        """Overwrite keeps no status."""

    def status_index(self, ctx: SwapContext, bs: BootStatus) -> int:
        """Overwrite keeps no status."""
        return 0

    def read_image_header(self, ctx: SwapContext, slot: int,
                          bs: BootStatus | None) -> tuple[ImageHeader, bool]:
        """Headers never move."""
        return ctx.read_header(slot), True

    def slots_compatible(self, ctx: SwapContext) -> bool:
        """Sectors of one slot must tile the other's."""
        return tiles(ctx, check_scratch=False)

    def read_image_size(self, ctx: SwapContext, slot: int) -> int:
        """Header to end of TLVs."""
        return image_size_at(ctx.areas[slot], ctx.headers[slot])[0]

    def swap_run(self, ctx: SwapContext, bs: BootStatus, copy_size: int) -> None:
        """``boot_copy_image``: erase the primary, copy the whole secondary, erase its ends."""
        ctx.info(f"Image {ctx.image} upgrade secondary slot -> primary slot")
        ctx.info("Erasing the primary slot")
        for sector in ctx.primary.sectors:
            erase_region(ctx.primary, sector.offset, sector.size)
        size = sum(s.size for s in ctx.primary.sectors)
        ctx.info(f"Image {ctx.image} copying the secondary slot to the primary slot: "
                 f"{size:#x} bytes")
        copy_region(ctx.secondary, ctx.primary, 0, 0, size)
        first, last = ctx.secondary.sectors[0], ctx.secondary.sectors[-1]
        scramble_region(ctx.secondary, first.offset, first.size)
        scramble_region(ctx.secondary, last.offset, last.size)

    def app_max_size(self, ctx: SwapContext) -> int:
        """``boot_swap_info_off`` of the primary."""
        return ctx.trailers[0].layout.swap_info_off
