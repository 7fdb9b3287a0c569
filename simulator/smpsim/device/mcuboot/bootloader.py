"""MCUboot's ``context_boot_go``: resume or decide the upgrade of each image, swap, validate.

Three passes over the images, as MCUboot makes them: (1) read the trailers and the swap status,
finish an interrupted swap or decide a new one (validating the secondary image), (2) carry out
the decided swaps, (3) validate each primary image. The console gets MCUboot's log lines; the
clock gets the start-up, hashing and signature time (flash operations charge their own).
A :class:`~smpsim.device.flash.PowerLoss` raised by the flash passes through untouched.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, cast

from smpsim.config import Bootloader as BootloaderConfig
from smpsim.device.clock import Clock
from smpsim.device.console import Console
from smpsim.device.events import Events
from smpsim.device.mcuboot.header import (
    IMAGE_HEADER_SIZE,
    IMAGE_MAGIC,
    ImageError,
    ImageFlag,
    ImageHeader,
)
from smpsim.device.mcuboot.image import Image, KeyRing, Signature, read_image, validate_image
from smpsim.device.mcuboot.sizes import auto_max_img_sectors
from smpsim.device.mcuboot.swap import (
    Algorithm,
    BootStatus,
    SwapContext,
    read_headers,
    read_status,
    scramble_slot,
    scramble_trailer_sectors,
    set_copy_done,
    set_image_ok,
    swap_image,
)
from smpsim.device.mcuboot.trailer import Mode, SwapType
from smpsim.device.partitions import PartitionTable
from smpsim.records import Frozen, frozen

if TYPE_CHECKING:
    from smpsim.device.mcuboot.ram_load import Sram

UPGRADES = (SwapType.TEST, SwapType.PERM, SwapType.REVERT)
"""``BOOT_IS_UPGRADE``."""

NO_BOOTABLE_IMAGE = "Unable to find bootable image"
"""What MCUboot prints when no primary image passes."""


class Fih(enum.Enum):
    """Outcome of ``boot_validate_slot``."""

    SUCCESS = "success"
    """The image is valid."""
    FAILURE = "failure"
    """An error other than an invalid image."""
    NO_BOOTABLE = "no bootable image"
    """No valid image in the slot."""


@frozen
class ImageBoot(Frozen):
    """What happened to one image during a boot."""

    image: int
    """Image index."""
    swap_type: SwapType
    """Swap decided and carried out this boot (NONE if none; the resumed swap's type when
    ``resumed``)."""
    resumed: bool
    """An interrupted swap was finished."""
    header: ImageHeader
    """The primary slot's header after the boot."""

    @property
    def version(self) -> str | None:
        """Version of the primary image (None if its header is not an image's)."""
        return str(self.header.version) if self.header.magic == IMAGE_MAGIC else None


@frozen
class BootResult(Frozen):
    """The outcome of :meth:`Bootloader.boot`."""

    ok: bool
    """A valid image was found and MCUboot jumps to it."""
    images: tuple[ImageBoot, ...]
    """Per image, in index order."""
    message: str = ""
    """:data:`NO_BOOTABLE_IMAGE` when ``ok`` is false."""
    image: Image | None = None
    """The image MCUboot jumps to (image 0's primary), as img_mgmt reads it."""
    recovery: bool = False
    """MCUboot entered serial recovery instead of jumping to an image."""
    boot_mode_used: bool = False
    """The retained boot mode asked for recovery and MCUboot cleared it."""


def _swap_type(value: int) -> SwapType:
    """A swap_info nibble as a swap type; values MCUboot has no name for act as NONE."""
    try:
        return SwapType(value)
    except ValueError:
        return SwapType.NONE


def _reported(resumed: SwapType | None, decided: SwapType) -> SwapType:
    return decided if resumed is None else resumed


def _algorithm(mode: Mode) -> Algorithm:
    # The build's own strategy alone is imported: a board starts sooner.
    if mode is Mode.MOVE:
        from smpsim.device.mcuboot.swap_move import SwapMove
        return SwapMove()
    if mode is Mode.OFFSET:
        from smpsim.device.mcuboot.swap_offset import SwapOffset
        return SwapOffset()
    if mode is Mode.SCRATCH:
        from smpsim.device.mcuboot.swap_scratch import SwapScratch
        return SwapScratch()
    from smpsim.device.mcuboot.swap_overwrite import Overwrite
    return Overwrite()


