"""Group 1, image management: state read and write, erase, slot info, and whole DFU flows.

Upload rules are in test_img_upload.py. The boards are built-in profiles: ``fast`` (swap-move,
hash only, 40 KiB slots), ``nrf52840dk`` (swap-move, ECDSA, the sample images of
flash_images/), ``nrf5340dk`` (two images) and ``qemu_cortex_m0_img`` (swap-offset).
"""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2
import pytest

from smpsim.device.flash import FlashError, NotErased, PowerLoss
from smpsim.device.mcu import CRASH_RESET_S
from smpsim.device.mcuboot.trailer import BadVector, TrailerLayout
from smpsim.mcumgr.header import Header

from .img_support import (
    ERASE,
    READ,
    SLOT_INFO,
    STATE,
    V1,
    V2,
    WRITE,
    Board,
    make_image,
    sample,
    summary,
)


def cb(value: Any) -> bytes:
    """CBOR as zcbor writes it: indefinite maps and arrays, shortest integers."""
    if isinstance(value, dict):
        return b"\xbf" + b"".join(cb(k) + cb(v) for k, v in value.items()) + b"\xff"
    if isinstance(value, list):
        return b"\x9f" + b"".join(cb(v) for v in value) + b"\xff"
    return cbor2.dumps(value)


def err(rc: int) -> dict[str, Any]:
    """A v2 img group error."""
    return {"err": {"group": 1, "rc": rc}}


APP = make_image("1.1.0", 6000)
"""An upgrade for the ``fast`` board."""


def uploaded(prof: str = "fast", image: bytes = APP, **img: Any) -> Board:
    """A board with ``image`` uploaded to slot 1."""
    board = Board(prof, **img)
    assert board.upload(image) == {"off": len(image)}
    return board


# ----------------------------------------------------------------------------- state read


def test_state_read_lists_the_running_image_byte_for_byte() -> None:
    board = Board()
    factory = board.dfu.find(0, 0)
    frame = board.raw(READ, STATE, {})
    assert Header.parse(frame).op == 1
    assert frame[8:] == cb({"images": [{
        "slot": 0, "version": "1.0.0", "hash": factory.hash, "bootable": True,
        "pending": False, "confirmed": True, "active": True, "permanent": False}],
        "splitStatus": 0})


def test_state_read_needs_no_payload() -> None:
    board = Board()  # mcumgr-web sends state read with no CBOR at all
    assert board.raw(READ, STATE, None)[8:] == board.raw(READ, STATE, {})[8:]


def test_frugal_list_leaves_out_false_flags_and_split_status() -> None:
    board = uploaded(frugal_list=True)
    state = board.state()
    assert state == {"images": [
        {"slot": 0, "version": "1.0.0", "hash": board.hash_in(0), "bootable": True,
         "confirmed": True, "active": True},
        {"slot": 1, "version": "1.1.0", "hash": board.hash_in(1), "bootable": True}]}


def test_multi_image_state_has_the_image_key_first() -> None:
    board = Board("nrf5340dk")
    state = board.state()
    assert [list(e)[:2] for e in state["images"]] == [["image", "slot"], ["image", "slot"]]
    assert [(e["image"], e["slot"], e["active"]) for e in state["images"]] == [
        (0, 0, True), (1, 0, True)]


def test_version_string_carries_the_build_number_only_when_set() -> None:
    board = uploaded(image=make_image("2.3.4+5", 3000))
    assert [e["version"] for e in board.state()["images"]] == ["1.0.0", "2.3.4.5"]


def test_non_bootable_image_is_listed_as_such() -> None:
    board = Board()
    image = bytearray(make_image("1.4.0", 3000))
    image[16] |= 0x10  # IMAGE_F_NON_BOOTABLE: img_mgmt lists it, reading the header only
    assert board.upload(bytes(image)) == {"off": len(image)}
    assert summary(board.state())[1] == (1, "1.4.0", "-----")


