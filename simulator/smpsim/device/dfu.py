"""The application's view of its image slots: what Zephyr's img_mgmt and ``dfu/mcuboot`` use.

Slot 0 of an image is its primary slot (where it runs from), slot 1 its secondary slot (where
updates are uploaded). Everything is read from, and written to, the flash: no state is kept here
besides each slot's trailer layout (fixed by the build, as MCUboot's offsets are constants).
"""

from __future__ import annotations

from collections.abc import Callable

from smpsim.config import Bootloader as BootloaderConfig
from smpsim.device.mcuboot.image import Image, ImageError, ImageProblem, read_image
from smpsim.device.mcuboot.sizes import max_image_size, upload_offset
from smpsim.device.mcuboot.trailer import (
    Mode,
    SwapState,
    SwapType,
    Trailer,
    TrailerLayout,
    set_confirmed,
    set_pending,
    swap_type,
)
from smpsim.device.partitions import FlashArea, PartitionTable


class Dfu:
    """Image slots of the board, as the running application sees them."""

    def __init__(self, config: BootloaderConfig, partitions: PartitionTable,
                 max_img_sectors: int) -> None:
        self.config = config
        self.partitions = partitions
        self.mode = Mode(config.mode)
        self.image_count = partitions.image_count
        self.max_img_sectors = max_img_sectors
        # Made here, not per request: a TrailerLayout is a frozen record, slow to build, and the
        # first upload chunk wants three of them (two trailer reads and the trailer's offset).
        self._layouts: dict[tuple[int, int], TrailerLayout] = {}
        for image in range(self.image_count):
            for slot in (0, 1):
                area = self._area(image, slot)
                layout = self._layouts[image, slot] = TrailerLayout(
                    area.size, config.max_align, area.write_block, self.mode, max_img_sectors)
                # The offsets trailer reads and the first upload chunk ask for (each kept once
                # worked out; swap_info_off works out the others before it): done now, not by
                # the first request.
                _ = layout.swap_info_off, layout.status_off

    def area(self, image: int, slot: int) -> FlashArea | None:
        """Slot ``slot`` (0 primary, 1 secondary) of ``image``; ``None`` if there is none."""
        if not 0 <= image < self.image_count or slot not in (0, 1):
            return None
        return self.partitions.primary(image) if slot == 0 else self.partitions.secondary(image)

    def _area(self, image: int, slot: int) -> FlashArea:
        area = self.area(image, slot)
        if area is None:
            raise ValueError(f"image {image} has no slot {slot}")
        return area

    def layout(self, image: int, slot: int) -> TrailerLayout:
        """Where the trailer fields of a slot lie."""
        layout = self._layouts.get((image, slot))
        if layout is None:
            raise ValueError(f"image {image} has no slot {slot}")
        return layout

    def trailer_state(self, image: int, slot: int) -> SwapState:
        """The decoded trailer of a slot."""
        return Trailer(self._area(image, slot), self.layout(image, slot)).read_state()

    def swap_type(self, image: int) -> SwapType:
        """``boot_swap_type_multi``: what MCUboot would do with ``image`` at the next boot."""
        return swap_type(self.trailer_state(image, 0), self.trailer_state(image, 1), self.mode)

    def start(self, image: int, slot: int, swap: SwapType | None = None) -> int:
        """Offset of the image inside the slot (``boot_get_image_start_offset``); ``swap`` is
        ``image``'s :meth:`swap_type` when the caller has just read it."""
        if slot == 0:
            return 0
        area = self._area(image, slot)
        return upload_offset(self.mode, area.sectors[0].size,
                             self.swap_type(image) if swap is None else swap)

    def reader(self, image: int, slot: int) -> tuple[Callable[[int, int], bytes], int]:
        """A ``read(offset, length)`` over the image in a slot, and the bytes available."""
        area = self._area(image, slot)
        start = self.start(image, slot)
        return (lambda offset, length: area.read(start + offset, length)), area.size - start

    def read(self, image: int, slot: int) -> Image:
        """The image in a slot as img_mgmt reads it; raises :class:`ImageError`."""
        if self.area(image, slot) is None:
            raise ImageError(ImageProblem.NO_IMAGE, f"image {image} has no slot {slot}")
        read, limit = self.reader(image, slot)
        return read_image(read, limit)

    def find(self, image: int, slot: int) -> Image | None:
        """The image in a slot, or ``None`` when it holds no readable image."""
        try:
            return self.read(image, slot)
        except ImageError:
            return None

    def set_pending(self, image: int, permanent: bool) -> None:
        """Request a test (or permanent) swap of ``image``'s secondary slot."""
        set_pending(self._area(image, 1), image, permanent, max_align=self.config.max_align)

    def set_confirmed(self, image: int) -> None:
        """Mark ``image``'s running image good (``boot_write_img_confirmed``)."""
        set_confirmed(self._area(image, 0), max_align=self.config.max_align)

    def max_image_size(self, image: int) -> int:
        """The largest image MCUboot will swap in for ``image``."""
        primary, secondary = self._area(image, 0), self._area(image, 1)
        scratch = self.partitions.get("scratch")
        return max_image_size(self.mode, [s.size for s in primary.sectors],
                              [s.size for s in secondary.sectors],
                              max_align=self.config.max_align,
                              write_block=primary.write_block,
                              max_img_sectors=self.max_img_sectors,
                              scratch_size=scratch.size if scratch else 0)
