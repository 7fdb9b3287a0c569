"""Comparing one response frame of smpsim with the one the real server sent.

Three comparisons, all of which must hold:

1. the decoded header: version, op, flags, length, group, seq and cmd;
2. the decoded payload, decoded with cbor2 (an independent decoder) and compared with the recorded
   answer decoded the same way and with the recorder's own decoding (``payload``), exact types
   and map key order included;
3. the raw bytes, exactly.

Values that change by nature (:data:`VOLATILE`) are compared by CBOR major type and Python type
only. A response holding one cannot match byte for byte, so there (and only there) the raw bytes
are compared item by item with the volatile items masked, and the header length, which follows the
volatile value's encoded size, is checked against the frame itself instead of the record.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2

from .records import HEADER_KEYS, HEADER_SIZE, Frame, Header

Path = tuple[str | int, ...]


def _argv_starts(*words: str) -> Callable[[Any], bool]:
    def match(request: Any) -> bool:
        argv = request.get("argv") if isinstance(request, dict) else None
        return isinstance(argv, list) and argv[:len(words)] == list(words)
    return match


def _always(request: Any) -> bool:
    return True


@dataclass(frozen=True)
class Volatile:
    """A response value that differs between runs by nature."""

    group: int
    cmd: int
    path: Path
    """Keys (and array indexes) from the top-level response map to the value."""
    why: str
    applies: Callable[[Any], bool] = _always
    """Predicate on the decoded request map: whether this request makes the value volatile."""


VOLATILE: tuple[Volatile, ...] = (
    Volatile(2, 0, ("fields", "ticks"),
             "stat show smp_svr_stats: the sample's main loop increments ticks once a second"),
    Volatile(9, 0, ("o",), "shell 'kernel uptime' prints the milliseconds since boot",
             _argv_starts("kernel", "uptime")),
    Volatile(9, 0, ("o",), "shell 'kernel cycles' prints the hardware cycle counter",
             _argv_starts("kernel", "cycles")),
    Volatile(0, 4, ("datetime",), "os datetime get: the RTC runs on between set and get"),
)
"""Every value compared by type only. Add to this list only what changes by nature."""


class CborError(ValueError):
    """Not exactly one well-formed CBOR item."""


def decode(payload: bytes) -> Any:
    """cbor2 decoding of exactly one item filling ``payload``."""
    stream = io.BytesIO(payload)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, EOFError) as exc:
        raise CborError(f"undecodable CBOR: {exc}") from None
    if stream.tell() != len(payload):
        raise CborError(f"{len(payload) - stream.tell()} bytes after the CBOR item")
    return value


def from_record_json(value: Any) -> Any:
    """The recorder's JSON form of a payload -> cbor2's form (bytes are ``{"hex": ...}``)."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("hex"), str):
            return bytes.fromhex(value["hex"])
        return {k: from_record_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_record_json(v) for v in value]
    return value


def _show(path: Path) -> str:
    return "".join(f"[{p!r}]" for p in path) or "payload"


