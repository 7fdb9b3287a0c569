"""The image trailer byte for byte, the decision table, and boot_set_next."""

from __future__ import annotations

import pytest
from mcuboot_rig import SECTOR, make_rig, signed

from smpsim.device.flash import PowerLoss
from smpsim.device.mcuboot.sizes import max_image_size, upload_offset
from smpsim.device.mcuboot.trailer import (
    MAGIC_ALIGN8,
    SWAP_TABLE,
    BadImage,
    BadVector,
    Flag,
    Magic,
    Mode,
    SwapState,
    SwapType,
    Trailer,
    TrailerLayout,
    boot_magic,
    decode_flag,
    decode_magic,
    set_confirmed,
    set_pending,
    swap_type,
)

S = 0x76000
"""nRF52840 DK slot: 118 sectors of 4 KiB."""


def state(magic: Magic = Magic.UNSET, image_ok: Flag = Flag.UNSET,
          copy_done: Flag = Flag.UNSET) -> SwapState:
    return SwapState(magic, SwapType.NONE, 0, copy_done, image_ok)


# -- layout ---------------------------------------------------------------------------------


def test_offsets_for_max_align_8() -> None:
    layout = TrailerLayout(S, 8, 4, Mode.MOVE, 118)
    assert (layout.magic_off, layout.magic_cell_off, layout.magic_cell_len) == (S - 16, S - 16, 16)
    assert layout.image_ok_off == S - 24
    assert layout.copy_done_off == S - 32
    assert layout.swap_info_off == S - 40
    assert layout.tlv_sizes_off is None
    assert layout.swap_size_off == S - 48
    assert layout.trailer_sz == 118 * 3 * 4 + 48 == 1464
    assert layout.status_off == S - 1464


def test_offsets_for_swap_offset() -> None:
    layout = TrailerLayout(S, 8, 4, Mode.OFFSET, 118)
    assert layout.tlv_sizes_off == S - 48
    assert layout.swap_size_off == S - 56
    assert layout.trailer_sz == 118 * 2 * 4 + 56 == 1000
    assert TrailerLayout(S, 8, 4, Mode.MOVE, 128).trailer_sz == 1584


def test_offsets_for_max_align_32() -> None:
    layout = TrailerLayout(S, 32, 8, Mode.SCRATCH, 10)
    assert (layout.magic_cell_off, layout.magic_cell_len) == (S - 32, 32)
    assert layout.image_ok_off == S - 64
    assert layout.copy_done_off == S - 96
    assert layout.swap_info_off == S - 128
    assert layout.swap_size_off == S - 160
    assert layout.trailer_sz == 10 * 3 * 8 + 4 * 32 + 32


def test_scratch_trailer_holds_one_region() -> None:
    layout = TrailerLayout(2 * SECTOR, 8, 8, Mode.SCRATCH, 32, scratch=True)
    assert layout.status_entries == 3
    assert layout.status_off == 2 * SECTOR - (3 * 8 + 48)


def test_write_block_wider_than_cells_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        TrailerLayout(S, 8, 16)


def test_magic_values() -> None:
    assert boot_magic(8) == MAGIC_ALIGN8 == bytes.fromhex("77c295f360d2ef7f3552500f2cb67980")
    assert boot_magic(32) == bytes.fromhex("20002de15d29410b8d77679c110f1f8a")
    assert decode_magic(b"\xff" * 16) is Magic.UNSET
    assert decode_magic(MAGIC_ALIGN8) is Magic.GOOD
    assert decode_magic(boot_magic(32)) is Magic.BAD
    assert decode_magic(boot_magic(32), 32) is Magic.GOOD


@pytest.mark.parametrize(("byte", "flag"), [(0xFF, Flag.UNSET), (0x01, Flag.SET),
                                             (0x00, Flag.BAD), (0x03, Flag.BAD)])
def test_flag_decoding(byte: int, flag: Flag) -> None:
    assert decode_flag(byte) is flag


# -- against imgtool --------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "image_ok", "expected"), [
    (("--pad",), Flag.UNSET, SwapType.TEST),
    (("--confirm",), Flag.SET, SwapType.PERM),
])
def test_imgtool_padded_image_is_read_where_mcuboot_expects(
        extra: tuple[str, ...], image_ok: Flag, expected: SwapType) -> None:
    rig = make_rig(Mode.MOVE, write_block=8)
    padded = signed("1.0.0", 1000, rig.secondary.size, *extra)
    assert len(padded) == rig.secondary.size
    assert padded[-16:] == MAGIC_ALIGN8
    rig.install(rig.secondary, padded)
    secondary = rig.trailer(rig.secondary).read_state()
    assert secondary == SwapState(Magic.GOOD, SwapType.NONE, 0, Flag.UNSET, image_ok)
    assert rig.swap_type() is expected


def test_imgtool_max_align_32_matches_the_layout() -> None:
    rig = make_rig(Mode.MOVE, write_block=8)
    padded = signed("1.0.0", 1000, rig.secondary.size, "--confirm", "--max-align", "32")
    size = len(padded)
    assert padded[-16:] == boot_magic(32)
    layout = TrailerLayout(size, 32, 8)
    assert padded[layout.image_ok_off] == 0x01
    assert padded[TrailerLayout(size, 8, 8).image_ok_off] == 0xFF


