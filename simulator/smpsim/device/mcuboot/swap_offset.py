"""Swap using offset (``MCUBOOT_SWAP_USING_OFFSET``).

A new image is uploaded one sector up in the secondary slot. The swap walks the sectors from the
bottom: primary sector n goes to secondary sector n, then secondary sector n+1 comes down into
primary sector n. A revert walks the mirror order from the top and puts the rejected image back
one sector up. Two status entries per sector, in the primary trailer.
"""

from __future__ import annotations

from smpsim.device.mcuboot.header import IMAGE_MAGIC, ImageHeader
from smpsim.device.mcuboot.swap import (
    OP_SWAP,
    STATE_0,
    STATE_1,
    STATE_2,
    STATUS_SOURCE_PRIMARY,
    BootStatus,
    SwapContext,
    copy_region,
    erase_region,
    image_size_at,
    read_status_top_down,
    scramble_region,
    scramble_trailer_sectors,
    status_init,
    write_status,
)
from smpsim.device.mcuboot.swap_move import (
    not_enough_space,
    primary_status_source,
    sectors_covering,
)
from smpsim.device.mcuboot.trailer import (
    Magic,
    SwapType,
    Trailer,
    align_up,
)


def find_last_idx(ctx: SwapContext, swap_size: int) -> int:
    """Index (0-based) of the last sector covering ``swap_size``."""
    return sectors_covering(ctx, swap_size) - 1


def reverting(ctx: SwapContext, bs: BootStatus) -> bool:
    """``bs->swap_type == REVERT || boot_swap_type_multi() == REVERT`` (short-circuit kept:
    the second test logs)."""
    return bs.swap_type == SwapType.REVERT or ctx.swap_type_multi() is SwapType.REVERT


class SwapOffset:
    """The swap-offset algorithm."""

    name = "offset"

    def status_source(self, ctx: SwapContext) -> int:
        """Primary slot, or none."""
        return primary_status_source(ctx)

    def read_status_bytes(self, ctx: SwapContext, trailer: Trailer, bs: BootStatus) -> None:
        """The highest written entry tells index and state."""
        found = read_status_top_down(ctx, trailer)
        if found != -1:
            bs.op, bs.idx, bs.state = OP_SWAP, found // 2 + 1, found % 2 + 1

    def status_index(self, ctx: SwapContext, bs: BootStatus) -> int:
        """Two entries per sector index."""
        return (bs.idx - 1) * 2 + bs.state - STATE_0

    def read_image_header(self, ctx: SwapContext, slot: int,
                          bs: BootStatus | None) -> tuple[ImageHeader, bool]:
        """Where each header is depends on the direction and progress of the swap."""
        off = 0
        check_other_sector = True
        if bs is None:
            if slot == 1 and ctx.swap_type_multi() is not SwapType.REVERT:
                off = ctx.sector_size(1, 0)
        elif not bs.is_reset(ctx.mode):
            check_other_sector = False
            last_idx = find_last_idx(ctx, ctx.find_status().read_swap_size())
            sector = ctx.sector_size(0, 0)
            done = bs.idx - 1
            if reverting(ctx, bs):
                if slot == 0:
                    moved = done > last_idx or (done == last_idx and bs.state == STATE_1)
                    slot, off = (1, sector) if moved else (0, 0)
                else:
                    moved = done > last_idx or (done == last_idx and bs.state == STATE_2)
                    slot, off = (0, 0) if moved else (1, 0)
            elif slot == 0:
                moved = (bs.idx > 1 or bs.state == STATE_1) and bs.idx <= last_idx
                slot, off = (1, 0) if moved else (0, 0)
            else:
                slot, off = (0, 0) if bs.idx > 1 else (1, sector)
        elif reverting(ctx, bs):
            off = 0
        elif slot == 1:
            off = ctx.sector_size(1, 0)
        header = ctx.read_header(slot, off)
        if check_other_sector and header.magic != IMAGE_MAGIC and slot == 1:
            off = 0 if ctx.swap_type_multi() is not SwapType.REVERT else ctx.sector_size(1, 0)
            header = ctx.read_header(slot, off)
        if header.magic == IMAGE_MAGIC and bs is not None and slot == 1:
            ctx.secondary_offset = off
        return header, bs is None or header.magic == IMAGE_MAGIC

    def slots_compatible(self, ctx: SwapContext) -> bool:
        """Equal sectors; the secondary has as many as the primary, or one more."""
        pri, sec = ctx.num_sectors(0), ctx.num_sectors(1)
        if sec not in (pri, pri + 1):
            ctx.warn("Cannot upgrade: not a compatible amount of sectors")
            return False
        if pri > ctx.max_img_sectors:
            ctx.warn("Cannot upgrade: more sectors than allowed")
            return False
        if ctx.primary.sector_sizes[:sec - 1] != ctx.secondary.sector_sizes[:sec - 1]:
            ctx.warn("Cannot upgrade: not same sector layout")
            return False
        return True

    def read_image_size(self, ctx: SwapContext, slot: int) -> int:
        """Header to end of TLVs; also records the unprotected TLV size of the slot."""
        base = ctx.secondary_offset if slot == 1 else 0
        size, unprotected = image_size_at(ctx.areas[slot], ctx.headers[slot], base)
        if size:
            ctx.tlv_sizes[slot] = unprotected
        return size

    def swap_run(self, ctx: SwapContext, bs: BootStatus, copy_size: int) -> None:
        """Forward or revert swap; resumes from ``bs``."""
        ctx.info("Starting swap using offset algorithm.")
        last_idx = find_last_idx(ctx, copy_size)
        sector = ctx.sector_size(0, 0)
        if not_enough_space(ctx, bs, last_idx):
            return
        fixup_revert(ctx, bs)
        if bs.idx == 1:
            if bs.source != STATUS_SOURCE_PRIMARY:
                scramble_trailer_sectors(ctx, ctx.trailers[0])
                status_init(ctx, ctx.trailers[0], bs)
            scramble_trailer_sectors(ctx, ctx.trailers[1])
        tlv_pri, tlv_sec = ctx.trailers[0].read_tlv_sizes()
        bs.op = OP_SWAP
        used_pri = _used_sectors(ctx.headers[0], tlv_pri, sector)
        used_sec = _used_sectors(ctx.headers[1], tlv_sec, sector)
        if reverting(ctx, bs):
            for idx in range(last_idx + 1):
                if idx >= bs.idx - 1:
                    mirror = last_idx - idx
                    swap_sectors_revert(ctx, bs, mirror, sector, skip_primary=mirror > used_pri,
                                        skip_secondary=mirror > used_sec)
            first = ctx.secondary.sectors[0]
            scramble_region(ctx.secondary, first.offset, sector)
            scramble_trailer_sectors(ctx, ctx.trailers[1])
        else:
            for idx in range(last_idx + 1):
                if idx >= bs.idx - 1:
                    swap_sectors(ctx, bs, idx, sector, skip_primary=idx > used_pri,
                                 skip_secondary=idx > used_sec)

    def app_max_size(self, ctx: SwapContext) -> int:
        """The trailer sectors less than the primary, and one sector more in the secondary."""
        sector = ctx.sector_size(0, 0)
        trailer = align_up(ctx.trailer_sz, sector)
        pri = ctx.num_sectors(0) * sector - trailer
        sec = ctx.num_sectors(1) * sector - trailer - sector
        return min(pri, sec)


