"""MCUboot's boot flow: validation, the paths that refuse a swap, logs and time."""

from __future__ import annotations

import pytest
from mcuboot_rig import (
    ALL_MODES,
    SECTOR,
    SWAP_MODES,
    Rig,
    ecdsa_key,
    make_rig,
    signed,
    slot_image,
    stage,
)

from smpsim.device.mcuboot.bootloader import NO_BOOTABLE_IMAGE
from smpsim.device.mcuboot.trailer import (
    UNSET_STATE,
    Flag,
    Magic,
    Mode,
    SwapType,
    set_confirmed,
    set_pending,
)


def corrupt(image: bytes) -> bytes:
    """The image with one payload byte changed: its hash no longer matches."""
    return image[:0x300] + bytes([image[0x300] ^ 0xFF]) + image[0x301:]


def old_new(rig: Rig) -> tuple[bytes, bytes]:
    return slot_image("1.0.0", 1500, rig), slot_image("2.0.0", 2600, rig)


def boots_old(rig: Rig, old: bytes) -> None:
    result = rig.boot()
    assert result.ok
    assert result.images[0].swap_type is SwapType.NONE
    assert result.images[0].version == "1.0.0"
    assert rig.primary.read(0, len(old)) == old


# -- the secondary is refused ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_invalid_secondary_is_erased_and_the_primary_keeps_booting(mode: Mode) -> None:
    rig = make_rig(mode)
    old, new = old_new(rig)
    stage(rig, old, corrupt(new))
    boots_old(rig, old)
    assert "E: Image in the secondary slot is not valid!" in rig.lines
    assert rig.secondary.is_erased()
    assert rig.states() == (UNSET_STATE, UNSET_STATE)
    ops = rig.flash.ops
    boots_old(rig, old)
    assert rig.flash.ops == ops


@pytest.mark.parametrize("mode", SWAP_MODES)
def test_erased_secondary_header_gets_its_stale_trailer_scrambled(mode: Mode) -> None:
    rig = make_rig(mode)
    old, _ = old_new(rig)
    rig.install(rig.primary, old)
    leftover = bytes(range(256)) * 4
    rig.install(rig.secondary, leftover, 3 * SECTOR)
    set_pending(rig.secondary, 0, permanent=False)
    assert rig.swap_type() is SwapType.TEST
    boots_old(rig, old)
    assert rig.trailer(rig.secondary).read_state() == UNSET_STATE
    assert rig.secondary.read(3 * SECTOR, len(leftover)) == leftover
    assert "E: Image in the secondary slot is not valid!" not in rig.lines


def test_stuck_revert_with_an_erased_secondary_clears_the_primary_trailer() -> None:
    rig = make_rig(Mode.MOVE)
    old, _ = old_new(rig)
    rig.install(rig.primary, old)
    primary = rig.trailer(rig.primary)
    primary.write_copy_done()
    primary.write_magic()
    assert rig.swap_type() is SwapType.REVERT
    rig.secondary.erase(0, rig.secondary.size)
    boots_old(rig, old)
    assert "I: Cleared image 0 primary slot trailer due to stuck revert" in rig.lines
    assert rig.states() == (UNSET_STATE, UNSET_STATE)


def test_swap_offset_refuses_an_image_uploaded_at_offset_0() -> None:
    rig = make_rig(Mode.OFFSET)
    old, new = old_new(rig)
    rig.install(rig.primary, old)
    rig.install(rig.secondary, signed("2.0.0", 2600, rig.secondary.size))
    set_pending(rig.secondary, 0, permanent=False)
    boots_old(rig, old)
    assert rig.lines[-5:-3] == [
        "E: Secondary header magic detected in first sector, wrong upload address?",
        "E: Image in the secondary slot is not valid!"]
    assert rig.secondary.is_erased()
    assert len(new) > 0


