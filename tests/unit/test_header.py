"""The 8-byte SMP header: parsing, packing, and the response header Zephyr derives from it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpsim.mcumgr.header import HEADER_SIZE, Group, Header, Op, Version


def test_parse_reads_every_field_big_endian() -> None:
    head = Header.parse(bytes.fromhex("0a00012c0102ff07"))
    assert head == Header(op=2, version=1, flags=0, length=0x012C, group=0x0102, seq=0xFF, cmd=7)


def test_parse_at_an_offset() -> None:
    data = bytes.fromhex("ffff" "0800000100001f06")
    assert Header.parse(data, 2) == Header(0, 1, 0, 1, 0, 0x1F, 6)


def test_parse_accepts_a_memoryview() -> None:
    assert Header.parse(memoryview(bytes.fromhex("0000000900000400"))).length == 9


def test_reserved_bits_are_ignored_on_input() -> None:
    head = Header.parse(bytes.fromhex("ea00000600007700"))  # res = 7, ver = 1, op = 2
    assert (head.op, head.version) == (Op.WRITE, Version.V2)


def test_flags_are_kept_on_parse_but_cleared_in_the_response() -> None:
    head = Header.parse(bytes.fromhex("0aff000600007600"))
    assert head.flags == 0xFF
    assert head.response(7)[1] == 0


def test_pack_layout() -> None:
    assert Header(2, 1, 0, 9, 0, 3, 0).pack() == bytes.fromhex("0a00000900000300")
    assert Header(0, 0, 0x5A, 0xFFFF, 0xFFFF, 255, 255).pack() == bytes.fromhex("005affffffffffff")


def test_pack_never_sets_reserved_bits() -> None:
    for op in range(8):
        for version in range(4):
            assert Header(op, version, 0, 0, 0, 0, 0).pack()[0] & 0xE0 == 0


_headers = st.builds(Header, op=st.integers(0, 7), version=st.integers(0, 3),
                     flags=st.integers(0, 255), length=st.integers(0, 0xFFFF),
                     group=st.integers(0, 0xFFFF), seq=st.integers(0, 255),
                     cmd=st.integers(0, 255))


@given(_headers)
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
def test_parse_inverts_pack(head: Header) -> None:
    packed = head.pack()
    assert len(packed) == HEADER_SIZE
    assert Header.parse(packed) == head


@pytest.mark.parametrize("version", range(4))
@pytest.mark.parametrize("op", range(8))
def test_response_header_rules(op: int, version: int) -> None:
    """READ -> READ_RSP, any other op -> WRITE_RSP; version echoed, capped at v2; flags 0."""
    head = Header(op, version, 0xA5, 3, 0x1234, 0x56, 0x78)
    rsp = head.response(0x0102)
    expected_op = Op.READ_RSP if op == Op.READ else Op.WRITE_RSP
    expected_version = min(version, Version.V2)
    assert rsp == bytes([(expected_version << 3) | expected_op, 0, 0x01, 0x02, 0x12, 0x34,
                         0x56, 0x78])


@pytest.mark.parametrize(("request_hex", "first_byte"), [
    ("08", 0x09),  # v2 read  -> v2 read response
    ("0a", 0x0B),  # v2 write -> v2 write response
    ("00", 0x01),  # v1 read  -> v1 read response
    ("02", 0x03),  # v1 write -> v1 write response
    ("12", 0x0B),  # version 2 -> answered as v2
    ("1a", 0x0B),  # version 3 -> answered as v2
    ("ea", 0x0B),  # reserved bits set -> cleared
    ("09", 0x0B),  # op 1 (READ_RSP) -> WRITE_RSP
    ("0c", 0x0B),  # op 4 -> WRITE_RSP
    ("0f", 0x0B),  # op 7 -> WRITE_RSP
])
def test_response_first_byte_examples(request_hex: str, first_byte: int) -> None:
    head = Header.parse(bytes.fromhex(request_hex + "00000000000000"))
    assert head.response(0)[0] == first_byte


def test_response_length_is_the_given_one_not_the_request_one() -> None:
    head = Header.parse(bytes.fromhex("0a0000090000d500"))
    assert head.response(6) == bytes.fromhex("0b0000060000d500")


def test_enum_numbers() -> None:
    assert [int(o) for o in Op] == [0, 1, 2, 3]
    assert [int(v) for v in Version] == [0, 1]
    assert {g.name: int(g) for g in Group} == {
        "OS": 0, "IMAGE": 1, "STAT": 2, "SETTINGS": 3, "LOG": 4, "CRASH": 5, "SPLIT": 6,
        "RUN": 7, "FS": 8, "SHELL": 9, "ENUM": 10, "TRANSPORT": 11, "ZEPHYR_BASIC": 63,
        "PERUSER": 64,
    }
