"""Swap using scratch (``MCUBOOT_SWAP_USING_SCRATCH``).

Regions (as many sectors as fit in the scratch partition) are swapped from the top of the image
down, each in three steps: secondary to scratch, primary to secondary, scratch to primary. The
region holding the primary trailer keeps its status in the scratch's own trailer until the
primary trailer is rebuilt; then the scratch is erased backwards.
"""

from __future__ import annotations

from smpsim.device.mcuboot.header import ImageHeader
from smpsim.device.mcuboot.sizes import first_trailer_sector, max_image_size
from smpsim.device.mcuboot.swap import (
    STATE_0,
    STATE_1,
    STATE_2,
    STATUS_SOURCE_NONE,
    STATUS_SOURCE_PRIMARY,
    STATUS_SOURCE_SCRATCH,
    BootStatus,
    SwapContext,
    copy_region,
    erase_region,
    image_size_at,
    scramble_region,
    scramble_trailer_sectors,
    status_init,
    write_status,
)
from smpsim.device.mcuboot.trailer import (
    Flag,
    Magic,
    Mode,
    SwapType,
    Trailer,
)

NOTGOOD = "not good"
"""``BOOT_MAGIC_NOTGOOD`` in :data:`STATUS_TABLE`."""

STATUS_TABLE: tuple[tuple[Magic | None, Magic | str | None, Flag | None, int], ...] = (
    (Magic.GOOD, NOTGOOD, Flag.SET, STATUS_SOURCE_NONE),
    (Magic.GOOD, NOTGOOD, Flag.UNSET, STATUS_SOURCE_PRIMARY),
    (None, Magic.GOOD, None, STATUS_SOURCE_SCRATCH),
    (Magic.UNSET, None, Flag.UNSET, STATUS_SOURCE_PRIMARY),
)
"""``boot_status_tables``: (primary magic, scratch magic, primary copy_done, source); ``None``
matches anything. The first matching row decides."""

SOURCE_NAMES = {STATUS_SOURCE_NONE: "none", STATUS_SOURCE_SCRATCH: "scratch",
                STATUS_SOURCE_PRIMARY: "primary slot"}
"""How ``swap_status_source`` logs a source."""


def _magic_ok(want: Magic | str | None, have: Magic) -> bool:
    if want is None:
        return True
    if want == NOTGOOD:
        return have is not Magic.GOOD
    return want == have


def _sizes(ctx: SwapContext, slot: int) -> list[int]:
    return [s.size for s in ctx.areas[slot].sectors]


def copy_sz(ctx: SwapContext, last: int) -> tuple[int, int]:
    """``boot_copy_sz``: (bytes, first sector) of the region ending at sector ``last``."""
    assert ctx.scratch is not None
    size, index = 0, last
    while index >= 0:
        grown = size + ctx.sector_size(0, index)
        if grown > ctx.scratch.size:
            break
        size, index = grown, index - 1
    return size, index + 1


def find_last_sector_idx(ctx: SwapContext, copy_size: int) -> int:
    """Last primary sector to swap so both slots end on a common sector edge."""
    pri = sec = 0
    last_pri = last_sec = 0
    while True:
        if pri < copy_size or pri < sec:
            pri += ctx.sector_size(0, last_pri)
            last_pri += 1
        if sec < copy_size or sec < pri:
            sec += ctx.sector_size(1, last_sec)
            last_sec += 1
        if pri >= copy_size and sec >= copy_size and pri == sec:
            return last_pri - 1


def find_swap_count(ctx: SwapContext, copy_size: int) -> int:
    """Number of regions a swap of ``copy_size`` bytes takes."""
    last = find_last_sector_idx(ctx, copy_size)
    count = 0
    while last >= 0:
        last = copy_sz(ctx, last)[1] - 1
        count += 1
    return count