@pytest.mark.parametrize(("mode", "line"), [
    (Mode.MOVE, "I: Image 0 in slot 1 erased due to downgrade prevention"),
    (Mode.OFFSET, "I: Image 0 in slot 1 erased due to downgrade prevention"),
    (Mode.OVERWRITE, "E: Insufficient version in secondary slot"),
])
def test_downgrade_prevention(mode: Mode, line: str) -> None:
    rig = make_rig(mode, downgrade_prevention=True)
    newer, older = slot_image("3.0.0", 1500, rig), slot_image("2.0.0", 2600, rig)
    stage(rig, newer, older)
    result = rig.boot()
    assert result.ok and result.images[0].version == "3.0.0"
    assert result.images[0].swap_type is SwapType.NONE
    assert line in rig.lines
    assert rig.secondary.is_erased()


def test_without_downgrade_prevention_an_older_image_swaps_in() -> None:
    rig = make_rig(Mode.MOVE)
    stage(rig, slot_image("3.0.0", 1500, rig), slot_image("2.0.0", 2600, rig))
    assert rig.boot().images[0].version == "2.0.0"


def test_incompatible_slots_never_swap() -> None:
    rig = make_rig(Mode.MOVE, secondary_extra=-2)
    old, new = old_new(rig)
    stage(rig, old, new)
    boots_old(rig, old)
    assert "W: Cannot upgrade: not a compatible amount of sectors" in rig.lines
    assert rig.secondary.read(0, len(new)) == new


def test_too_few_max_img_sectors_is_fatal() -> None:
    # The sector layout cannot be read, so no header either: the zeroed one fails validation.
    rig = make_rig(Mode.MOVE, max_img_sectors=4)
    old, new = old_new(rig)
    stage(rig, old, new)
    assert not rig.boot().ok
    assert rig.lines[-3:] == ["W: Failed reading sectors; BOOT_MAX_IMG_SECTORS=4 - too small?",
                              "E: Image in the primary slot is not valid!",
                              "E: Unable to find bootable image"]
    assert rig.secondary.read(0, len(new)) == new


def test_swap_move_without_room_to_move_the_primary() -> None:
    # An image larger than swap-move allows (6 KiB here) fails primary validation, so only a
    # build without it gets this far.
    rig = make_rig(Mode.MOVE, validate_primary=False)
    big = signed("1.0.0", 6000, rig.primary.size)
    _, new = old_new(rig)
    stage(rig, big, new)
    result = rig.boot()
    assert result.ok and result.images[0].version == "1.0.0"
    assert "W: Not enough free space to run swap upgrade" in rig.lines
    assert "W: required 8192 bytes but only 7168 are available" in rig.lines
    assert rig.primary.read(0, len(big)) == big
    assert rig.secondary.read(0, len(new)) == new
    # MCUboot still marks the (skipped) swap done; every boot then tries again, harmlessly.
    assert rig.trailer(rig.primary).read_copy_done() is Flag.SET
    assert rig.boot().images[0].version == "1.0.0"
    assert rig.primary.read(0, len(big)) == big


# -- the primary is refused -------------------------------------------------------------------


def test_primary_validation_failure_means_no_bootable_image() -> None:
    rig = make_rig(Mode.MOVE)
    old, _ = old_new(rig)
    rig.install(rig.primary, corrupt(old))
    result = rig.boot()
    assert not result.ok
    assert result.message == NO_BOOTABLE_IMAGE
    assert rig.lines[-2:] == ["E: Image in the primary slot is not valid!",
                              "E: Unable to find bootable image"]
    assert rig.primary.read(0, len(old)) == corrupt(old)


def test_without_primary_validation_only_the_magic_is_checked() -> None:
    rig = make_rig(Mode.MOVE, validate_primary=False)
    old, _ = old_new(rig)
    rig.install(rig.primary, corrupt(old))
    assert rig.boot().ok
    empty = make_rig(Mode.MOVE, validate_primary=False)
    assert not empty.boot().ok
    assert empty.lines[-2:] == ["E: Bad image magic 0xffffffff; Image=0",
                                "E: Unable to find bootable image"]


def test_empty_flash_has_no_bootable_image() -> None:
    rig = make_rig(Mode.OFFSET)
    result = rig.boot()
    assert not result.ok and result.image is None
    assert rig.lines[-1] == "E: Unable to find bootable image"
    assert rig.flash.ops == 0