class Bootloader:
    """MCUboot as built for the board (``config``) over its partitions."""

    def __init__(self, config: BootloaderConfig, partitions: PartitionTable, clock: Clock,
                 console: Console, *, keys: KeyRing | None = None,
                 zephyr_build: str | None = None) -> None:
        self.config = config
        self.partitions = partitions
        self.clock = clock
        self.console = console
        self.mode = Mode(config.mode)
        self.keys = keys if keys is not None else KeyRing(
            config.keys if config.signature != "none" else ())
        """Keys built into MCUboot; named test keys must be resolved to PEM by the caller."""
        self.zephyr_build = zephyr_build
        """Zephyr build shown in MCUboot's banner; ``None`` leaves that line out."""
        self.image_count = partitions.image_count
        if self.image_count == 0:
            raise ValueError("MCUboot needs slot0 and slot1 partitions")
        self.scratch = partitions.get("scratch")
        if self.mode is Mode.SCRATCH and self.scratch is None:
            raise ValueError("swap-scratch needs a scratch partition")
        slots = [[s.size for s in area.sectors] for i in range(self.image_count)
                 for area in (partitions.primary(i), partitions.secondary(i)) if area]
        self.max_img_sectors = config.max_img_sectors or auto_max_img_sectors(slots)
        self._sram: Sram | None = None
        self.events = Events()
        self._problem = ""
        """Phases of each boot, for whoever watches (the device passes its own outlet on)."""

    @property
    def sram(self) -> Sram:
        """RAM that RAM_LOAD images are copied to: kept across warm resets (made when first
        used: only RAM_LOAD builds load it)."""
        if self._sram is None:
            from smpsim.device.mcuboot.ram_load import Sram
            self._sram = Sram()
        return self._sram

    # -- logging ----------------------------------------------------------------------------

    def info(self, text: str) -> None:
        """``BOOT_LOG_INF``."""
        self.console.print(f"I: {text}")

    def warn(self, text: str) -> None:
        """``BOOT_LOG_WRN``."""
        self.console.print(f"W: {text}")

    def error(self, text: str) -> None:
        """``BOOT_LOG_ERR``."""
        self.console.print(f"E: {text}")

    def dbg(self, text: str) -> None:
        """``BOOT_LOG_DBG``: printed on builds logging at debug level."""
        if self.config.log_level == "dbg":
            self.console.print(f"D: {text}")

    def area_ptr(self, slot: int) -> int:
        """The ``flash_area`` pointer of image 0's slot as debug lines print it (``%p``): the
        profile's, the secondary's the next 16-byte ``struct flash_area`` of the table."""
        return self.config.log_area_ptr + 16 * slot

    def context(self, image: int) -> SwapContext:
        """A fresh view of one image's slots (``boot_loader_state`` for that image)."""
        primary, secondary = self.partitions.primary(image), self.partitions.secondary(image)
        assert primary is not None and secondary is not None
        return SwapContext(self.mode, image, primary, secondary,
                           self.scratch if self.mode is Mode.SCRATCH else None,
                           _algorithm(self.mode), self.config.max_align, self.max_img_sectors,
                           self.image_count, self.info, self.warn, self.error)

    # -- boot -------------------------------------------------------------------------------

    def boot(self, *, button_held: bool = False, boot_mode: int = 0) -> BootResult:
        """Run MCUboot once, from reset to the jump, to serial recovery or to the failure
        (Zephyr's ``boot/zephyr/main.c`` around ``boot_go``)."""
        self.clock.spend(self.config.start_ms / 1000)
        if self.config.version:
            self.console.print(f"*** Booting MCUboot {self.config.version} ***")
        if self.zephyr_build is not None:
            self.console.print(f"*** Using Zephyr OS build {self.zephyr_build} ***")
        self.info("Starting bootloader")
        self.events.emit("mcuboot", phase="start")
        recovery = self.config.serial_recovery
        if recovery.enabled and recovery.entrance_gpio:
            self.dbg("Checking GPIO for serial recovery")
            if button_held:
                return self._enter_recovery(())
        ok, report, jump_offset = self._go()
        self.dbg(f"Left boot_go with success == {int(ok)}")
        if recovery.enabled and recovery.boot_mode and boot_mode == 1:
            self.dbg("Staying in serial recovery")
            return self._enter_recovery(report, boot_mode_used=True)
        if not ok:
            self.error(NO_BOOTABLE_IMAGE)
            self.events.emit("mcuboot", phase="no_image")
            if recovery.enabled and recovery.no_application:
                return self._enter_recovery(report)
            return BootResult(False, report, NO_BOOTABLE_IMAGE)
        # Image 0's header and image, read from its primary slot (no swap context to make).
        first = self.partitions.primary(0)
        assert first is not None
        header = ImageHeader.parse(first.read(0, IMAGE_HEADER_SIZE))
        self.info(f"Bootloader chainload address offset: {jump_offset:#x}")
        major, minor, revision = header.version.key()
        self.info(f"Image version: v{major}.{minor}.{revision}")
        self.info("Jumping to the first image slot")
        self.events.emit("mcuboot", phase="jump", version=f"{major}.{minor}.{revision}")
        try:
            image = read_image(first.read, first.size)
        except ImageError:
            image = None
        return BootResult(True, report, "", image)

    def _enter_recovery(self, report: tuple[ImageBoot, ...], *,
                        boot_mode_used: bool = False) -> BootResult:
        """``boot_serial_enter``: MCUboot serves SMP on its UART from here on."""
        self.info("Enter the serial recovery mode")
        self.events.emit("mcuboot", phase="recovery")
        return BootResult(False, report, "serial recovery", recovery=True,
                          boot_mode_used=boot_mode_used)

    def _go(self) -> tuple[bool, tuple[ImageBoot, ...], int]:
        """``boot_go``: (a bootable image was found, per-image report, jump address)."""
        if self.mode is Mode.RAM_LOAD:
            return self._ram_load_go()
        ctxs = [self.context(i) for i in range(self.image_count)]
        types = [SwapType.NONE] * self.image_count
        resumed: list[SwapType | None] = [None] * self.image_count
        bs = BootStatus()
        bs.reset(self.mode)
        for ctx in ctxs:
            if self._sectors_ok(ctx):
                types[ctx.image], resumed[ctx.image] = self._prepare(ctx, bs, types)
        for ctx in ctxs:
            self.events.emit("mcuboot", phase="decided", image=ctx.image,
                             swap_type=types[ctx.image].name.lower())
            if self.image_count > 1:
                bs.reset(self.mode)
            types[ctx.image] = self._perform(ctx, bs, types[ctx.image])
        ok = all(self._check_primary(ctx, types[ctx.image]) for ctx in ctxs)
        report = tuple(
            ImageBoot(ctx.image, _reported(resumed[ctx.image], types[ctx.image]),
                      resumed[ctx.image] is not None, ctx.read_header(0)) for ctx in ctxs)
        return ok, report, ctxs[0].primary.offset

    def _ram_load_go(self) -> tuple[bool, tuple[ImageBoot, ...], int]:
        """RAM_LOAD's ``context_boot_go``: each image loaded to RAM and validated there."""
        from smpsim.device.mcuboot.ram_load import RamLoadLog, ram_load_image
        log = RamLoadLog(self.info, self.error, self.dbg, self.area_ptr, self._hashed)
        loaded = []
        for image in range(self.image_count):
            primary, secondary = self.partitions.primary(image), self.partitions.secondary(image)
            assert primary is not None and secondary is not None
            found = ram_load_image(image, (primary, secondary), self.sram, log)
            if found is None:
                return False, (), 0
            loaded.append(found)
        for image, (_, slot) in enumerate(loaded):
            self.info(f"Image {image} loaded from the {'primary' if slot == 0 else 'secondary'} "
                      "slot")
        report = tuple(ImageBoot(i, SwapType.NONE, False, header)
                       for i, (header, _) in enumerate(loaded))
        return True, report, loaded[0][0].load_addr

    def _hashed(self, count: int) -> None:
        self.clock.spend(count / (self.config.hash_kib_per_s * 1024))

    def _sectors_ok(self, ctx: SwapContext) -> bool:
        areas = [ctx.primary, ctx.secondary, *([ctx.scratch] if ctx.scratch else [])]
        if all(len(area.sectors) <= self.max_img_sectors for area in areas):
            return True
        self.warn(f"Failed reading sectors; BOOT_MAX_IMG_SECTORS={self.max_img_sectors} "
                  "- too small?")
        return False

    def _prepare(self, ctx: SwapContext, bs: BootStatus,
                 types: list[SwapType]) -> tuple[SwapType, SwapType | None]:
        """``boot_prepare_image_for_update``: (swap type to perform, type of a resumed swap)."""
        if not read_headers(ctx, False, None):
            self.warn(f"Failed reading image headers; Image={ctx.image}")
            return SwapType.NONE, None
        if not ctx.algo.slots_compatible(ctx):
            return SwapType.NONE, None
        bs.reset(self.mode)
        if self.mode is not Mode.OVERWRITE:
            read_status(ctx, bs)
            if not read_headers(ctx, not bs.is_reset(self.mode), bs):
                self.warn(f"Failed reading image headers; Image={ctx.image}")
                return SwapType.NONE, None
        if not bs.is_reset(self.mode):
            self._review(ctx.image, types, aborted=True)
            done = _swap_type(bs.swap_type)
            self.events.emit("swap", phase="start", image=ctx.image,
                             swap_type=done.name.lower(), resumed=True)
            swap_image(ctx, bs)
            self.events.emit("swap", phase="done", image=ctx.image)
            self._finish(ctx, done)
            read_headers(ctx, False, None)
            return SwapType.NONE, done
        if bs.swap_type == SwapType.NONE:
            decided = self._validated_swap_type(ctx, bs)
        elif self._validate_slot(ctx, 1, bs, None) is not Fih.SUCCESS:
            decided = SwapType.FAIL
        else:
            decided = _swap_type(bs.swap_type)
        types[ctx.image] = decided
        self._review(ctx.image, types, aborted=False)
        return types[ctx.image], None

    def _review(self, image: int, types: list[SwapType], *, aborted: bool) -> None:
        """``boot_review_image_swap_types``: a later image's upgrade means earlier REVERTs
        were stale (their image_ok was not yet written when power went)."""
        if image == 0 or (not aborted and types[image] in (SwapType.NONE, SwapType.REVERT)):
            return
        for index in range(image):
            if types[index] is SwapType.REVERT:
                types[index] = SwapType.NONE

    def _finish(self, ctx: SwapContext, done: SwapType) -> None:
        """After a swap: image_ok for REVERT and PERM, copy_done for every upgrade."""
        if self.mode is Mode.OVERWRITE:
            return
        if done in (SwapType.REVERT, SwapType.PERM):
            set_image_ok(ctx)
        if done in UPGRADES:
            set_copy_done(ctx)

    def _perform(self, ctx: SwapContext, bs: BootStatus, decided: SwapType) -> SwapType:
        """Second pass: carry out the decided swap (``boot_perform_update``)."""
        bs.swap_type = decided
        if decided in (SwapType.TEST, SwapType.PERM) and self._downgrade(ctx):
            return SwapType.NONE
        if decided in UPGRADES:
            self.events.emit("swap", phase="start", image=ctx.image,
                             swap_type=decided.name.lower(), resumed=False)
            if self.mode is Mode.OVERWRITE:
                ctx.algo.swap_run(ctx, bs, 0)
            else:
                swap_image(ctx, bs)
            self._finish(ctx, decided)
            self.events.emit("swap", phase="done", image=ctx.image)
        elif decided is SwapType.FAIL and self.mode is not Mode.OVERWRITE:
            set_image_ok(ctx)
        return decided

    def _downgrade(self, ctx: SwapContext) -> bool:
        """``check_downgrade_prevention`` (swap modes, version comparison)."""
        if not self.config.downgrade_prevention or self.mode is Mode.OVERWRITE:
            return False
        if ctx.headers[1].version >= ctx.headers[0].version:
            return False
        self.info(f"Image {ctx.image} in slot 1 erased due to downgrade prevention")
        scramble_slot(ctx.secondary)
        return True

    def _check_primary(self, ctx: SwapContext, decided: SwapType) -> bool:
        """Third pass: the primary image must pass before MCUboot jumps to it."""
        if decided is not SwapType.NONE:
            read_headers(ctx, False, None)
        if self.config.validate_primary:
            return self._validate_slot(ctx, 0, None, None) is Fih.SUCCESS
        header = ctx.headers[0]
        if header.magic != IMAGE_MAGIC:
            self.error(f"Bad image magic {header.magic:#x}; Image={ctx.image}")
            return False
        return True

    # -- validation -------------------------------------------------------------------------

    def _validated_swap_type(self, ctx: SwapContext, bs: BootStatus) -> SwapType:
        """``boot_validated_swap_type``: the table, then the secondary image must pass."""
        decided = ctx.swap_type_multi()
        if decided in UPGRADES:
            fih = self._validate_slot(ctx, 1, bs, decided)
            if fih is Fih.NO_BOOTABLE:
                return SwapType.NONE
            if fih is not Fih.SUCCESS:
                return SwapType.FAIL
        return decided

    def _validate_slot(self, ctx: SwapContext, slot: int, bs: BootStatus | None,
                       expected: SwapType | None) -> Fih:
        """``boot_validate_slot``; an invalid secondary is erased."""
        header = ctx.headers[slot]
        if header.magic == 0xFFFFFFFF or header.flags & ImageFlag.NON_BOOTABLE:
            if slot == 1 and self.mode is not Mode.OVERWRITE:
                # An erased image with a trailer left behind: drop the trailer.
                scramble_trailer_sectors(ctx, ctx.trailers[1])
                if self.mode is Mode.MOVE and bs is not None and (
                        bs.swap_type == SwapType.REVERT
                        or ctx.swap_type_multi() is SwapType.REVERT):
                    scramble_trailer_sectors(ctx, ctx.trailers[0])
                    self.info(f"Cleared image {ctx.image} primary slot trailer due to stuck "
                              "revert")
            return Fih.NO_BOOTABLE
        fih: Fih | None = None
        self._problem = "bad header"
        if (self.mode is Mode.OFFSET and slot == 1 and bs is not None
                and bs.is_reset(self.mode) and expected in (SwapType.TEST, SwapType.PERM)
                and ctx.read_header(1, 0).magic == IMAGE_MAGIC):
            self.error("Secondary header magic detected in first sector, wrong upload "
                       "address?")
            fih = Fih.NO_BOOTABLE
        if fih is None:
            if (self.mode is Mode.OVERWRITE and self.config.downgrade_prevention and slot == 1
                    and header.version < ctx.headers[0].version
                    and ctx.headers[0].magic != 0xFFFFFFFF):
                self.error("Insufficient version in secondary slot")
                scramble_slot(ctx.secondary)
                return Fih.NO_BOOTABLE
            fih = self._check_image(ctx, slot) if self._header_valid(ctx, slot) else Fih.FAILURE
        if fih is not Fih.SUCCESS:
            self.error(f"Image in the {'primary' if slot == 0 else 'secondary'} slot is not "
                       "valid!")
            self.events.emit("image", phase="invalid", image=ctx.image, slot=slot,
                             reason=self._problem)
            if slot == 1:
                scramble_slot(ctx.secondary)
                self.events.emit("image", phase="erased", image=ctx.image, slot=slot)
            return Fih.NO_BOOTABLE
        self.events.emit("image", phase="valid", image=ctx.image, slot=slot)
        return Fih.SUCCESS

    def _header_valid(self, ctx: SwapContext, slot: int) -> bool:
        """``boot_check_header_valid`` (no encryption, no decompression support)."""
        header = ctx.headers[slot]
        if header.magic != IMAGE_MAGIC:
            return False
        size = header.hdr_size + header.img_size + header.protect_tlv_size
        if size > 0xFFFFFFFF or size >= ctx.areas[slot].size:
            return False
        unsupported = (ImageFlag.ENCRYPTED_AES128 | ImageFlag.ENCRYPTED_AES256
                       | ImageFlag.COMPRESSED_LZMA1 | ImageFlag.COMPRESSED_LZMA2)
        return not header.flags & unsupported

    def _check_image(self, ctx: SwapContext, slot: int) -> Fih:
        """``bootutil_img_validate``: hash, signature, size; charges the clock."""
        area = ctx.areas[slot]
        base = ctx.secondary_offset if slot == 1 and self.mode is Mode.OFFSET else 0
        result = validate_image(lambda off, length: area.read(base + off, length),
                                area.size - base, cast(Signature, self.config.signature),
                                self.keys, ctx.algo.app_max_size(ctx))
        self._problem = result.reason
        self.clock.spend(result.hashed_bytes / (self.config.hash_kib_per_s * 1024))
        if self.config.signature != "none" and result.hashed_bytes:
            self.clock.spend(self.config.verify_ms / 1000)
        return Fih.SUCCESS if result.ok else Fih.FAILURE
