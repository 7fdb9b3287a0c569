"""The image trailer at the end of each slot, byte for byte as MCUboot reads and writes it.

Layout (offsets from the end of a slot of size S, cell size A = ``BOOT_MAX_ALIGN``)::

    S - 16           magic (written as one ALIGN_UP(16, A) cell ending at S)
    image_ok         ALIGN_DOWN(S - 16 - A, A)
    copy_done        image_ok - A
    swap_info        copy_done - A           (low nibble swap type, high nibble image number)
    tlv_sizes        swap_info - A           (swap-offset only: unprotected TLV sizes)
    swap_size        previous - A            (u32 LE)
    status area      S - trailer_sz          (one write block per entry)

Each small field owns an A-byte cell of which only ``ALIGN_UP(len, write_block)`` bytes are
programmed, the rest left erased. The boot decision (which swap, if any) is a table over the
decoded trailers of both slots; :data:`SWAP_TABLE` holds it as data.
"""

from __future__ import annotations

import enum
import functools
import struct

from smpsim.device.partitions import FlashArea
from smpsim.errors import SmpsimError
from smpsim.records import Frozen, frozen

ERASED = 0xFF
"""The erased value of NOR flash; an erased trailer field reads as all 0xFF."""

MAGIC_SZ = 16
"""``BOOT_MAGIC_SZ``: bytes of the trailer magic."""

MAGIC_ALIGN8 = bytes.fromhex("77c295f360d2ef7f3552500f2cb67980")
"""The trailer magic when ``BOOT_MAX_ALIGN`` is 8 (the default)."""

MAGIC_TAIL = bytes.fromhex("2de15d29410b8d77679c110f1f8a")
"""The last 14 magic bytes for any other ``BOOT_MAX_ALIGN``; the first two are the u16 LE align."""

FLAG_SET_BYTE = 0x01
"""The byte MCUboot programs into image_ok / copy_done to set them."""


class Mode(enum.StrEnum):
    """MCUboot upgrade mode, spelled as in the profile's ``mcuboot.mode``."""

    MOVE = "swap-move"
    """``MCUBOOT_SWAP_USING_MOVE``."""
    SCRATCH = "swap-scratch"
    """``MCUBOOT_SWAP_USING_SCRATCH``."""
    OFFSET = "swap-offset"
    """``MCUBOOT_SWAP_USING_OFFSET``."""
    OVERWRITE = "overwrite-only"
    """``MCUBOOT_OVERWRITE_ONLY`` (without the FAST option)."""
    RAM_LOAD = "ram-load"
    """``MCUBOOT_RAM_LOAD``: no swap; the image is copied to RAM and run there."""


class SwapType(enum.IntEnum):
    """``BOOT_SWAP_TYPE_*``."""

    NONE = 1
    """Nothing to do: boot the primary slot."""
    TEST = 2
    """Swap in the secondary image for one boot; revert unless it gets confirmed."""
    PERM = 3
    """Swap in the secondary image permanently."""
    REVERT = 4
    """Swap back: the image under test was not confirmed."""
    FAIL = 5
    """The secondary image was invalid (only from a status-initialised but unstarted swap)."""
    PANIC = 0xFF
    """Unrecoverable error."""


class Magic(enum.IntEnum):
    """``BOOT_MAGIC_*`` read-back values of the trailer magic."""

    GOOD = 1
    """Exactly the magic for this ``BOOT_MAX_ALIGN``."""
    BAD = 2
    """Neither erased nor the magic."""
    UNSET = 3
    """All 16 bytes erased."""


class Flag(enum.IntEnum):
    """``BOOT_FLAG_*`` read-back values of image_ok and copy_done."""

    SET = 1
    """The byte reads 0x01."""
    BAD = 2
    """Any other non-erased value."""
    UNSET = 3
    """The byte is erased."""


SWAP_TYPE_NAMES = {SwapType.TEST: "test", SwapType.PERM: "perm", SwapType.REVERT: "revert",
                   SwapType.NONE: "none"}
"""How ``boot_swap_type_multi`` names a swap type in its log line."""


class TrailerError(SmpsimError):
    """A trailer request MCUboot's public API refuses."""


class BadImage(TrailerError):
    """``BOOT_EBADIMAGE``: the secondary trailer magic is bad (img_mgmt rc 23)."""


class BadVector(TrailerError):
    """``BOOT_EBADVECT``: the primary trailer magic is bad on confirm (img_mgmt rc 29)."""


