"""The machinery behind the img group: next boot slot, slots in use, and image upload.

Follows Zephyr's ``img_mgmt_state.c`` (next boot slot, slot in use), ``zephyr_img_mgmt.c``
(``img_mgmt_upload_inspect``, the first-chunk erase) and ``img_mgmt.c`` (the upload handler),
with ``flash_img``/``stream_flash`` as the write path: data is collected in a
``CONFIG_IMG_BLOCK_BUF_SIZE`` buffer and programmed one whole buffer at a time.

Slots here are numbered within an image: 0 is the primary (where the image runs), 1 the
secondary (where updates go). Zephyr's absolute slot number is ``2 * image + slot``.
"""

from __future__ import annotations

import enum
import hashlib
from typing import TYPE_CHECKING, Any

from smpsim.config import ImgConfig
from smpsim.device.dfu import Dfu
from smpsim.device.flash import FlashError
from smpsim.device.mcuboot.header import IMAGE_HEADER_SIZE, IMAGE_MAGIC, ImageHeader
from smpsim.device.mcuboot.trailer import SwapType
from smpsim.device.partitions import FlashArea
from smpsim.mcumgr.codec import head_bytes
from smpsim.mcumgr.errors import GroupError, ImgMgmtErr

if TYPE_CHECKING:
    from smpsim.device.mcu import Device

E = ImgMgmtErr

IMG_BLOCK_BUF_SIZE = 512
"""``CONFIG_IMG_BLOCK_BUF_SIZE``: the flash_img write buffer."""
DATA_SHA_LEN = 32
"""``IMG_MGMT_DATA_SHA_LEN``: longest ``sha`` a first chunk may carry."""
SIZE_MAX = 0xFFFFFFFF
"""``SIZE_MAX`` of a 32-bit MCU: img_mgmt's "key absent" marker for ``off`` and ``len``."""

# Verbose-error reasons (CONFIG_MCUMGR_GRP_IMG_VERBOSE_ERR), sent only on the v1 {"rc"} path.
HDR_MALFORMED = "header malformed"
MAGIC_MISMATCH = "magic mismatch"
NO_SLOT = "no slot"
ERASE_FAILED = "fa erase fail"
WRITE_FAILED = "fa write fail"
DOWNGRADE = "downgrade"
TOO_LARGE = "img too large"
DATA_OVERRUN = "data overrun"


class NextBoot(enum.Enum):
    """``enum img_mgmt_next_boot_type``."""

    NORMAL = "normal"
    """An ordinary boot (of the active slot, or of the other one after a permanent request)."""
    TEST = "test"
    """The other slot boots once, for a test."""
    REVERT = "revert"
    """The running image is unconfirmed: the next boot goes back to the other slot."""


def next_boot(dfu: Dfu, image: int, swap: SwapType | None = None) -> tuple[int, NextBoot]:
    """``img_mgmt_get_next_boot_slot``: (slot that boots next, kind of boot); ``swap`` is
    ``image``'s swap type when the caller has just read it."""
    if swap is None:
        swap = dfu.swap_type(image)
    if swap is SwapType.TEST:
        return 1, NextBoot.TEST
    if swap is SwapType.PERM:
        return 1, NextBoot.NORMAL
    if swap is SwapType.REVERT:
        return 1, NextBoot.REVERT
    return 0, NextBoot.NORMAL


def slot_flags(dfu: Dfu, image: int) -> tuple[dict[str, bool], dict[str, bool]]:
    """The flags of slot 0 and slot 1 of ``image`` as img_mgmt_state derives them from the
    trailers, in wire order: pending, confirmed, active, permanent."""
    nbs, kind = next_boot(dfu, image)
    active = {"pending": False, "confirmed": kind is not NextBoot.REVERT, "active": True,
              "permanent": False}
    other = dict.fromkeys(("pending", "confirmed", "active", "permanent"), False)
    if nbs != 0:
        if kind is NextBoot.NORMAL:  # a permanent swap is scheduled
            other.update(pending=True, permanent=True)
        elif kind is NextBoot.REVERT:  # the image the next boot goes back to
            other["confirmed"] = True
        else:
            other["pending"] = True
    return active, other