# -- programming ------------------------------------------------------------------------------


@pytest.mark.parametrize("write_block", [1, 4, 8])
def test_flags_program_one_write_block(write_block: int) -> None:
    rig = make_rig(Mode.MOVE, write_block=write_block)
    trailer = rig.trailer(rig.primary)
    layout = trailer.layout
    before = rig.flash.bytes_written
    trailer.write_image_ok()
    assert rig.flash.bytes_written - before == write_block
    cell = rig.primary.read(layout.image_ok_off, 8)
    assert cell == b"\x01" + b"\xff" * 7
    trailer.write_swap_size(0x12345)
    assert rig.flash.bytes_written - before == write_block + max(4, write_block)
    assert rig.primary.read(layout.swap_size_off, 8) == bytes.fromhex("45230100ffffffff")
    trailer.write_magic()
    assert rig.primary.read(layout.magic_off, 16) == MAGIC_ALIGN8
    assert trailer.read_swap_size() == 0x12345


def test_swap_info_encoding() -> None:
    rig = make_rig(Mode.MOVE, images=2)
    trailer = rig.trailer(rig.area("slot3"))
    trailer.write_swap_info(SwapType.PERM, 1)
    assert rig.area("slot3").read(trailer.layout.swap_info_off, 1) == b"\x13"
    assert trailer.read_state().swap_type == SwapType.PERM
    assert trailer.read_state().image_num == 1


@pytest.mark.parametrize(("raw", "kind", "image"), [(0xFF, SwapType.NONE, 0), (0x25, 1, 0),
                                                     (0x10, 0, 1), (0x04, 4, 0)])
def test_swap_info_decoding(raw: int, kind: int, image: int) -> None:
    rig = make_rig(Mode.MOVE, write_block=1)
    trailer = rig.trailer(rig.primary)
    if raw != 0xFF:
        trailer.write_cell(trailer.layout.swap_info_off, bytes([raw]))
    decoded = trailer.read_state()
    assert (decoded.swap_type, decoded.image_num) == (kind, image)


def test_status_entry_is_one_write_block_with_the_state_first() -> None:
    rig = make_rig(Mode.OFFSET, write_block=4)
    trailer = rig.trailer(rig.primary)
    trailer.write_status_entry(5, 2)
    off = trailer.layout.status_off + 5 * 4
    assert rig.primary.read(off - 1, 6) == b"\xff\x02\xff\xff\xff\xff"
    assert trailer.read_status_byte(5) == 2


def test_log_text() -> None:
    text = SwapState(Magic.GOOD, 2, 0, Flag.SET, Flag.UNSET).log_text()
    assert text == "magic=good, swap_type=0x2, copy_done=0x1, image_ok=0x3"
    assert state(Magic.BAD).log_text().startswith("magic=bad")


# -- the decision table -------------------------------------------------------------------------


def test_table_rows_as_data() -> None:
    assert [rule.result for rule in SWAP_TABLE] == [SwapType.REVERT, SwapType.TEST,
                                                   SwapType.PERM, SwapType.REVERT]
    assert [rule.offset_only for rule in SWAP_TABLE] == [True, False, False, False]


@pytest.mark.parametrize(("primary", "secondary", "mode", "expected"), [
    (state(), state(), Mode.MOVE, SwapType.NONE),
    (state(), state(Magic.GOOD), Mode.MOVE, SwapType.TEST),
    (state(), state(Magic.GOOD, Flag.SET), Mode.MOVE, SwapType.PERM),
    (state(), state(Magic.GOOD, Flag.BAD), Mode.MOVE, SwapType.NONE),
    (state(), state(Magic.BAD), Mode.MOVE, SwapType.NONE),
    (state(Magic.GOOD, Flag.UNSET, Flag.SET), state(), Mode.MOVE, SwapType.REVERT),
    (state(Magic.GOOD, Flag.SET, Flag.SET), state(), Mode.MOVE, SwapType.NONE),
    (state(Magic.GOOD, Flag.UNSET, Flag.UNSET), state(), Mode.MOVE, SwapType.NONE),
    (state(Magic.BAD, Flag.UNSET, Flag.SET), state(), Mode.MOVE, SwapType.NONE),
    # The secondary's request wins over a pending revert.
    (state(Magic.GOOD, Flag.UNSET, Flag.SET), state(Magic.GOOD), Mode.MOVE, SwapType.TEST),
    # Row 0: a revert marked in the secondary (swap-offset only).
    (state(), state(Magic.GOOD, Flag.UNSET, Flag.SET), Mode.OFFSET, SwapType.REVERT),
    (state(), state(Magic.GOOD, Flag.UNSET, Flag.SET), Mode.MOVE, SwapType.TEST),
    (state(), state(Magic.GOOD, Flag.UNSET, Flag.SET), "swap-scratch", SwapType.TEST),
])
def test_decision_table(primary: SwapState, secondary: SwapState, mode: Mode,
                        expected: SwapType) -> None:
    assert swap_type(primary, secondary, mode) is expected