def align_up(value: int, align: int) -> int:
    """``ALIGN_UP``."""
    return -(-value // align) * align


def align_down(value: int, align: int) -> int:
    """``ALIGN_DOWN``."""
    return value // align * align


def boot_magic(max_align: int = 8) -> bytes:
    """The 16 magic bytes for ``BOOT_MAX_ALIGN`` = ``max_align``."""
    if max_align == 8:
        return MAGIC_ALIGN8
    return struct.pack("<H", max_align) + MAGIC_TAIL


def decode_flag(byte: int) -> Flag:
    """image_ok / copy_done byte to its read-back value."""
    if byte == ERASED:
        return Flag.UNSET
    return Flag.SET if byte == FLAG_SET_BYTE else Flag.BAD


def decode_magic(raw: bytes, max_align: int = 8) -> Magic:
    """16 magic bytes to their read-back value."""
    if raw.count(ERASED) == len(raw):
        return Magic.UNSET
    return Magic.GOOD if raw == boot_magic(max_align) else Magic.BAD


@frozen
class SwapState(Frozen):
    """``struct boot_swap_state``: one slot's decoded trailer."""

    magic: Magic
    """Trailer magic."""
    swap_type: int
    """Low nibble of swap_info; NONE when erased or above REVERT (0 is possible and kept)."""
    image_num: int
    """High nibble of swap_info (0 when swap_type was forced to NONE)."""
    copy_done: Flag
    """copy_done flag."""
    image_ok: Flag
    """image_ok flag."""

    def log_text(self) -> str:
        """The ``magic=..., swap_type=0x.., copy_done=0x.., image_ok=0x..`` of MCUboot's log."""
        name = {Magic.GOOD: "good", Magic.UNSET: "unset"}.get(self.magic, "bad")
        return (f"magic={name}, swap_type={self.swap_type:#x}, "
                f"copy_done={int(self.copy_done):#x}, image_ok={int(self.image_ok):#x}")


UNSET_STATE = SwapState(Magic.UNSET, SwapType.NONE, 0, Flag.UNSET, Flag.UNSET)
"""An erased trailer."""


@frozen
class TrailerLayout(Frozen):
    """Where every trailer field of one area lies (offsets from the start of the area)."""

    size: int
    """Area (slot or scratch) size in bytes."""
    max_align: int = 8
    """``BOOT_MAX_ALIGN``: the cell size."""
    write_block: int = 4
    """Flash write block: status entry size and cell programming granularity."""
    mode: Mode = Mode.MOVE
    """Upgrade mode: decides the state count and the swap-offset TLV-sizes cell."""
    max_img_sectors: int = 128
    """``MCUBOOT_MAX_IMG_SECTORS``: status entries reserved per state."""
    scratch: bool = False
    """The scratch partition's trailer: status for one region only."""

    def __post_init__(self) -> None:
        if self.write_block > self.max_align:
            raise ValueError(f"write block {self.write_block} exceeds BOOT_MAX_ALIGN "
                             f"{self.max_align}")

    @functools.cached_property
    def magic_off(self) -> int:
        """Where the 16 magic bytes are read (``boot_magic_off``)."""
        return self.size - MAGIC_SZ

    @property
    def magic_cell_off(self) -> int:
        """Where the magic cell is programmed: ALIGN_DOWN(magic_off, A)."""
        return align_down(self.magic_off, self.max_align)

    @property
    def magic_cell_len(self) -> int:
        """``BOOT_MAGIC_ALIGN_SIZE``: bytes programmed for the magic."""
        return align_up(MAGIC_SZ, self.max_align)

    @functools.cached_property
    def image_ok_off(self) -> int:
        """``boot_image_ok_off``."""
        return align_down(self.magic_off - self.max_align, self.max_align)

    @functools.cached_property
    def copy_done_off(self) -> int:
        """``boot_copy_done_off``."""
        return self.image_ok_off - self.max_align

    @functools.cached_property
    def swap_info_off(self) -> int:
        """``boot_swap_info_off``."""
        return self.copy_done_off - self.max_align

    @property
    def tlv_sizes_off(self) -> int | None:
        """``boot_unprotected_tlv_sizes_off`` (swap-offset only)."""
        return self.swap_info_off - self.max_align if self.mode is Mode.OFFSET else None

    @property
    def swap_size_off(self) -> int:
        """``boot_swap_size_off``."""
        below = self.tlv_sizes_off if self.tlv_sizes_off is not None else self.swap_info_off
        return below - self.max_align

    @property
    def state_count(self) -> int:
        """``BOOT_STATUS_STATE_COUNT``: 2 for swap-offset, else 3."""
        return 2 if self.mode is Mode.OFFSET else 3

    @property
    def status_entries(self) -> int:
        """Status entries in this area (``boot_status_entries``)."""
        return self.state_count if self.scratch else self.state_count * self.max_img_sectors

    @property
    def info_sz(self) -> int:
        """``boot_trailer_info_sz``: everything but the status area."""
        extra = self.max_align if self.mode is Mode.OFFSET else 0
        return 4 * self.max_align + extra + self.magic_cell_len

    @property
    def trailer_sz(self) -> int:
        """``boot_trailer_sz`` of a slot (status for every sector plus the info part)."""
        return self.state_count * self.max_img_sectors * self.write_block + self.info_sz

    @property
    def area_trailer_sz(self) -> int:
        """Trailer size of this area (the scratch's is one region's status plus the info)."""
        return self.status_entries * self.write_block + self.info_sz

    @functools.cached_property
    def status_off(self) -> int:
        """``boot_status_off``: start of the status area (kept: every status write asks)."""
        return self.size - self.area_trailer_sz

    def entry_off(self, index: int) -> int:
        """Offset of status entry ``index`` (0-based)."""
        return self.status_off + index * self.write_block


class Trailer:
    """Reads and programs the trailer of one flash area, as MCUboot does."""

    def __init__(self, area: FlashArea, layout: TrailerLayout) -> None:
        self.area = area
        self.layout = layout

    # -- reading --------------------------------------------------------------------------

    def read_magic(self) -> Magic:
        """Decoded magic."""
        return decode_magic(self.area.read(self.layout.magic_off, MAGIC_SZ),
                            self.layout.max_align)

    def read_image_ok(self) -> Flag:
        """Decoded image_ok."""
        return decode_flag(self.area.read(self.layout.image_ok_off, 1)[0])

    def read_copy_done(self) -> Flag:
        """Decoded copy_done."""
        return decode_flag(self.area.read(self.layout.copy_done_off, 1)[0])

    def read_swap_info_raw(self) -> int:
        """The raw swap_info byte."""
        return self.area.read(self.layout.swap_info_off, 1)[0]

    def read_state(self) -> SwapState:
        """``boot_read_swap_state``."""
        info = self.read_swap_info_raw()
        swap_type, image_num = info & 0x0F, info >> 4
        if info == ERASED or swap_type > SwapType.REVERT:
            swap_type, image_num = SwapType.NONE, 0
        return SwapState(self.read_magic(), swap_type, image_num, self.read_copy_done(),
                         self.read_image_ok())

    def read_swap_size(self) -> int:
        """``boot_read_swap_size`` (raw u32: 0xFFFFFFFF when never written)."""
        value: int = struct.unpack("<I", self.area.read(self.layout.swap_size_off, 4))[0]
        return value

    def read_tlv_sizes(self) -> tuple[int, int]:
        """``boot_read_unprotected_tlv_sizes``: (primary's, secondary's)."""
        off = self.layout.tlv_sizes_off
        if off is None:
            raise ValueError("only swap-offset trailers have a TLV-sizes cell")
        value: int = struct.unpack("<I", self.area.read(off, 4))[0]
        return value & 0xFFFF, value >> 16

    def read_status_byte(self, index: int) -> int:
        """First byte of status entry ``index``."""
        return self.area.read(self.layout.entry_off(index), 1)[0]

    # -- programming ----------------------------------------------------------------------

    def write_cell(self, off: int, data: bytes) -> None:
        """``boot_write_trailer``: ``data`` padded with 0xFF to a whole write block."""
        length = align_up(len(data), self.area.write_block)
        if length > self.layout.max_align:
            raise ValueError(f"trailer cell of {length} bytes exceeds BOOT_MAX_ALIGN")
        self.area.write(off, data + bytes([ERASED]) * (length - len(data)))

    def _write_flag(self, off: int) -> None:
        cell = bytes([FLAG_SET_BYTE]) + bytes([ERASED]) * (
            align_up(1, self.area.write_block) - 1)
        if self.area.read(off, len(cell)) == cell:
            # Reprogramming identical bits is a no-op on NOR; our flash model refuses it.
            return
        self.write_cell(off, bytes([FLAG_SET_BYTE]))

    def write_magic(self) -> None:
        """``boot_write_magic``: one cell, erased padding in front of the 16 magic bytes."""
        cell_len = self.layout.magic_cell_len
        data = bytes([ERASED]) * (cell_len - MAGIC_SZ) + boot_magic(self.layout.max_align)
        self.area.write(self.layout.magic_cell_off, data)

    def write_image_ok(self) -> None:
        """``boot_write_image_ok``."""
        self._write_flag(self.layout.image_ok_off)

    def write_copy_done(self) -> None:
        """``boot_write_copy_done``."""
        self._write_flag(self.layout.copy_done_off)

    def write_swap_info(self, swap_type: int, image: int) -> None:
        """``boot_write_swap_info``: (image << 4) | swap_type."""
        self.write_cell(self.layout.swap_info_off, bytes([(image << 4) | swap_type]))

    def write_swap_size(self, swap_size: int) -> None:
        """``boot_write_swap_size``."""
        self.write_cell(self.layout.swap_size_off, struct.pack("<I", swap_size))

    def write_tlv_sizes(self, primary: int, secondary: int) -> None:
        """``boot_write_unprotected_tlv_sizes`` (swap-offset)."""
        off = self.layout.tlv_sizes_off
        if off is None:
            raise ValueError("only swap-offset trailers have a TLV-sizes cell")
        self.write_cell(off, struct.pack("<I", (secondary << 16) | primary))

    def write_status_entry(self, index: int, value: int) -> None:
        """``boot_write_status``: one write block, ``value`` in its first byte."""
        pad = bytes([ERASED]) * (self.area.write_block - 1)
        self.area.write(self.layout.entry_off(index), bytes([value]) + pad)


# -- the decision table -------------------------------------------------------------------


@frozen
class SwapRule(Frozen):
    """One row of ``boot_swap_tables``; ``None`` matches anything (``BOOT_*_ANY``)."""

    result: SwapType
    """Swap type when the row matches."""
    secondary_magic: Magic | None = None
    """Required secondary magic."""
    secondary_image_ok: Flag | None = None
    """Required secondary image_ok."""
    secondary_copy_done: Flag | None = None
    """Required secondary copy_done (swap-offset only ever constrains it)."""
    primary_magic: Magic | None = None
    """Required primary magic."""
    primary_image_ok: Flag | None = None
    """Required primary image_ok."""
    primary_copy_done: Flag | None = None
    """Required primary copy_done."""
    offset_only: bool = False
    """The row exists only in swap-offset builds."""

    def matches(self, primary: SwapState, secondary: SwapState) -> bool:
        """Whether both trailers satisfy the row (field by field: every first upload chunk
        and state read asks)."""
        return ((self.secondary_magic is None or self.secondary_magic == secondary.magic)
                and (self.secondary_image_ok is None
                     or self.secondary_image_ok == secondary.image_ok)
                and (self.secondary_copy_done is None
                     or self.secondary_copy_done == secondary.copy_done)
                and (self.primary_magic is None or self.primary_magic == primary.magic)
                and (self.primary_image_ok is None or self.primary_image_ok == primary.image_ok)
                and (self.primary_copy_done is None
                     or self.primary_copy_done == primary.copy_done))


SWAP_TABLE: tuple[SwapRule, ...] = (
    SwapRule(SwapType.REVERT, secondary_magic=Magic.GOOD, secondary_image_ok=Flag.UNSET,
             secondary_copy_done=Flag.SET, offset_only=True),
    SwapRule(SwapType.TEST, secondary_magic=Magic.GOOD, secondary_image_ok=Flag.UNSET),
    SwapRule(SwapType.PERM, secondary_magic=Magic.GOOD, secondary_image_ok=Flag.SET),
    SwapRule(SwapType.REVERT, primary_magic=Magic.GOOD, primary_image_ok=Flag.UNSET,
             primary_copy_done=Flag.SET),
)
"""``boot_swap_tables``: the first matching row decides; no match means NONE."""


def swap_type(primary: SwapState, secondary: SwapState, mode: Mode | str) -> SwapType:
    """``boot_swap_type_multi`` over two decoded trailers."""
    offset = (mode if isinstance(mode, Mode) else Mode(mode)) is Mode.OFFSET
    for rule in SWAP_TABLE:
        if (offset or not rule.offset_only) and rule.matches(primary, secondary):
            return rule.result
    return SwapType.NONE


# -- the public API the application uses (boot_set_next) ----------------------------------


def set_pending(secondary: FlashArea, image: int, permanent: bool, *,
                max_align: int = 8) -> None:
    """``boot_set_pending_multi``: request a test (or permanent) swap of ``secondary``.

    Writes magic, then image_ok if ``permanent``, then swap_info; nothing if the magic is
    already good. Raises :class:`BadImage` when the magic is bad.
    """
    trailer = Trailer(secondary, TrailerLayout(secondary.size, max_align,
                                               secondary.write_block))
    magic = trailer.read_magic()
    if magic is Magic.BAD:
        raise BadImage("secondary trailer magic is bad")
    if magic is Magic.UNSET:
        trailer.write_magic()
        if permanent:
            trailer.write_image_ok()
        trailer.write_swap_info(SwapType.PERM if permanent else SwapType.TEST, image)


def set_confirmed(primary: FlashArea, *, max_align: int = 8) -> None:
    """``boot_set_confirmed_multi``: mark the running image good.

    Magic good and image_ok unset: write image_ok. Magic unset: nothing (a factory image counts
    as confirmed). Raises :class:`BadVector` when the magic is bad.
    """
    trailer = Trailer(primary, TrailerLayout(primary.size, max_align, primary.write_block))
    state = trailer.read_state()
    if state.magic is Magic.BAD:
        raise BadVector("primary trailer magic is bad")
    if state.magic is Magic.GOOD and state.image_ok is Flag.UNSET:
        trailer.write_image_ok()