# ----------------------------------------------------------------------------- slot info


def test_slot_info_single_image() -> None:
    frame = Board().raw(READ, SLOT_INFO, {})
    assert frame[8:] == cb({"images": [{"image": 0, "slots": [
        {"slot": 0, "size": 0xA000}, {"slot": 1, "size": 0xA000, "upload_image_id": 0}]}]})


def test_slot_info_two_images() -> None:
    info = Board("nrf5340dk").call(READ, SLOT_INFO, {})
    assert info == {"images": [
        {"image": 0, "slots": [{"slot": 0, "size": 0x58000},
                               {"slot": 1, "size": 0x58000, "upload_image_id": 0}]},
        {"image": 1, "slots": [{"slot": 0, "size": 0x18000},
                               {"slot": 1, "size": 0x18000, "upload_image_id": 1}]}]}


# ----------------------------------------------------------------------------- state write


@pytest.mark.parametrize(("payload", "version", "expected"), [
    ({}, V2, err(24)),                                        # test without a hash
    ({}, V1, {"rc": 3}),
    ({"hash": b"", "confirm": False}, V2, err(24)),
    ({"hash": b"\x11" * 16, "confirm": False}, V2, err(24)),  # short hash
    ({"hash": b"\x11" * 32, "confirm": False}, V2, err(8)),   # unknown hash
    ({"hash": b"\x11" * 32, "confirm": False}, V1, {"rc": 1}),
    ({"hash": b"\x11" * 32, "confirm": True}, V2, err(8)),
    ({"hash": "1baa2220" * 8}, V2, {"rc": 3}),                # hash as text
    ({"confirm": 1}, V2, {"rc": 3}),                          # confirm not a bool
    (b"", V2, {"rc": 3}),                                     # no payload
    (b"\x80", V2, {"rc": 3}),                                 # not a map
])
def test_state_write_errors(payload: Any, version: int, expected: dict[str, Any]) -> None:
    board = Board()
    assert board.call(WRITE, STATE, payload, version=version) == expected


@pytest.mark.parametrize("version", [V1, V2])
def test_testing_the_running_image_is_refused(version: int) -> None:
    board = Board()
    answer = board.write_state(board.hash_in(0), version=version)
    assert answer == (err(33) if version == V2 else {"rc": 1})


@pytest.mark.parametrize("payload", [{"confirm": True}, "running"])
def test_confirming_the_running_confirmed_image_writes_nothing(payload: Any) -> None:
    board = Board()
    if payload == "running":
        payload = {"hash": board.hash_in(0), "confirm": True}
    ops = board.device.flash.ops
    assert board.call(WRITE, STATE, payload) == board.state()
    assert board.device.flash.ops == ops


def test_test_request_marks_slot_1_pending_and_may_be_repeated() -> None:
    board = uploaded()
    answer = board.write_state(board.hash_in(1))
    assert answer == board.state()
    assert summary(answer) == [(0, "1.0.0", "B-CA-"), (1, "1.1.0", "BP---")]
    ops = board.device.flash.ops
    assert board.write_state(board.hash_in(1)) == answer  # the same test again: a no-op
    assert board.device.flash.ops == ops
    assert board.write_state(board.hash_in(1), confirm=True) == err(28)
    assert board.write_state(confirm=True) == err(28)  # confirming the running one too
    assert board.write_state(board.hash_in(0)) == err(33)


