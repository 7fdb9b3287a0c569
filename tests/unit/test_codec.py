"""The zcbor-compatible CBOR codec: indefinite-length output, strict and lenient input."""

from __future__ import annotations

import contextlib
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpsim.mcumgr.codec import (
    MAX_DEPTH,
    ChunkedBytes,
    ChunkedText,
    DecodeError,
    Pairs,
    Simple,
    Tagged,
    decode,
    decode_map,
    encode,
    head,
    head_bytes,
)

H = bytes.fromhex
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)

# ----------------------------------------------------------------------------- encoder


def test_map_is_indefinite_length() -> None:
    assert encode({"r": "hello"}) == H("bf 6172 6568656c6c6f ff")


def test_empty_map_and_array() -> None:
    assert encode({}) == H("bfff")
    assert encode([]) == H("9fff")


def test_nested_maps_and_arrays_are_indefinite_too() -> None:
    assert encode({"err": {"group": 0, "rc": 2}}) == H(
        "bf 63657272 bf 6567726f7570 00 627263 02 ff ff")
    assert encode({"stat_list": ["a", "b"]}) == H("bf 6973746174 5f6c697374 9f 6161 6162 ff ff")
    assert encode((1, 2)) == H("9f 01 02 ff")


@pytest.mark.parametrize(("value", "hex_"), [
    (0, "00"), (23, "17"), (24, "1818"), (255, "18ff"), (256, "190100"), (384, "190180"),
    (2048, "190800"), (65535, "19ffff"), (65536, "1a00010000"), (2**32 - 1, "1affffffff"),
    (2**32, "1b0000000100000000"), (2**64 - 1, "1bffffffffffffffff"),
])
def test_unsigned_ints_use_the_shortest_head(value: int, hex_: str) -> None:
    assert encode(value) == H(hex_)


@given(major=st.sampled_from([0, 2, 3, 4, 5]), value=st.integers(0, 2**64 - 1)
       | st.sampled_from([23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32]))
@PROPERTY
def test_a_head_written_alone_is_the_head_encode_writes(major: int, value: int) -> None:
    """``head_bytes`` (the hot answers' heads) against the encoder's own heads."""
    whole = encode(value)  # an unsigned int is its head alone
    assert head_bytes(major, value) == bytes([major << 5 | whole[0] & 0x1F]) + whole[1:]
    written = head_bytes(major, value)
    assert head(b"\x00" + written + b"\x00", 1) == (major, value, 1 + len(written))


@pytest.mark.parametrize("hex_", ["", "19 01", "1a 000000", "5b 00000000000000", "1c", "5e", "3d"])
def test_a_head_cut_short_or_reserved_is_a_decode_error(hex_: str) -> None:
    with pytest.raises(DecodeError):
        head(H(hex_), 0)


@pytest.mark.parametrize(("value", "hex_"), [
    (-1, "20"), (-16, "2f"), (-24, "37"), (-25, "3818"), (-256, "38ff"), (-257, "390100"),
    (-(2**32), "3affffffff"), (-(2**64), "3bffffffffffffffff"),
])
def test_negative_ints_are_major_type_1(value: int, hex_: str) -> None:
    assert encode(value) == H(hex_)


@pytest.mark.parametrize(("value", "hex_"), [
    (b"", "40"), (b"\x01\x02", "420102"), (bytearray(b"\xff"), "41ff"),
    (memoryview(b"ab"), "426162"), (b"x" * 24, "5818" + "78" * 24),
])
def test_byte_strings_are_definite(value: Any, hex_: str) -> None:
    assert encode(value) == H(hex_)


@pytest.mark.parametrize(("value", "hex_"), [
    ("", "60"), ("a", "6161"), ("é", "62c3a9"), ("x" * 23, "77" + "78" * 23),
    ("x" * 24, "7818" + "78" * 24), ("x" * 256, "790100" + "78" * 256),
])
def test_text_strings_are_definite_utf8(value: str, hex_: str) -> None:
    assert encode(value) == H(hex_)


def test_surrogate_escaped_text_goes_out_as_the_original_bytes() -> None:
    assert encode("\udcff\udcfe") == H("62fffe")


def test_simple_values() -> None:
    assert encode(True) == H("f5")
    assert encode(False) == H("f4")
    assert encode(None) == H("f6")
    assert encode({"ok": True}) == H("bf 626f6b f5 ff")


def test_pairs_keep_duplicate_keys_in_order() -> None:
    pairs = Pairs([("a", 1), ("b", 2), ("a", 3)])
    assert encode(pairs) == H("bf 6161 01 6162 02 6161 03 ff")
    assert len(pairs) == 3
    assert list(pairs) == ["a", "b", "a"]
    assert pairs["a"] == 1
    with pytest.raises(KeyError):
        pairs["z"]