def slot_in_use(dfu: Dfu, image: int, slot: int, allow_erase_pending: bool,
                swap: SwapType | None = None) -> bool:
    """``img_mgmt_slot_in_use``: whether the slot may not be erased or uploaded to."""
    nbs, kind = next_boot(dfu, image, swap)
    if slot == nbs and kind is NextBoot.REVERT:
        return True  # the image to go back to
    scheduled = (slot == nbs and kind is NextBoot.TEST) or (nbs != 0 and kind is NextBoot.NORMAL)
    if scheduled and not allow_erase_pending:
        return True
    return slot == 0


def upload_slot(dfu: Dfu, image: int, allow_erase_pending: bool) -> tuple[int, SwapType] | None:
    """The image whose secondary slot takes an upload (``img_mgmt_get_unused_slot_area_id``)
    with its swap type (read once for the whole first chunk); ``None`` when there is none.

    Single-image builds ignore ``image`` and pick the first free slot of image 0 (the primary
    is always in use, so it is the secondary or none). Multi-image builds use the secondary of
    ``image``, if that image exists and the slot is free.
    """
    if dfu.image_count == 1:
        image = 0
    elif image >= dfu.image_count:
        return None
    swap = dfu.swap_type(image)
    return None if slot_in_use(dfu, image, 1, allow_erase_pending, swap) else (image, swap)


class StreamOverflow(Exception):
    """``stream_flash`` refuses data past the end of its area (``-ENOMEM``)."""


class StreamWriter:
    """``flash_img``/``stream_flash`` over one slot: buffered writes of whole buffers.

    Each flush programs the buffered bytes, padded with 0xFF to the write block, in one flash
    write. With ``progressive`` erase (``IMG_ERASE_PROGRESSIVELY``) the page holding the last
    byte of each flush is erased first, unless it was the last one erased.

    A plain class with slots, not a record: every chunk reads and sets its fields, and a
    record's shared ``__init__`` leaves them in a dictionary that is slower to reach.
    """

    __slots__ = ("area", "base", "buf", "last_erased", "progressive", "trailer_status_off",
                 "written")

    def __init__(self, area: FlashArea, base: int, progressive: bool,
                 trailer_status_off: int) -> None:
        self.area = area
        """The secondary slot."""
        self.base = base
        """Where the image starts in the slot (``boot_get_image_start_offset``)."""
        self.progressive = progressive
        """Erase pages just before the first write into them."""
        self.trailer_status_off = trailer_status_off
        """Start of the slot's trailer (erased at the end in progressive mode)."""
        self.written = 0
        """Bytes programmed so far, from ``base``."""
        self.buf = bytearray()
        """Bytes waiting for a whole buffer (or the last chunk)."""
        self.last_erased: int | None = None
        """Area offset of the page erased last."""

    def write(self, data: bytes, flush: bool) -> None:
        """``flash_img_buffered_write``; raises :class:`FlashError` or :class:`StreamOverflow`."""
        buf = self.buf
        pos, end = 0, len(data)
        if self.written + len(buf) + end > self.area.size - self.base:
            raise StreamOverflow(f"{end} bytes past the end of {self.area.name}")
        if buf:  # top up the waiting buffer first
            pos = IMG_BLOCK_BUF_SIZE - len(buf)
            buf += data[:pos]
            if len(buf) == IMG_BLOCK_BUF_SIZE:
                self._sync()
        # Whole buffers go to flash straight from the request, without a round through buf:
        # the same writes at the same offsets as buffering them would make. (Slices of the
        # bytes, each copied once: a memoryview's slices cost more than they save here.)
        if end - pos >= IMG_BLOCK_BUF_SIZE and not self.progressive \
                and not IMG_BLOCK_BUF_SIZE % self.area.write_block:
            # What _program does with each, without a call per buffer: no page to erase first,
            # and a buffer is a whole number of write blocks (no padding). Straight to the
            # flash: the check above keeps every buffer inside the area.
            write, origin = self.area.flash.write, self.area.offset + self.base
            while end - pos >= IMG_BLOCK_BUF_SIZE:
                stop = pos + IMG_BLOCK_BUF_SIZE
                write(origin + self.written, data[pos:stop])
                self.written += IMG_BLOCK_BUF_SIZE
                pos = stop
        while end - pos >= IMG_BLOCK_BUF_SIZE:
            self._program(data[pos:pos + IMG_BLOCK_BUF_SIZE])
            pos += IMG_BLOCK_BUF_SIZE
        if pos < end:
            buf += data[pos:]
        if flush:
            if buf:
                self._sync()
            if self.progressive:
                self._erase_page(self.trailer_status_off)

    def _sync(self) -> None:
        self._program(bytes(self.buf))
        self.buf.clear()

    def _program(self, block: bytes) -> None:
        addr = self.base + self.written
        if self.progressive:
            self._erase_page(addr + len(block) - 1)
        pad = -len(block) % self.area.write_block
        self.area.write(addr, block + b"\xff" * pad if pad else block)
        self.written += len(block)

    def _erase_page(self, off: int) -> None:
        sector = self.area.sectors[self.area.sector_index(off)]
        if sector.offset != self.last_erased:
            self.area.erase(sector.offset, sector.size)
            self.last_erased = sector.offset


