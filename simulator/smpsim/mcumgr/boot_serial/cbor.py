"""Request maps as MCUboot's ``zcbor_map_decode_bulk`` reads them.

The payload is all the bytes present after the header (MCUboot hands its decoder the received
length, not the header's). The map may be definite or indefinite; anything after it is
ignored. Keys must be text: a non-text key ends the walk short of the map's end, which fails.
A known key may come once (twice: ``-EADDRINUSE``) and its value must decode with the key's
decoder; unknown keys are skipped whatever their value, as long as it is well formed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from smpsim.mcumgr.codec import ChunkedBytes, ChunkedText, DecodeError, decode_map

Decoder = Callable[[Any], bool]

UINT32: Decoder = lambda v: type(v) is int and 0 <= v <= 0xFFFFFFFF  # noqa: E731
"""``zcbor_uint32_decode`` and ``zcbor_size_decode`` (32-bit ``size_t``)."""
BSTR: Decoder = lambda v: type(v) is bytes and not isinstance(v, ChunkedBytes)  # noqa: E731
"""``zcbor_bstr_decode``: a definite-length byte string."""
TSTR: Decoder = lambda v: type(v) is str and not isinstance(v, ChunkedText)  # noqa: E731
"""``zcbor_tstr_decode``: a definite-length text string."""
BOOL: Decoder = lambda v: type(v) is bool  # noqa: E731
"""``zcbor_bool_decode``."""


def decode_bulk(payload: bytes, schema: Mapping[str, Decoder]) -> dict[str, Any] | None:
    """The known keys found in the request map, or None where MCUboot fails the decode
    (which every handler answers with ``MGMT_ERR_EINVAL``)."""
    try:
        pairs = decode_map(payload)
    except DecodeError:
        return None
    found: dict[str, Any] = {}
    for key, value in pairs:
        if type(key) is not str:  # ChunkedText included: not a zcbor tstr
            return None
        check = schema.get(key)
        if check is None:
            continue
        if key in found or not check(value):
            return None
        found[key] = value
    return found


def echo_text(payload: bytes) -> str | None:
    """``bs_echo``'s own walk: text keys are skipped until ``d``, whose text value must end
    the map. None when that fails."""
    try:
        pairs = decode_map(payload)
    except DecodeError:
        return None
    for index, (key, value) in enumerate(pairs):
        if not TSTR(key):
            return None
        if key == "d":
            return value if TSTR(value) and index == len(pairs) - 1 else None
    return None
