"""Handler tables and request-map decoding as ``zcbor_map_decode_bulk`` does it."""

from __future__ import annotations

from typing import Any

import pytest

from smpsim.mcumgr.dispatcher import (
    BOOL,
    BSTR,
    INT32,
    TSTR,
    UINT32,
    UINT64,
    Check,
    Dispatcher,
    GroupHandlers,
    Request,
)
from smpsim.mcumgr.errors import MgmtErr, MgmtError
from smpsim.mcumgr.groups import IMPLEMENTED
from smpsim.mcumgr.header import Header

from .smp_frames import profile, server

H = bytes.fromhex


def _request(payload: bytes) -> Request:
    srv = server()
    return Request(Header(2, 1, 0, len(payload), 0, 0, 0), payload, srv.device, srv.profile)


def _fields(payload_hex: str, schema: dict[str, Check]) -> dict[str, Any]:
    return _request(H(payload_hex)).fields(schema)


def test_known_keys_are_returned_and_unknown_keys_skipped() -> None:
    assert _fields("a2 6164 626869 6178 01", {"d": TSTR}) == {"d": "hi"}


def test_missing_keys_are_simply_absent() -> None:
    assert _fields("a0", {"d": TSTR}) == {}
    assert _fields("bfff", {"d": TSTR}) == {}


def test_indefinite_request_map_is_accepted() -> None:
    assert _fields("bf 6164 626869 ff", {"d": TSTR}) == {"d": "hi"}


def test_bytes_after_the_map_are_ignored() -> None:
    assert _fields("a1 6164 626869 0000", {"d": TSTR}) == {"d": "hi"}


def test_a_duplicated_unknown_key_is_fine() -> None:
    assert _fields("a3 6178 01 6178 02 6164 6161", {"d": TSTR}) == {"d": "a"}


@pytest.mark.parametrize(("payload_hex", "why"), [
    ("", "no payload at all"),
    ("82 6164 6161", "an array, not a map"),
    ("05", "an int, not a map"),
    ("fffefdfc", "not CBOR"),
    ("a2 6164", "truncated map"),
    ("a2 6164 6131 6164 6132", "known key twice"),
    ("a1 6164 05", "wrong type for a known key"),
    ("a1 6164 4161", "bytes where text is expected"),
    ("a1 6164 7f 6161 ff", "chunked text where text is expected"),
    ("a2 01 02 6164 6161", "a non-text key"),
    ("a2 6178 62 61 6164 6161", "a malformed value under an unknown key"),
    ("a1 7f 6164 ff 6161", "a chunked key"),
])
def test_decode_failures_are_einval(payload_hex: str, why: str) -> None:
    with pytest.raises(MgmtError) as info:
        _fields(payload_hex, {"d": TSTR})
    assert info.value.rc == MgmtErr.EINVAL


@pytest.mark.parametrize(("check", "good", "bad"), [
    (TSTR, ["", "x"], [b"x", 1, None, ["x"]]),
    (BSTR, [b"", b"x"], ["x", 1, bytearray(b"x")]),
    (BOOL, [True, False], [0, 1, None, "true"]),
    (UINT32, [0, 0xFFFFFFFF], [-1, 0x100000000, True, "1"]),
    (UINT64, [0, 2**64 - 1], [-1, 2**64, False]),
    (INT32, [-0x80000000, 0x7FFFFFFF], [-0x80000001, 0x80000000, True]),
])
def test_value_checks_are_strict_about_cbor_types(check: Check, good: list[Any],
                                                 bad: list[Any]) -> None:
    assert all(check(v) for v in good)
    assert not any(check(v) for v in bad)


def test_registering_a_command_missing_from_the_catalog_fails() -> None:
    with pytest.raises(KeyError, match="nope"):
        GroupHandlers("os").read("nope")


def test_groups_are_in_linker_order_not_id_order() -> None:
    dispatcher = Dispatcher(profile("native_sim_udp"), IMPLEMENTED)
    assert [g.info.group_id for g in dispatcher.groups] == [10, 8, 0, 3, 9, 2, 63]


def test_table_size_is_highest_enabled_command_plus_one() -> None:
    dispatcher = Dispatcher(profile("native_sim_udp"), IMPLEMENTED)
    sizes = {g.info.name: g.table_size for g in dispatcher.groups}
    assert sizes["os mgmt"] == 8  # echo .. info (7); enum details reports "handlers": 8
    assert sizes["zephyr basic mgmt"] == 1


def test_lookup_follows_the_profile() -> None:
    dispatcher = Dispatcher(profile("native_sim_udp"), IMPLEMENTED)
    echo = dispatcher.lookup(0, 0)
    assert echo is not None
    assert echo.read is not None
    assert echo.write is not None
    taskstat = dispatcher.lookup(0, 2)
    assert taskstat is not None
    assert taskstat.write is None
    assert dispatcher.lookup(0, 4) is None  # datetime: not in this build
    assert dispatcher.lookup(0, 1) is None  # console echo control: no handler in Zephyr
    assert dispatcher.lookup(99, 0) is None


def test_enabled_groups_without_a_handler_module_have_no_handlers() -> None:
    dispatcher = Dispatcher(profile("native_sim_udp"), {})
    assert dispatcher.lookup(0, 0) is None
    assert len(dispatcher.groups) == 7