def test_unencodable_values_raise_type_error() -> None:
    with pytest.raises(TypeError, match="float"):
        encode(1.5)
    with pytest.raises(TypeError):
        encode({"x": object()})


# ----------------------------------------------------------------------------- decoder


def test_decode_definite_map() -> None:
    assert decode_map(H("a2 6164 6568656c6c6f 6178 01")) == [("d", "hello"), ("x", 1)]


def test_decode_indefinite_map() -> None:
    assert decode_map(H("bf 6164 626869 ff")) == [("d", "hi")]


def test_decode_map_ignores_what_follows() -> None:
    assert decode_map(H("a1 6164 626869 0000 ffff")) == [("d", "hi")]


def test_decode_map_at_an_offset() -> None:
    assert decode_map(H("0000 a0"), 2) == []


def test_duplicate_keys_are_preserved_as_pairs() -> None:
    assert decode_map(H("a2 6164 6131 6164 6132")) == [("d", "1"), ("d", "2")]


def test_nested_maps_come_back_as_pairs() -> None:
    assert decode(H("a1 6161 bf 6162 01 ff")) == [("a", [("b", 1)])]


@pytest.mark.parametrize("hex_", ["", "82 6164 626869", "05", "6164", "f6", "9f ff"])
def test_decode_map_refuses_anything_but_a_map(hex_: str) -> None:
    with pytest.raises(DecodeError):
        decode_map(H(hex_))


@pytest.mark.parametrize(("hex_", "value"), [
    ("00", 0), ("17", 23), ("1818", 24), ("190180", 384), ("1a00010000", 65536),
    ("1bffffffffffffffff", 2**64 - 1), ("20", -1), ("2f", -16), ("3863", -100),
    ("3bffffffffffffffff", -(2**64)), ("40", b""), ("43010203", b"\x01\x02\x03"),
    ("60", ""), ("62c3a9", "é"), ("83 01 02 03", [1, 2, 3]), ("9f 01 9f ff ff", [1, []]),
    ("f4", False), ("f5", True), ("f6", None), ("f93c00", 1.0), ("fa3fc00000", 1.5),
    ("fb3ff8000000000000", 1.5),
])
def test_decode_items(hex_: str, value: Any) -> None:
    assert decode(H(hex_)) == value


def test_decode_simple_and_tagged_items() -> None:
    assert decode(H("e0")) == Simple(0)
    assert decode(H("f7")) == Simple(23)
    assert decode(H("f820")) == Simple(32)
    assert decode(H("c1 1a00000001")) == Tagged(1, 1)
    assert decode(H("d818 6161")) == Tagged(24, "a")


def test_invalid_utf8_text_is_kept_byte_for_byte() -> None:
    text = decode(H("62 fffe"))
    assert isinstance(text, str)
    assert encode(text) == H("62fffe")


def test_chunked_text_comes_back_as_chunked_text() -> None:
    value = decode(H("7f 6161 626263 ff"))
    assert type(value) is ChunkedText
    assert value == "abc"


def test_chunked_bytes_come_back_as_chunked_bytes() -> None:
    value = decode(H("5f 4101 420203 ff"))
    assert type(value) is ChunkedBytes
    assert value == b"\x01\x02\x03"


def test_empty_chunked_strings() -> None:
    assert type(decode(H("7fff"))) is ChunkedText
    assert type(decode(H("5fff"))) is ChunkedBytes


def test_plain_strings_are_not_chunked() -> None:
    assert type(decode(H("6161"))) is str
    assert type(decode(H("4161"))) is bytes


@pytest.mark.parametrize(("hex_", "why"), [
    ("", "empty input"),
    ("18", "missing 1-byte argument"),
    ("19 01", "short 2-byte argument"),
    ("1a 0000", "short 4-byte argument"),
    ("1b 00000000", "short 8-byte argument"),
    ("62 61", "text shorter than its length"),
    ("45 0102", "bytes shorter than their length"),
    ("82 01", "array missing an item"),
    ("a2 6164 6162", "map missing an entry"),
    ("a1 6164", "map key without a value"),
    ("bf 6164 6162", "indefinite map without break"),
    ("bf 6164 ff", "indefinite map with a key and no value"),
    ("9f 01 02", "indefinite array without break"),
    ("7f 6161", "unterminated chunked text"),
    ("7f 4161 ff", "bytes chunk in chunked text"),
    ("5f 6161 ff", "text chunk in chunked bytes"),
    ("7f 7f ff ff", "nested chunked text"),
    ("1c", "reserved additional information 28"),
    ("1d", "reserved additional information 29"),
    ("1e", "reserved additional information 30"),
    ("1f", "indefinite unsigned int"),
    ("3f", "indefinite negative int"),
    ("df 00", "indefinite tag"),
    ("fc", "reserved simple value 28"),
    ("fe", "reserved simple value 30"),
    ("f8", "missing simple value byte"),
    ("f8 10", "two-byte simple value below 32"),
    ("f9 3c", "truncated half float"),
    ("fb 3ff8", "truncated double"),
    ("c1", "tag without content"),
])
def test_malformed_input_raises_decode_error(hex_: str, why: str) -> None:
    with pytest.raises(DecodeError):
        decode(H(hex_))