def diff(expected: Any, actual: Any, volatile: set[Path], path: Path = ()) -> list[str]:
    """Differences between two decoded values: exact types, values and map key order."""
    if type(expected) is not type(actual):
        return [f"{_show(path)}: expected {type(expected).__name__} {expected!r}, "
                f"got {type(actual).__name__} {actual!r}"]
    if path in volatile:
        return []
    if isinstance(expected, dict):
        if list(expected) != list(actual):
            return [f"{_show(path)}: keys {list(actual)}, expected {list(expected)}"]
        return [d for k in expected for d in diff(expected[k], actual[k], volatile, (*path, k))]
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return [f"{_show(path)}: {len(actual)} items, expected {len(expected)}: {actual!r}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in diff(e, a, volatile, (*path, i))]
    if expected != actual:
        return [f"{_show(path)}: expected {expected!r}, got {actual!r}"]
    return []


def _walk(data: bytes, pos: int, path: Path, volatile: set[Path],
          out: list[bytes | str] | None) -> int:
    """Append the encoding of the item at ``pos`` to ``out`` with volatile items masked.

    Heads and scalars are kept byte for byte, so indefinite lengths, integer widths and key order
    are still compared; a volatile item becomes ``<volatile major N>``. Returns the item's end.
    """
    if pos >= len(data):
        raise CborError("truncated CBOR")
    if path in volatile and out is not None:
        out.append(f"<volatile major {data[pos] >> 5}>")
        out = None
    start = pos
    major, info = data[pos] >> 5, data[pos] & 0x1F
    pos += 1
    if info < 24:
        arg = info
    elif info <= 27:
        size = 1 << (info - 24)
        arg = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    elif info == 31 and major in (2, 3, 4, 5):
        arg = -1
    else:
        raise CborError(f"bad CBOR head {data[start]:02x}")
    if major in (2, 3) and arg >= 0:
        pos += arg
    if out is not None:
        out.append(data[start:pos])
    if major in (0, 1, 7) or (major in (2, 3) and arg >= 0):
        return pos
    if major == 6:
        return _walk(data, pos, path, volatile, out)
    index = 0
    while (pos < len(data) and data[pos] != 0xFF) if arg < 0 else index < arg:
        if major == 5:
            key_start = pos
            pos = _walk(data, pos, (*path, "<key>"), set(), out)
            key = decode(data[key_start:pos])
            pos = _walk(data, pos, (*path, key), volatile, out)
        else:
            pos = _walk(data, pos, (*path, index) if major == 4 else path, volatile, out)
        index += 1
    if arg < 0:
        if pos >= len(data):
            raise CborError("unterminated indefinite-length item")
        if out is not None:
            out.append(b"\xff")
        pos += 1
    return pos


def masked(payload: bytes, volatile: set[Path]) -> list[str]:
    """The payload's encoding as hex pieces, volatile items replaced by their major type."""
    out: list[bytes | str] = []
    _walk(payload, 0, (), volatile, out)
    pieces: list[str] = []
    for item in out:
        if isinstance(item, bytes) and pieces and not pieces[-1].startswith("<"):
            pieces[-1] += item.hex()
        else:
            pieces.append(item.hex() if isinstance(item, bytes) else item)
    return pieces


def volatile_paths(header: Header, request: Frame | None, expected: Any) -> dict[Path, str]:
    """The volatile paths present in ``expected``, with the reason for each."""
    try:
        request_map = decode(request.payload) if request is not None else None
    except CborError:
        request_map = None
    found = {}
    for rule in VOLATILE:
        if (rule.group, rule.cmd) != (header.group, header.cmd) or not rule.applies(request_map):
            continue
        node = expected
        for key in rule.path:
            in_map = isinstance(node, dict) and key in node
            in_array = isinstance(node, list) and isinstance(key, int) and key < len(node)
            if not (in_map or in_array):
                break
            node = node[key]
        else:
            found[rule.path] = rule.why
    return found


def compare_response(expected: bytes, recorded: dict[str, Any], actual: bytes,
                     request: Frame | None) -> list[str]:
    """Every difference between smpsim's frame ``actual`` and the real ``expected`` one."""
    if len(actual) < HEADER_SIZE:
        return [f"a {len(actual)}-byte datagram is not an SMP frame"]
    problems = []
    want, got = Header.parse(expected), Header.parse(actual)
    body = actual[HEADER_SIZE:]
    if got.length != len(body):
        problems.append(f"header length {got.length} but {len(body)} payload bytes follow")
    want_body = expected[HEADER_SIZE:HEADER_SIZE + want.length]
    try:
        want_value = decode(want_body)
    except CborError as exc:
        return [f"the recorded payload is not CBOR ({exc}): cannot compare"]
    try:
        got_value, decoded = decode(body), True
    except CborError as exc:
        problems.append(f"payload: {exc}")
        got_value, decoded = None, False
    volatile = volatile_paths(want, request, want_value)
    for key in HEADER_KEYS:
        if key == "length" and volatile:
            continue  # follows the volatile value's size; checked against the frame above
        if getattr(got, key) != recorded["header"][key]:
            problems.append(f"header {key}: expected {recorded['header'][key]}, "
                            f"got {getattr(got, key)}")
    if decoded:
        problems += diff(want_value, got_value, set(volatile))
        if recorded.get("payload") is not None:
            problems += [f"vs recorded decoding: {d}" for d in
                         diff(from_record_json(recorded["payload"]), got_value, set(volatile))]
    if not volatile:
        if actual != expected:
            problems.append("raw bytes differ")
    else:
        try:
            got_masked = masked(body, set(volatile))
        except CborError as exc:
            got_masked = [f"<{exc}>"]
        want_masked = masked(want_body, set(volatile))
        if got_masked != want_masked:
            problems.append(f"raw bytes differ outside the volatile values: expected "
                            f"{' '.join(want_masked)}, got {' '.join(got_masked)}")
    if problems:
        notes = "".join(f"\n  volatile {_show(p)}: {why}" for p, why in volatile.items())
        problems.append(f"expected {expected.hex()}\n  got      {actual.hex()}{notes}")
    return problems


def echo_answer(request: bytes) -> bytes:
    """The frame a board answers to a single os echo request with a short text ``d``.

    Built by hand exactly as Zephyr writes it (indefinite-length map, response op, flags 0):
    the expectation for an echo the real fixture never answered because it had exited.
    """
    header = Header.parse(request)
    value = decode(request[HEADER_SIZE:HEADER_SIZE + header.length])
    text: bytes = value["d"].encode()
    assert len(text) < 24, "only short echo texts are built here"
    body = b"\xbf\x61r" + bytes([0x60 | len(text)]) + text + b"\xff"
    op = 1 if header.op == 0 else 3
    return Header(header.version, op, 0, len(body), header.group, header.seq,
                  header.cmd).pack() + body
