"""Swap using move (``MCUBOOT_SWAP_USING_MOVE``).

The primary image is first moved up by one sector, top sector first; then, sector by sector from
the bottom, the secondary's sector goes down into the primary and the moved-up primary sector
goes into the secondary. One status entry follows each step; the primary trailer holds them.
"""

from __future__ import annotations

from smpsim.device.mcuboot.header import IMAGE_MAGIC, ImageHeader
from smpsim.device.mcuboot.swap import (
    OP_MOVE,
    OP_SWAP,
    STATE_0,
    STATE_1,
    STATUS_SOURCE_NONE,
    STATUS_SOURCE_PRIMARY,
    BootStatus,
    SwapContext,
    copy_region,
    erase_region,
    image_size_at,
    read_status_top_down,
    scramble_trailer_sectors,
    status_init,
    write_status,
)
from smpsim.device.mcuboot.trailer import (
    Flag,
    Magic,
    SwapType,
    Trailer,
    align_up,
)


def sectors_covering(ctx: SwapContext, swap_size: int) -> int:
    """Number of sectors covering ``swap_size`` (at least one): swap-move's ``last_idx``."""
    sector = ctx.sector_size(0, 0)
    count, covered = 1, sector
    while covered < swap_size:
        count, covered = count + 1, covered + sector
    return count


def log_states(ctx: SwapContext) -> tuple[Magic, Flag, Magic]:
    """Log both trailers as ``swap_status_source`` does; (primary magic, copy_done, sec magic)."""
    primary = ctx.trailers[0].read_state()
    ctx.info(f"Primary image: {primary.log_text()}")
    secondary = ctx.trailers[1].read_state()
    ctx.info(f"Secondary image: {secondary.log_text()}")
    return primary.magic, primary.copy_done, secondary.magic


def primary_status_source(ctx: SwapContext) -> int:
    """Move and offset: the primary holds the status iff its swap started and did not finish."""
    primary_magic, copy_done, secondary_magic = log_states(ctx)
    if (primary_magic is Magic.GOOD and copy_done is Flag.UNSET
            and secondary_magic is not Magic.GOOD):
        ctx.info("Boot source: primary slot")
        return STATUS_SOURCE_PRIMARY
    ctx.info("Boot source: none")
    return STATUS_SOURCE_NONE


def not_enough_space(ctx: SwapContext, bs: BootStatus, used: int) -> bool:
    """The new-swap check shared by move and offset: ``used`` sectors must stay below the
    trailer's first sector. Logs and clears the swap type when they do not."""
    if not bs.is_reset(ctx.mode):
        return False
    sector = ctx.sector_size(0, 0)
    first_trailer_idx = ctx.num_sectors(0) - 1
    covered = sector
    while covered < ctx.trailer_sz:
        covered += sector
        first_trailer_idx -= 1
    if used < first_trailer_idx:
        return False
    ctx.warn("Not enough free space to run swap upgrade")
    ctx.warn(f"required {(used + 1) * sector} bytes but only {first_trailer_idx * sector} "
             "are available")
    bs.swap_type = SwapType.NONE
    return True