class SwapScratch:
    """The swap-scratch algorithm."""

    name = "scratch"

    def status_source(self, ctx: SwapContext) -> int:
        """``boot_status_tables`` over the primary and scratch trailers."""
        assert ctx.scratch_trailer is not None
        primary = ctx.trailers[0].read_state()
        scratch = ctx.scratch_trailer.read_state()
        ctx.info(f"Primary image: {primary.log_text()}")
        ctx.info(f"Scratch: {scratch.log_text()}")
        for want_pri, want_scr, want_copy_done, row_source in STATUS_TABLE:
            if (_magic_ok(want_pri, primary.magic) and _magic_ok(want_scr, scratch.magic)
                    and want_copy_done in (None, primary.copy_done)):
                source = row_source
                if (ctx.image_count > 1 and source == STATUS_SOURCE_SCRATCH
                        and scratch.image_num != ctx.image):
                    source = STATUS_SOURCE_NONE
                ctx.info(f"Boot source: {SOURCE_NAMES[source]}")
                return source
        ctx.info("Boot source: none")
        return STATUS_SOURCE_NONE

    def read_status_bytes(self, ctx: SwapContext, trailer: Trailer, bs: BootStatus) -> None:
        """Count the written prefix of the status entries (a gap is only logged)."""
        entries = trailer.layout.status_entries
        found, found_idx, invalid = False, 0, False
        index = 0
        while index < entries:
            erased = trailer.read_status_byte(index) == 0xFF
            if erased:
                if found and not found_idx:
                    found_idx = index
            elif not found:
                found = True
            elif found_idx:
                invalid = True
                break
            index += 1
        if invalid:
            ctx.error("Detected inconsistent status!")
        if found:
            if not found_idx:
                found_idx = index
            bs.idx, bs.state = found_idx // 3 + 1, found_idx % 3 + 1

    def status_index(self, ctx: SwapContext, bs: BootStatus) -> int:
        """Three entries per region."""
        return (bs.idx - 1) * 3 + bs.state - STATE_0

    def read_image_header(self, ctx: SwapContext, slot: int,
                          bs: BootStatus | None) -> tuple[ImageHeader, bool]:
        """Mid-swap the headers may be in the scratch or in the other slot."""
        where = slot
        if bs is not None and not bs.is_reset(ctx.mode):
            count = find_swap_count(ctx, ctx.find_status().read_swap_size())
            if bs.idx - 1 >= count:
                where = 1 - slot
            elif bs.idx - 1 == count - 1:
                if slot == 1 and bs.state >= STATE_1:
                    where = 2
                elif slot == 0 and bs.state >= STATE_2:
                    where = 1
        return ctx.read_header(where), True

    def slots_compatible(self, ctx: SwapContext) -> bool:
        """Sectors tile each other and every common region fits in the scratch."""
        return tiles(ctx, check_scratch=True)

    def read_image_size(self, ctx: SwapContext, slot: int) -> int:
        """Header to end of TLVs."""
        return image_size_at(ctx.areas[slot], ctx.headers[slot])[0]

    def swap_run(self, ctx: SwapContext, bs: BootStatus, copy_size: int) -> None:
        """Swap region by region from the top; resumes from ``bs``."""
        ctx.info("Starting swap using scratch algorithm.")
        last = find_last_sector_idx(ctx, copy_size)
        swap_idx = 0
        while last >= 0:
            size, first = copy_sz(ctx, last)
            if swap_idx >= bs.idx - 1:
                swap_region(ctx, bs, first, size)
            last = first - 1
            swap_idx += 1

    def app_max_size(self, ctx: SwapContext) -> int:
        """Slot less trailer, less padding so the scratch trailer fits beside the last region."""
        assert ctx.scratch is not None
        if not tiles(ctx, check_scratch=True):
            return 0
        return max_image_size(Mode.SCRATCH, _sizes(ctx, 0), _sizes(ctx, 1),
                              max_align=ctx.max_align, write_block=ctx.write_sz,
                              max_img_sectors=ctx.max_img_sectors, scratch_size=ctx.scratch.size)


def tiles(ctx: SwapContext, check_scratch: bool) -> bool:
    """The sector walk of swap-scratch's ``boot_slots_compatible``."""
    pri = [s.size for s in ctx.primary.sectors]
    sec = [s.size for s in ctx.secondary.sectors]
    if max(len(pri), len(sec)) > ctx.max_img_sectors:
        ctx.warn("Cannot upgrade: more sectors than allowed")
        return False
    scratch_sz = ctx.scratch.size if ctx.scratch is not None else 0
    i = j = sz0 = sz1 = total0 = total1 = 0
    smaller = 0
    while i < len(pri) or j < len(sec):
        if sz0 == sz1:
            sz0 += pri[i] if i < len(pri) else 0
            sz1 += sec[j] if j < len(sec) else 0
            i, j = i + 1, j + 1
        elif sz0 < sz1:
            sz0 += pri[i] if i < len(pri) else 0
            if smaller == 2:
                ctx.warn("Cannot upgrade: slots have non-compatible sectors")
                return False
            smaller, i = 1, i + 1
        else:
            sz1 += sec[j] if j < len(sec) else 0
            if smaller == 1:
                ctx.warn("Cannot upgrade: slots have non-compatible sectors")
                return False
            smaller, j = 2, j + 1
        if check_scratch and sz0 == sz1:
            total0, total1 = total0 + sz0, total1 + sz1
            if sz0 > scratch_sz or sz1 > scratch_sz:
                ctx.warn("Cannot upgrade: not all sectors fit inside scratch")
                return False
            smaller = sz0 = sz1 = 0
    if i != len(pri) or j != len(sec) or total0 != total1:
        ctx.warn("Cannot upgrade: slots are not compatible")
        return False
    return True