def test_permanent_request_then_swap_and_stay() -> None:
    board = uploaded()
    new = board.hash_in(1)
    assert summary(board.write_state(new, confirm=True)) == [
        (0, "1.0.0", "B-CA-"), (1, "1.1.0", "BP--p")]
    assert board.write_state(new, confirm=True) == board.state()  # boots next anyway
    assert board.write_state(new) == err(28)
    assert board.write_state(confirm=True) == err(28)
    assert board.write_state(new, confirm=True, version=V1) == board.state()
    assert board.write_state(new, version=V1) == {"rc": 6}  # ALREADY_PENDING -> EBADSTATE
    board.reset()
    assert "I: Image index: 0, Swap type: perm" in board.console
    # swap-move leaves the old image at the start of slot 1: listed without flags.
    assert summary(board.state()) == [(0, "1.1.0", "B-CA-"), (1, "1.0.0", "B----")]
    board.reset()
    assert summary(board.state()) == [(0, "1.1.0", "B-CA-"), (1, "1.0.0", "B----")]


def test_test_reset_then_revert_without_confirm() -> None:
    board = uploaded()
    assert summary(board.state()) == [(0, "1.0.0", "B-CA-"), (1, "1.1.0", "B----")]
    board.write_state(board.hash_in(1))
    assert board.reset_request().running
    assert summary(board.state()) == [(0, "1.1.0", "B--A-"), (1, "1.0.0", "B-C--")]
    assert board.write_state(board.hash_in(1)) == err(28)  # any test while unconfirmed
    assert board.write_state(board.hash_in(1), confirm=True) == board.state()  # already so
    board.reset()
    assert "I: Image index: 0, Swap type: revert" in board.console
    after = [(0, "1.0.0", "B-CA-"), (1, "1.1.0", "B----")]
    assert summary(board.state()) == after
    board.reset()
    assert "I: Image index: 0, Swap type: none" in board.console
    assert summary(board.state()) == after


@pytest.mark.parametrize(("prof", "old_listed"), [("fast", True), ("qemu_cortex_m0_img", False)])
def test_confirm_in_the_test_image(prof: str, old_listed: bool) -> None:
    image = make_image("1.1.0", 6000, slot_size=0x1A000)
    board = uploaded(prof, image)
    board.write_state(board.hash_in(1))
    board.reset()
    answer = board.write_state(confirm=True)
    # swap-offset reads slot 1 at sector 1 once no revert is pending: the old image, now at
    # offset 0 there, is no longer listed.
    expected = [(0, "1.1.0", "B-CA-")] + ([(1, "1.0.0", "B----")] if old_listed else [])
    assert summary(answer) == expected
    board.reset()
    assert summary(board.state()) == expected


def test_state_write_maps_a_bad_secondary_trailer_magic_to_23() -> None:
    board = uploaded()
    area = board.dfu.area(0, 1)
    layout = TrailerLayout(area.size, 8, area.write_block, board.dfu.mode,
                           board.dfu.max_img_sectors)
    area.write(layout.magic_cell_off, bytes(layout.magic_cell_len))  # neither erased nor magic
    assert board.write_state(board.hash_in(1)) == err(23)


def test_state_write_maps_a_bad_primary_trailer_to_29(monkeypatch: pytest.MonkeyPatch) -> None:
    board = uploaded()
    board.write_state(board.hash_in(1))
    board.reset()  # running unconfirmed: a confirm writes the primary trailer

    def bad(image: int) -> None:
        raise BadVector("primary trailer magic is bad")
    monkeypatch.setattr(board.dfu, "set_confirmed", bad)
    assert board.write_state(confirm=True) == err(29)


def test_state_write_flash_failure_is_12(monkeypatch: pytest.MonkeyPatch) -> None:
    board = uploaded()

    def fail(offset: int, data: bytes) -> None:
        raise NotErased("refused")
    monkeypatch.setattr(board.device.flash, "write", fail)
    assert board.write_state(board.hash_in(1)) == err(12)


# ----------------------------------------------------------------------------- erase


def test_erase_without_payload_is_einval() -> None:
    assert Board().call(WRITE, ERASE, b"") == {"rc": 3}