# -- other flows ------------------------------------------------------------------------------


def test_confirmed_test_image_stays() -> None:
    rig = make_rig(Mode.MOVE)
    old, new = old_new(rig)
    stage(rig, old, new)
    assert rig.boot().images[0].version == "2.0.0"
    set_confirmed(rig.primary)
    assert rig.swap_type() is SwapType.NONE
    ops = rig.flash.ops
    result = rig.boot()
    assert result.images[0].version == "2.0.0" and rig.flash.ops == ops


def test_status_without_progress_and_a_bad_secondary_is_a_fail() -> None:
    rig = make_rig(Mode.MOVE)
    old, new = old_new(rig)
    rig.install(rig.primary, old)
    rig.install(rig.secondary, corrupt(new))
    primary = rig.trailer(rig.primary)
    primary.write_swap_info(SwapType.TEST, 0)
    primary.write_swap_size(len(new))
    primary.write_magic()
    result = rig.boot()
    assert result.ok and result.images[0].swap_type is SwapType.FAIL
    assert "I: Boot source: primary slot" in rig.lines
    assert primary.read_image_ok() is Flag.SET
    assert rig.secondary.is_erased()
    assert rig.primary.read(0, len(old)) == old


def test_two_images_swap_and_revert_together() -> None:
    rig = make_rig(Mode.MOVE, images=2)
    old, new = old_new(rig)
    for image in (0, 1):
        primary, secondary = rig.table.primary(image), rig.table.secondary(image)
        assert primary is not None and secondary is not None
        rig.install(primary, old)
        rig.install(secondary, new)
        set_pending(secondary, image, permanent=False)
    result = rig.boot()
    assert [(i.image, i.swap_type, i.version) for i in result.images] == [
        (0, SwapType.TEST, "2.0.0"), (1, SwapType.TEST, "2.0.0")]
    assert "I: Image index: 1, Swap type: test" in rig.lines
    assert rig.states(1)[0].swap_type == SwapType.TEST
    result = rig.boot()
    assert [i.version for i in result.images] == ["1.0.0", "1.0.0"]
    assert rig.swap_type(0) is rig.swap_type(1) is SwapType.NONE


def test_busy_time_is_start_plus_hashing() -> None:
    rig = make_rig(Mode.MOVE, start_ms=30.0, hash_kib_per_s=100.0)
    old, _ = old_new(rig)
    rig.install(rig.primary, old)
    start = rig.clock.now()
    assert rig.boot().ok
    assert rig.clock.now() - start == pytest.approx(0.030 + (0x200 + 1500) / (100 * 1024))


def test_swap_time_includes_the_flash_operations() -> None:
    rig = make_rig(Mode.OFFSET, start_ms=0.0)
    stage(rig, *old_new(rig))
    start, erases, writes = rig.clock.now(), rig.flash.erases, rig.flash.writes
    assert rig.boot().ok
    flash_s = (rig.flash.erases - erases) * 0.001
    assert rig.clock.now() - start > flash_s
    assert rig.flash.writes > writes


def test_signed_images_are_checked_and_cost_verify_time() -> None:
    rig = make_rig(Mode.MOVE, signature="ecdsa-p256", keys=(ecdsa_key(),), start_ms=0.0,
                   hash_kib_per_s=1e9, verify_ms=50.0)
    size = rig.secondary.size
    old = signed("1.0.0", 1500, size, "-k", "KEY")
    rig.install(rig.primary, old)
    start = rig.clock.now()
    assert rig.boot().ok
    assert rig.clock.now() - start == pytest.approx(0.050, abs=1e-6)
    unsigned = signed("2.0.0", 2600, size)
    rig.install(rig.secondary, unsigned)
    set_pending(rig.secondary, 0, permanent=False)
    boots_old(rig, old)
    assert "E: Image in the secondary slot is not valid!" in rig.lines
    rig.install(rig.secondary, signed("2.0.0", 2600, size, "-k", "KEY"))
    set_pending(rig.secondary, 0, permanent=False)
    assert rig.boot().images[0].version == "2.0.0"


