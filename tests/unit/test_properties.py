"""Property tests: whatever bytes arrive, Server.handle answers like Zephyr's SMP layer or not at
all, and never raises."""

from __future__ import annotations

import functools
from typing import Any

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from smpsim.mcumgr.codec import decode_map, encode
from smpsim.mcumgr.header import HEADER_SIZE, Header
from smpsim.mcumgr.server import Server

from .smp_frames import READ, V2, WRITE, frame, server

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)

# Every os command, a few commands of other groups, and ids no build has.
_GROUP_CMD = st.sampled_from([(0, c) for c in range(10)] + [(1, 0), (2, 1), (8, 0), (9, 0),
                                                            (10, 0), (63, 0), (64, 0), (99, 3)])
_KEYS = st.sampled_from(["d", "format", "datetime", "query", "force", "boot_mode", "x", ""])
_VALUES = (st.text(max_size=30) | st.integers(-(2**40), 2**40) | st.binary(max_size=10)
           | st.booleans() | st.none() | st.sampled_from(["a", "snrv", "mode",
                                                          "2024-01-02T03:04:05"]))
_MAPS = st.dictionaries(_KEYS, _VALUES, max_size=4).map(encode)
_PAYLOADS = _MAPS | st.binary(max_size=40) | st.just(b"")


def _check_frame(data: bytes, rsp: bytes, request: Header | None = None) -> Any:
    """Structural checks of one response frame; returns its decoded body."""
    assert len(rsp) >= HEADER_SIZE
    head = Header.parse(rsp)
    assert rsp[0] & 0xE0 == 0  # reserved bits written as 0
    assert head.flags == 0
    assert head.version in (0, 1)
    assert head.op in (1, 3)
    assert head.length == len(rsp) - HEADER_SIZE
    body = rsp[HEADER_SIZE:]
    assert body[0] == 0xBF and body[-1] == 0xFF  # indefinite-length map
    decode_map(body)  # well-formed for our decoder ...
    decoded = cbor2.loads(body)  # ... and for an independent one
    assert isinstance(decoded, dict)
    if request is not None:
        assert head.op == (1 if request.op == READ else 3)
        assert head.version == min(request.version, 1)
        assert (head.group, head.seq, head.cmd) == (request.group, request.seq, request.cmd)
    return decoded


@functools.cache
def _shared(name: str) -> Server:
    """One server per profile for all examples (a device allocates its whole flash). What the
    examples leave behind (an RTC set, a boot mode) changes no property checked here."""
    return server(name)


def _servers() -> list[Server]:
    return [_shared("native_sim_udp"), _shared("nrf52840dk"), _shared("native_sim_serial_buf96")]


@given(st.binary(max_size=200))
@settings(max_examples=500, deadline=None, derandomize=True, database=None)
def test_random_bytes_never_raise_and_every_answer_is_a_valid_frame(data: bytes) -> None:
    for srv in _servers():
        reply = srv.handle(data)
        assert len(reply.frames) <= len(data) // HEADER_SIZE
        for rsp in reply.frames:
            _check_frame(data, rsp)


@given(op=st.integers(0, 7), version=st.integers(0, 3), flags=st.integers(0, 255),
       group_cmd=_GROUP_CMD, seq=st.integers(0, 255), payload=_PAYLOADS,
       reserved=st.integers(0, 7))
@PROPERTY
def test_every_well_formed_frame_gets_exactly_one_correct_answer(
        *, op: int, version: int, flags: int, group_cmd: tuple[int, int], seq: int,
        payload: bytes, reserved: int) -> None:
    group, cmd = group_cmd
    request = Header(op, version, flags, len(payload), group, seq, cmd)
    raw = bytearray(request.pack() + payload)
    raw[0] |= reserved << 5
    for srv in _servers():
        frames = srv.handle(bytes(raw)).frames
        assert len(frames) == 1
        body = _check_frame(bytes(raw), frames[0], request)
        if op not in (READ, WRITE):
            assert body == {"rc": 8}
        elif version > 1:
            assert body == {"rc": 13}


@given(st.lists(st.tuples(st.integers(0, 255), st.text(max_size=20)), min_size=1, max_size=5),
       st.binary(max_size=7))
@PROPERTY
def test_concatenated_good_frames_are_all_answered_in_order(echoes: list[tuple[int, str]],
                                                            tail: bytes) -> None:
    unit = b"".join(frame(WRITE, 0, 0, {"d": text}, seq=seq) for seq, text in echoes) + tail
    frames = _shared("native_sim_udp").handle(unit).frames
    assert [(Header.parse(f).seq, cbor2.loads(f[8:])) for f in frames] == [
        (seq, {"r": text}) for seq, text in echoes]


@given(st.lists(st.tuples(st.integers(0, 255), st.text(max_size=20)), min_size=1, max_size=4),
       st.integers(1, 100))
@PROPERTY
def test_a_short_length_ends_the_unit_with_rc_9(echoes: list[tuple[int, str]],
                                                 missing: int) -> None:
    good = b"".join(frame(WRITE, 0, 0, {"d": text}, seq=seq) for seq, text in echoes)
    bad = frame(WRITE, 0, 0, {"d": "x"}, seq=77)
    bad = Header(WRITE, V2, 0, len(bad) - 8 + missing, 0, 77, 0).pack() + bad[8:]
    frames = _shared("native_sim_udp").handle(good + bad).frames
    assert len(frames) == len(echoes) + 1
    assert cbor2.loads(frames[-1][8:]) == {"rc": 9}
    assert Header.parse(frames[-1]).seq == 77


@given(st.text(max_size=300))
@PROPERTY
def test_echo_answers_any_text_or_rc_7_when_it_does_not_fit(text: str) -> None:
    srv = _shared("native_sim_serial_buf96")
    [rsp] = srv.handle(frame(WRITE, 0, 0, {"d": text})).frames
    expected = encode({"r": text})
    if len(expected) <= 96 - HEADER_SIZE:
        assert rsp[HEADER_SIZE:] == expected
    else:
        assert rsp[HEADER_SIZE:] == encode({"rc": 7})


# Any one ASCII character that is not a digit separates fields; a sign would be read by strtol
# as part of the next number.
_SEPARATOR = st.characters(max_codepoint=0x7F, blacklist_categories=["Nd"],
                           blacklist_characters="+-")


@given(year=st.integers(1900, 11899), month=st.integers(1, 12), day=st.integers(1, 28),
       hour=st.integers(0, 23), minute=st.integers(0, 59), second=st.integers(0, 59),
       seps=st.lists(_SEPARATOR, min_size=5, max_size=5))
@PROPERTY
def test_datetime_set_get_round_trip(*, year: int, month: int, day: int, hour: int, minute: int,
                                     second: int, seps: list[str]) -> None:
    srv = _shared("nrf52840dk")
    parts = [f"{year:04d}", f"{month:02d}", f"{day:02d}", f"{hour:02d}", f"{minute:02d}",
             f"{second:02d}"]
    text = parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True))
    [rsp] = srv.handle(frame(WRITE, 0, 4, {"datetime": text})).frames
    assert rsp[HEADER_SIZE:] == b"\xbf\xff"
    [rsp] = srv.handle(frame(READ, 0, 4, {})).frames
    expected = (f"{year:4d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}")
    assert cbor2.loads(rsp[HEADER_SIZE:]) == {"datetime": expected}
