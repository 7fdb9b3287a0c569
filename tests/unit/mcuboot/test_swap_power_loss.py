"""Every upgrade algorithm, clean and cut by a power loss before any flash operation.

The board: 8 sectors of 1 KiB per slot, write block 8, a 2-sector scratch; the running image
is 2 KiB (v1.0.0), the new one a little over 3 KiB (v2.0.0). MCUboot's own simulator
interrupts its flash shim the same way: before a write or erase, never inside one.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mcuboot_rig import ALL_MODES, SWAP_MODES, Rig, make_rig, slot_image, stage

from smpsim.device.flash import PowerLoss
from smpsim.device.mcuboot.trailer import UNSET_STATE, Flag, Magic, Mode, SwapType
from smpsim.device.power_cuts import every_power_cut

OLD_PAYLOAD, NEW_PAYLOAD = 1500, 2600
BIG_PAYLOAD = 6800
"""A new image reaching into the sector that holds the trailer (swap-scratch's special case)."""


def images(rig: Rig, new_payload: int = NEW_PAYLOAD) -> tuple[bytes, bytes]:
    return (slot_image("1.0.0", OLD_PAYLOAD, rig), slot_image("2.0.0", new_payload, rig))


def staged(mode: Mode, *, permanent: bool = False, new_payload: int = NEW_PAYLOAD) -> Rig:
    rig = make_rig(mode)
    stage(rig, *images(rig, new_payload), permanent=permanent)
    return rig


@functools.cache
def swapped_snapshot(mode: Mode, new_payload: int = NEW_PAYLOAD) -> bytes:
    """The flash after a clean test swap (the new image running unconfirmed)."""
    rig = staged(mode, new_payload=new_payload)
    assert rig.boot().ok
    return rig.snapshot()


def from_snapshot(mode: Mode, snapshot: bytes) -> Rig:
    rig = make_rig(mode)
    rig.restore(snapshot)
    return rig


def boot_ops(rig: Rig) -> int:
    start = rig.flash.ops
    assert rig.boot().ok
    return rig.flash.ops - start


def assert_upgraded(rig: Rig, *, permanent: bool, new_payload: int = NEW_PAYLOAD) -> None:
    """§3.4 / §4.6: new image in the primary, old in the secondary, trailers as after a swap."""
    old, new = images(rig, new_payload)
    assert rig.primary.read(0, len(new)) == new
    primary, secondary = rig.states()
    if rig.mode is Mode.OVERWRITE:
        # The secondary's trailer came along with the copy; the secondary's header sector is
        # erased. A cut just before the last sector's erase leaves the request in its trailer:
        # overwrite-only MCUboot never scrambles a stale trailer, it just finds no image there.
        assert primary.magic is Magic.GOOD
        assert primary.copy_done is Flag.UNSET
        assert rig.secondary.is_erased(0, 1024)
        assert secondary == UNSET_STATE or secondary.magic is Magic.GOOD
        return
    assert rig.secondary.read(0, len(old)) == old
    assert primary.magic is Magic.GOOD
    assert primary.copy_done is Flag.SET
    assert primary.image_ok is (Flag.SET if permanent else Flag.UNSET)
    assert secondary == UNSET_STATE
    assert rig.swap_type() is (SwapType.NONE if permanent else SwapType.REVERT)


def assert_reverted(rig: Rig) -> None:
    """Old image back in the primary, confirmed; the rejected one in the secondary, no trailer."""
    old, new = images(rig)
    assert rig.primary.read(0, len(old)) == old
    assert rig.secondary.read(rig.upload_offset(), len(new)) == new
    primary, secondary = rig.states()
    assert (primary.magic, primary.image_ok, primary.copy_done) == (Magic.GOOD, Flag.SET,
                                                                    Flag.SET)
    assert secondary == UNSET_STATE
    assert rig.swap_type() is SwapType.NONE


# -- clean runs -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("permanent", [False, True], ids=["test", "perm"])
def test_clean_swap(mode: Mode, permanent: bool) -> None:
    rig = staged(mode, permanent=permanent)
    result = rig.boot()
    assert result.ok
    expected = SwapType.PERM if permanent else SwapType.TEST
    assert (result.images[0].swap_type, result.images[0].resumed) == (expected, False)
    assert result.images[0].version == "2.0.0"
    assert result.image is not None and str(result.image.version) == "2.0.0"
    assert_upgraded(rig, permanent=permanent)
    if permanent or mode is Mode.OVERWRITE:
        assert boot_ops(rig) == 0
        assert_upgraded(rig, permanent=permanent)


@pytest.mark.parametrize("mode", SWAP_MODES)
def test_clean_revert_then_nothing(mode: Mode) -> None:
    rig = from_snapshot(mode, swapped_snapshot(mode))
    result = rig.boot()
    assert result.ok
    assert result.images[0].swap_type is SwapType.REVERT
    assert result.images[0].version == "1.0.0"
    assert_reverted(rig)
    assert boot_ops(rig) == 0
    assert_reverted(rig)


@pytest.mark.parametrize(("mode", "swap", "revert"), [
    # move, K = 4 sectors: trailer erase + 3 init writes + secondary trailer erase, 4 moves of
    # 3 ops, 4 swaps of 6 ops, copy_done. The revert adds fixup_revert (erase + 3 writes) and
    # image_ok in the status init.
    (Mode.MOVE, 1 + 3 + 1 + 4 * 3 + 4 * 6 + 1, 4 + 1 + 4 + 1 + 4 * 3 + 4 * 6 + 1),
    # scratch, 2 regions of 2 sectors: first region 14 + 6 + 5 ops (scratch trailer, primary
    # status init, secondary trailer erase), second 5 + 5 + 5, copy_done; revert: + image_ok.
    (Mode.SCRATCH, 25 + 15 + 1, 25 + 15 + 2),
    # offset, 4 indices: erase + 4 init writes + erase, 4 x 6, copy_done. Revert: fixup (erase,
    # copy_done, 4 writes), init (erase + 4), erase, 4 x 6, sector 0 and trailer, image_ok,
    # copy_done.
    (Mode.OFFSET, 1 + 4 + 1 + 4 * 6 + 1, 6 + 5 + 1 + 4 * 6 + 2 + 2),
    # overwrite: 8 sector erases, 8 chunk writes, the secondary's first and last sector.
    (Mode.OVERWRITE, 8 + 8 + 2, None),
])
def test_clean_operation_counts(mode: Mode, swap: int, revert: int | None) -> None:
    assert boot_ops(staged(mode)) == swap
    if revert is not None:
        assert boot_ops(from_snapshot(mode, swapped_snapshot(mode))) == revert


# -- one cut at every operation ----------------------------------------------------------------
# Each sweep resumes every cut from a checkpoint (every_power_cut); the first test holds that to
# the plain way, replaying the boot from a freshly staged board up to each cut.


def recover(rig: Rig, *, fresh: bool = False) -> None:
    """Boot cleanly after a cut. ``fresh``: the primary had no trailer, so an interrupted swap
    must not look finished (copy_done is written last)."""
    if fresh and rig.mode is not Mode.OVERWRITE:
        assert rig.trailer(rig.primary).read_copy_done() is Flag.UNSET
    result = rig.boot()
    assert result.ok


def flash_after_recovery(rig: Rig) -> tuple[bytes, bytes, int]:
    cut = rig.flash.snapshot()
    assert rig.boot().ok
    return cut, rig.flash.snapshot(), rig.flash.ops


@pytest.mark.parametrize("mode", ALL_MODES)
def test_checkpointed_cuts_leave_the_flash_as_replayed_cuts_do(mode: Mode) -> None:
    replayed = []
    for n in range(1, boot_ops(staged(mode)) + 1):
        rig = staged(mode)
        rig.flash.cut_power_before(n)
        with pytest.raises(PowerLoss):
            rig.boot()
        replayed.append(flash_after_recovery(rig))
    rig = staged(mode)
    checkpointed: list[tuple[bytes, bytes, int]] = []
    total, result = every_power_cut(rig.flash, rig.boot,
                                    lambda n: checkpointed.append(flash_after_recovery(rig)))
    assert result.ok and total == len(replayed)
    assert checkpointed == replayed


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("permanent", [False, True], ids=["test", "perm"])
def test_cut_before_every_operation_of_a_swap(mode: Mode, permanent: bool) -> None:
    rig = staged(mode, permanent=permanent)

    def check(n: int) -> None:
        recover(rig, fresh=True)
        assert_upgraded(rig, permanent=permanent)
        if permanent or mode is Mode.OVERWRITE:
            assert boot_ops(rig) == 0
            assert_upgraded(rig, permanent=permanent)

    total, result = every_power_cut(rig.flash, rig.boot, check)
    assert result.ok and total == boot_ops(staged(mode, permanent=permanent))


@pytest.mark.parametrize("mode", SWAP_MODES)
def test_cut_before_every_operation_of_a_revert(mode: Mode) -> None:
    rig = from_snapshot(mode, swapped_snapshot(mode))

    def check(n: int) -> None:
        recover(rig)
        assert_reverted(rig)
        assert boot_ops(rig) == 0

    total, result = every_power_cut(rig.flash, rig.boot, check)
    assert result.ok and total > 0


def test_cut_before_every_operation_of_a_scratch_swap_through_the_trailer_sector() -> None:
    # The top region holds the primary trailer: its status lives in the scratch until the
    # primary trailer is rebuilt, then the scratch is erased backwards.
    rig = staged(Mode.SCRATCH, new_payload=BIG_PAYLOAD)

    def check(n: int) -> None:
        recover(rig, fresh=True)
        assert_upgraded(rig, permanent=False, new_payload=BIG_PAYLOAD)

    total, result = every_power_cut(rig.flash, rig.boot, check)
    assert result.ok and total > 0


def test_scratch_status_moves_through_the_scratch_trailer() -> None:
    rig = staged(Mode.SCRATCH, new_payload=BIG_PAYLOAD)
    scratch = rig.area("scratch")
    status_off = scratch.size - (3 * 8 + 48)
    log: list[tuple[str, int]] = []
    write, erase = scratch.write, scratch.erase

    def spy_write(off: int, data: bytes) -> None:
        log.append(("write", off))
        write(off, data)

    def spy_erase(off: int, length: int) -> None:
        log.append(("erase", off))
        erase(off, length)

    scratch.write = spy_write  # type: ignore[method-assign]
    scratch.erase = spy_erase  # type: ignore[method-assign]
    assert rig.boot().ok
    status_writes = [i for i, (op, off) in enumerate(log) if op == "write" and off >= status_off]
    # Scratch trailer init (swap_info, swap_size, magic), then the entries for states 1 and 2.
    assert [log[i][1] for i in status_writes] == [
        scratch.size - 40, scratch.size - 48, scratch.size - 16, status_off, status_off + 8]
    # After the trailer region, the scratch is erased top sector first.
    after = log[status_writes[-1] + 1:]
    assert after[:2] == [("erase", 1024), ("erase", 0)]
    assert rig.trailer(scratch).read_magic() is not Magic.GOOD
    assert_upgraded(rig, permanent=False, new_payload=BIG_PAYLOAD)


# -- random cuts in sequence -------------------------------------------------------------------


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mode=st.sampled_from(ALL_MODES), scenario=st.sampled_from(["test", "perm", "revert"]),
       cuts=st.lists(st.integers(1, 50), min_size=1, max_size=3))
