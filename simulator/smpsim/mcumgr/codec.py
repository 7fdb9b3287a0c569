"""CBOR as Zephyr's zcbor writes and reads it.

Written here rather than taken from cbor2 because the wire demands what cbor2 cannot do:

* every map and array we send is indefinite-length (``bf … ff``, ``9f … ff``), as zcbor's
  non-canonical mode writes them, with the shortest integer heads;
* a request map is read as ``zcbor_map_decode_bulk`` reads it: text keys only, a duplicated known
  key is an error, unknown keys are skipped but must be well-formed, and the decoder sees all the
  bytes left in the unit, not just the header's length;
* text is kept byte for byte (invalid UTF-8 is echoed back unchanged), and an indefinite-length
  (chunked) string does not pass for a plain one, since zcbor's string decoders refuse it.

cbor2 remains the independent oracle that the tests decode our answers with.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 32
"""Nesting deeper than this is refused, as zcbor's bounded state stack would."""


class DecodeError(ValueError):
    """The bytes are not one well-formed CBOR item of the expected shape."""


class ChunkedText(str):
    """An indefinite-length text string: well-formed, but not a ``tstr`` for zcbor."""

    __slots__ = ()


class ChunkedBytes(bytes):
    """An indefinite-length byte string: well-formed, but not a ``bstr`` for zcbor."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Tagged:
    """A tagged item (major type 6)."""

    tag: int
    """Tag number."""
    value: Any
    """Tagged content."""


@dataclass(frozen=True, slots=True)
class Simple:
    """A simple value other than false, true, null (major type 7)."""

    value: int
    """Simple value number; 23 is ``undefined``."""


_FLOAT = {25: struct.Struct(">e"), 26: struct.Struct(">f"), 27: struct.Struct(">d")}
_BREAK = object()


_ARGUMENT_SIZE = {24: 1, 25: 2, 26: 4, 27: 8}


def _argument(data: bytes, pos: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, pos
    size = _ARGUMENT_SIZE.get(info)
    if size is None:
        raise DecodeError(f"reserved additional information {info}")
    end = pos + size
    if end > len(data):
        raise DecodeError("truncated argument")
    return int.from_bytes(data[pos:end], "big"), end


def _item(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if pos >= len(data):
        raise DecodeError("truncated item")
    if depth > MAX_DEPTH:
        raise DecodeError("nested too deep")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if major == 7:
        return _simple(data, pos, info)
    if info < 24:  # the common case, without a call
        arg = info
    elif info == 31:
        return _indefinite(data, pos, major, depth)
    else:
        arg, pos = _argument(data, pos, info)
    if major == 3:
        end = pos + arg
        if end > len(data):
            raise DecodeError("truncated string")
        return data[pos:end].decode("utf-8", "surrogateescape"), end
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major == 2:
        end = pos + arg
        if end > len(data):
            raise DecodeError("truncated string")
        return data[pos:end], end
    if major == 4:
        items = []
        for _ in range(arg):
            value, pos = _item(data, pos, depth + 1)
            items.append(value)
        return items, pos
    if major == 5:
        pairs = []
        for _ in range(arg):
            key, pos = _item(data, pos, depth + 1)
            value, pos = _item(data, pos, depth + 1)
            pairs.append((key, value))
        return pairs, pos
    value, pos = _item(data, pos, depth + 1)
    return Tagged(arg, value), pos


def _simple(data: bytes, pos: int, info: int) -> tuple[Any, int]:
    if info < 20:
        return Simple(info), pos
    if info == 20:
        return False, pos
    if info == 21:
        return True, pos
    if info == 22:
        return None, pos
    if info == 23:
        return Simple(23), pos
    if info == 24:
        if pos >= len(data) or data[pos] < 32:
            raise DecodeError("bad simple value")
        return Simple(data[pos]), pos + 1
    if info in _FLOAT:
        fmt = _FLOAT[info]
        if pos + fmt.size > len(data):
            raise DecodeError("truncated float")
        return fmt.unpack_from(data, pos)[0], pos + fmt.size
    if info == 31:
        raise DecodeError("break outside an indefinite-length item")
    raise DecodeError(f"reserved simple value {info}")


def _item_or_break(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if pos < len(data) and data[pos] == 0xFF:
        return _BREAK, pos + 1
    return _item(data, pos, depth)


def _indefinite(data: bytes, pos: int, major: int, depth: int) -> tuple[Any, int]:
    if major in (0, 1, 6):
        raise DecodeError("indefinite length not allowed here")
    if major in (2, 3):
        chunks: list[bytes] = []
        while True:
            if pos >= len(data):
                raise DecodeError("unterminated string")
            if data[pos] == 0xFF:
                pos += 1
                break
            if data[pos] >> 5 != major or data[pos] & 0x1F == 31:
                raise DecodeError("bad chunk in indefinite string")
            chunk, pos = _item(data, pos, depth + 1)
            chunks.append(chunk.encode("utf-8", "surrogateescape") if major == 3 else chunk)
        raw = b"".join(chunks)
        if major == 3:
            return ChunkedText(raw.decode("utf-8", "surrogateescape")), pos
        return ChunkedBytes(raw), pos
    items: list[Any] = []
    while True:
        value, pos = _item_or_break(data, pos, depth + 1)
        if value is _BREAK:
            break
        if major == 5:
            item, pos = _item(data, pos, depth + 1)
            items.append((value, item))
        else:
            items.append(value)
    return items, pos


def decode_map(data: bytes, pos: int = 0) -> list[tuple[Any, Any]]:
    """The key/value pairs of the map at ``pos``; what follows the map is ignored.

    Raises :class:`DecodeError` when there is no well-formed map there. Nested maps come back
    as lists of pairs too.
    """
    if pos >= len(data) or data[pos] >> 5 != 5:
        raise DecodeError("not a map")
    count = data[pos] & 0x1F
    if count >= 24:  # a long or indefinite-length map: the general path
        pairs, _ = _item(data, pos, 0)
        if not isinstance(pairs, list):  # pragma: no cover - major type 5 yields pairs
            raise DecodeError("not a map")
        return pairs
    # Every request body passes here: short text keys, unsigned, byte-string and text values
    # are read inline (the same checks as _item's, without a call per item).
    end = len(data)
    pos += 1
    pairs = []
    for _ in range(count):
        initial = data[pos] if pos < end else 0xFF
        if 0x60 <= initial < 0x78:  # text of 0-23 bytes
            stop = pos + 1 + (initial & 0x1F)
            if stop > end:
                raise DecodeError("truncated string")
            key: Any = data[pos + 1:stop].decode("utf-8", "surrogateescape")
            pos = stop
        else:
            key, pos = _item(data, pos, 1)
        initial = data[pos] if pos < end else 0xFF
        major, info = initial >> 5, initial & 0x1F
        if major in (0, 2, 3) and info <= 26:
            arg, after = (info, pos + 1) if info < 24 else _argument(data, pos + 1, info)
            if major == 0:
                value: Any = arg
                pos = after
            else:
                stop = after + arg
                if stop > end:
                    raise DecodeError("truncated string")
                value, pos = data[after:stop], stop
                if major == 3:  # text (an echo's "d")
                    value = value.decode("utf-8", "surrogateescape")
        else:
            value, pos = _item(data, pos, 1)
        pairs.append((key, value))
    return pairs


def head(data: bytes, pos: int) -> tuple[int, int | None, int]:
    """The head of the item at ``pos``: (major type, argument or ``None`` for an indefinite
    length, position after the head). For handlers that walk a request as zcbor does."""
    if pos >= len(data):
        raise DecodeError("truncated item")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    if info < 24:  # the argument in the initial byte: most heads
        return major, info, pos + 1
    if info == 31:
        return major, None, pos + 1
    if info > 27:
        raise DecodeError(f"reserved additional information {info}")
    # 1, 2, 4 or 8 bytes, read here rather than by _argument: an upload chunk reads two heads
    # like this (issue 15), and a call is most of what such a head costs.
    end = pos + 1 + (1 << (info - 24))
    if end > len(data):
        raise DecodeError("truncated argument")
    return major, int.from_bytes(data[pos + 1:end]), end


def skip(data: bytes, pos: int) -> int:
    """Position after the well-formed item at ``pos`` (``zcbor_any_skip``)."""
    _, end = _item(data, pos, 0)
    return end


def decode(data: bytes) -> Any:
    """Decode one item from the start of ``data`` (used by tests and tools)."""
    value, _ = _item(data, 0, 0)
    return value


def _head(out: bytearray, major: int, value: int) -> None:
    if value < 24:
        out.append((major << 5) | value)
    elif value < 0x100:
        out += bytes(((major << 5) | 24, value))
    elif value < 0x10000:
        out.append((major << 5) | 25)
        out += value.to_bytes(2, "big")
    elif value < 0x100000000:
        out.append((major << 5) | 26)
        out += value.to_bytes(4, "big")
    else:
        out.append((major << 5) | 27)
        out += value.to_bytes(8, "big")


def head_bytes(major: int, value: int) -> bytes:
    """The shortest head of an item of ``major`` type with argument ``value`` (as
    :func:`encode` writes it), for handlers that write their hot answers themselves."""
    initial = major << 5
    if value < 24:
        return bytes((initial | value,))
    if value < 0x100:
        return bytes((initial | 24, value))
    if value < 0x10000:
        return _HEAD_16.pack(initial | 25, value)
    if value < 0x100000000:
        return _HEAD_32.pack(initial | 26, value)
    return _HEAD_64.pack(initial | 27, value)


_HEAD_16, _HEAD_32, _HEAD_64 = struct.Struct(">BH"), struct.Struct(">BI"), struct.Struct(">BQ")


def _encode(out: bytearray, value: Any) -> None:
    # Exact types first (the request path: str keys, small ints, plain dicts), then the rest.
    kind = type(value)
    if kind is str:
        raw = value.encode("utf-8", "surrogateescape")
        if len(raw) < 24:  # keys and short text: the head is one byte
            out.append(0x60 | len(raw))
        else:
            _head(out, 3, len(raw))
        out += raw
    elif kind is int:
        if value >= 0:
            _head(out, 0, value)
        else:
            _head(out, 1, -1 - value)
    elif kind is dict:
        out.append(0xBF)
        for key, item in value.items():
            _encode(out, key)
            _encode(out, item)
        out.append(0xFF)
    elif kind is bytes:
        _head(out, 2, len(value))
        out += value
    else:
        _encode_other(out, value)


def _encode_other(out: bytearray, value: Any) -> None:
    # bool before int: bool is a subclass of int.
    if value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogateescape")
        _head(out, 3, len(raw))
        out += raw
    elif isinstance(value, int):
        if value >= 0:
            _head(out, 0, value)
        else:
            _head(out, 1, -1 - value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _head(out, 2, len(value))
        out += value
    elif isinstance(value, Mapping):
        out.append(0xBF)
        for key, item in value.items():
            _encode(out, key)
            _encode(out, item)
        out.append(0xFF)
    elif isinstance(value, Sequence):
        out.append(0x9F)
        for item in value:
            _encode(out, item)
        out.append(0xFF)
    elif value is None:
        out.append(0xF6)
    else:
        raise TypeError(f"cannot encode {type(value).__name__}")


def encode(value: Any) -> bytes:
    """Encode ``value`` with indefinite-length maps and arrays, as zcbor does.

    Maps may be ``dict`` or a sequence of pairs wrapped in :class:`Pairs` (for the duplicate
    keys Zephyr can produce, e.g. taskstat keyed by priority).
    """
    out = bytearray()
    if type(value) is dict:  # a response body: skip one level of dispatch
        out.append(0xBF)
        for key, item in value.items():
            # Short text keys and text values (an echo's {"r": text}) are written inline.
            if type(key) is str and len(raw := key.encode("utf-8", "surrogateescape")) < 24:
                out.append(0x60 | len(raw))
                out += raw
            else:
                _encode(out, key)
            if type(item) is str:
                raw = item.encode("utf-8", "surrogateescape")
                if len(raw) < 24:
                    out.append(0x60 | len(raw))
                else:
                    _head(out, 3, len(raw))
                out += raw
            else:
                _encode(out, item)
        out.append(0xFF)
    else:
        _encode(out, value)
    return bytes(out)


class Pairs(Mapping[Any, Any]):
    """An ordered map that may repeat a key, encoded pair by pair."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Sequence[tuple[Any, Any]]) -> None:
        self._pairs = list(pairs)

    def items(self) -> Any:
        return iter(self._pairs)

    def __getitem__(self, key: Any) -> Any:
        for k, v in self._pairs:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Any:
        return (k for k, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)