@pytest.mark.parametrize("payload", [{}, {"slot": 1}])
def test_erase_defaults_to_slot_1_and_erases_it_in_one_operation(payload: Any) -> None:
    board = uploaded()
    flash = board.device.flash
    ops, erases = flash.ops, flash.erases
    assert board.raw(WRITE, ERASE, payload)[8:] == b"\xbf\xff"
    assert (flash.ops - ops, flash.erases - erases) == (1, 40)  # the 40-sector slot at once
    assert board.dfu.area(0, 1).is_erased()
    assert summary(board.state()) == [(0, "1.0.0", "B-CA-")]


def test_erasing_a_blank_slot_touches_no_flash() -> None:
    board = Board()
    ops = board.device.flash.ops
    assert board.erase({"slot": 1}) == {}
    assert board.device.flash.ops == ops


@pytest.mark.parametrize(("payload", "version", "expected"), [
    ({"slot": 0}, V2, err(9)),
    ({"slot": 0}, V1, {"rc": 6}),
    ({"slot": 2}, V2, err(10)),
    ({"slot": 2}, V1, {"rc": 1}),
    ({"slot": 9}, V2, err(10)),
    ({"slot": -1}, V2, {"rc": 3}),
    ({"slot": "1"}, V2, {"rc": 3}),
])
def test_erase_refusals(payload: Any, version: int, expected: Any) -> None:
    board = uploaded()
    assert board.erase(payload, version) == expected
    assert board.dfu.find(0, 1) is not None


def test_erase_is_refused_while_the_test_image_runs_unconfirmed() -> None:
    board = uploaded()
    board.write_state(board.hash_in(1))
    board.reset()
    assert board.erase({"slot": 1}) == err(9)  # the image the next boot reverts to
    assert board.erase({"slot": 0}) == err(9)


def test_erasing_a_pending_slot_cancels_the_test() -> None:
    board = uploaded()
    board.write_state(board.hash_in(1))
    assert board.erase({"slot": 1}) == {}
    assert summary(board.state()) == [(0, "1.0.0", "B-CA-")]
    board.reset()
    assert summary(board.state()) == [(0, "1.0.0", "B-CA-")]


@pytest.mark.parametrize("permanent", [False, True])
def test_pending_slot_is_kept_without_allow_erase_pending(permanent: bool) -> None:
    board = uploaded(allow_erase_pending=False)
    board.write_state(board.hash_in(1), confirm=permanent)
    assert board.erase({"slot": 1}) == err(9)
    assert board.first(make_image("1.2.0", 3000)) == err(9)  # nor may an upload wipe it


def test_erase_ends_the_upload_in_progress() -> None:
    board = Board()
    assert board.first(APP, 600) == {"off": 600}
    assert board.erase({"slot": 1}) == {}
    assert board.chunk({"off": 600, "data": APP[600:1200]}) == {"off": 0}


def test_erase_wipes_a_partial_upload() -> None:
    board = Board()
    assert board.first(APP, 600) == {"off": 600}  # 512 bytes flushed: not an image yet
    assert not board.dfu.area(0, 1).is_erased()
    assert board.erase({"slot": 1}) == {}
    assert board.dfu.area(0, 1).is_erased()


def test_erase_flash_failure_is_13(monkeypatch: pytest.MonkeyPatch) -> None:
    board = uploaded()

    def fail(offset: int, length: int) -> None:
        raise FlashError("erase failed")
    monkeypatch.setattr(board.device.flash, "erase", fail)
    assert board.erase({"slot": 1}) == err(13)


def test_erase_of_a_full_nrf52840_slot_takes_118_page_erases() -> None:
    board = uploaded("nrf52840dk", sample("app-1.1.0.bin"))
    assert board.erase({"slot": 1}) == {}
    assert board.last is not None
    assert board.last.busy_s == pytest.approx(118 * 0.085)


def test_power_loss_is_not_an_answer() -> None:
    board = uploaded()
    board.device.flash.cut_power_before(1)
    with pytest.raises(PowerLoss):
        board.erase({"slot": 1})
    assert board.dfu.find(0, 1) is not None  # the cut came before the erase


