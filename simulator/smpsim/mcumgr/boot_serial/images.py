"""The img group in serial recovery: image list (``bs_list``), state set (``bs_set``) and slot
info (``bs_slot_info``).

Only slots whose image validates are listed, each as ``{"slot", "hash", "version"}`` (plus
``image`` on multi-image builds, and the state flags with ``image_state``). The version is
``X.Y.Z``, with ``.B`` when the build number is not 0.

**RAM_LOAD quirk.** On a RAM_LOAD build MCUboot validates the copy in RAM at the header's load
address, not the slot (the header comes from the slot): an image uploaded into a board that
has not booted it since is not listed, and after a boot the slot is listed whatever it now
holds, as long as the RAM copy of the image booted then still validates. The hash shown is the
slot's, read where the RAM copy's TLVs say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from smpsim.device.mcuboot.header import IMAGE_HEADER_SIZE, IMAGE_MAGIC, ImageHeader, TlvType
from smpsim.device.mcuboot.image import Signature, validate_image
from smpsim.device.mcuboot.ram_load import TLV_ANY, validate_in_ram
from smpsim.device.mcuboot.trailer import BadImage, Mode, SwapType, TrailerError
from smpsim.mcumgr.boot_serial.cbor import BOOL, BSTR, decode_bulk
from smpsim.mcumgr.errors import MgmtErr

if TYPE_CHECKING:
    from smpsim.device.mcu import Device
    from smpsim.device.mcuboot.bootloader import Bootloader

HASH_SIZE = 32
BOOT_EBADIMAGE = 3
"""bootutil's ``BOOT_EBADIMAGE``, what ``boot_set_pending_multi`` returns for a bad trailer."""


def _version(header: ImageHeader) -> str:
    v = header.version
    text = f"{v.major}.{v.minor}.{v.revision}"
    return f"{text}.{v.build}" if v.build else text


def _slot_image(device: Device, loader: Bootloader, image: int,
                slot: int) -> tuple[ImageHeader, bytes | None] | None:
    """Header and TLV hash of a slot whose image validates (as ``bs_list`` validates it)."""
    dfu = device.dfu
    assert dfu is not None
    read, limit = dfu.reader(image, slot)
    if limit < IMAGE_HEADER_SIZE:
        return None
    header = ImageHeader.parse(read(0, IMAGE_HEADER_SIZE))
    if header.magic != IMAGE_MAGIC:
        return None
    if loader.mode is Mode.RAM_LOAD:
        if header.hashed_size >= limit:
            # MCUboot would hash far past its RAM and fault; smpsim does not list it.
            return None
        result = validate_in_ram(loader.sram, header, loader.dbg, loader.area_ptr(slot))
        if not result.ok:
            return None
        # boot_serial_get_hash walks the TLVs again (in RAM), then reads the slot.
        loader.dbg(f"bootutil_tlv_iter_begin: type {TLV_ANY}, prot == 0")
        loader.dbg(f"bootutil_tlv_iter_next: searching for {TLV_ANY} ({TLV_ANY} is any) "
                   f"starting at {header.tlv_offset + 4} ending at {result.tlv_end}")
        assert result.hash_offset is not None
        loader.dbg(f"bootutil_tlv_iter_next: TLV {int(TlvType.SHA256)} found at "
                   f"{result.hash_offset} (size {HASH_SIZE})")
        return header, read(result.hash_offset, HASH_SIZE)
    check = validate_image(read, limit, cast(Signature, loader.config.signature), loader.keys,
                           dfu.max_image_size(image))
    if not check.ok:
        return None
    found = dfu.find(image, slot)
    tlv = found.tlv(TlvType.SHA256) if found is not None else None
    return header, tlv if tlv is not None and len(tlv) == HASH_SIZE else None


def _flags(swap: SwapType, slot: int, header: ImageHeader) -> dict[str, bool]:
    """The state flags ``bs_list`` adds with ``image_state``, in its order."""
    confirmed = active = pending = permanent = False
    if swap is SwapType.NONE:
        confirmed = active = slot == 0
    elif swap is SwapType.TEST:
        confirmed, pending = slot == 0, slot == 1
    elif swap is SwapType.PERM:
        confirmed, pending, permanent = slot == 0, slot == 1, slot == 1
    elif swap is SwapType.REVERT:
        active, confirmed = slot == 0, slot == 1
    flags = {"bootable": header.bootable, "confirmed": confirmed, "active": active,
             "pending": pending, "permanent": permanent}
    return {key: True for key, on in flags.items() if on}


def image_list(device: Device) -> dict[str, Any]:
    """``bs_list``: every image's valid slots."""
    loader, dfu = device.bootloader, device.dfu
    assert loader is not None and dfu is not None
    recovery = loader.config.serial_recovery
    entries: list[dict[str, Any]] = []
    for image in range(dfu.image_count):
        swap = dfu.swap_type(image) if recovery.image_state else SwapType.NONE
        for slot in (0, 1):
            found = _slot_image(device, loader, image, slot)
            if found is None:
                continue
            header, tlv_hash = found
            entry: dict[str, Any] = {}
            if dfu.image_count > 1:
                entry["image"] = image
            if recovery.image_state:
                entry.update(_flags(swap, slot, header))
            entry["slot"] = slot
            if recovery.image_hash and tlv_hash is not None:
                entry["hash"] = tlv_hash
            entry["version"] = _version(header)
            entries.append(entry)
    return {"images": entries}


def set_state(device: Device, payload: bytes) -> dict[str, Any]:
    """``bs_set``: test or confirm (``confirm``) the image with ``hash`` -- which always marks
    that image's *secondary* slot pending -- then the new list."""
    loader, dfu = device.bootloader, device.dfu
    assert loader is not None and dfu is not None
    with_hash = loader.config.serial_recovery.image_hash
    schema = {"confirm": BOOL, **({"hash": BSTR} if with_hash else {})}
    args = decode_bulk(payload, schema)
    if args is None:
        return {"rc": int(MgmtErr.EINVAL)}
    image = 0
    wanted: bytes = args.get("hash", b"")
    if with_hash:
        if len(wanted) not in (0, HASH_SIZE) or (not wanted and dfu.image_count > 1):
            return {"rc": int(MgmtErr.EINVAL)}
        if wanted:
            matches = [i for i in range(dfu.image_count) for s in (0, 1)
                       if (found := _slot_image(device, loader, i, s)) is not None
                       and found[1] == wanted]
            if not matches:
                loader.error("Did not find image with specified hash")
                return {"rc": int(MgmtErr.ENOENT)}
            image = matches[0]
    try:
        dfu.set_pending(image, bool(args.get("confirm", False)))
    except BadImage:
        return {"rc": BOOT_EBADIMAGE}
    except TrailerError:
        return {"rc": int(MgmtErr.EUNKNOWN)}
    return image_list(device)


def slot_info(device: Device) -> dict[str, Any]:
    """``bs_slot_info``: each image's slots, their sizes, the upload id of its secondary."""
    dfu = device.dfu
    assert dfu is not None
    images = []
    for image in range(dfu.image_count):
        slots = []
        for slot in (0, 1):
            area = dfu.area(image, slot)
            assert area is not None
            entry: dict[str, Any] = {"slot": slot, "size": area.size}
            if slot == 1:
                entry["upload_image_id"] = image * 2 + 1
            slots.append(entry)
        images.append({"image": image, "slots": slots,
                       "max_image_size": dfu.max_image_size(image)})
    return {"images": images}
