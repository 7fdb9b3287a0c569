"""The serial framer: Zephyr's exact output lines, its receiver's quirks, and properties.

Exact bytes come from the golden records (``responses_wire_hex`` is what real Zephyr wrote,
``request_wire_hex`` what the recorder wrote to it); the quirks from the conformance README's
"serial framing errors" row and Zephyr's ``serial_util.c`` / ``uart_mcumgr.c``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smp import packet as smppacket

import golden
from smpsim.mcumgr.framing.serial import (
    ConsoleReceiver,
    Dropped,
    Event,
    Packet,
    RawReceiver,
    Text,
    crc16,
    encode_lines,
    encode_packet,
    split_lines,
)

CONSOLE_FILES = ("native_sim_serial_bigrx.jsonl", "native_sim_serial_bigrx_reset.jsonl",
                 "native_sim_serial_buf96.jsonl", "native_sim_serial_buf2048.jsonl",
                 "native_sim_serial_noparams.jsonl", "native_sim_serial_plain.jsonl",
                 "native_sim_serial_fs.jsonl", "native_sim_shell.jsonl",
                 "qemu_cortex_m0_img.jsonl")


def records(file: str) -> list[dict[str, object]]:
    return golden.records(file)


def echo(text: str, seq: int = 1) -> bytes:
    """An SMP v2 echo request frame (CBOR by hand: one text key ``d``)."""
    raw = text.encode()
    if len(raw) < 24:
        value = bytes([0x60 | len(raw)]) + raw
    elif len(raw) < 256:
        value = bytes([0x78, len(raw)]) + raw
    else:
        value = b"\x79" + struct.pack(">H", len(raw)) + raw
    body = b"\xa1\x61d" + value
    return struct.pack(">BBHHBB", 0x0A, 0, len(body), 0, seq, 0) + body


def packets(events: list[Event]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, Packet)]


def texts(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Text))


def roomy(buf_size: int = 4096, **options: object) -> ConsoleReceiver:
    """A receiver whose line buffers never run short (options override)."""
    kwargs: dict[str, object] = {"rx_buf_size": 512, "rx_buf_count": 1000}
    kwargs.update(options)
    return ConsoleReceiver(buf_size, **kwargs)  # type: ignore[arg-type]


# --- output: exactly Zephyr's lines ---------------------------------------------------------

def test_crc_is_xmodem() -> None:
    assert crc16(b"123456789") == 0x31C3  # the CRC-16/XMODEM check value


def test_278_byte_response_is_four_lines_of_127_123_123_15() -> None:
    lines = encode_lines(bytes(range(256)) + bytes(22))
    assert [len(line) for line in lines] == [127, 123, 123, 15]
    assert lines[0][:2] == b"\x06\x09" and all(x[:2] == b"\x04\x14" for x in lines[1:])
    assert all(line.endswith(b"\n") and b"\r" not in line for line in lines)


@pytest.mark.parametrize("size", range(1, 400))
def test_line_shapes(size: int) -> None:
    """First line at most 127 bytes (93 raw), continuations at most 123 (90 raw); every line
    decodes on its own; the CRC shares its line with the last data byte; smp's decoder reads
    it back."""
    packet = bytes((i * 7) & 0xFF for i in range(size))
    lines = encode_lines(packet)
    assert len(lines[0]) <= 127 and all(len(line) <= 123 for line in lines[1:])
    raws = [base64.b64decode(line[2:-1], validate=True) for line in lines]
    assert len(raws[0]) <= 93 and all(len(r) <= 90 for r in raws[1:])
    assert len(raws[-1]) >= 3, "the CRC travels with at least one data byte"
    whole = b"".join(raws)
    assert whole == struct.pack(">H", size + 2) + packet + struct.pack(">H", crc16(packet))
    decoder = smppacket.decode()
    next(decoder)
    with pytest.raises(StopIteration) as done:
        for line in lines:
            decoder.send(line)
    assert done.value.value == packet


def test_empty_packet_writes_nothing() -> None:
    assert encode_lines(b"") == []


def test_every_recorded_response_is_encoded_byte_for_byte() -> None:
    checked = 0
    for file in CONSOLE_FILES:
        for record in records(file):
            wires = record.get("responses_wire_hex") or []
            assert isinstance(wires, list)
            for frame, wire in zip(record["responses_hex"], wires, strict=True):  # type: ignore[call-overload]
                assert encode_packet(bytes.fromhex(frame)) == bytes.fromhex(wire), \
                    f"{file} {record['case']}"
                checked += 1
    assert checked >= 350


# --- input: what the recorder wrote comes out whole ------------------------------------------

def test_every_recorded_request_that_was_answered_decodes() -> None:
    """Each answered record's wire lines, fed as a paced UART delivers them (line by line),
    give back the recorded request; a fresh receiver each time."""
    checked = 0
    for file in CONSOLE_FILES:
        for record in records(file):
            wire = record.get("request_wire_hex")
            if not isinstance(wire, list) or not record["responses_hex"]:
                continue
            rx = roomy(4096, rx_buf_size=512, shell=file == "native_sim_shell.jsonl")
            events: list[Event] = []
            for line in wire:
                events += rx.feed(bytes.fromhex(line))
            got = packets(events)
            assert b"".join(got) == bytes.fromhex(str(record["request_hex"])), record["case"]
            checked += 1
    assert checked >= 370


# --- the receiver's quirks ------------------------------------------------------------------

def test_largest_frame_is_buf_size_minus_4() -> None:
    rx = ConsoleReceiver(384, rx_buf_size=512, rx_buf_count=32)
    fits = echo("x" * 366)  # 380 bytes
    assert len(fits) == 380
    assert packets(rx.feed(encode_packet(fits))) == [fits]
    too_big = echo("x" * 367)  # 381 bytes: silently dropped...
    assert rx.feed(encode_packet(too_big)) == []
    assert packets(rx.feed(encode_packet(echo("ok")))) == [echo("ok")]  # ...and the next works


def test_bad_crc_is_ignored() -> None:
    rx = roomy()
    frame = echo("crc")
    raw = struct.pack(">H", len(frame) + 2) + frame + struct.pack(">H", crc16(frame) ^ 1)
    assert rx.feed(b"\x06\x09" + base64.b64encode(raw) + b"\n") == []
    assert packets(rx.feed(encode_packet(echo("next")))) == [echo("next")]


@pytest.mark.parametrize("mangle", [
    lambda line: line[:6] + b"!!!!" + line[10:],          # characters outside the alphabet
    lambda line: line[:-2] + b"\n",                       # last character dropped
    lambda line: line[:4] + b"=" + line[5:],              # padding in the middle
    lambda line: line[:-1] + b"\r\r\n",                   # a lone CR
], ids=["bad-chars", "short", "inner-padding", "lone-cr"])
def test_bad_base64_is_ignored(mangle: object) -> None:
    rx = roomy()
    line = encode_packet(echo("b64!"))
    assert packets(rx.feed(mangle(line))) == []  # type: ignore[operator]
    assert packets(rx.feed(encode_packet(echo("ok")))) == [echo("ok")]


def test_length_field_too_small_is_dropped_and_too_big_waits() -> None:
    frame = echo("len")
    good = struct.pack(">H", len(frame) + 2) + frame + struct.pack(">H", crc16(frame))
    small = struct.pack(">H", len(frame) - 1) + good[2:]
    big = struct.pack(">H", len(frame) + 30) + good[2:]
    rx = roomy()
    assert rx.feed(b"\x06\x09" + base64.b64encode(small) + b"\n") == []
    assert rx.feed(b"\x06\x09" + base64.b64encode(big) + b"\n") == []  # waits for more...
    assert packets(rx.feed(encode_packet(echo("ok")))) == [echo("ok")]  # ...a new start wins


def test_junk_before_the_marker_makes_a_text_line() -> None:
    rx = roomy()
    line = b"junk" + encode_packet(echo("nonl"))
    events = rx.feed(line)
    assert packets(events) == [] and texts(events) == line


def test_text_lines_are_passed_on_and_tolerated_between_continuations() -> None:
    rx = roomy()
    lines = encode_lines(echo("x" * 200))
    events = rx.feed(b"hello console\n" + lines[0] + b"interleaved text\n" + b"".join(lines[1:]))
    assert packets(events) == [echo("x" * 200)]
    assert texts(events) == b"hello console\ninterleaved text\n"


def test_new_start_line_discards_an_unfinished_frame() -> None:
    rx = roomy()
    first = encode_lines(echo("a" * 300))
    assert rx.feed(first[0]) == []
    assert packets(rx.feed(encode_packet(echo("second")))) == [echo("second")]
    assert rx.feed(b"".join(first[1:])) == []  # the old frame's continuations: orphans


def test_continuation_without_start_is_dropped() -> None:
    rx = roomy()
    lines = encode_lines(echo("c" * 200))
    assert rx.feed(b"".join(lines[1:])) == []
    assert packets(rx.feed(encode_packet(echo("ok")))) == [echo("ok")]


@pytest.mark.parametrize("limit", [128, 512])
def test_lines_longer_than_the_rx_buffer_are_dropped_whole(limit: int) -> None:
    frame = echo("L" * 400)
    raw = struct.pack(">H", len(frame) + 2) + frame + struct.pack(">H", crc16(frame))
    b64 = base64.b64encode(raw)
    rx = ConsoleReceiver(1024, rx_buf_size=limit, rx_buf_count=8)
    # One line of exactly `limit` bytes (marker and newline included) fits...
    head = b"\x06\x09" + b64[:limit - 3] + b"\n"
    rest = [b"\x04\x14" + b64[i:i + 100] + b"\n" for i in range(limit - 3, len(b64), 100)]
    if (limit - 3) % 4 == 0:
        assert packets(rx.feed(head + b"".join(rest))) == [frame]
    # ...one byte more and the line is gone, so is the frame; the next one works.
    long_head = b"\x06\x09" + b64[:limit - 2] + b"\n"
    events = rx.feed(long_head)
    assert events == [Dropped("too long")]
    assert packets(rx.feed(encode_packet(echo("ok")))) == [echo("ok")]


def test_crlf_is_accepted() -> None:
    rx = roomy()
    lines = encode_lines(echo("crlf" * 40))
    assert packets(rx.feed(b"".join(line[:-1] + b"\r\n" for line in lines))) == \
        [echo("crlf" * 40)]


def test_empty_start_line_is_harmless() -> None:
    rx = roomy()
    assert rx.feed(b"\x06\x09\n") == []
    assert packets(rx.feed(encode_packet(echo("empty")))) == [echo("empty")]


def test_start_line_without_newline_swallows_the_next_frame() -> None:
    rx = roomy()
    assert rx.feed(encode_packet(echo("nonl"))[:-1]) == []
    assert packets(rx.feed(encode_packet(echo("swallowed")))) == []
    assert packets(rx.feed(encode_packet(echo("after")))) == [echo("after")]


def test_two_frames_in_one_write_are_both_taken() -> None:
    rx = roomy()
    assert packets(rx.feed(encode_packet(echo("A")) + encode_packet(echo("B")))) == \
        [echo("A"), echo("B")]


def test_burst_beyond_the_rx_pool_is_lost_but_paced_lines_are_not() -> None:
    frame = echo("B" * 250)  # 3 lines
    lines = encode_lines(frame)
    assert len(lines) == 3
    burst = ConsoleReceiver(384, rx_buf_size=128, rx_buf_count=2)
    events = burst.feed(b"".join(lines))
    assert events == [Dropped("no buffer")]
    two = encode_lines(echo("t" * 120))
    assert len(two) == 2 and packets(burst.feed(b"".join(two))) == [echo("t" * 120)]
    paced = ConsoleReceiver(384, rx_buf_size=128, rx_buf_count=2)
    events = []
    for line in lines:
        events += paced.feed(line)
    assert packets(events) == [frame]
    # A line cut across bursts holds one buffer meanwhile.
    cut = ConsoleReceiver(384, rx_buf_size=128, rx_buf_count=2)
    assert cut.feed(lines[0][:50]) == []
    assert cut.feed(lines[0][50:] + lines[1]) == []
    assert packets(cut.feed(lines[2])) == [frame]


def test_split_lines() -> None:
    assert split_lines(b"a\nbc\n\nd") == [b"a\n", b"bc\n", b"\n", b"d"]
    assert split_lines(b"") == []


# --- the shell transport --------------------------------------------------------------------

def test_shell_passes_keys_at_once_and_takes_frames_anywhere() -> None:
    rx = ConsoleReceiver(384, rx_buf_size=127, rx_buf_count=2, shell=True)
    assert rx.feed(b"ker") == [Text(b"ker")]
    assert rx.feed(b"nel version\r") == [Text(b"nel version\r")]
    frame = echo("hi")
    events = rx.feed(b"abc" + encode_packet(frame) + b"def")
    assert events == [Text(b"abcdef"), Packet(frame)]
    # A marker split across reads is still a marker.
    line = encode_packet(frame)
    assert rx.feed(b"x" + line[:1]) == [Text(b"x")]
    assert rx.feed(line[1:]) == [Packet(frame)]


def test_shell_pool_of_two_loses_the_rest_of_a_burst() -> None:
    rx = ConsoleReceiver(384, rx_buf_size=127, rx_buf_count=2, shell=True)
    lines = encode_lines(echo("y" * 360))
    events = rx.feed(b"".join(lines))
    assert [e for e in events if isinstance(e, Dropped)] == [Dropped("no buffer")] * \
        (len(lines) - 2)
    assert packets(events) == []


# --- the raw UART ---------------------------------------------------------------------------

def test_raw_packets_by_header_length() -> None:
    rx = RawReceiver(384)
    frame = echo("raw")
    assert packets(rx.feed(frame[:5])) == []
    assert packets(rx.feed(frame[5:])) == [frame]
    assert packets(rx.feed(echo("x" * 360))) == [echo("x" * 360)]


def test_raw_quirks() -> None:
    rx = RawReceiver(384)
    two = echo("one") + echo("two")
    assert rx.feed(two) == []  # one fragment longer than its header says: dropped whole
    assert packets(rx.feed(two, bytewise=True)) == [echo("one"), echo("two")]  # a paced UART
    assert rx.feed(echo("y" * 400)) == []  # bigger than the buffer
    assert rx.feed(b"\x0f" + echo("op7")[1:]) == []  # op 7: not an SMP header
    assert packets(rx.feed(echo("ok"))) == [echo("ok")]


def test_raw_input_timeout_flushes_a_partial_packet() -> None:
    rx = RawReceiver(384, input_timeout_s=3.0)
    frame = echo("split")
    assert rx.feed(frame[:-3], now=10.0) == []
    assert packets(rx.feed(frame[-3:], now=12.9)) == [frame]  # in time: completed
    assert rx.feed(frame[:-3], now=20.0) == []
    assert packets(rx.feed(echo("ok"), now=23.0)) == [echo("ok")]  # late: flushed first


# --- properties -----------------------------------------------------------------------------

TEXT_LINE = st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"").replace(b"\x06", b"")
                                       .replace(b"\x04", b"") + b"\n")


@settings(max_examples=300, deadline=None)
@given(items=st.lists(st.one_of(st.binary(min_size=1, max_size=700).map(lambda p: ("p", p)),
                                TEXT_LINE.map(lambda t: ("t", t))), min_size=1, max_size=8),
       cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=12),
       shell=st.booleans())
def test_any_packets_at_any_split_come_back_whole(items: list[tuple[str, bytes]],
                                                  cuts: list[int], shell: bool) -> None:
    stream = b"".join(encode_packet(v) if kind == "p" else v for kind, v in items)
    rx = ConsoleReceiver(1024, rx_buf_size=128, rx_buf_count=64, shell=shell)
    events: list[Event] = []
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    for a, b in itertools.pairwise(points):
        events += rx.feed(stream[a:b])
    assert packets(events) == [v for kind, v in items if kind == "p"]
    assert texts(events) == b"".join(v for kind, v in items if kind == "t")
    assert not [e for e in events if isinstance(e, Dropped)]


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300), max_size=20),
       buf_size=st.integers(min_value=16, max_value=2048),
       rx_buf_size=st.integers(min_value=8, max_value=512),
       rx_buf_count=st.integers(min_value=1, max_value=4), shell=st.booleans())
def test_garbage_never_raises(chunks: list[bytes], buf_size: int, rx_buf_size: int,
                              rx_buf_count: int, shell: bool) -> None:
    rx = ConsoleReceiver(buf_size, rx_buf_size=rx_buf_size, rx_buf_count=rx_buf_count,
                         shell=shell)
    raw = RawReceiver(buf_size, input_timeout_s=1.0)
    for i, chunk in enumerate(chunks):
        for event in rx.feed(chunk):
            assert isinstance(event, Packet | Text | Dropped)
        raw.feed(chunk, now=float(i), bytewise=i % 2 == 0)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=200))
def test_garbage_base64_lines_never_raise(payload: bytes) -> None:
    """Lines that look like SMP but carry anything."""
    rx = roomy()
    for marker in (b"\x06\x09", b"\x04\x14"):
        rx.feed(marker + base64.b64encode(payload)[:-1] + payload.replace(b"\n", b"") + b"\n")
        rx.feed(marker + binascii.b2a_base64(payload))