@pytest.mark.parametrize("hex_", ["ff", "81 ff", "a1 6161 ff", "c1 ff", "82 01 ff"])
def test_break_outside_an_indefinite_item_is_refused(hex_: str) -> None:
    with pytest.raises(DecodeError, match="break"):
        decode(H(hex_))


def test_nesting_up_to_the_limit_is_accepted() -> None:
    data = b"\x81" * MAX_DEPTH + b"\x00"
    value = decode(data)
    for _ in range(MAX_DEPTH):
        assert isinstance(value, list)
        value = value[0]
    assert value == 0


@pytest.mark.parametrize("opener", [b"\x81", b"\x9f", b"\xa1\x61\x61", b"\xc1"])
def test_deep_nesting_is_refused(opener: bytes) -> None:
    with pytest.raises(DecodeError, match="deep"):
        decode(opener * (MAX_DEPTH + 1) + b"\x00")


def test_a_huge_declared_count_fails_fast_instead_of_looping() -> None:
    with pytest.raises(DecodeError):
        decode(H("9b ffffffffffffffff 00"))
    with pytest.raises(DecodeError):
        decode(H("bb ffffffffffffffff 6161 00"))


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


# ----------------------------------------------------------------------------- cbor2 oracle

_scalars = (st.integers(-(2**64), 2**64 - 1) | st.text(max_size=30) | st.binary(max_size=30)
            | st.booleans() | st.none())
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=5),
    max_leaves=25,
)


def _as_pairs(value: Any) -> Any:
    """What our decoder returns for ``value``: maps become lists of pairs."""
    if isinstance(value, dict):
        return [(k, _as_pairs(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_as_pairs(v) for v in value]
    return value


@given(_values)
@PROPERTY
def test_cbor2_decodes_our_encoding_to_the_same_value(value: Any) -> None:
    assert cbor2.loads(encode(value)) == value


@given(_values)
@PROPERTY
def test_our_decoder_inverts_our_encoder(value: Any) -> None:
    assert decode(encode(value)) == _as_pairs(value)


@given(_values)
@PROPERTY
def test_our_decoder_reads_cbor2_definite_encoding(value: Any) -> None:
    assert decode(cbor2.dumps(value)) == _as_pairs(value)


@given(st.dictionaries(st.text(max_size=8), _values, max_size=5))
@PROPERTY
def test_every_map_and_array_we_write_is_indefinite(value: dict[str, Any]) -> None:
    data = encode(value)
    assert (data[0], data[-1]) == (0xBF, 0xFF)
    # Containers here hold fewer than 24 items, so cbor2's definite head is one byte like our
    # 0xbf / 0x9f; the indefinite form costs exactly one break byte more per container.
    assert len(data) == len(cbor2.dumps(value)) + _containers(value)


def _containers(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_containers(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_containers(v) for v in value)
    return 0


@given(_values)
@PROPERTY
def test_every_truncation_of_a_valid_item_raises_decode_error(value: Any) -> None:
    data = encode(value)
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            decode(data[:cut])


@given(st.binary(max_size=64))
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_random_bytes_decode_or_raise_decode_error_only(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


@given(st.binary(max_size=64))
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_decode_map_fast_path_agrees_with_the_general_decoder(data: bytes) -> None:
    # decode_map reads short maps inline; any bytes after a definite map head must give the
    # pairs the general decoder gives, or the same refusal.
    for map_head in (b"\xa1", b"\xa2", b"\xa3"):
        try:
            expected: Any = decode(map_head + data)
        except DecodeError:
            expected = DecodeError
        try:
            got: Any = decode_map(map_head + data)
        except DecodeError:
            got = DecodeError
        assert got == expected


@given(st.dictionaries(st.text(max_size=30), _values, max_size=5))
@PROPERTY
def test_decode_map_reads_cbor2_maps(value: dict[str, Any]) -> None:
    assert decode_map(cbor2.dumps(value)) == _as_pairs(value)