class Upload:
    """``g_img_mgmt_state`` with its flash_img context: the upload in progress (a plain class
    with slots, as :class:`StreamWriter`)."""

    __slots__ = ("image", "off", "sha", "size", "writer")

    def __init__(self, image: int, size: int, sha: bytes, writer: StreamWriter) -> None:
        self.image = image
        """Image whose secondary slot is written."""
        self.size = size
        """Total image length (the first chunk's ``len``)."""
        self.sha = sha
        """The first chunk's ``sha`` (possibly shorter than 32 bytes, possibly empty)."""
        self.writer = writer
        """The write path into the slot."""
        self.off = 0
        """Bytes received so far: the next expected ``off``."""

    def matches(self) -> bool:
        """``flash_img_check``: the slot's first ``size`` image bytes hash to ``sha``."""
        return _slot_sha(self.writer.area, self.writer.base, self.size) == self.sha


def _slot_sha(area: FlashArea, base: int, size: int) -> bytes | None:
    if base + size > area.size:
        return None
    return hashlib.sha256(area.read(base, size)).digest()


def erase_for_upload(area: FlashArea, base: int, size: int, status: int) -> None:
    """``img_mgmt_erase_image_data``: erase what the image will cover, then the trailer.

    One erase call from the slot's start to the end of the page holding the image's last byte
    (the swap-offset gap before ``base`` included), then, if the trailer lies beyond that, one
    call from the trailer's first page to the end of the slot. ``status`` is the trailer's
    start (``boot_get_trailer_status_offset``).
    """
    end = base + size  # the image's last byte is end - 1
    if area.offset + end - 1 >= area.flash.size:
        raise GroupError(E.INVALID_PAGE_OFFSET, rsn=ERASE_FAILED)
    erase_size = 0
    if end > 0:
        if end > area.size:
            raise GroupError(E.FLASH_ERASE_FAILED, rsn=ERASE_FAILED)  # flatten past the slot
        page = area.sectors[area.sector_index(end - 1)]
        erase_size = page.offset + page.size
    try:
        if erase_size:
            area.erase(0, erase_size)
        if status >= erase_size:
            first = area.sectors[area.sector_index(status)].offset
            area.erase(first, area.size - first)
    except FlashError:
        raise GroupError(E.FLASH_ERASE_FAILED, rsn=ERASE_FAILED) from None


_OFF_ANSWER = b"\xbf\x63off"


def off_answer(off: int) -> bytes:
    """``{"off": off}`` encoded, as :func:`~smpsim.mcumgr.codec.encode` writes it: the answer
    to nearly every chunk, written without a map."""
    return _OFF_ANSWER + head_bytes(0, off) + b"\xff"


