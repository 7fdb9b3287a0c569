"""Slot geometry MCUboot derives from the partitions: sector counts and the largest image.

``max_image_size`` is ``bootutil_max_image_size`` (what an image may occupy, header to end of
TLVs); ``upload_offset`` is where img_mgmt writes a new image into the secondary slot.
"""

from __future__ import annotations

from collections.abc import Sequence

from smpsim.device.mcuboot.trailer import Mode, SwapType, TrailerLayout, align_up


def auto_max_img_sectors(slot_sectors: Sequence[Sequence[int]]) -> int:
    """Zephyr's automatic ``MCUBOOT_MAX_IMG_SECTORS``: the largest slot size / sector size."""
    return max((sum(sizes) // sizes[0] for sizes in slot_sectors if sizes), default=128)


def max_image_size(mode: Mode | str, primary_sectors: Sequence[int],
                   secondary_sectors: Sequence[int], *, max_align: int = 8,
                   write_block: int = 4, max_img_sectors: int = 128,
                   scratch_size: int = 0) -> int:
    """``bootutil_max_image_size``: the largest image (header to end of TLVs) MCUboot accepts.

    ``*_sectors`` are the sector sizes of each slot, in order.
    """
    mode = Mode(mode)
    layout = TrailerLayout(sum(primary_sectors), max_align, write_block, mode, max_img_sectors)
    if mode in (Mode.OVERWRITE, Mode.RAM_LOAD):
        return layout.swap_info_off
    if mode is Mode.SCRATCH:
        return _scratch_max_size(layout, primary_sectors, secondary_sectors, scratch_size)
    sector = primary_sectors[0]
    trailer = align_up(layout.trailer_sz, sector)
    pri = len(primary_sectors) * sector - trailer
    sec = len(secondary_sectors) * sector - trailer
    if mode is Mode.MOVE:
        pri -= sector
    else:
        sec -= sector
    return min(pri, sec)


def first_trailer_sector(sectors: Sequence[int], trailer_sz: int) -> int:
    """Index of the lowest sector holding part of a trailer of ``trailer_sz`` bytes."""
    index = len(sectors) - 1
    covered = sectors[index]
    while covered < trailer_sz:
        index -= 1
        covered += sectors[index]
    return index


def _scratch_max_size(layout: TrailerLayout, primary: Sequence[int], secondary: Sequence[int],
                      scratch_size: int) -> int:
    # app_max_size of swap-scratch: the common slot size, less the trailer, less the padding
    # needed so that the scratch's own trailer fits beside the last copied region.
    slot_sz = sum(primary)
    if slot_sz != sum(secondary) or max(*primary, *secondary) > scratch_size:
        return 0
    trailer_sz = layout.trailer_sz
    trailer_off = slot_sz - trailer_sz
    ends = []
    for sectors in (primary, secondary):
        index = first_trailer_sector(sectors, trailer_sz)
        ends.append(sum(sectors[:index + 1]))
    in_first = max(ends) - trailer_off
    scratch_layout = TrailerLayout(scratch_size, layout.max_align, layout.write_block,
                                   layout.mode, layout.max_img_sectors, scratch=True)
    padding = max(0, scratch_layout.area_trailer_sz - in_first)
    return trailer_off - padding


def upload_offset(mode: Mode | str, secondary_first_sector: int, current: SwapType) -> int:
    """Where an upload starts in the secondary slot (``boot_get_image_start_offset``).

    swap-offset puts the new image at sector 1, except while a revert is pending (then the
    secondary holds the previous image at offset 0).
    """
    # Mode(mode) is a Python call even when mode is one already (every first upload chunk).
    if (mode if isinstance(mode, Mode) else Mode(mode)) is Mode.OFFSET \
            and current is not SwapType.REVERT:
        return secondary_first_sector
    return 0
