"""MCUboot's RAM_LOAD boot (``loader.c`` built with ``MCUBOOT_RAM_LOAD``, ``ram_load.c``).

No swap and no trailer: each slot with a valid header is a candidate, the highest version is
copied to RAM at its header's load address and validated *there* (hash and TLVs are read from
the RAM copy, which is what makes serial recovery's image list look at RAM too). An image that
cannot be copied (no TLV area: a partial upload) or does not validate is erased from its slot
and removed from RAM, and the next candidate is tried.

The RAM the images are loaded into survives a warm reset, as a board's SRAM does: after a reset
into serial recovery it still holds the image the last boot loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from smpsim.device.mcuboot.header import (
    IMAGE_HEADER_SIZE,
    IMAGE_MAGIC,
    TLV_INFO_MAGIC,
    TLV_PROT_INFO_MAGIC,
    ImageFlag,
    ImageHeader,
    TlvType,
)
from smpsim.device.partitions import FlashArea

TLV_ANY = 0xFFFF
"""``IMAGE_TLV_ANY``, as the TLV iterator's debug lines print it."""
TLV_INFO_SIZE = 4


@dataclass
class Sram:
    """The RAM images are loaded into: zero at power-on, kept across warm resets."""

    regions: dict[int, bytes] = field(default_factory=dict)
    """Load address -> the bytes copied there."""

    def read(self, address: int, length: int) -> bytes:
        """``length`` bytes at ``address`` (zero where nothing was loaded)."""
        out = bytearray(length)
        for start, data in self.regions.items():
            lo, hi = max(start, address), min(start + len(data), address + length)
            if lo < hi:
                out[lo - address:hi - address] = data[lo - start:hi - start]
        return bytes(out)

    def load(self, address: int, data: bytes) -> None:
        """Copy ``data`` to ``address`` (``boot_copy_image_to_sram``)."""
        self.zero(address, len(data))
        self.regions[address] = data

    def zero(self, address: int, length: int) -> None:
        """Overwrite a range with zeros (``boot_remove_image_from_sram``)."""
        for start in list(self.regions):
            data = self.regions[start]
            if start < address + length and address < start + len(data):
                kept = bytearray(data)
                lo, hi = max(start, address), min(start + len(data), address + length)
                kept[lo - start:hi - start] = bytes(hi - lo)
                self.regions[start] = bytes(kept)


Log = Callable[[str], None]


@dataclass(frozen=True)
class RamValidation:
    """``bootutil_img_validate`` of a RAM-loaded image."""

    ok: bool
    tlv_end: int
    """End of the TLV area (0 when the iteration failed)."""
    hash_offset: int | None
    """Offset of the SHA-256 TLV's value (found in the RAM copy), if there is one."""
    hashed_bytes: int


def _tlv_bounds(read: Callable[[int, int], bytes],
                header: ImageHeader) -> tuple[int, int, int] | None:
    """``bootutil_tlv_iter_begin`` (any type, protected ones included): ``(first record,
    end of the protected block, end of the TLVs)``, or None when there is no TLV info."""
    offset = header.tlv_offset
    magic = int.from_bytes(read(offset, 2), "little")
    total = int.from_bytes(read(offset + 2, 2), "little")
    prot_end = offset
    if header.protect_tlv_size:
        if magic != TLV_PROT_INFO_MAGIC or total != header.protect_tlv_size:
            return None
        prot_end = offset + total
        magic = int.from_bytes(read(prot_end, 2), "little")
        total = int.from_bytes(read(prot_end + 2, 2), "little")
    if magic != TLV_INFO_MAGIC:
        return None
    return header.tlv_offset + TLV_INFO_SIZE, prot_end, prot_end + total


def image_size(area: FlashArea, header: ImageHeader) -> int | None:
    """``boot_read_image_size`` from the slot: header, payload and TLVs, or None."""
    if header.tlv_offset + TLV_INFO_SIZE > area.size:
        return None
    bounds = _tlv_bounds(area.read, header)
    if bounds is None or bounds[2] > area.size:
        return None
    return bounds[2]


