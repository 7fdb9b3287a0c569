"""Group 10, enumeration: count, list, single and details, byte for byte where recorded.

Cases named like ``enum.details.mixed`` are recorded answers of real Zephyr 4.4.0 builds in
tests/golden/; the rest follows Zephyr 4.4.0's
``subsys/mgmt/mcumgr/grp/enum_mgmt/src/enum_mgmt.c``.
"""

from __future__ import annotations

import cbor2
import pytest

from smpsim.mcumgr.header import Header
from smpsim.mcumgr.server import Server

from .smp_frames import (
    READ,
    V1,
    V2,
    WRITE,
    call,
    err_body,
    exchange,
    frame,
    profile,
    rc_body,
    server,
)

ENUM, COUNT, LIST, SINGLE, DETAILS = 10, 0, 1, 2, 3
H = bytes.fromhex


def _body(srv: Server, cmd: int, payload: object = b"", version: int = V2,
          op: int = READ) -> bytes:
    frames = srv.handle(frame(op, ENUM, cmd, payload, version=version)).frames
    assert len(frames) == 1
    assert Header.parse(frames[0]).length == len(frames[0]) - 8
    return frames[0][8:]


@pytest.mark.parametrize(("prof", "unit", "expected"), [
    ("native_sim_udp", "00000001000a5600a0", "01000009000a5600bf65636f756e7407ff"),  # count.v1
    ("native_sim_udp", "00000001000a5801a0",  # list.v1
     "01000013000a5801bf6667726f7570739f0a0800030902183fffff"),
    ("native_sim_udp", "08000008000a5b02a165696e64657801",  # single.idx1
     "09000009000a5b02bf6567726f757008ff"),
    ("native_sim_udp", "00000009000a5d02a165696e6465781864",  # single.out_of_range.v1
     "01000006000a5d02bf62726301ff"),
    ("native_sim_udp", "08000009000a5e02a165696e6465781864",  # single.out_of_range.v2
     "09000013000a5e02bf63657272bf6567726f75700a62726304ffff"),
    ("native_sim_udp", "0800000b000a6103a16667726f757073820002",  # details.some
     "0900004d000a6103bf6667726f7570739fbf6567726f757000646e616d65676f73206d676d746868616e646c"
     "65727308ffbf6567726f757002646e616d656973746174206d676d746868616e646c65727302ffffff"),
    ("native_sim_udp", "0800000b000a6303a16667726f757073811863",  # details.unknown_group.v2
     "0900000b000a6303bf6667726f7570739fffff"),
    ("native_sim_serial_bigrx", "08000001000a5a02a0",  # single.no_index
     "09000009000a5a02bf6567726f75700aff"),
    ("native_sim_serial_bigrx", "0800000c000a6203a16667726f75707382186300",  # details.mixed
     "0900002b000a6203bf6667726f7570739fbf6567726f757000646e616d65676f73206d676d746868616e646c"
     "65727308ffffff"),
    ("native_sim_serial_fs", "00000001000a1903a0",  # details.all.v1
     "0100008f000a1903bf6667726f7570739fbf6567726f75700a646e616d6569656e756d206d676d74686861"
     "6e646c65727304ffbf6567726f757008646e616d65676673206d676d746868616e646c65727305ffbf6567"
     "726f757000646e616d65676f73206d676d746868616e646c65727308ffbf6567726f757002646e616d6569"
     "73746174206d676d746868616e646c65727302ffffff"),
    ("native_sim_serial_buf96", "00000001000a4603a0",  # details.all.v1: does not fit, rc 9
     "01000006000a4603bf62726309ff"),
    ("native_sim_serial_buf96", "0800000b000a4803a16667726f757073820002",  # details.some fits
     "0900004d000a4803bf6667726f7570739fbf6567726f757000646e616d65676f73206d676d746868616e646c"
     "65727308ffbf6567726f757002646e616d656973746174206d676d746868616e646c65727302ffffff"),
    ("qemu_cortex_m0_img", "08000001000a1101a0",  # list.v2
     "0900000f000a1101bf6667726f7570739f0a010002ffff"),
])
def test_recorded_answers(prof: str, unit: str, expected: str) -> None:
    assert exchange(server(prof), unit) == [expected]


def test_the_default_board_registers_every_group_in_link_order() -> None:
    srv = server("nrf52840dk")
    assert call(srv, READ, ENUM, LIST) == {"groups": [10, 8, 1, 0, 3, 9, 2, 63]}
    assert call(srv, READ, ENUM, COUNT) == {"count": 8}
    details = call(srv, READ, ENUM, DETAILS, {})["groups"]
    assert [(d["group"], d["name"], d["handlers"]) for d in details] == [
        (10, "enum mgmt", 4), (8, "fs mgmt", 5), (1, "img mgmt", 7), (0, "os mgmt", 9),
        (3, "settings mgmt", 4), (9, "shell mgmt", 1), (2, "stat mgmt", 2),
        (63, "zephyr basic mgmt", 1)]  # os: bootloader info (8) is compiled in


def test_handlers_is_the_table_size_not_the_command_count() -> None:
    # echo (0) and info (7) only: Zephyr's array still runs to index 7.
    srv = server(profile(groups={"os": ("echo", "info"), "enum": ("count", "details")}))
    assert call(srv, READ, ENUM, DETAILS, {})["groups"] == [
        {"group": 10, "name": "enum mgmt", "handlers": 4},
        {"group": 0, "name": "os mgmt", "handlers": 8}]


