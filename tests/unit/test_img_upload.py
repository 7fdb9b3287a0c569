"""Image upload (1/1): first-chunk rules, offsets, resume, the write buffer, erase and timing,
and the steady chunk's inline reading.

Zephyr's ``img_mgmt_upload_inspect`` decides; flash_img/stream_flash write through a 512-byte
buffer; the slot is erased on the first chunk (or page by page with progressive erase).
"""

from __future__ import annotations

import functools
import hashlib
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpsim.device.flash import FlashError, NotErased, PowerLoss
from smpsim.mcumgr.dispatcher import Request
from smpsim.mcumgr.errors import MgmtError
from smpsim.mcumgr.groups import img_mgmt
from smpsim.mcumgr.groups.img_upload import Upload
from smpsim.mcumgr.header import HEADER_SIZE, Group, Header

from .img_support import UPLOAD, V1, V2, WRITE, Board, make_image, sample, summary

APP = make_image("1.1.0", 6001)
"""6553 bytes: not a multiple of the write block, so the last write needs padding."""
OTHER = make_image("1.2.0", 9000)
SHA = hashlib.sha256(APP).digest()


def err(rc: int) -> dict[str, Any]:
    """A v2 img group error."""
    return {"err": {"group": 1, "rc": rc}}


def first(**changes: Any) -> dict[str, Any]:
    """A good first chunk of APP with ``changes`` (``None`` drops a key)."""
    payload: dict[str, Any] = {"image": 0, "len": len(APP), "off": 0, "sha": SHA,
                               "data": APP[:200]}
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


# ----------------------------------------------------------------------------- first chunk


@pytest.mark.parametrize(("payload", "expected"), [
    (first(data=None), err(22)),                    # no data: not even a header
    (first(data=APP[:31]), err(22)),
    (first(len=None), err(21)),
    (first(off=None), err(20)),
    (first(off=0xFFFFFFFF), err(20)),               # SIZE_MAX is img_mgmt's "absent"
    (first(len=0xFFFFFFFF), err(21)),
    (first(data=b"\xaa" * 200), err(23)),
    (first(sha=b"\x01" * 33), err(24)),
    (first(len=0xA001), err(30)),                   # one byte more than the slot
    (first(off="0"), {"rc": 3}),
    (first(data="text"), {"rc": 3}),
    (first(image=-1), {"rc": 3}),
    (first(upgrade=1), {"rc": 3}),
    (first(len=1 << 32), {"rc": 3}),                # len is a 32-bit size_t
    (b"", {"rc": 3}),
])
def test_first_chunk_errors(payload: Any, expected: Any) -> None:
    board = Board()
    assert board.chunk(payload) == expected
    assert board.dfu.area(0, 1).is_erased()


@pytest.mark.parametrize(("payload", "v1", "v2"), [
    (first(data=b"\xaa" * 200), {"rc": 1, "rsn": "magic mismatch"}, err(23)),
    (first(len=0x1A001), {"rc": 1, "rsn": "img too large"}, err(30)),
    (first(len=None), {"rc": 3, "rsn": "header malformed"}, err(21)),
    (first(off=None), {"rc": 3, "rsn": "header malformed"}, err(20)),
    (first(sha=b"\x01" * 33), {"rc": 3}, err(24)),  # no reason string for this one
    (first(upgrade=True, data=make_image("1.0.0", 100)[:200]),
     {"rc": 6, "rsn": "downgrade"}, err(27)),
])
def test_verbose_build_gives_reasons_on_v1_only(payload: Any, v1: Any, v2: Any) -> None:
    board = Board("qemu_cortex_m0_img")
    assert board.chunk(payload, version=V1) == v1
    assert board.chunk(payload, version=V2) == v2


def test_no_reasons_without_verbose_errors() -> None:
    assert Board().chunk(first(data=b"\xaa" * 200), version=V1) == {"rc": 1}


def test_len_equal_to_the_slot_is_accepted() -> None:
    assert Board().chunk(first(len=0xA000)) == {"off": 200}