def swap_region(ctx: SwapContext, bs: BootStatus, idx: int, size: int) -> None:
    """``boot_swap_sectors`` of swap-scratch: the region starting at primary sector ``idx``."""
    scratch_trailer = ctx.scratch_trailer
    assert scratch_trailer is not None
    img_off = ctx.sector_off(0, idx)
    count = size
    first_trailer_pri = first_trailer_sector(_sizes(ctx, 0), ctx.trailer_sz)
    if img_off + size > ctx.sector_off(0, first_trailer_pri):
        count = min(ctx.primary.size - img_off - ctx.trailer_sz, scratch_trailer.layout.status_off)
    bs.use_scratch = bs.idx == 1 and count != size
    if bs.state == STATE_0:
        _to_scratch(ctx, bs, img_off, count)
    if bs.state == STATE_1:
        _to_secondary(ctx, bs, img_off, size, count)
    if bs.state == STATE_2:
        _to_primary(ctx, bs, img_off, size, count)


def _to_scratch(ctx: SwapContext, bs: BootStatus, img_off: int, count: int) -> None:
    """State 0: the secondary region into the scratch (status init on the first region)."""
    scratch, scratch_trailer = ctx.scratch, ctx.scratch_trailer
    assert scratch is not None and scratch_trailer is not None
    erase_region(scratch, 0, scratch.size)
    if bs.idx == 1:
        status_init(ctx, scratch_trailer, bs)
        if not bs.use_scratch:
            scramble_trailer_sectors(ctx, ctx.trailers[0])
            status_init(ctx, ctx.trailers[0], bs)
            erase_region(scratch, 0, scratch.size)
    copy_region(ctx.secondary, scratch, img_off, 0, count)
    write_status(ctx, bs)
    bs.state = STATE_1


def _to_secondary(ctx: SwapContext, bs: BootStatus, img_off: int, size: int,
                  count: int) -> None:
    """State 1: the primary region into the secondary."""
    erase_sz = size
    if bs.idx == 1:
        scramble_trailer_sectors(ctx, ctx.trailers[1])
        if bs.use_scratch:
            first = first_trailer_sector(_sizes(ctx, 1), ctx.trailer_sz)
            erase_sz = ctx.sector_off(1, first) - img_off
    if erase_sz > 0:
        erase_region(ctx.secondary, img_off, erase_sz)
    copy_region(ctx.primary, ctx.secondary, img_off, img_off, count)
    write_status(ctx, bs)
    bs.state = STATE_2


def _to_primary(ctx: SwapContext, bs: BootStatus, img_off: int, size: int, count: int) -> None:
    """State 2: the scratch into the primary; the trailer region rebuilds the primary trailer
    from the scratch's and then erases the scratch backwards."""
    scratch, scratch_trailer = ctx.scratch, ctx.scratch_trailer
    assert scratch is not None and scratch_trailer is not None
    primary = ctx.trailers[0]
    erase_sz = size
    if bs.use_scratch:
        scramble_trailer_sectors(ctx, primary)
        first = first_trailer_sector(_sizes(ctx, 0), ctx.trailer_sz)
        erase_sz = ctx.sector_off(0, first) - img_off
    if erase_sz > 0:
        erase_region(ctx.primary, img_off, erase_sz)
    copy_region(scratch, ctx.primary, 0, img_off, count)
    if bs.use_scratch:
        copy_region(scratch, ctx.primary, scratch_trailer.layout.status_off, img_off + count,
                    2 * ctx.write_sz)
        state = scratch_trailer.read_state()
        if state.image_ok is Flag.SET:
            primary.write_image_ok()
        if state.swap_type != SwapType.NONE:
            primary.write_swap_info(state.swap_type, ctx.image)
        primary.write_swap_size(bs.swap_size)
        primary.write_magic()
    erase_scratch = bs.use_scratch
    bs.use_scratch = False
    write_status(ctx, bs)
    bs.idx += 1
    bs.state = STATE_0
    if erase_scratch:
        scramble_region(scratch, 0, scratch.size, backwards=True)
