"""What the control plane shows of a board: its slots and its flash, sector by sector, read as a
debug probe reads them (no emulated time, and the flash driver's read statistics untouched).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from smpsim.device.flash import ERASED, NorFlash
from smpsim.device.mcu import Device
from smpsim.device.mcuboot.image import ImageError, validate_image
from smpsim.device.mcuboot.trailer import Flag, Magic, SwapType, TrailerLayout
from smpsim.device.partitions import FlashArea
from smpsim.mcumgr.groups.img_upload import slot_flags

ERASED_RUN = 64
"""A sector with this many erased bytes in a row is partly written. Written data has 0xFF bytes
too (about one in 256 of an image's), so any erased byte would call every sector partly."""
_ERASED_RUN = bytes([ERASED]) * ERASED_RUN
PARTITION_USE = {"storage": "littlefs", "settings": "settings", "scratch": "swap scratch",
                 "mcuboot": "bootloader", "boot_partition": "bootloader"}
"""What a partition holds, by name, when it is not an image slot."""


@contextmanager
def probe(flash: NorFlash) -> Iterator[None]:
    """Reads inside are the probe's: the driver's read counters (flash statistics) are kept."""
    reads, bytes_read = flash.reads, flash.bytes_read
    try:
        yield
    finally:
        flash.reads, flash.bytes_read = reads, bytes_read


def slots(device: Device) -> list[dict[str, Any]]:
    """Every image slot: image, flags as img_mgmt reports them, trailer, validity."""
    dfu, boot = device.dfu, device.bootloader
    if dfu is None or boot is None:
        return []
    out = []
    with probe(device.flash):
        for image in range(dfu.image_count):
            for slot, flags in enumerate(slot_flags(dfu, image)):
                area = dfu.area(image, slot)
                assert area is not None
                state = dfu.trailer_state(image, slot)
                entry: dict[str, Any] = {
                    "image": image, "slot": slot, "partition": area.name,
                    "present": False, "flags": flags,
                    "trailer": {
                        "magic": {Magic.GOOD: "good", Magic.UNSET: "unset"}.get(state.magic,
                                                                                 "bad"),
                        "swap_type": _swap_name(state.swap_type),
                        "copy_done": _flag(state.copy_done), "image_ok": _flag(state.image_ok),
                    }}
                try:
                    found = dfu.read(image, slot)
                except ImageError as exc:
                    entry["problem"] = str(exc)
                    out.append(entry)
                    continue
                read, limit = dfu.reader(image, slot)
                checked = validate_image(read, limit, boot.config.signature,  # type: ignore[arg-type]
                                         boot.keys)
                entry.update(present=True, version=str(found.version), hash=found.hash.hex(),
                             size=found.size, bootable=found.header.bootable,
                             valid=checked.ok, validity=checked.reason,
                             app={"confirm": found.app.confirm, "boot": found.app.boot})
                out.append(entry)
    return out


def _flag(flag: Flag) -> str:
    return {Flag.SET: "set", Flag.UNSET: "unset"}.get(flag, "bad")


def _swap_name(value: int) -> str:
    try:
        return SwapType(value).name.lower()
    except ValueError:
        return f"{value:#x}"


def flash_map(device: Device) -> dict[str, Any]:
    """Partitions, and every sector: state, what occupies it, erase count."""
    flash = device.flash
    owners = _owners(device)
    sectors = []
    with probe(flash):
        for index, sector in enumerate(flash.sectors):
            data = flash.read(sector.offset, sector.size)
            state = "erased" if data.count(ERASED) == sector.size else \
                "partly" if _ERASED_RUN in data else "programmed"
            sectors.append({"index": index, "offset": sector.offset, "size": sector.size,
                            "state": state, "erase_count": flash.sector_erases[index],
                            "holds": owners.get(index, [])})
    partitions = [{"name": a.name, "offset": a.offset, "size": a.size,
                   "holds": PARTITION_USE.get(a.name, _slot_use(device, a))}
                  for a in device.partitions.areas.values()]
    return {"size": flash.size, "write_block": flash.write_block, "ops": flash.ops,
            "partitions": partitions, "sectors": sectors}


def _slot_use(device: Device, area: FlashArea) -> str:
    dfu = device.dfu
    if dfu is not None:
        for image in range(dfu.image_count):
            for slot in (0, 1):
                found = dfu.area(image, slot)
                if found is not None and found.name == area.name:
                    return f"image {image} {'primary' if slot == 0 else 'secondary'} slot"
    return "unused"


def _owners(device: Device) -> dict[int, list[str]]:
    """Sector index -> what lies in it: image header, body, TLVs, trailer, swap status,
    littlefs, settings..."""
    flash = device.flash
    owners: dict[int, list[str]] = {}

    def mark(start: int, length: int, what: str) -> None:
        if length <= 0:
            return
        first = flash.sectors.index(flash.sector_at(start))
        last = flash.sectors.index(flash.sector_at(start + length - 1))
        for index in range(first, last + 1):
            if what not in owners.setdefault(index, []):
                owners[index].append(what)

    dfu = device.dfu
    slot_areas = set()
    if dfu is not None:
        for image in range(dfu.image_count):
            for slot in (0, 1):
                area = dfu.area(image, slot)
                if area is None:
                    continue
                slot_areas.add(area.name)
                found = dfu.find(image, slot)
                if found is not None:
                    base = area.offset + dfu.start(image, slot)
                    header = found.header
                    mark(base, header.hdr_size, "image header")
                    mark(base + header.hdr_size, header.img_size, "image body")
                    mark(base + header.hdr_size + header.img_size,
                         found.protected_tlv_size + found.unprotected_tlv_size, "TLVs")
                layout = TrailerLayout(area.size, dfu.config.max_align, area.write_block,
                                       dfu.mode, dfu.max_img_sectors)
                mark(area.offset + layout.status_off, layout.area_trailer_sz - layout.info_sz,
                     "swap status")
                mark(area.offset + area.size - layout.info_sz, layout.info_sz, "trailer")
    for area in device.partitions.areas.values():
        if area.name not in slot_areas and area.name in PARTITION_USE:
            mark(area.offset, area.size, PARTITION_USE[area.name])
    return owners