@pytest.mark.parametrize(("version", "upgrade", "expected"), [
    ("1.0.0", True, err(27)),        # the running version
    ("1.0.0+7", True, err(27)),      # the build number does not count
    ("0.9.9", True, err(27)),
    ("1.0.1", True, {"off": 200}),
    ("0.9.0", False, {"off": 200}),  # an older image without upgrade: fine
])
def test_upgrade_only(version: str, upgrade: bool, expected: Any) -> None:
    image = make_image(version, 100)
    payload = {"len": len(image), "off": 0, "data": image[:200], "upgrade": upgrade}
    assert Board().chunk(payload) == expected


@pytest.mark.parametrize("image", [1, 5])
def test_single_image_build_ignores_the_image_number(image: int) -> None:
    board = Board()
    assert board.upload(APP, image=image) == {"off": len(APP)}
    assert board.dfu.area(0, 1).read(0, len(APP)) == APP


# ----------------------------------------------------------------------------- later chunks


def test_a_chunk_without_an_upload_gets_offset_0() -> None:
    board = Board()
    assert board.chunk({"off": 100, "data": APP[100:300]}) == {"off": 0}
    assert board.chunk({"off": 200, "len": 9, "data": APP[:200]}) == {"off": 0}


@pytest.mark.parametrize("off", [400, 50, 300])
def test_a_wrong_offset_is_answered_with_the_expected_one(off: int) -> None:
    board = Board()
    board.chunk(first())
    ops = board.device.flash.ops
    assert board.chunk({"off": off, "data": APP[off:off + 100]}) == {"off": 200}
    assert board.chunk({"off": 200, "data": APP[200:400]}) == {"off": 400}
    assert board.device.flash.ops == ops  # nothing written: still in the buffer


def test_empty_data_moves_nothing() -> None:
    board = Board()
    board.chunk(first())
    assert board.chunk({"off": 200}) == {"off": 200}


@pytest.mark.parametrize(("payload", "expected"), [
    ({"off": 200, "data": APP[200:] + b"x"}, err(31)),             # overrun
    ({"off": 0, "data": APP[:200]}, err(21)),                      # off 0 without len
    ({"data": APP[200:400]}, err(20)),                             # no off
    ({"image": 0, "len": 10, "off": 0, "data": b"\xaa" * 40}, err(23)),
])
def test_an_error_ends_the_upload(payload: Any, expected: Any) -> None:
    board = Board()
    assert board.chunk(first()) == {"off": 200}
    assert board.chunk(payload) == expected
    assert Upload not in board.device.ram
    assert board.chunk({"off": 200, "data": APP[200:400]}) == {"off": 0}


def test_overrun_reason_on_a_verbose_build() -> None:
    board = Board("qemu_cortex_m0_img")
    board.chunk(first())
    overrun = {"off": 200, "data": APP[200:] + b"x"}
    assert board.chunk(overrun, version=V1) == {"rc": 1, "rsn": "data overrun"}


def test_resume_with_the_same_sha() -> None:
    board = Board()
    board.chunk(first(data=APP[:600]))
    board.chunk({"off": 600, "data": APP[600:1200]})
    ops = board.device.flash.ops
    assert board.chunk(first()) == {"off": 1200}
    assert board.device.flash.ops == ops
    assert board.chunk({"off": 1200, "data": APP[1200:]}) == {"off": len(APP)}
    assert board.dfu.area(0, 1).read(0, len(APP)) == APP


@pytest.mark.parametrize("sha", [b"\x22" * 32, None, b""])
def test_first_chunk_with_another_or_no_sha_restarts(sha: bytes | None) -> None:
    board = Board()
    board.chunk(first(data=APP[:600]))
    board.chunk({"off": 600, "data": APP[600:1200]})
    assert board.chunk(first(sha=sha)) == {"off": 200}
    assert board.chunk({"off": 1200, "data": APP[1200:1300]}) == {"off": 200}


