"""What every MCUboot upgrade algorithm shares: flash primitives, swap status, and overwrite.

Each flash operation here is the one MCUboot's bootutil performs, in the same order and with the
same bytes: copies move at most :data:`BUF_SZ` bytes per write, erases go one sector at a time,
trailer cells and status entries are single writes. The algorithms themselves live in
``swap_move``, ``swap_scratch`` and ``swap_offset``; they resume from the status area, so a
:class:`~smpsim.device.flash.PowerLoss` before any operation is recovered on the next boot.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from smpsim.device.mcuboot.header import (
    IMAGE_HEADER_SIZE,
    IMAGE_MAGIC,
    TLV_INFO_MAGIC,
    TLV_PROT_INFO_MAGIC,
    ImageHeader,
)
from smpsim.device.mcuboot.trailer import (
    SWAP_TYPE_NAMES,
    Flag,
    Magic,
    Mode,
    SwapType,
    Trailer,
    TrailerLayout,
    swap_type,
)
from smpsim.device.partitions import FlashArea

BUF_SZ = 1024
"""MCUboot's copy buffer: one flash write per chunk of at most this many bytes."""

OP_MOVE = 1
"""``BOOT_STATUS_OP_MOVE``: swap-move's move-up phase."""
OP_SWAP = 2
"""``BOOT_STATUS_OP_SWAP``: the swapping phase."""

STATUS_SOURCE_NONE = 0
"""``BOOT_STATUS_SOURCE_NONE``: no swap status to resume."""
STATUS_SOURCE_SCRATCH = 1
"""``BOOT_STATUS_SOURCE_SCRATCH``: the swap status lives in the scratch trailer."""
STATUS_SOURCE_PRIMARY = 2
"""``BOOT_STATUS_SOURCE_PRIMARY_SLOT``: the swap status lives in the primary trailer."""

STATE_0 = 1
"""``BOOT_STATUS_STATE_0``."""
STATE_1 = 2
"""``BOOT_STATUS_STATE_1``."""
STATE_2 = 3
"""``BOOT_STATUS_STATE_2``."""

Log = Callable[[str], None]


@dataclass
class BootStatus:
    """``struct boot_status``: where a swap stands."""

    idx: int = 1
    """Region / sector index being worked on (1-based)."""
    state: int = STATE_0
    """Step within that index (1-based)."""
    op: int = OP_MOVE
    """Phase (swap-move: move or swap)."""
    use_scratch: bool = False
    """Status entries currently go to the scratch trailer."""
    swap_type: int = SwapType.NONE
    """Swap in progress."""
    swap_size: int = 0
    """Bytes to swap (the larger image)."""
    source: int = STATUS_SOURCE_NONE
    """Where the status was read from."""

    def reset(self, mode: Mode) -> None:
        """``boot_status_reset``."""
        self.idx, self.state = 1, STATE_0
        self.op = OP_SWAP if mode is Mode.OFFSET else OP_MOVE
        self.use_scratch, self.swap_type, self.swap_size = False, SwapType.NONE, 0
        self.source = STATUS_SOURCE_NONE

    def is_reset(self, mode: Mode) -> bool:
        """``boot_status_is_reset``: no swap step recorded."""
        op = OP_SWAP if mode is Mode.OFFSET else OP_MOVE
        return self.op == op and self.idx == 1 and self.state == STATE_0


class Algorithm(Protocol):
    """What differs between the upgrade modes."""

    name: str
    """Word in ``Starting swap using <name> algorithm.``."""

    def status_source(self, ctx: SwapContext) -> int:
        """``swap_status_source`` (logs the trailers and the source)."""

    def read_status_bytes(self, ctx: SwapContext, trailer: Trailer, bs: BootStatus) -> None:
        """``swap_read_status_bytes``: progress from the status entries."""

    def status_index(self, ctx: SwapContext, bs: BootStatus) -> int:
        """``boot_status_internal_off`` in entries."""

    def read_image_header(self, ctx: SwapContext, slot: int,
                          bs: BootStatus | None) -> tuple[ImageHeader, bool]:
        """``boot_read_image_header``: the header of ``slot`` wherever the swap left it."""

    def slots_compatible(self, ctx: SwapContext) -> bool:
        """``boot_slots_compatible``."""

    def read_image_size(self, ctx: SwapContext, slot: int) -> int:
        """``boot_read_image_size``: header to end of TLVs (0 when unreadable)."""

    def swap_run(self, ctx: SwapContext, bs: BootStatus, copy_size: int) -> None:
        """``swap_run``."""

    def app_max_size(self, ctx: SwapContext) -> int:
        """``app_max_size``."""