def _used_sectors(header: ImageHeader, unprotected_tlv: int, sector: int) -> int:
    size = header.hdr_size + unprotected_tlv + header.protect_tlv_size + header.img_size
    return (size + sector - 1) // sector


def _swap_pair(ctx: SwapContext, bs: BootStatus, pri_off: int, sec_dst: int, sec_src: int, *,
               size: int, skip_primary: bool, skip_secondary: bool) -> None:
    """One index: the primary sector at ``pri_off`` to the secondary at ``sec_dst`` (status 1),
    then the secondary at ``sec_src`` to the primary (status 2); resumes at ``bs.state``."""
    if bs.state == STATE_0:
        if not skip_primary:
            erase_region(ctx.secondary, sec_dst, size)
            copy_region(ctx.primary, ctx.secondary, pri_off, sec_dst, size)
        write_status(ctx, bs)
        bs.state = STATE_1
    if bs.state == STATE_1:
        if not skip_secondary:
            erase_region(ctx.primary, pri_off, size)
            copy_region(ctx.secondary, ctx.primary, sec_src, pri_off, size)
        write_status(ctx, bs)
        bs.idx += 1
        bs.state = STATE_0


def swap_sectors(ctx: SwapContext, bs: BootStatus, idx: int, size: int, *,
                 skip_primary: bool, skip_secondary: bool) -> None:
    """Forward step: primary idx to secondary idx, then secondary idx+1 to primary idx."""
    _swap_pair(ctx, bs, ctx.sector_off(0, idx), ctx.sector_off(1, idx),
               ctx.sector_off(0, idx + 1), size=size,
               skip_primary=skip_primary, skip_secondary=skip_secondary)


def swap_sectors_revert(ctx: SwapContext, bs: BootStatus, idx: int, size: int, *,
                        skip_primary: bool, skip_secondary: bool) -> None:
    """Revert step: primary idx to secondary idx+1, then secondary idx to primary idx."""
    _swap_pair(ctx, bs, ctx.sector_off(0, idx), ctx.sector_off(1, idx + 1),
               ctx.sector_off(0, idx), size=size,
               skip_primary=skip_primary, skip_secondary=skip_secondary)


def fixup_revert(ctx: SwapContext, bs: BootStatus) -> None:
    """Before a revert starts, give the secondary a trailer (magic, copy_done, no image_ok) that
    the decision table reads as REVERT, so a power cut cannot lose the direction."""
    if bs.swap_type != SwapType.REVERT or bs.idx != 1:
        return
    state = ctx.trailers[1].read_state()
    ctx.info(f"Secondary image: {state.log_text()}")
    if state.magic is Magic.UNSET:
        scramble_trailer_sectors(ctx, ctx.trailers[1])
        ctx.trailers[1].write_copy_done()
        status_init(ctx, ctx.trailers[1], bs)