def test_a_short_sha_is_accepted_and_resumes() -> None:
    board = Board()
    assert board.chunk(first(sha=SHA[:8])) == {"off": 200}
    assert board.chunk({"off": 200, "data": APP[200:700]}) == {"off": 700}
    assert board.chunk(first(sha=SHA[:8])) == {"off": 700}
    assert board.chunk(first(sha=SHA[:9])) == {"off": 200}


def test_a_finished_upload_is_not_resumed() -> None:
    board = Board()
    assert board.upload(APP) == {"off": len(APP)}
    assert board.chunk(first()) == {"off": 200}


def test_the_upload_is_lost_at_reset() -> None:
    board = Board()
    board.chunk(first(data=APP[:600]))
    board.reset()
    assert board.chunk({"off": 600, "data": APP[600:1200]}) == {"off": 0}
    assert board.chunk(first()) == {"off": 200}  # and the same sha starts anew


# ----------------------------------------------------------------------------- the buffer


def test_writes_are_whole_512_byte_buffers_and_the_tail_is_flushed_padded() -> None:
    board = Board()
    flash, area = board.device.flash, board.dfu.area(0, 1)
    writes = flash.writes
    board.chunk(first())
    assert flash.writes == writes and area.is_erased()
    board.chunk({"off": 200, "data": APP[200:600]})
    assert flash.writes == writes + 1
    assert area.read(0, 512) == APP[:512] and area.is_erased(512, 88)  # 600 received
    assert board.upload(APP, 700) == {"off": len(APP)}
    assert area.read(0, len(APP)) == APP
    assert area.is_erased(len(APP), area.size - len(APP))


def test_a_partial_upload_leaves_its_tail_unwritten() -> None:
    board = Board()
    board.chunk(first(data=APP[:1000]))
    board.chunk({"off": 1000, "data": APP[1000:1100]})
    area = board.dfu.area(0, 1)
    assert area.read(0, 1024) == APP[:1024]
    assert area.is_erased(1024, area.size - 1024)
    assert summary(board.state()) == [(0, "1.0.0", "B-CA-")]


def test_write_count_of_a_whole_upload() -> None:
    board = Board()
    writes = board.device.flash.writes
    board.upload(APP, 300)
    assert board.device.flash.writes - writes == math.ceil(len(APP) / 512)


def test_data_past_the_end_of_the_slot_fails_the_write() -> None:
    board = Board("qemu_cortex_m0_img")  # swap-offset: the image starts 1 KiB into the slot
    header = make_image("1.2.3", 100)[:200]
    size = 0x1A000
    assert board.chunk({"len": size, "off": 0, "data": header}) == {"off": 200}
    off, chunk = 200, 2048
    answer: Any = {"off": off}
    while "off" in answer and answer["off"] < size:
        off = answer["off"]
        answer = board.chunk({"off": off, "data": bytes(min(chunk, size - off))})
    assert answer == err(12)
    assert off + chunk > size - 1024  # it failed where the data would pass the slot's end
    assert Upload not in board.device.ram


def test_write_failure_is_12_and_ends_the_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    board = Board()

    def fail(offset: int, data: bytes) -> None:
        raise NotErased("refused")
    monkeypatch.setattr(board.device.flash, "write", fail)
    assert board.chunk(first(data=APP[:600])) == err(12)
    assert board.chunk({"off": 600, "data": APP[600:700]}) == {"off": 0}


def test_first_chunk_erase_failure_is_13(monkeypatch: pytest.MonkeyPatch) -> None:
    board = Board()
    board.upload(APP)

    def fail(offset: int, length: int) -> None:
        raise FlashError("erase failed")
    monkeypatch.setattr(board.device.flash, "erase", fail)
    assert board.chunk(first(sha=b"\x33" * 32)) == err(13)
    assert Upload not in board.device.ram


def test_power_loss_in_the_first_chunk_erase_is_not_an_answer() -> None:
    board = Board()
    board.upload(APP)
    board.device.flash.cut_power_before(1)
    with pytest.raises(PowerLoss):
        board.chunk(first(sha=b"\x33" * 32))
    assert board.dfu.area(0, 1).read(0, len(APP)) == APP  # the cut came before the erase


