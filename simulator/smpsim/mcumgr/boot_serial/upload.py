"""Image upload in serial recovery (``bs_upload``).

Every chunk needs ``off`` and ``data``; a chunk at offset 0 needs ``len`` (at most the slot's
size) and starts over: it picks the image (``image``, else 0; the key is read at offset 0
only), sets the expected offset back to 0 *before* checking ``len`` (so a first chunk without
``len`` fails but still resets the transfer), and erases the image's whole primary slot (or,
with ``erase_progressively``, only the sectors each chunk needs). Any other offset that is not
the expected one is answered with the expected one and ``rc`` 0. A chunk ending past ``len``
fails. Only whole write blocks are written: a non-final chunk is cut to a multiple of the
write block (the client resends the rest), the final one is padded with 0xFF. Nothing checks
the image itself: no header magic, no ``sha``, no ``upgrade``.

The state (expected offset, length, image) lives in RAM until the next reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smpsim.device.flash import FlashError
from smpsim.device.mcuboot.trailer import Mode, TrailerLayout
from smpsim.mcumgr.boot_serial.cbor import BSTR, UINT32, decode_bulk
from smpsim.mcumgr.errors import MgmtErr

if TYPE_CHECKING:
    from smpsim.device.mcu import Device
    from smpsim.device.mcuboot.bootloader import Bootloader
    from smpsim.device.partitions import FlashArea

SCHEMA = {"image": UINT32, "data": BSTR, "len": UINT32, "off": UINT32}
ERASED = 0xFF


@dataclass
class UploadState:
    """``bs_upload``'s static variables (lost at reset)."""

    img_size: int = 0
    curr_off: int = 0
    img_num: int = 0
    not_yet_erased: int = 0
    """``erase_progressively``: the first byte not erased yet."""


def _area(device: Device, image: int) -> FlashArea | None:
    """``flash_area_open(flash_area_id_from_multi_image_slot(image, 0))``."""
    if image >= device.partitions.image_count:
        return None
    return device.partitions.primary(image)


def _erase(loader: Bootloader, area: FlashArea, start: int, size: int) -> None:
    """``boot_erase_region`` with its debug lines."""
    loader.dbg(f"boot_erase_region: flash_area {loader.area_ptr(0):#x}, offset {start}, "
               f"size {size}, backwards == 0")
    loader.dbg("boot_erase_region: device with erase")
    area.erase(start, size)


def _erase_range(loader: Bootloader, area: FlashArea, start: int, end: int) -> int:
    """``erase_range``: erase the sectors from ``start`` up to the one holding ``end``;
    returns where the next erase starts, or -1."""
    if end >= area.size:
        return -1
    if end < start:
        return start
    sector = area.sectors[area.sector_index(end)]
    size = sector.offset + sector.size - start
    loader.dbg(f"Erasing range {start:#x}:{start + size - 1:#x}")
    _erase(loader, area, start, size)
    return start + size


def _status_off(loader: Bootloader, area: FlashArea) -> int:
    """``boot_status_off`` of the slot."""
    layout = TrailerLayout(area.size, loader.config.max_align, area.write_block,
                           Mode(loader.config.mode), loader.max_img_sectors)
    return layout.status_off


def upload(device: Device, payload: bytes) -> dict[str, Any]:
    """One upload chunk -> the response map (``rc``, and ``off`` on success)."""
    loader = device.bootloader
    assert loader is not None
    state = device.ram.setdefault(UploadState, UploadState)
    rc = _chunk(device, loader, state, payload)
    loader.dbg(f"RX: {rc:#x}")
    return {"rc": rc, "off": state.curr_off} if rc == 0 else {"rc": rc}


def _chunk(device: Device, loader: Bootloader, state: UploadState, payload: bytes) -> int:
    args = decode_bulk(payload, SCHEMA)
    if args is None or "off" not in args or "data" not in args:
        return MgmtErr.EINVAL
    off: int = args["off"]
    data: bytes = args["data"]
    progressive = loader.config.serial_recovery.erase_progressively
    if off == 0:
        state.img_num = args.get("image", 0)
    area = _area(device, state.img_num)
    if area is None:
        return MgmtErr.EINVAL
    if off == 0:
        state.curr_off = 0
        size = args.get("len")
        if size is None or size > area.size:
            return MgmtErr.EINVAL
        try:
            if progressive:
                state.not_yet_erased = 0
            else:
                _erase(loader, area, 0, area.size)
        except FlashError:
            return MgmtErr.EINVAL
        state.img_size = size
    elif off != state.curr_off:
        return MgmtErr.EOK
    elif state.curr_off + len(data) > state.img_size:
        return MgmtErr.EINVAL
    try:
        if progressive:
            state.not_yet_erased = _erase_range(loader, area, state.not_yet_erased,
                                                state.curr_off + len(data) - 1)
            if state.not_yet_erased < 0:
                return MgmtErr.EINVAL
        align = area.write_block
        rem = len(data) % align
        length = len(data) - rem
        if state.curr_off + length + rem < state.img_size:
            rem = 0  # not the final chunk: the cut-off bytes come again with the next one
        loader.dbg(f"Writing at {state.curr_off:#x} until {state.curr_off + length:#x}")
        if length:
            area.write(state.curr_off, data[:length])
        if rem:
            pad = data[length:length + rem] + bytes([ERASED]) * (align - rem)
            area.write(state.curr_off + length, pad)
        state.curr_off += length + rem
        if progressive and state.curr_off == state.img_size:
            # The sector of the trailer's status area must end up erased too.
            status = area.sectors[area.sector_index(_status_off(loader, area))].offset
            if _erase_range(loader, area, status, status) < 0:
                return MgmtErr.EUNKNOWN
    except FlashError:
        return MgmtErr.EINVAL
    return MgmtErr.EOK
