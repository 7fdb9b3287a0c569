"""MCUboot's serial recovery on the UART (``smpsim.mcumgr.boot_serial.framing``): its console
and raw receivers, its encoder, and hostile input (hypothesis) that must never crash the
server or leave it unresponsive."""

from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpsim.config import load_profile
from smpsim.device.mcu import Device
from smpsim.mcumgr.boot_serial import BootSerialServer
from smpsim.mcumgr.boot_serial.framing import (
    ConsoleReceiver,
    RawReceiver,
    crc16,
    encode_console,
    zephyr_base64_decode,
)

PARAMS = bytes.fromhex("0800000100000206a0")
"""os params, READ, v2, seq 2."""
PARAMS_ANSWER = bytes.fromhex("0900001900000206bf686275665f73697a65190400696275665f636f756e7401ff")


def line_of(frame: bytes, *, marker: bytes = b"\x06\x09", end: bytes = b"\n") -> bytes:
    raw = (len(frame) + 2).to_bytes(2, "big") + frame + crc16(frame).to_bytes(2, "big")
    return marker + base64.b64encode(raw) + end


def split_lines(frame: bytes, sizes: list[int]) -> list[bytes]:
    """``frame`` as lines carrying ``sizes`` raw bytes each (then the rest)."""
    raw = (len(frame) + 2).to_bytes(2, "big") + frame + crc16(frame).to_bytes(2, "big")
    lines, pos = [], 0
    for i, size in enumerate([*sizes, len(raw)]):
        if pos >= len(raw):
            break
        marker = b"\x06\x09" if i == 0 else b"\x04\x14"
        lines.append(marker + base64.b64encode(raw[pos:pos + size]) + b"\n")
        pos += size
    return lines


def test_encoder_writes_one_line_per_124_characters() -> None:
    assert encode_console(PARAMS_ANSWER) == line_of(PARAMS_ANSWER)
    big = bytes(200)
    lines = encode_console(big).split(b"\n")[:-1]
    assert [len(x) for x in lines] == [126, 126, 26] and lines[1][:2] == b"\x04\x14"
    assert b"".join(base64.b64decode(x[2:]) for x in lines)[2:-2] == big


def test_console_lines() -> None:
    rx = ConsoleReceiver(1024, 128)
    assert rx.feed(line_of(PARAMS)) == [PARAMS]
    assert rx.feed(line_of(PARAMS, end=b"\r\n")) == []  # the \r reaches base64
    assert rx.feed(b"junk" + line_of(PARAMS)) == []
    assert rx.feed(line_of(PARAMS)[:-1] + b"\r") == []  # no \n: merges with the next line...
    assert rx.feed(line_of(PARAMS)) == []  # ... and both are lost
    assert rx.feed(line_of(PARAMS)) == [PARAMS]


def test_console_reassembly() -> None:
    rx = ConsoleReceiver(1024, 128)
    frame = PARAMS[:3] + b"\x5a" + PARAMS[4:] + bytes(0x5a - 1)
    lines = split_lines(frame, [10, 5, 30])  # padding inside the frame: each line on its own
    assert rx.feed(lines[0] + b"some text\n" + b"".join(lines[1:])) == [frame]
    assert rx.feed(b"".join(lines[1:])) == []  # continuation lines without a start line
    assert rx.feed(lines[0] + line_of(PARAMS)) == [PARAMS]  # a start line discards a frame
    assert rx.feed(line_of(PARAMS) + line_of(PARAMS)) == [PARAMS, PARAMS]


def test_console_limits() -> None:
    rx = ConsoleReceiver(1024, 128)
    big = PARAMS[:2] + (1013).to_bytes(2, "big") + PARAMS[4:8] + bytes(1013)  # 1021 bytes
    assert rx.feed(b"".join(split_lines(big, [93] * 20))) == [big]
    bigger = PARAMS[:2] + (1014).to_bytes(2, "big") + PARAMS[4:8] + bytes(1014)
    assert rx.feed(b"".join(split_lines(bigger, [93] * 20))) == []
    assert rx.feed(line_of(PARAMS)) == [PARAMS]
    long = PARAMS[:2] + (80).to_bytes(2, "big") + PARAMS[4:8] + bytes(80)
    assert len(line_of(long)) == 127 and rx.feed(line_of(long)) == [long]
    longer = PARAMS[:2] + (83).to_bytes(2, "big") + PARAMS[4:8] + bytes(83)
    assert len(line_of(longer)) == 131 and rx.feed(line_of(longer)) == []
    zero = line_of(b"")
    assert rx.feed(zero) == []