# ----------------------------------------------------------------------------- image check


def test_match_on_the_last_chunk_with_image_check() -> None:
    board = Board(image_check=True)
    assert board.upload(APP, 1000) == {"off": len(APP), "match": True}
    assert board.chunk({"off": len(APP)}) == {"off": 0}  # finished: the state is gone


@pytest.mark.parametrize("sha", [b"\x22" * 32, SHA[:16]])
def test_match_false_for_another_sha(sha: bytes) -> None:
    board = Board(image_check=True)
    answer = board.chunk(first(sha=sha, data=APP[:1000]))
    while answer["off"] < len(APP):
        off = answer["off"]
        answer = board.chunk({"off": off, "data": APP[off:off + 1000]})
    assert answer == {"off": len(APP), "match": False}


def test_image_check_skips_an_upload_already_in_the_slot() -> None:
    board = Board(image_check=True)
    board.upload(APP)
    ops = board.device.flash.ops
    assert board.chunk(first()) == {"off": len(APP), "match": True}
    assert board.device.flash.ops == ops
    assert Upload not in board.device.ram


def test_no_match_key_without_image_check() -> None:
    assert Board().upload(APP) == {"off": len(APP)}


# ----------------------------------------------------------------------------- erase


def _header(size: int) -> dict[str, Any]:
    return {"len": size, "off": 0, "data": make_image("1.1.0", 100)[:200]}


def test_full_slot_upload_on_nrf52840_erases_118_pages_on_the_first_chunk() -> None:
    board = Board("nrf52840dk")
    board.upload(sample("app-1.1.0.bin"))
    flash = board.device.flash
    ops, erases = flash.ops, flash.erases
    assert board.chunk(_header(0x76000)) == {"off": 200}
    assert board.last is not None
    assert board.last.busy_s == pytest.approx(118 * 0.085)  # ~10 s the transport sleeps off
    assert (flash.ops - ops, flash.erases - erases) == (1, 118)  # one flash_area_flatten


def test_first_chunk_into_an_empty_slot_erases_nothing() -> None:
    board = Board("nrf52840dk")
    assert board.chunk(_header(0x76000)) == {"off": 200}
    assert board.last is not None
    assert board.last.busy_s == 0.0


def test_small_image_erases_its_pages_then_the_trailer_page() -> None:
    board = Board("nrf52840dk")
    board.upload(sample("app-1.1.0.bin"))
    board.write_state(board.hash_in(1))
    flash = board.device.flash
    ops, erases = flash.ops, flash.erases
    size = 40_000
    assert board.chunk(_header(size)) == {"off": 200}
    pages = math.ceil(size / 4096)
    assert (flash.ops - ops, flash.erases - erases) == (2, pages + 1)
    assert board.last is not None
    assert board.last.busy_s == pytest.approx((pages + 1) * 0.085)
    assert summary(board.state()) == [(0, "1.0.0", "B-CA-")]  # the pending test is gone


def test_swap_offset_erase_covers_the_gap_before_the_image() -> None:
    board = Board("qemu_cortex_m0_img")
    image = make_image("1.1.0", 6000, slot_size=0x1A000)
    board.upload(image)
    assert board.dfu.area(0, 1).read(1024, len(image)) == image  # uploaded at sector 1
    flash = board.device.flash
    erases = flash.erases
    board.chunk(_header(len(image)) | {"sha": b"\x01"})
    assert flash.erases - erases == math.ceil((1024 + len(image)) / 1024) + 1


def test_progressive_erase_erases_each_page_before_writing_it() -> None:
    board = Board(erase_progressively=True)
    board.upload(APP)
    board.write_state(board.hash_in(1))
    flash = board.device.flash
    ops, erases, writes = flash.ops, flash.erases, flash.writes
    assert board.chunk({"len": len(OTHER), "off": 0, "data": OTHER[:200]}) == {"off": 200}
    assert flash.ops == ops  # nothing erased yet: the old test request still stands
    assert summary(board.state())[1] == (1, "1.1.0", "BP---")
    answer = board.upload(OTHER, 1000)
    assert answer == {"off": len(OTHER)}
    assert flash.erases - erases == math.ceil(len(OTHER) / 1024) + 1  # + the trailer page
    assert flash.ops - ops == (flash.erases - erases) + (flash.writes - writes)
    assert summary(board.state())[1] == (1, "1.2.0", "B----")


