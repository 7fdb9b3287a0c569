"""Group 1, image management: state read and write, upload, erase, slot info.

Follows Zephyr's img_mgmt as smp_svr builds it for MCUboot swap modes (``img_mgmt.c``,
``img_mgmt_state.c``, ``zephyr_img_mgmt.c``). Everything is read from the slots and their
trailers through :class:`~smpsim.device.dfu.Dfu`; the only state kept is the upload in
progress, in the application's RAM (:mod:`.img_upload`). File (2), corelist (3) and coreload (4)
have no handler in Zephyr and answer ``{"rc": 8}``.

Kconfig defaults followed where the profile has no option: ``ALLOW_CONFIRM_NON_ACTIVE_IMAGE_
SECONDARY`` (y: image 1's secondary may be confirmed, its primary may not),
``TOO_LARGE_CHECK`` disabled (no ``max_image_size`` in slot info), no direct upload.
"""

from __future__ import annotations

from typing import Any

from smpsim.device.dfu import Dfu
from smpsim.device.flash import FlashError
from smpsim.device.mcuboot.trailer import BadImage, BadVector
from smpsim.mcumgr.codec import DecodeError, head
from smpsim.mcumgr.dispatcher import BOOL, BSTR, UINT32, Body, GroupHandlers, Request
from smpsim.mcumgr.errors import GroupError, ImgMgmtErr, MgmtErr, MgmtError
from smpsim.mcumgr.groups import img_upload
from smpsim.mcumgr.groups.img_upload import NextBoot, next_boot, slot_flags, slot_in_use

IMG = GroupHandlers("img")
E = ImgMgmtErr

HASH_LEN = 32
"""``IMAGE_HASH_LEN``: the image hash (SHA-256 TLV) a state write names a slot by."""

UPLOAD_SCHEMA = {"image": UINT32, "data": BSTR, "len": UINT32, "off": UINT32, "sha": BSTR,
                 "upgrade": BOOL}
"""Upload request keys (``len`` and ``off`` are a 32-bit ``size_t`` on the MCU)."""


def _dfu(req: Request) -> Dfu:
    dfu = req.device.dfu
    if dfu is None:  # img_mgmt needs MCUboot; a build without it has no img group
        raise MgmtError(MgmtErr.ENOTSUP)
    return dfu


def _slot_entry(req: Request, dfu: Dfu, image: int, slot: int,
                flags: dict[str, bool]) -> dict[str, Any] | None:
    """One ``images`` entry (``img_mgmt_state_encode_slot``); ``None`` if unreadable."""
    found = dfu.find(image, slot)
    if found is None:
        return None
    entry: dict[str, Any] = {}
    if dfu.image_count > 1:
        entry["image"] = image
    entry["slot"] = slot
    entry["version"] = str(found.header.version)
    entry["hash"] = found.hash
    frugal = req.profile.firmware.img.frugal_list
    for name, value in (("bootable", found.header.bootable), *flags.items()):
        if value or not frugal:
            entry[name] = value
    return entry


def state_body(req: Request, dfu: Dfu) -> dict[str, Any]:
    """The state read answer (``img_mgmt_state_read``), also sent after a state write."""
    images = []
    for image in range(dfu.image_count):
        for slot, flags in enumerate(slot_flags(dfu, image)):
            entry = _slot_entry(req, dfu, image, slot, flags)
            if entry is not None:
                images.append(entry)
    body: dict[str, Any] = {"images": images}
    if not req.profile.firmware.img.frugal_list:
        body["splitStatus"] = 0
    return body


@IMG.read("state")
def state_read(req: Request) -> Body:
    """``{"images": [...], "splitStatus": 0}``; the payload is ignored."""
    return state_body(req, _dfu(req))


def _find_by_hash(dfu: Dfu, wanted: bytes) -> tuple[int, int]:
    """``img_mgmt_find_by_hash``: the first (image, slot) holding that image hash."""
    for absolute in range(2 * dfu.image_count):
        image, slot = divmod(absolute, 2)
        found = dfu.find(image, slot)
        if found is not None and found.hash == wanted:
            return image, slot
    raise GroupError(E.HASH_NOT_FOUND)