def upload(device: Device, dfu: Dfu, cfg: ImgConfig,
           args: dict[str, Any]) -> dict[str, Any] | bytes:
    """The upload command (``img_mgmt_upload``); any group error ends the upload in progress.
    Answers ``{"off": next}`` encoded, or a map (``match`` at the end with image check)."""
    try:
        state: Upload | None = device.ram.get(Upload)
        off = args.get("off", SIZE_MAX)
        data: bytes = args.get("data", b"")
        if off == SIZE_MAX:
            raise GroupError(E.INVALID_OFFSET, rsn=HDR_MALFORMED)
        if off == 0:
            first = _first_chunk(device, dfu, cfg, args, state)
            if first is None:  # resumed: say where the upload stands
                assert state is not None
                return off_answer(state.off)
            if isinstance(first, dict):
                return first
            state = first
        elif state is None or off != state.off:
            # Not where we are: drop the data and say where we are (no upload: 0).
            return off_answer(state.off if state else 0)
        elif off + len(data) > state.size:
            raise GroupError(E.INVALID_IMAGE_DATA_OVERRUN, rsn=DATA_OVERRUN)
        if not data:
            return off_answer(state.off)
        last = state.off + len(data) == state.size
        try:
            state.writer.write(data, last)
        except (FlashError, StreamOverflow):
            raise GroupError(E.FLASH_WRITE_FAILED, rsn=WRITE_FAILED) from None
        state.off += len(data)
        if not last:
            return off_answer(state.off)
        device.ram.pop(Upload)
        if cfg.image_check:
            return {"off": state.off, "match": state.matches()}
        return off_answer(state.off)
    except GroupError:
        device.ram.pop(Upload)
        raise


def _first_chunk(device: Device, dfu: Dfu, cfg: ImgConfig, args: dict[str, Any],
                 state: Upload | None) -> Upload | dict[str, Any] | None:
    """Checks of a first chunk (``state``: the upload in progress); a new :class:`Upload`
    (slot erased), or ``None`` to resume the one in progress, or a finished answer (image
    check found the data already there)."""
    data: bytes = args.get("data", b"")
    if len(data) < IMAGE_HEADER_SIZE:
        raise GroupError(E.INVALID_IMAGE_HEADER, rsn=HDR_MALFORMED)
    size = args.get("len", SIZE_MAX)
    if size == SIZE_MAX:
        raise GroupError(E.INVALID_LENGTH, rsn=HDR_MALFORMED)
    header = ImageHeader.parse(data)
    if header.magic != IMAGE_MAGIC:
        raise GroupError(E.INVALID_IMAGE_HEADER_MAGIC, rsn=MAGIC_MISMATCH)
    sha: bytes = args.get("sha", b"")
    if len(sha) > DATA_SHA_LEN:
        raise GroupError(E.INVALID_HASH)
    if sha and state is not None and state.sha == sha:
        return None  # the same upload again: resume where it stands
    slot = upload_slot(dfu, args.get("image", 0), cfg.allow_erase_pending)
    if slot is None:
        raise GroupError(E.NO_FREE_SLOT, rsn=NO_SLOT)
    image, swap = slot
    area = dfu.area(image, 1)
    assert area is not None
    if size > area.size:
        raise GroupError(E.INVALID_IMAGE_TOO_LARGE, rsn=TOO_LARGE)
    if args.get("upgrade", False):
        running = dfu.find(0, 0)  # img_mgmt_my_version: the running image of image 0
        if running is None:
            raise GroupError(E.VERSION_GET_FAILED)
        if running.version.key() >= header.version.key():
            raise GroupError(E.CURRENT_VERSION_IS_NEWER, rsn=DOWNGRADE)
    erase = not cfg.erase_progressively and not area.is_erased()
    base = dfu.start(image, 1, swap)
    status = dfu.layout(image, 1).status_off
    writer = StreamWriter(area, base, cfg.erase_progressively, status)
    new = Upload(image, size, sha, writer)
    device.ram.put(new)
    if cfg.image_check and len(sha) == DATA_SHA_LEN and _slot_sha(area, base, size) == sha:
        # The slot already holds exactly this file: nothing to upload.
        device.ram.pop(Upload)
        return {"off": size, "match": True}
    if erase:
        erase_for_upload(area, base, size, status)
    return new