def test_random_cuts_in_sequence(mode: Mode, scenario: str, cuts: list[int]) -> None:
    assume(not (scenario == "revert" and mode is Mode.OVERWRITE))
    if scenario == "revert":
        rig = from_snapshot(mode, swapped_snapshot(mode))
    else:
        rig = staged(mode, permanent=scenario == "perm")
    completed = lost = False
    for cut in cuts:
        rig.flash.cut_power_before(cut)
        try:
            result = rig.boot()
        except PowerLoss:
            lost = lost or (scenario == "revert" and revert_status_lost(rig))
            continue
        rig.flash.cut_power_before(1 << 40)
        completed = True
        break
    if not completed:
        result = rig.boot()
    assert result.ok
    if lost:
        assert_revert_forgotten(rig)
    elif scenario == "revert":
        assert_reverted(rig)
    else:
        assert_upgraded(rig, permanent=scenario == "perm")


def revert_status_lost(rig: Rig) -> bool:
    """Whether a revert's swap type is nowhere on the flash. MCUboot writes the status to the
    scratch, erases the primary trailer's sector and writes it there (swap type first, magic
    last); a resumed swap-scratch erases the scratch before writing it there again
    (``boot_swap_sectors`` in MCUboot's ``swap_scratch.c``). A second cut in that window, after
    a first cut before the primary's swap type was written, leaves it in neither trailer, and a
    revert's request was nowhere else (an upgrade's is still in the secondary trailer)."""
    if rig.mode is not Mode.SCRATCH:
        return False
    primary = rig.states()[0]
    scratch = rig.trailer(rig.area("scratch")).read_state()
    return (primary.magic is not Magic.GOOD and primary.swap_type == SwapType.NONE
            and scratch.magic is not Magic.GOOD)


def assert_revert_forgotten(rig: Rig) -> None:
    """What MCUboot does then: no swap; the image under test stays, with no trailer to revert."""
    _, new = images(rig)
    assert rig.primary.read(0, len(new)) == new
    assert rig.states() == (UNSET_STATE, UNSET_STATE)
    assert rig.swap_type() is SwapType.NONE


def test_a_scratch_revert_cut_twice_in_its_status_window_is_forgotten() -> None:
    """The case of :func:`revert_status_lost`, found by the test above: cut before the revert's
    7th operation (the primary trailer's sector is erased, the status is in the scratch), then
    before the resumed boot's 3rd (the scratch's two sectors are erased)."""
    rig = from_snapshot(Mode.SCRATCH, swapped_snapshot(Mode.SCRATCH))
    for cut, still_known in ((7, True), (3, False)):
        rig.flash.cut_power_before(cut)
        with pytest.raises(PowerLoss):
            rig.boot()
        assert revert_status_lost(rig) is not still_known
    rig.flash.cut_power_before(1 << 40)
    result = rig.boot()
    assert result.ok and result.images[0].version == "2.0.0"
    assert_revert_forgotten(rig)