# -- MCUboot's console, as recorded from a real swap-offset build --------------------------------

BANNER = ["*** Booting MCUboot ee39e2d694bd ***", "*** Using Zephyr OS build 684c9e8f32e4 ***",
          "I: Starting bootloader"]
TAIL = ["I: Bootloader chainload address offset: 0x8000"]


def test_swap_offset_boot_logs_match_the_recorded_ones() -> None:
    rig = make_rig(Mode.OFFSET, base=0x8000, zephyr_build="684c9e8f32e4")
    factory = signed("0.0.0", 1500, rig.primary.size)
    v123 = signed("1.2.3", 2600, rig.secondary.size - SECTOR)
    stage(rig, factory, v123)
    assert rig.boot().images[0].version == "1.2.3"

    def boot_log() -> list[str]:
        rig.lines.clear()
        rig.boot()
        return rig.lines

    assert boot_log() == [*BANNER,  # os.reset.no_confirm.boot_log
        "I: Image index: 0, Swap type: revert",
        "I: Primary image: magic=good, swap_type=0x2, copy_done=0x1, image_ok=0x3",
        "I: Secondary image: magic=unset, swap_type=0x1, copy_done=0x3, image_ok=0x3",
        "I: Boot source: none",
        *["I: Image index: 0, Swap type: revert"] * 3,
        "I: Starting swap using offset algorithm.",
        "I: Secondary image: magic=unset, swap_type=0x1, copy_done=0x3, image_ok=0x3",
        "I: Image index: 0, Swap type: none",
        *TAIL, "I: Image version: v0.0.0", "I: Jumping to the first image slot"]
    assert boot_log() == [*BANNER,  # os.reset.after_revert.boot_log
        "I: Image index: 0, Swap type: none",
        "I: Primary image: magic=good, swap_type=0x4, copy_done=0x1, image_ok=0x1",
        "I: Secondary image: magic=unset, swap_type=0x1, copy_done=0x3, image_ok=0x3",
        "I: Boot source: none",
        *["I: Image index: 0, Swap type: none"] * 3,
        *TAIL, "I: Image version: v0.0.0", "I: Jumping to the first image slot"]
    set_pending(rig.secondary, 0, permanent=False)
    assert boot_log() == [*BANNER,  # os.reset.tbe_test.boot_log
        "I: Image index: 0, Swap type: test",
        "I: Primary image: magic=good, swap_type=0x4, copy_done=0x1, image_ok=0x1",
        "I: Secondary image: magic=good, swap_type=0x2, copy_done=0x3, image_ok=0x3",
        "I: Boot source: none",
        *["I: Image index: 0, Swap type: test"] * 3,
        "I: Starting swap using offset algorithm.",
        "I: Image index: 0, Swap type: none",
        "I: Image index: 0, Swap type: revert",
        *TAIL, "I: Image version: v1.2.3", "I: Jumping to the first image slot"]
    set_confirmed(rig.primary)
    rig.secondary.erase(0, rig.secondary.size)
    rig.install(rig.secondary, signed("2.0.0", 2000, rig.secondary.size - SECTOR), SECTOR)
    set_pending(rig.secondary, 0, permanent=True)
    assert boot_log() == [*BANNER,  # os.reset.permanent.boot_log
        "I: Image index: 0, Swap type: perm",
        "I: Primary image: magic=good, swap_type=0x2, copy_done=0x1, image_ok=0x1",
        "I: Secondary image: magic=good, swap_type=0x3, copy_done=0x3, image_ok=0x1",
        "I: Boot source: none",
        *["I: Image index: 0, Swap type: perm"] * 3,
        "I: Starting swap using offset algorithm.",
        *["I: Image index: 0, Swap type: none"] * 3,
        *TAIL, "I: Image version: v2.0.0", "I: Jumping to the first image slot"]
    assert rig.states()[0].image_ok is Flag.SET
    assert rig.states()[1].magic is Magic.UNSET