def test_count_and_list_ignore_the_payload() -> None:
    srv = server()
    for payload in (b"", b"\xff\x00", {"index": 3}):
        assert cbor2.loads(_body(srv, COUNT, payload)) == {"count": 7}
        assert cbor2.loads(_body(srv, LIST, payload)) == {"groups": [10, 8, 0, 3, 9, 2, 63]}


def test_single_walks_every_group_and_marks_the_last() -> None:
    srv = server()
    order = [10, 8, 0, 3, 9, 2, 63]
    for index, group in enumerate(order):
        expected = {"group": group, **({"end": True} if index == len(order) - 1 else {})}
        assert call(srv, READ, ENUM, SINGLE, {"index": index}) == expected
    assert _body(srv, SINGLE, {"index": 7}) == err_body(10, 4)
    assert _body(srv, SINGLE, {"index": 7}, V1) == rc_body(1)
    assert _body(srv, SINGLE, {"index": 6}) == H("bf6567726f7570183f63656e64f5ff")


@pytest.mark.parametrize("payload", [
    {"index": 65536},          # over MAX_MCUMGR_GROUPS
    {"index": 2 ** 32},        # not a uint32
    {"index": -1},
    {"index": "0"},
    H("a2 65696e64657800 65696e64657801"),  # "index" twice
    b"",                       # no map at all
])
def test_single_refuses_bad_indexes_with_rc_3(payload: object) -> None:
    assert _body(server(), SINGLE, payload) == rc_body(3)


def test_unknown_keys_are_skipped() -> None:
    srv = server()
    assert call(srv, READ, ENUM, SINGLE, {"x": [1, {"y": 2}], "index": 1}) == {"group": 8}
    got = call(srv, READ, ENUM, DETAILS, {"z": None, "groups": [0]})["groups"]
    assert [d["group"] for d in got] == [0]


def test_single_index_65535_is_just_out_of_range() -> None:
    assert _body(server(), SINGLE, {"index": 65535}) == err_body(10, 4)


def test_details_filter_keeps_registration_order_and_skips_unknown_ids() -> None:
    srv = server()
    got = call(srv, READ, ENUM, DETAILS, {"groups": [63, 99, 0, 0]})["groups"]
    assert [d["group"] for d in got] == [0, 63]
    assert call(srv, READ, ENUM, DETAILS, {"groups": [99, 1]}) == {"groups": []}


def test_details_with_an_empty_filter_lists_everything() -> None:
    srv = server()
    assert call(srv, READ, ENUM, DETAILS, {"groups": []}) == call(srv, READ, ENUM, DETAILS, {})


def test_details_compares_ids_on_16_bits() -> None:
    # Zephyr copies the filter into a uint16_t list: 65536 + 2 selects group 2.
    got = call(server(), READ, ENUM, DETAILS, {"groups": [65538]})["groups"]
    assert got == [{"group": 2, "name": "stat mgmt", "handlers": 2}]


def test_details_indefinite_filter_array() -> None:
    raw = H("a1 6667726f757073 9f 00 02 ff")
    assert [d["group"] for d in call(server(), READ, ENUM, DETAILS, raw)["groups"]] == [0, 2]


def test_details_filter_of_more_than_16_ids_is_too_many() -> None:
    srv = server()
    assert _body(srv, DETAILS, {"groups": list(range(16))}) != err_body(10, 2)
    assert _body(srv, DETAILS, {"groups": list(range(17))}) == err_body(10, 2)
    assert _body(srv, DETAILS, {"groups": list(range(17))}, V1) == rc_body(3)  # EINVAL
    # The count is checked before the items are read: 17 strings are still too many.
    assert _body(srv, DETAILS, {"groups": ["x"] * 17}) == err_body(10, 2)


@pytest.mark.parametrize("payload", [
    {"groups": 5},             # not an array
    {"groups": {"0": 1}},
    {"groups": ["0"]},         # items must be uints
    {"groups": [0, -1]},
    {"groups": [2 ** 32]},
    H("a2 6667726f75707380 6667726f75707380"),  # "groups" twice
    b"",
])
def test_details_bad_requests_are_rc_3(payload: object) -> None:
    assert _body(server(), DETAILS, payload) == rc_body(3)


def test_write_op_is_rc_8() -> None:
    srv = server()
    for cmd in (COUNT, LIST, SINGLE, DETAILS):
        assert _body(srv, cmd, {}, op=WRITE) == rc_body(8)


def test_an_answer_over_the_buffer_is_rc_9_but_the_last_byte_alone_is_rc_7() -> None:
    # 16-byte buffer: 8 bytes of CBOR. {"count": 3} is 9 bytes, all but its final 0xff fits,
    # so enum_mgmt succeeds and only the SMP layer's closing byte fails: rc 7.
    small = server(profile("native_sim_udp6", buf_size=16))
    assert _body(small, COUNT) == rc_body(7)
    # {"groups": [10, 0, 2]} is 14 bytes: enum_mgmt itself runs out of room: rc 9.
    assert _body(small, LIST) == rc_body(9)
    assert _body(small, SINGLE, {"index": 2}) == rc_body(9)  # {"group": 2, "end": true}