# ----------------------------------------------------------------------------- DFU flows


def test_crashing_image_is_reverted_by_mcuboot() -> None:
    board = uploaded("nrf52840dk", sample("app-2.0.0-crash.bin"))
    board.write_state(board.hash_in(1))
    outcome = board.reset()
    assert not outcome.running
    assert outcome.reset_after_s == CRASH_RESET_S
    assert board.reset().running  # the fatal error's reset: MCUboot swaps back
    assert "I: Image index: 0, Swap type: revert" in board.console
    assert summary(board.state()) == [(0, "1.0.0", "B-CA-"), (1, "2.0.0", "B----")]


def test_self_confirming_image_stays() -> None:
    board = uploaded("nrf52840dk", sample("app-1.1.0-selfconfirm.bin"))
    board.write_state(board.hash_in(1))
    board.reset()
    assert summary(board.state()) == [(0, "1.1.0", "B-CA-"), (1, "1.0.0", "B----")]
    board.reset()
    assert "I: Image index: 0, Swap type: none" in board.console
    assert summary(board.state())[0] == (0, "1.1.0", "B-CA-")


def test_bad_hash_image_is_listed_then_erased_by_mcuboot() -> None:
    image = sample("app-1.2.0-badhash.bin")
    board = uploaded("nrf52840dk", image)
    listed = board.state()["images"][1]
    assert (listed["version"], listed["hash"]) == ("1.2.0", board.hash_in(1))
    assert listed["hash"] != hashlib.sha256(image).digest()  # the TLV value, not the file's
    assert summary(board.write_state(board.hash_in(1)))[1] == (1, "1.2.0", "BP---")
    board.reset()
    assert "E: Image in the secondary slot is not valid!" in board.console
    assert summary(board.state()) == [(0, "1.0.0", "B-CA-")]
    assert board.dfu.area(0, 1).is_erased()


def test_too_big_image_uploads_but_mcuboot_refuses_it() -> None:
    image = sample("app-9.0.0-too-big.bin")
    board = uploaded("nrf52840dk", image)
    assert summary(board.write_state(board.hash_in(1)))[1] == (1, "9.0.0", "BP---")
    board.reset()
    assert "E: Image in the secondary slot is not valid!" in board.console
    assert summary(board.state()) == [(0, "1.0.0", "B-CA-")]


def test_second_image_of_a_multi_image_board() -> None:
    board = Board("nrf5340dk")
    app = sample("app-1.1.0.bin")
    assert board.upload(app, image=1) == {"off": len(app)}
    assert board.dfu.area(0, 1).is_erased()  # image 1 went to its own secondary (slot3)
    new = board.hash_in(1, image=1)
    entries = board.write_state(new)["images"]
    assert [(e["image"], e["slot"], e["version"], e["pending"]) for e in entries] == [
        (0, 0, "1.0.0", False), (1, 0, "1.0.0", False), (1, 1, "1.1.0", True)]
    board.reset()
    entries = board.state()["images"]
    assert [(e["image"], e["slot"], e["version"], e["confirmed"], e["active"])
            for e in entries] == [(0, 0, "1.0.0", True, True), (1, 0, "1.1.0", False, True),
                                  (1, 1, "1.0.0", True, False)]
    # Confirming image 1's primary is denied (only its secondary may be confirmed).
    assert board.write_state(board.hash_in(0, image=1), confirm=True) == err(32)
    assert board.first(app, image=5) == err(9)  # no such image


def test_confirming_the_secondary_of_image_1_is_allowed() -> None:
    board = Board("nrf5340dk")
    app = sample("app-1.1.0.bin")
    board.upload(app, image=1)
    entries = board.write_state(board.hash_in(1, image=1), confirm=True)["images"]
    assert (entries[2]["pending"], entries[2]["permanent"]) == (True, True)