def validate_in_ram(sram: Sram, header: ImageHeader, dbg: Log, area_ptr: int) -> RamValidation:
    """``bootutil_img_validate`` with ``MCUBOOT_RAM_LOAD``: hash over the RAM copy at the
    header's load address, TLVs read from RAM; hash-only builds (signature type none)."""
    base = header.load_addr

    def read(offset: int, length: int) -> bytes:
        return sram.read(base + offset, length)

    dbg(f"bootutil_img_validate: flash area {area_ptr:#x}")
    dbg("bootutil_img_hash")
    digest = hashlib.sha256(read(0, header.hashed_size)).digest()
    dbg(f"bootutil_tlv_iter_begin: type {TLV_ANY}, prot == 0")
    bounds = _tlv_bounds(read, header)
    if bounds is None:
        dbg("bootutil_img_validate: TLV iteration failed -1")
        return RamValidation(False, 0, None, header.hashed_size)
    start, prot_end, end = bounds
    dbg(f"bootutil_img_validate: TLV off {start}, end {end}")
    pos = start
    hash_ok = False
    hash_offset = None
    while True:
        dbg(f"bootutil_tlv_iter_next: searching for {TLV_ANY} ({TLV_ANY} is any) starting at "
            f"{pos} ending at {end}")
        if pos + 4 > end:
            dbg(f"bootutil_tlv_iter_next: TLV {TLV_ANY} not found")
            break
        tlv_type = int.from_bytes(read(pos, 2), "little")
        length = int.from_bytes(read(pos + 2, 2), "little")
        if pos + 4 + length > end:
            dbg(f"bootutil_tlv_iter_next: malformed TLV at {pos}")
            return RamValidation(False, end, hash_offset, header.hashed_size)
        dbg(f"bootutil_tlv_iter_next: TLV {tlv_type} found at {pos + 4} (size {length})")
        if tlv_type == TlvType.SHA256:
            dbg(f"bootutil_img_validate: EXPECTED_HASH_TLV == {int(TlvType.SHA256)}")
            if length != len(digest) or read(pos + 4, length) != digest:
                return RamValidation(False, end, pos + 4, header.hashed_size)
            hash_ok, hash_offset = True, pos + 4
        pos += 4 + length
        if pos == prot_end and header.protect_tlv_size:
            pos += TLV_INFO_SIZE  # the unprotected block's info header
    return RamValidation(hash_ok, end, hash_offset, header.hashed_size)


def header_valid(area: FlashArea, header: ImageHeader) -> bool:
    """``boot_check_header_valid`` (no encryption or compression support)."""
    if header.magic != IMAGE_MAGIC:
        return False
    if header.hashed_size >= area.size:
        return False
    unsupported = (ImageFlag.ENCRYPTED_AES128 | ImageFlag.ENCRYPTED_AES256
                   | ImageFlag.COMPRESSED_LZMA1 | ImageFlag.COMPRESSED_LZMA2)
    return not header.flags & unsupported


def read_header(area: FlashArea) -> ImageHeader:
    """The header at the start of a slot (an erased one reads as :data:`ERASED_MAGIC`)."""
    return ImageHeader.parse(area.read(0, IMAGE_HEADER_SIZE))



@dataclass(frozen=True)
class RamLoadLog:
    """Where the RAM_LOAD boot writes its lines (MCUboot's log levels)."""

    info: Log
    error: Log
    dbg: Log
    area_ptr: Callable[[int], int]
    """The ``flash_area`` pointer debug lines print for a slot."""
    hashed: Callable[[int], None]
    """Told how many bytes each validation hashed (the clock charges them)."""


def scramble(area: FlashArea, ptr: int, log: RamLoadLog) -> None:
    """``boot_scramble_slot`` of a whole slot, with its debug lines."""
    log.dbg(f"boot_scramble_region: {ptr:#x} 0 {area.size} 0")
    log.dbg(f"boot_erase_region: flash_area {ptr:#x}, offset 0, size {area.size}, "
            "backwards == 0")
    log.dbg("boot_erase_region: device with erase")
    area.erase(0, area.size)


def _version_line(slot: int, header: ImageHeader) -> str:
    v = header.version
    return (f"{'Primary' if slot == 0 else 'Secondary'} slot: version="
            f"{v.major}.{v.minor}.{v.revision}+{v.build}")


def ram_load_image(image: int, slots: tuple[FlashArea, FlashArea], sram: Sram,
                   log: RamLoadLog) -> tuple[ImageHeader, int] | None:
    """``boot_get_slot_usage`` then ``boot_load_and_validate_images`` for one image: the
    header and slot of the image left loaded in RAM, or None."""
    headers = [read_header(area) for area in slots]
    available = []
    for slot, (area, header) in enumerate(zip(slots, headers, strict=True)):
        if header_valid(area, header):
            available.append(slot)
            log.info(_version_line(slot, header))
        else:
            log.info(f"Image {image} {'primary' if slot == 0 else 'secondary'} slot: "
                     "image not found")
    while True:
        active = None
        for slot in available:  # find_slot_with_highest_version: strictly higher wins
            if active is None or headers[slot].version.key() > headers[active].version.key():
                active = slot
        if active is None:
            log.info(f"No slot to load for image {image}")
            return None
        available.remove(active)
        header, area = headers[active], slots[active]
        size = image_size(area, header)
        if not header.flags & ImageFlag.RAM_LOAD or size is None:
            log.info(f"Removing image {image} slot {active} from flash")
            scramble(area, log.area_ptr(active), log)
            continue
        sram.load(header.load_addr, area.read(0, size))
        log.info(f"Image {image} RAM loading to {header.load_addr:#x} is succeeded.")
        log.dbg(f"boot_validate_slot: slot {active}, expected_swap_type 0")
        result = validate_in_ram(sram, header, log.dbg, log.area_ptr(active))
        log.hashed(result.hashed_bytes)
        if not result.ok:
            log.error(f"Image in the {'primary' if active == 0 else 'secondary'} slot is not "
                      "valid!")
            scramble(area, log.area_ptr(active), log)
            log.info(f"Removing image {image} from SRAM at address {header.load_addr:#x}")
            sram.zero(header.load_addr, size)
            continue
        return header, active