def test_zephyr_base64() -> None:
    assert zephyr_base64_decode(b"QUJD", 3) == b"ABC"
    assert zephyr_base64_decode(b"QUJD", 2) is None
    assert zephyr_base64_decode(b"QUI=", 2) == b"AB"
    assert zephyr_base64_decode(b"QUJ", 9) == b""  # no whole group
    assert zephyr_base64_decode(b"QU I=", 9) is None
    assert zephyr_base64_decode(b"QUI=  ", 9) == b"AB"
    assert zephyr_base64_decode(b"QUJD\r", 9) is None
    assert zephyr_base64_decode(b"QQ==QUJD", 9) is None


def test_raw_framing() -> None:
    rx = RawReceiver(1024, 128, 3.0)
    assert rx.feed(PARAMS + PARAMS, 0.0) == [PARAMS, PARAMS]
    op1 = bytes([PARAMS[0] | 1]) + PARAMS[1:]
    assert rx.feed(op1 + PARAMS, 1.0) == []  # a bad op drops everything buffered
    assert rx.feed(PARAMS[:-2], 2.0) == []
    assert rx.feed(PARAMS, 2.1) == [PARAMS[:-2] + PARAMS[:2]]  # completes the partial one
    assert rx.feed(b"", 10.0) == []  # its rest expired
    assert rx.feed(PARAMS, 10.1) == [PARAMS]
    fits = PARAMS[:2] + (1017).to_bytes(2, "big") + PARAMS[4:8] + b"\xff" * 1017
    assert rx.feed(fits, 20.0) == [fits]
    too_big = PARAMS[:2] + (1018).to_bytes(2, "big") + PARAMS[4:8] + b"\xff" * 1018
    assert rx.feed(too_big, 30.0) == []


# -- hostile input -----------------------------------------------------------------------------

def _recovery(framing: str = "console") -> tuple[BootSerialServer, ConsoleReceiver | RawReceiver]:
    profile = load_profile("mps2_an385_serial_recovery" if framing == "console"
                           else "mps2_an385_serial_recovery_raw")
    device = Device(profile)
    assert device.boot().recovery
    rx: ConsoleReceiver | RawReceiver = ConsoleReceiver(1024, 128) if framing == "console" \
        else RawReceiver(1024, 128, 3.0)
    return BootSerialServer(device), rx


def _feed(rx: ConsoleReceiver | RawReceiver, data: bytes, now: float) -> list[bytes]:
    return rx.feed(data, now) if isinstance(rx, RawReceiver) else rx.feed(data)


header = st.builds(lambda b0, flags, length, group, seq, cmd: bytes([b0, flags])
                   + length.to_bytes(2, "big") + group.to_bytes(2, "big") + bytes([seq, cmd]),
                   st.sampled_from([0x00, 0x02, 0x08, 0x0A, 0x10, 0xE8, 0x09, 0xFF]),
                   st.integers(0, 255), st.integers(0, 1100), st.sampled_from([0, 1, 63, 64, 9]),
                   st.integers(0, 255), st.integers(0, 8))
cbor_value = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.binary(max_size=40)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["off", "len", "data", "image", "d", "confirm", "hash", "x"]) | inner
        .filter(lambda v: isinstance(v, str | int)), inner, max_size=5), max_leaves=12)


def _payload(value: object) -> bytes:
    import cbor2
    try:
        return cbor2.dumps(value)
    except (TypeError, ValueError):
        return b"\xa0"


packet = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda h, p: h + p, header, st.binary(max_size=64)),
    st.builds(lambda h, v: h + _payload(v), header, cbor_value),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(packet, max_size=6))
def test_server_survives_hostile_packets(packets: list[bytes]) -> None:
    server, _ = _recovery()
    for data in packets:
        reply = server.handle(data)
        assert len(reply.frames) <= 2
    assert server.handle(PARAMS).frames == [PARAMS_ANSWER]


line_bytes = st.one_of(
    st.binary(max_size=200),
    st.builds(line_of, packet),
    st.builds(lambda p, cut: line_of(p)[:cut], packet, st.integers(0, 40)),
    st.builds(lambda p: b"\x04\x14" + base64.b64encode(p) + b"\n", st.binary(max_size=120)),
    st.sampled_from([b"\n", b"\r\n", b"\x06\x09\n", b"\x06\x09====\n", b"\x04\x14QQ==\n"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line_bytes, max_size=8), st.sampled_from(["console", "raw"]))
def test_line_survives_hostile_bytes(chunks: list[bytes], framing: str) -> None:
    """Whatever came before, a fresh start (console) or 3 s of silence (raw) and a request
    get their answer."""
    server, rx = _recovery(framing)
    now = 0.0
    for chunk in chunks:
        for data in _feed(rx, chunk, now):
            server.handle(data)
        now += 0.001
    probe = line_of(PARAMS) if framing == "console" else PARAMS
    got = _feed(rx, b"\n" + probe if framing == "console" else probe, now + 3.5)
    assert [server.handle(p).frames for p in got][-1:] == [[PARAMS_ANSWER]]