@dataclass
class SwapContext:
    """One image's slots (and the scratch) while MCUboot works on them."""

    mode: Mode
    """Upgrade mode."""
    image: int
    """Image index."""
    primary: FlashArea
    """Primary slot."""
    secondary: FlashArea
    """Secondary slot."""
    scratch: FlashArea | None
    """Scratch partition (swap-scratch)."""
    algo: Algorithm
    """The mode's algorithm."""
    max_align: int = 8
    """``BOOT_MAX_ALIGN``."""
    max_img_sectors: int = 128
    """``MCUBOOT_MAX_IMG_SECTORS``."""
    image_count: int = 1
    """``BOOT_IMAGE_NUMBER``."""
    info: Log = field(default=lambda _text: None)
    """``BOOT_LOG_INF``."""
    warn: Log = field(default=lambda _text: None)
    """``BOOT_LOG_WRN``."""
    error: Log = field(default=lambda _text: None)
    """``BOOT_LOG_ERR``."""
    headers: list[ImageHeader] = field(default_factory=list)
    """Last header read per slot."""
    tlv_sizes: list[int] = field(default_factory=lambda: [0, 0])
    """Unprotected TLV block size per slot (swap-offset)."""
    secondary_offset: int = 0
    """Where the secondary image starts (swap-offset: sector 1 for a new image)."""

    def __post_init__(self) -> None:
        blank = ImageHeader.parse(bytes(IMAGE_HEADER_SIZE))  # boot_state_init zeroes them
        self.headers = [blank, blank]
        self.write_sz = max(self.primary.write_block,
                            self.scratch.write_block if self.scratch else 0)
        self.trailers = [Trailer(area, self.layout(area)) for area in self.areas]
        self.scratch_trailer = (Trailer(self.scratch, self.layout(self.scratch, scratch=True))
                                if self.scratch is not None else None)

    @property
    def areas(self) -> tuple[FlashArea, FlashArea]:
        """(primary, secondary)."""
        return self.primary, self.secondary

    def layout(self, area: FlashArea, scratch: bool = False) -> TrailerLayout:
        """Trailer layout of ``area`` in this build."""
        return TrailerLayout(area.size, self.max_align, self.write_sz, self.mode,
                             self.max_img_sectors, scratch)

    @property
    def trailer_sz(self) -> int:
        """``boot_trailer_sz(BOOT_WRITE_SZ)``."""
        return self.trailers[0].layout.trailer_sz

    def num_sectors(self, slot: int) -> int:
        """Sectors in ``slot``."""
        return len(self.areas[slot].sectors)

    def sector_size(self, slot: int, index: int) -> int:
        """Size of sector ``index`` of ``slot``."""
        return self.areas[slot].sectors[index].size

    def sector_off(self, slot: int, index: int) -> int:
        """Offset of sector ``index`` of ``slot`` from the slot's start."""
        return self.areas[slot].sectors[index].offset

    def swap_type_multi(self) -> SwapType:
        """``boot_swap_type_multi``: the table over both trailers, logged as MCUboot does."""
        result = swap_type(self.trailers[0].read_state(), self.trailers[1].read_state(),
                           self.mode)
        self.info(f"Image index: {self.image}, Swap type: {SWAP_TYPE_NAMES.get(result, 'none')}")
        return result

    def read_header(self, slot: int, off: int = 0) -> ImageHeader:
        """The 32 bytes at ``off`` in ``slot`` (2 = the scratch)."""
        area = self.scratch if slot == 2 else self.areas[slot]
        assert area is not None
        return ImageHeader.parse(area.read(off, IMAGE_HEADER_SIZE))

    def find_status(self) -> Trailer:
        """``boot_find_status``: the scratch trailer if its magic is good, else the primary's."""
        if self.scratch_trailer is not None and self.scratch_trailer.read_magic() is Magic.GOOD:
            return self.scratch_trailer
        return self.trailers[0]


# -- flash primitives ---------------------------------------------------------------------


def erase_region(area: FlashArea, off: int, size: int, backwards: bool = False) -> None:
    """``boot_erase_region``: one erase per sector touching ``[off, off + size)``."""
    first = area.sector_index(off)
    last = area.sector_index(off + size - 1)
    order = range(last, first - 1, -1) if backwards else range(first, last + 1)
    for index in order:
        sector = area.sectors[index]
        area.erase(sector.offset, sector.size)


def scramble_region(area: FlashArea, off: int, size: int, backwards: bool = False) -> None:
    """``boot_scramble_region`` on a device that needs erasing."""
    if size:
        erase_region(area, off, size, backwards)


def scramble_slot(area: FlashArea) -> None:
    """``boot_scramble_slot``: every sector (no ``MCUBOOT_MINIMAL_SCRAMBLE``)."""
    scramble_region(area, 0, area.size)


def copy_region(src: FlashArea, dst: FlashArea, off_src: int, off_dst: int, size: int) -> None:
    """``boot_copy_region``: read and write :data:`BUF_SZ` bytes at a time."""
    done = 0
    while done < size:
        chunk = min(BUF_SZ, size - done)
        dst.write(off_dst + done, src.read(off_src + done, chunk))
        done += chunk