def _set_next_boot_slot(dfu: Dfu, image: int, slot: int, confirm: bool) -> None:
    """``img_mgmt_set_next_boot_slot``: the rules, then ``boot_set_next`` on the slot."""
    nbs, kind = next_boot(dfu, image)
    if confirm and image != 0 and slot == 0:
        raise GroupError(E.IMAGE_CONFIRMATION_DENIED)
    if not confirm and slot == 0:
        raise GroupError(E.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED)
    if kind is NextBoot.TEST:
        if not confirm and slot == nbs:
            return  # that test is already requested
        raise GroupError(E.IMAGE_ALREADY_PENDING)
    if confirm and slot == nbs:
        return  # it boots next anyway (NORMAL), or is already confirmed (REVERT)
    if kind is NextBoot.NORMAL and ((slot == 0 and nbs != 0) or (not confirm and slot == nbs)):
        raise GroupError(E.IMAGE_ALREADY_PENDING)
    if kind is NextBoot.REVERT and not confirm:
        raise GroupError(E.IMAGE_ALREADY_PENDING)
    try:
        if slot == 0:
            dfu.set_confirmed(image)
        else:
            dfu.set_pending(image, permanent=confirm)
    except BadImage:
        raise GroupError(E.INVALID_IMAGE_HEADER_MAGIC) from None
    except BadVector:
        raise GroupError(E.INVALID_IMAGE_VECTOR_TABLE) from None
    except FlashError:
        raise GroupError(E.FLASH_WRITE_FAILED) from None


@IMG.write("state")
def state_write(req: Request) -> Body:
    """``{"hash": bstr, "confirm": bool}``: test (or confirm) the image with that hash;
    no hash with ``confirm`` confirms the running image. Answers the new state."""
    args = req.fields({"hash": BSTR, "confirm": BOOL})
    dfu = _dfu(req)
    confirm: bool = args.get("confirm", False)
    wanted: bytes = args.get("hash", b"")
    if not wanted:
        if not confirm:
            raise GroupError(E.INVALID_HASH)  # a test needs a hash
        image, slot = 0, 0
    elif len(wanted) != HASH_LEN:
        raise GroupError(E.INVALID_HASH)
    else:
        image, slot = _find_by_hash(dfu, wanted)
    _set_next_boot_slot(dfu, image, slot, confirm)
    return state_body(req, dfu)


_CHUNK_PREFIX = b"\xa2\x63off"
_DATA_KEY = b"\x64data"


def _chunk_args(data: bytes, start: int) -> dict[str, Any] | None:
    """A chunk after the first as clients send it, ``{"off": uint, "data": bstr}`` in that
    order, read inline: what :meth:`Request.fields` would find in it. ``None`` for any other
    map, which the general path reads (and refuses what zcbor refuses)."""
    if type(data) is not bytes or not data.startswith(_CHUNK_PREFIX, start):
        return None
    try:
        major, off, pos = head(data, start + 5)
        if major != 0 or off is None or off > 0xFFFFFFFF or not data.startswith(_DATA_KEY, pos):
            return None  # not a UINT32 offset, or another key next
        major, length, pos = head(data, pos + 5)
    except DecodeError:
        return None
    if major != 2 or length is None or pos + length > len(data):
        return None
    return {"off": off, "data": data[pos:pos + length]}


@IMG.write("upload")
def upload(req: Request) -> Body:
    """One chunk: ``{"image", "off", "data"}``, the first one with ``len`` (and ``sha``,
    ``upgrade``). Answers ``{"off": next}`` (+ ``"match"`` at the end with image check)."""
    args = _chunk_args(req.data, req.start)
    if args is None:
        args = req.fields(UPLOAD_SCHEMA)
    return img_upload.upload(req.device, _dfu(req), req.profile.firmware.img, args)


@IMG.write("erase")
def erase(req: Request) -> Body:
    """``{"slot": n}`` (default: the slot opposite the running one) erases a whole slot."""
    args = req.fields({"slot": UINT32})
    dfu = _dfu(req)
    image, slot = divmod(args.get("slot", 1), 2)
    area = dfu.area(image, slot)
    if area is None:
        req.device.ram.pop(img_upload.Upload)
        raise GroupError(E.FLASH_OPEN_FAILED)
    # Only a slot holding a readable image is protected; a broken one may always go.
    allow = req.profile.firmware.img.allow_erase_pending
    if dfu.find(image, slot) is not None and slot_in_use(dfu, image, slot, allow):
        raise GroupError(E.NO_FREE_SLOT)
    req.device.ram.pop(img_upload.Upload)
    if not area.is_erased():
        try:
            area.erase(0, area.size)
        except FlashError:
            raise GroupError(E.FLASH_ERASE_FAILED) from None
    return None


@IMG.read("slot_info")
def slot_info(req: Request) -> Body:
    """``{"images": [{"image", "slots": [{"slot", "size"[, "upload_image_id"]}]}]}``."""
    dfu = _dfu(req)
    images = []
    for image in range(dfu.image_count):
        slots = []
        for slot in (0, 1):
            area = dfu.area(image, slot)
            assert area is not None
            entry: dict[str, Any] = {"slot": slot, "size": area.size}
            if slot != 0:  # the slot an upload of this image goes to
                entry["upload_image_id"] = image
            slots.append(entry)
        images.append({"image": image, "slots": slots})
    return {"images": images}