class SwapMove:
    """The swap-move algorithm."""

    name = "move"

    def status_source(self, ctx: SwapContext) -> int:
        """Primary slot, or none."""
        return primary_status_source(ctx)

    def read_status_bytes(self, ctx: SwapContext, trailer: Trailer, bs: BootStatus) -> None:
        """The highest written entry tells the phase, index and state."""
        found = read_status_top_down(ctx, trailer)
        if found == -1:
            return
        moves = ctx.max_img_sectors
        if found < moves:
            bs.op, bs.idx, bs.state = OP_MOVE, found + 1, STATE_0
        else:
            bs.op, bs.idx, bs.state = OP_SWAP, (found - moves) // 2 + 1, (found - moves) % 2 + 1

    def status_index(self, ctx: SwapContext, bs: BootStatus) -> int:
        """Move entries first (one per index), then two per index for the swap phase."""
        if bs.op == OP_MOVE:
            return bs.idx - 1 + bs.state - STATE_0
        return ctx.max_img_sectors + (bs.idx - 1) * 2 + bs.state - STATE_0

    def read_image_header(self, ctx: SwapContext, slot: int,
                          bs: BootStatus | None) -> tuple[ImageHeader, bool]:
        """Mid-swap the headers sit one sector up, or in the other slot."""
        off = 0
        if bs is not None and not bs.is_reset(ctx.mode):
            last_idx = sectors_covering(ctx, ctx.find_status().read_swap_size())
            sector = ctx.sector_size(0, 0)
            if bs.op == OP_MOVE and slot == 0 and bs.idx > last_idx:
                off = sector
            elif bs.op == OP_SWAP:
                if 1 < bs.idx <= last_idx:
                    slot = 1 - slot
                elif bs.idx == 1:
                    if slot == 0:
                        off = sector
                    elif slot == 1 and bs.state == STATE_1:
                        slot = 0
        header = ctx.read_header(slot, off)
        return header, bs is None or header.magic == IMAGE_MAGIC

    def slots_compatible(self, ctx: SwapContext) -> bool:
        """Equal sector sizes; the primary has as many sectors as the secondary, or one more."""
        pri, sec = ctx.num_sectors(0), ctx.num_sectors(1)
        if pri not in (sec, sec + 1):
            ctx.warn("Cannot upgrade: not a compatible amount of sectors")
            return False
        if pri > ctx.max_img_sectors:
            ctx.warn("Cannot upgrade: more sectors than allowed")
            return False
        same = ctx.primary.sector_sizes[:sec] == ctx.secondary.sector_sizes[:sec]
        if same and pri > sec:
            same = ctx.sector_size(0, sec) == ctx.sector_size(0, sec - 1)
        if not same:
            ctx.warn("Cannot upgrade: not same sector layout")
            return False
        return True

    def read_image_size(self, ctx: SwapContext, slot: int) -> int:
        """Header to end of TLVs."""
        return image_size_at(ctx.areas[slot], ctx.headers[slot])[0]

    def swap_run(self, ctx: SwapContext, bs: BootStatus, copy_size: int) -> None:
        """Move the primary up, then swap sector by sector; resumes from ``bs``."""
        ctx.info("Starting swap using move algorithm.")
        last_idx = sectors_covering(ctx, copy_size)
        sector = ctx.sector_size(0, 0)
        if not_enough_space(ctx, bs, last_idx):
            return
        fixup_revert(ctx, bs)
        if bs.op == OP_MOVE:
            for idx in range(last_idx, 0, -1):
                if idx <= last_idx - bs.idx + 1:
                    move_sector_up(ctx, bs, idx, sector)
            bs.idx = 1
        bs.op = OP_SWAP
        for idx in range(1, last_idx + 1):
            if idx >= bs.idx:
                swap_sectors(ctx, bs, idx, sector)

    def app_max_size(self, ctx: SwapContext) -> int:
        """One sector and the trailer sectors less than the slot."""
        sector = ctx.sector_size(0, 0)
        trailer = align_up(ctx.trailer_sz, sector)
        pri = ctx.num_sectors(0) * sector - trailer - sector
        sec = ctx.num_sectors(1) * sector - trailer
        return min(pri, sec)


def move_sector_up(ctx: SwapContext, bs: BootStatus, idx: int, size: int) -> None:
    """``boot_move_sector_up``: primary sector idx-1 to idx (status init on the first step)."""
    new_off, old_off = ctx.sector_off(0, idx), ctx.sector_off(0, idx - 1)
    if bs.idx == 1:
        if bs.source != STATUS_SOURCE_PRIMARY:
            scramble_trailer_sectors(ctx, ctx.trailers[0])
            status_init(ctx, ctx.trailers[0], bs)
        scramble_trailer_sectors(ctx, ctx.trailers[1])
    erase_region(ctx.primary, new_off, size)
    copy_region(ctx.primary, ctx.primary, old_off, new_off, size)
    write_status(ctx, bs)
    bs.idx += 1


def swap_sectors(ctx: SwapContext, bs: BootStatus, idx: int, size: int) -> None:
    """``boot_swap_sectors``: secondary idx-1 down into the primary, moved-up primary across."""
    pri_up_off = ctx.sector_off(0, idx)
    pri_off = ctx.sector_off(0, idx - 1)
    sec_off = ctx.sector_off(1, idx - 1)
    if bs.state == STATE_0:
        erase_region(ctx.primary, pri_off, size)
        copy_region(ctx.secondary, ctx.primary, sec_off, pri_off, size)
        write_status(ctx, bs)
        bs.state = STATE_1
    if bs.state == STATE_1:
        erase_region(ctx.secondary, sec_off, size)
        copy_region(ctx.primary, ctx.secondary, pri_up_off, sec_off, size)
        write_status(ctx, bs)
        bs.idx += 1
        bs.state = STATE_0


def fixup_revert(ctx: SwapContext, bs: BootStatus) -> None:
    """Make a fresh revert look like a permanent request from the secondary, so a power cut
    before the primary status is re-initialised still swaps the same way."""
    if bs.swap_type != SwapType.REVERT or bs.op != OP_MOVE or bs.idx != 1:
        return
    state = ctx.trailers[1].read_state()
    ctx.info(f"Secondary image: {state.log_text()}")
    if state.magic is Magic.UNSET:
        secondary = ctx.trailers[1]
        scramble_trailer_sectors(ctx, secondary)
        secondary.write_image_ok()
        secondary.write_swap_size(bs.swap_size)
        secondary.write_magic()