def test_progressive_first_chunk_on_nrf52840_is_instant() -> None:
    board = Board("nrf52840dk", erase_progressively=True)
    board.upload(sample("app-1.1.0.bin"))
    assert board.chunk(_header(0x76000)) == {"off": 200}
    assert board.last is not None
    assert board.last.busy_s == 0.0


# ----------------------------------------------------------------------------- slot in use


def test_upload_while_a_test_is_pending_wipes_it() -> None:
    board = Board()
    board.upload(APP)
    board.write_state(board.hash_in(1))
    assert board.chunk({"len": len(OTHER), "off": 0, "data": OTHER[:200]}) == {"off": 200}
    assert summary(board.state()) == [(0, "1.0.0", "B-CA-")]


@pytest.mark.parametrize(("version", "expected"), [
    (V2, err(9)), (V1, {"rc": 6, "rsn": "no slot"})])
def test_no_upload_while_the_test_image_runs_unconfirmed(version: int, expected: Any) -> None:
    board = Board("qemu_cortex_m0_img")
    image = make_image("1.1.0", 6000, slot_size=0x1A000)
    board.upload(image)
    board.write_state(board.hash_in(1))
    board.reset()
    payload = {"len": len(image), "off": 0, "data": image[:200]}
    assert board.call(WRITE, UPLOAD, payload, version=version) == expected


# ----------------------------------------------------------------------------- a chunk read inline

_WIDTHS = st.sampled_from([None, 1, 2, 4, 8])
"""How many bytes a head's argument takes (``None``: the shortest form)."""


def _head(major: int, value: int, width: int | None) -> bytes:
    if width is None:
        width = next(w for w, top in ((0, 24), (1, 2**8), (2, 2**16), (4, 2**32), (8, 2**64))
                     if value < top)
    if width == 0:
        return bytes([major << 5 | value])
    return bytes([major << 5 | {1: 24, 2: 25, 4: 26, 8: 27}[width]]) + value.to_bytes(width)


@given(off=st.integers(0, 2**32 - 1), off_width=_WIDTHS, length=st.integers(0, 300),
       length_width=_WIDTHS, cut=st.integers(0, 12), tail=st.sampled_from([b"", b"\x00"]))
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_a_chunk_read_inline_is_read_as_the_general_path_reads_it(
        *, off: int, off_width: int | None, length: int, length_width: int | None, cut: int,
        tail: bytes) -> None:
    """The steady chunk's inline reading (``{"off", "data"}`` in that order) finds what
    ``Request.fields`` finds, or leaves the map to it; so does every map cut short."""
    if off_width is not None and off >= 1 << 8 * off_width:
        off_width = None
    if length_width is not None and length >= 1 << 8 * length_width:
        length_width = None
    body = (b"\xa2\x63off" + _head(0, off, off_width) + b"\x64data"
            + _head(2, length, length_width) + bytes(i & 0xFF for i in range(length)) + tail)
    body = body[:len(body) - cut]
    unit = Header(WRITE, V2, 0, len(body), Group.IMAGE, 0, UPLOAD).pack() + body
    request = Request(Header.parse(unit), unit, _reader().device, _reader().device.profile,
                      HEADER_SIZE)
    inline = img_mgmt._chunk_args(unit, HEADER_SIZE)
    try:
        general: dict[str, Any] | None = request.fields(img_mgmt.UPLOAD_SCHEMA)
    except MgmtError:
        general = None
    if inline is not None:
        assert inline == general
    if general is not None and cut == 0 and 8 not in (off_width, length_width):
        assert inline == general  # what clients send is read inline


@functools.cache
def _reader() -> Board:
    return Board()