# -- boot_set_next ----------------------------------------------------------------------------


@pytest.mark.parametrize("permanent", [False, True])
def test_set_pending_writes_magic_image_ok_swap_info(permanent: bool) -> None:
    rig = make_rig(Mode.MOVE, images=2)
    area = rig.area("slot3")
    ops = rig.flash.ops
    set_pending(area, 1, permanent)
    assert rig.flash.ops - ops == (3 if permanent else 2)
    got = rig.trailer(area).read_state()
    kind = SwapType.PERM if permanent else SwapType.TEST
    assert got == SwapState(Magic.GOOD, kind, 1, Flag.UNSET,
                            Flag.SET if permanent else Flag.UNSET)
    assert rig.swap_type(1) is kind
    set_pending(area, 1, not permanent)
    assert rig.trailer(area).read_state() == got


def test_set_pending_cut_after_magic_is_a_test_request() -> None:
    rig = make_rig(Mode.MOVE)
    rig.flash.cut_power_before(2)
    with pytest.raises(PowerLoss):
        set_pending(rig.secondary, 0, permanent=True)
    assert rig.trailer(rig.secondary).read_magic() is Magic.GOOD
    assert rig.swap_type() is SwapType.TEST


def test_set_pending_on_bad_magic() -> None:
    rig = make_rig(Mode.MOVE)
    layout = rig.trailer(rig.secondary).layout
    rig.secondary.write(layout.magic_cell_off, b"\x00" * 16)
    with pytest.raises(BadImage):
        set_pending(rig.secondary, 0, permanent=False)


def test_set_confirmed() -> None:
    rig = make_rig(Mode.MOVE)
    trailer = rig.trailer(rig.primary)
    ops = rig.flash.ops
    set_confirmed(rig.primary)
    assert rig.flash.ops == ops
    trailer.write_magic()
    set_confirmed(rig.primary)
    assert trailer.read_image_ok() is Flag.SET
    ops = rig.flash.ops
    set_confirmed(rig.primary)
    assert rig.flash.ops == ops


def test_set_confirmed_on_bad_magic() -> None:
    rig = make_rig(Mode.MOVE)
    rig.primary.write(rig.trailer(rig.primary).layout.magic_cell_off, b"\x00" * 16)
    with pytest.raises(BadVector):
        set_confirmed(rig.primary)


# -- sizes ------------------------------------------------------------------------------------


def test_max_image_size_per_mode() -> None:
    sectors = [4096] * 118
    assert max_image_size(Mode.MOVE, sectors, sectors, write_block=4,
                          max_img_sectors=118) == 0x74000
    assert max_image_size(Mode.OFFSET, sectors, sectors, write_block=4,
                          max_img_sectors=118) == 118 * 4096 - 4096 - 4096
    assert max_image_size(Mode.OFFSET, sectors, [*sectors, 4096], write_block=4,
                          max_img_sectors=119) == 118 * 4096 - 4096
    assert max_image_size(Mode.OVERWRITE, sectors, sectors) == S - 40
    small = [1024] * 8
    trailer = 8 * 3 * 8 + 48
    assert max_image_size(Mode.SCRATCH, small, small, write_block=8, max_img_sectors=8,
                          scratch_size=2048) == 8 * 1024 - trailer
    assert max_image_size(Mode.SCRATCH, small, small, write_block=8, max_img_sectors=8,
                          scratch_size=512) == 0


def test_max_image_size_scratch_padding_for_the_scratch_trailer() -> None:
    # A trailer of 4152 bytes spans two 4 KiB sectors and has only 56 bytes in the lower one,
    # where the last copied region ends; the scratch's own trailer (3 entries of 8 + 48 = 72
    # bytes) needs 16 bytes more, taken from the image.
    sectors = [4096] * 16
    size = max_image_size(Mode.SCRATCH, sectors, sectors, write_block=8, max_img_sectors=171,
                          scratch_size=4096)
    trailer = 171 * 3 * 8 + 48
    assert trailer - 4096 == 56
    assert size == 16 * 4096 - trailer - (72 - 56)


@pytest.mark.parametrize(("mode", "current", "expected"), [
    (Mode.OFFSET, SwapType.NONE, 4096), (Mode.OFFSET, SwapType.TEST, 4096),
    (Mode.OFFSET, SwapType.REVERT, 0), (Mode.MOVE, SwapType.NONE, 0),
])
def test_upload_offset(mode: Mode, current: SwapType, expected: int) -> None:
    assert upload_offset(mode, 4096, current) == expected


def test_trailer_reads_tlv_sizes_only_in_offset_mode() -> None:
    rig = make_rig(Mode.MOVE)
    with pytest.raises(ValueError, match="swap-offset"):
        rig.trailer(rig.primary).read_tlv_sizes()
    rig = make_rig(Mode.OFFSET)
    trailer = Trailer(rig.primary, TrailerLayout(rig.primary.size, 8, 8, Mode.OFFSET, 8))
    trailer.write_tlv_sizes(40, 336)
    assert trailer.read_tlv_sizes() == (40, 336)