def scramble_trailer_sectors(ctx: SwapContext, trailer: Trailer) -> None:
    """``swap_scramble_trailer_sectors``: erase, top down, the sectors holding the trailer."""
    area = trailer.area
    start = area.sectors[area.sector_index(area.size - ctx.trailer_sz)].offset
    scramble_region(area, start, area.size - start, backwards=True)


# -- status -------------------------------------------------------------------------------


def status_init(ctx: SwapContext, trailer: Trailer, bs: BootStatus) -> None:
    """``swap_status_init``: swap_info, image_ok (from the secondary), swap_size, magic last."""
    secondary = ctx.trailers[1].read_state()
    if bs.swap_type != SwapType.NONE:
        trailer.write_swap_info(bs.swap_type, ctx.image)
    if secondary.image_ok is Flag.SET:
        trailer.write_image_ok()
    trailer.write_swap_size(bs.swap_size)
    if ctx.mode is Mode.OFFSET:
        trailer.write_tlv_sizes(ctx.tlv_sizes[0], ctx.tlv_sizes[1])
    trailer.write_magic()


def write_status(ctx: SwapContext, bs: BootStatus) -> None:
    """``boot_write_status``: the entry for (op, idx, state), in scratch or primary."""
    trailer = ctx.scratch_trailer if bs.use_scratch else ctx.trailers[0]
    assert trailer is not None
    trailer.write_status_entry(ctx.algo.status_index(ctx, bs), bs.state)


def read_status(ctx: SwapContext, bs: BootStatus) -> None:
    """``swap_read_status``: source, progress and swap type of an interrupted swap."""
    bs.source = ctx.algo.status_source(ctx)
    if bs.source == STATUS_SOURCE_NONE:
        return
    trailer = ctx.scratch_trailer if bs.source == STATUS_SOURCE_SCRATCH else ctx.trailers[0]
    assert trailer is not None
    ctx.algo.read_status_bytes(ctx, trailer, bs)
    info = trailer.read_swap_info_raw()
    bs.swap_type = SwapType.NONE if info == 0xFF else info & 0x0F


def read_status_top_down(ctx: SwapContext, trailer: Trailer) -> int:
    """Number of the highest written status entry (1-based), -1 if none (move, offset)."""
    # One read of the status area, then the first byte of each entry (a resumed swap asks at
    # every boot, and a byte at a time cost hundreds of reads).
    layout = trailer.layout
    status = trailer.area.read(layout.status_off, layout.status_entries * layout.write_block)
    written = status[::layout.write_block].rstrip(b"\xff")
    return len(written) if written else -1


def read_headers(ctx: SwapContext, require_all: bool, bs: BootStatus | None) -> bool:
    """``boot_read_image_headers``; False when MCUboot would fail."""
    for slot in (0, 1):
        header, ok = ctx.algo.read_image_header(ctx, slot, bs)
        ctx.headers[slot] = header
        if not ok:
            return slot > 0 and not require_all
    return True


def set_image_ok(ctx: SwapContext) -> None:
    """``swap_set_image_ok``: primary image_ok, if unset."""
    if ctx.trailers[0].read_image_ok() is Flag.UNSET:
        ctx.trailers[0].write_image_ok()


def set_copy_done(ctx: SwapContext) -> None:
    """``swap_set_copy_done``."""
    ctx.trailers[0].write_copy_done()


def image_size_at(area: FlashArea, header: ImageHeader, base: int = 0) -> tuple[int, int]:
    """(total size, unprotected TLV size) of the image at ``base``; (0, 0) if malformed."""
    off = base + header.tlv_offset
    if off + 4 > area.size:
        return 0, 0
    magic, total = struct.unpack("<HH", area.read(off, 4))
    prot = header.protect_tlv_size
    if magic == TLV_PROT_INFO_MAGIC:
        if prot != total or off + total + 4 > area.size:
            return 0, 0
        magic, total = struct.unpack("<HH", area.read(off + total, 4))
    elif prot:
        return 0, 0
    if magic != TLV_INFO_MAGIC:
        return 0, 0
    return header.tlv_offset + prot + total, total


def swap_image(ctx: SwapContext, bs: BootStatus) -> None:
    """``boot_swap_image``: settle the swap size (fresh or from the trailer), then swap."""
    if bs.is_reset(ctx.mode):
        sizes = [ctx.algo.read_image_size(ctx, slot) if ctx.headers[slot].magic == IMAGE_MAGIC
                 else 0 for slot in (0, 1)]
        bs.swap_size = max(sizes)
    else:
        bs.swap_size = ctx.find_status().read_swap_size()
    ctx.algo.swap_run(ctx, bs, bs.swap_size)
