"""Group 0, OS management: every command, byte for byte where a real answer was recorded.

Cases named like ``os.echo.d_int.v1`` are recorded answers of real Zephyr 4.4.0 builds in
tests/golden/ (native_sim_udp unless stated). datetime and bootloader info are compiled
into no recorded build; their tests follow Zephyr 4.4.0's
``subsys/mgmt/mcumgr/grp/os_mgmt/src/os_mgmt.c``.
"""

from __future__ import annotations

from typing import Any

import pytest

from smpsim.config import Profile, Thread
from smpsim.device.rtc import DateTime
from smpsim.mcumgr.codec import decode, encode
from smpsim.mcumgr.dispatcher import ResetEffect
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
    server,
    with_board,
)
from .smp_frames import with_os as os_profile

H = bytes.fromhex
ECHO, TASKSTAT, DATETIME, RESET, PARAMS, INFO, BOOTLOADER_INFO = 0, 2, 4, 5, 6, 7, 8


def _body(srv: Server, op: int, cmd: int, payload: Any = b"", version: int = V2) -> bytes:
    frames = srv.handle(frame(op, 0, cmd, payload, version=version)).frames
    assert len(frames) == 1
    assert Header.parse(frames[0]).length == len(frames[0]) - 8
    return frames[0][8:]


# ----------------------------------------------------------------------------- echo


@pytest.mark.parametrize(("unit", "expected"), [
    ("0a00000900000300a161646568656c6c6f", "0b00000a00000300bf61726568656c6c6fff"),  # write.v2
    ("0000000900000400a161646568656c6c6f", "0100000a00000400bf61726568656c6c6fff"),  # read.v1
    ("0800000900000500a161646568656c6c6f", "0900000a00000500bf61726568656c6c6fff"),  # read.v2
    ("0200000900000200a161646568656c6c6f", "0300000a00000200bf61726568656c6c6fff"),  # qemu v1
    ("0a00000400000600a1616460", "0b00000500000600bf617260ff"),  # empty_string
    ("0a00000100000800a0", "0b00000500000800bf617260ff"),  # missing_d.v2
    ("0a00000e00000f00a161646a68c3a96c6c6f20e29883",
     "0b00000f00000f00bf61726a68c3a96c6c6f20e29883ff"),  # unicode
])
def test_echo_recorded_answers(unit: str, expected: str) -> None:
    assert exchange(server(), unit) == [expected]


@pytest.mark.parametrize("payload_hex", [
    "a1616405",          # d_int
    "a161644568656c6c6f",  # d_bytes
    "a16164f5",          # d a bool
    "a161647f6161ff",    # d a chunked text
    "a2616461316164613261",  # d twice
    "",                  # no payload
])
def test_echo_refuses_a_non_text_d_with_rc_3(payload_hex: str) -> None:
    assert _body(server(), WRITE, ECHO, H(payload_hex)) == H("bf62726303ff")


@pytest.mark.parametrize(("payload_hex", "answer_hex"), [
    ("a1 6164 65 68656c6c6f 05 ff", "bf 6172 65 68656c6c6f ff"),  # what follows the map is ignored
    ("a1 6164 65 68656c6c", "bf 627263 03 ff"),  # the text runs past the unit: rc 3
    ("a1 6164 77" + "61" * 23, "bf 6172 77" + "61" * 23 + " ff"),  # the longest one-byte head
    ("a1 6164 78 18" + "61" * 24, "bf 6172 78 18" + "61" * 24 + " ff"),  # a two-byte head
])
def test_echo_reads_a_single_d_as_the_general_decoder_does(payload_hex: str,
                                                           answer_hex: str) -> None:
    # The handler reads {"d": short text} inline; these are its edges.
    assert _body(server(), WRITE, ECHO, H(payload_hex)) == H(answer_hex)


def test_echo_returns_invalid_utf8_byte_for_byte() -> None:
    assert _body(server(), WRITE, ECHO, H("a1 6164 63 ff00fe")) == H("bf 6172 63 ff00fe ff")


def test_echo_of_the_largest_udp_frame() -> None:
    # os.echo.frame1500: 1486 characters, 1500-byte request, 1501-byte answer
    text = "x" * 1486
    frames = server().handle(frame(WRITE, 0, 0, {"d": text}, seq=0x12)).frames
    assert frames == [H("0b0005d500001200 bf6172 7905ce") + text.encode() + b"\xff"]


# ----------------------------------------------------------------------------- taskstat

TASKSTAT_UDP = (  # os.taskstat.v2, native_sim_udp: keyed by name, with stack info
    "bf657461736b73bf"
    "6a6d63756d677220736d70bf647072696f03637469640065737461746518806673746b73697a190200"
    "6673746b75736506ff"
    "68736d705f75647034bf647072696f006374696401657374617465026673746b73697a190100"
    "6673746b75736506ff"
    "70636f6e6e5f6d67725f6d6f6e69746f72bf647072696f206374696402657374617465026673746b7369"
    "7a18806673746b75736506ff"
    "6772785f715b305dbf647072696f206374696403657374617465026673746b73697a190177"
    "6673746b75736506ff"
    "686e65745f6d676d74bf647072696f206374696404657374617465026673746b73697a18c0"
    "6673746b75736506ff"
    "68737973776f726b71bf647072696f206374696405657374617465026673746b73697a190240"
    "6673746b75736506ff"
    "6b7368656c6c5f64756d6d79bf647072696f0e6374696406657374617465026673746b73697a190200"
    "6673746b75736506ff"
    "6469646c65bf647072696f0f6374696407657374617465006673746b73697a18406673746b75736506ff"
    "646d61696ebf647072696f006374696408657374617465046673746b73697a1902206673746b75736506ff"
    "ffff"
)

TASKSTAT_UDP6 = (  # os.taskstat.v2, native_sim_udp6: keyed by priority, duplicates kept
    "bf657461736b73bf"
    "6133bf647072696f0363746964006573746174651880ff"
    "6130bf647072696f00637469640165737461746502ff"
    "622d31bf647072696f20637469640265737461746502ff"
    "622d31bf647072696f20637469640365737461746502ff"
    "622d31bf647072696f20637469640465737461746502ff"
    "622d31bf647072696f20637469640565737461746502ff"
    "623135bf647072696f0f637469640665737461746500ff"
    "6130bf647072696f00637469640765737461746504ff"
    "ffff"
)


@pytest.mark.parametrize("version", [V1, V2])
def test_taskstat_by_name_with_stack_info(version: int) -> None:
    assert _body(server(), READ, TASKSTAT, H("a0"), version) == H(TASKSTAT_UDP)


def test_taskstat_by_priority_keeps_duplicate_keys_in_order() -> None:
    body = _body(server("native_sim_udp6"), READ, TASKSTAT, H("a0"))
    assert body == H(TASKSTAT_UDP6)
    tasks = decode(body)[0][1]
    assert [k for k, _ in tasks] == ["3", "0", "-1", "-1", "-1", "-1", "15", "0"]


def test_taskstat_by_index() -> None:
    srv = server(os_profile(profile(), taskstat_key="index", taskstat_stack_info=False))
    tasks = decode(_body(srv, READ, TASKSTAT))[0][1]
    assert [k for k, _ in tasks] == [str(i) for i in range(9)]
    assert tasks[8][1] == [("prio", 0), ("tid", 8), ("state", 4)]


def test_taskstat_without_stack_info_has_only_prio_tid_state() -> None:
    tasks = call(server(os_profile(profile(), taskstat_stack_info=False)), READ, 0,
                 TASKSTAT)["tasks"]
    assert tasks["idle"] == {"prio": 15, "tid": 7, "state": 0}


def test_taskstat_reports_stack_sizes_in_words() -> None:
    threads = (Thread("big", -16, 2, stack_size=4096, stack_used=1000), Thread("", 7, 0))
    srv = server(profile(threads=threads))
    assert call(srv, READ, 0, TASKSTAT)["tasks"] == {
        "big": {"prio": -16, "tid": 0, "state": 2, "stksiz": 1024, "stkuse": 250},
        "": {"prio": 7, "tid": 1, "state": 0, "stksiz": 0, "stkuse": 0},
    }


def test_taskstat_ignores_the_payload_and_is_read_only() -> None:
    srv = server()
    assert _body(srv, READ, TASKSTAT, H("fffefd")) == H(TASKSTAT_UDP)
    assert _body(srv, READ, TASKSTAT) == H(TASKSTAT_UDP)
    assert _body(srv, WRITE, TASKSTAT, H("a0")) == H("bf62726308ff")


def test_taskstat_too_big_for_the_buffer() -> None:
    # os.taskstat.v2 on native_sim_serial_buf96
    assert _body(server("native_sim_serial_buf96"), READ, TASKSTAT, H("a0")) == H("bf62726307ff")


# ----------------------------------------------------------------------------- datetime


def _dt_server(**os_changes: Any) -> Server:
    # A boot time of 1/4 s keeps every emulated instant an exact binary fraction.
    return server(with_board(os_profile(profile("nrf52840dk"), **os_changes), boot_time_ms=250.0))


def _set(srv: Server, text: Any) -> bytes:
    return _body(srv, WRITE, DATETIME, {"datetime": text})


def _get(srv: Server) -> Any:
    return call(srv, READ, 0, DATETIME)


def test_datetime_get_before_set_is_rtc_not_set() -> None:
    srv = _dt_server()
    assert _body(srv, READ, DATETIME, H("a0")) == err_body(0, 4)
    assert _body(srv, READ, DATETIME, H("a0"), V1) == H("bf62726305ff")  # ENOENT


def test_datetime_set_then_get() -> None:
    srv = _dt_server()
    assert _set(srv, "2025-01-02T03:04:05") == H("bfff")
    assert _get(srv) == {"datetime": "2025-01-02T03:04:05"}


def test_datetime_get_ignores_its_payload() -> None:
    srv = _dt_server()
    _set(srv, "2025-01-02T03:04:05")
    assert _body(srv, READ, DATETIME) == encode({"datetime": "2025-01-02T03:04:05"})


def test_the_rtc_runs_on_the_device_clock() -> None:
    srv = _dt_server()
    _set(srv, "2024-02-28T23:59:58")
    srv.device.clock.advance(1.5)
    assert _get(srv) == {"datetime": "2024-02-28T23:59:59"}
    srv.device.clock.advance(0.75)
    assert _get(srv) == {"datetime": "2024-02-29T00:00:00"}
    srv.device.clock.advance(86400 + 3661)
    assert _get(srv) == {"datetime": "2024-03-01T01:01:01"}


def test_the_rtc_survives_a_warm_reset() -> None:
    srv = _dt_server()
    _set(srv, "2025-06-30T23:59:59")
    srv.device.reset()  # 250 ms of boot
    srv.device.clock.advance(0.75)
    assert _get(srv) == {"datetime": "2025-07-01T00:00:00"}


@pytest.mark.parametrize(("text", "stored"), [
    ("2024-01-02T03:04:05", DateTime(2024, 1, 2, 3, 4, 5)),           # 19 characters
    ("2024-01-02T03:04:05+01:00", DateTime(2024, 1, 2, 3, 4, 5)),     # RFC 3339, 25
    ("2024-01-02T03:04:05Z", DateTime(2024, 1, 2, 3, 4, 5)),
    ("2024/01/02 03-04-05", DateTime(2024, 1, 2, 3, 4, 5)),           # any separators
    ("2024x1x2x3x4x5xxxxxx", DateTime(2024, 1, 2, 3, 4, 5)),          # short fields
    ("1900-01-01T00:00:00", DateTime(1900, 1, 1, 0, 0, 0)),
    ("11899-12-31T23:59:59", DateTime(11899, 12, 31, 23, 59, 59)),
    ("2024-01-02T03:04:05.678", DateTime(2024, 1, 2, 3, 4, 5)),       # ms ignored
    ("2024-01-02T03:04:05.9999", DateTime(2024, 1, 2, 3, 4, 5)),      # not even checked
    (" 2024- 1- 2T 3: 4: 5", DateTime(2024, 1, 2, 3, 4, 5)),          # strtol skips spaces
    ("+2024-01-02T03:04:05", DateTime(2024, 1, 2, 3, 4, 5)),          # and takes a sign
])
def test_datetime_set_accepts(text: str, stored: DateTime) -> None:
    srv = _dt_server()
    assert _set(srv, text) == H("bfff")
    assert srv.device.rtc.get() == stored


@pytest.mark.parametrize(("text", "why"), [
    ("2024-01-02T03:04:0", "18 characters"),
    ("2024-01-02T03:04:05+01:00 ", "26 characters"),
    ("2024-01-02T03:04:05.000000+01:00", "the Android library's 32-character format"),
    ("", "empty"),
    ("garbage", "too short"),
    ("1899-12-31T23:59:59", "year below 1900"),
    ("11900-01-01T00:00:00", "year above 11899"),
    ("2024-00-02T03:04:05", "month 0"),
    ("2024-13-02T03:04:05", "month 13"),
    ("2024-01-00T03:04:05", "day 0"),
    ("2024-01-32T03:04:05", "day 32"),
    ("2024-01-02T24:04:05", "hour 24"),
    ("2024-01-02T03:60:05", "minute 60"),
    ("2024-01-02T03:04:60", "second 60"),
    ("2024--01-02T03:04:05", "two separators: the month reads as -1"),
    ("2024-01-02TAB:04:05xx", "a field without digits"),
    ("20240102T030405xxxxxxx", "fields not separated"),
    ("  2024-01-02T03:04:", "the string ends after five fields"),
])
def test_datetime_set_refuses_with_rc_3(text: str, why: str) -> None:
    srv = _dt_server()
    assert _set(srv, text) == H("bf62726303ff")
    assert srv.device.rtc.get() is None


@pytest.mark.parametrize("payload", [{"datetime": 20240102}, {"datetime": b"2024-01-02T03:04:05"},
                                     {}, {"date": "2024-01-02T03:04:05"}])
def test_datetime_set_needs_a_text_datetime(payload: dict[str, Any]) -> None:
    assert _body(_dt_server(), WRITE, DATETIME, payload) == H("bf62726303ff")


def test_datetime_set_with_no_payload_is_rc_3() -> None:
    assert _body(_dt_server(), WRITE, DATETIME) == H("bf62726303ff")


def test_datetime_length_counts_bytes_not_characters() -> None:
    # 17 characters but 20 bytes (é is two): long enough
    assert _set(_dt_server(), "2024-1-2T3:4:5ééé") == H("bfff")
    # 24 characters but 29 bytes: too long
    assert _set(_dt_server(), "2024-01-02T03:04:05ééééé") == H("bf62726303ff")


def test_datetime_days_past_the_month_end_roll_over() -> None:
    srv = _dt_server()
    assert _set(srv, "2023-02-31T00:00:00") == H("bfff")
    assert _get(srv) == {"datetime": "2023-03-03T00:00:00"}


def test_datetime_after_year_9999() -> None:
    srv = _dt_server()
    _set(srv, "9999-12-31T23:59:59")
    srv.device.clock.advance(1)
    assert _get(srv) == {"datetime": "10000-01-01T00:00:00"}


@pytest.mark.parametrize(("text", "ms", "shown"), [
    ("2024-01-02T03:04:05.123", 123, "2024-01-02T03:04:05.123"),
    ("2024-01-02T03:04:05.5", 5, "2024-01-02T03:04:05.5"),      # strtol: ".5" is 5 ms
    ("2024-01-02T03:04:05.007", 7, "2024-01-02T03:04:05.7"),    # printed without padding
    ("2024-01-02T03:04:05.999Z", 999, "2024-01-02T03:04:05.999"),
    ("2024-01-02T03:04:05", 0, "2024-01-02T03:04:05.0"),
    ("2024-01-02T03:04:05.", 0, "2024-01-02T03:04:05.0"),       # nothing after the dot
    ("2024-01-02T03:04:05.x", 0, "2024-01-02T03:04:05.0"),      # no digits: 0
    ("2024-01-02T03:04:05Z123", 0, "2024-01-02T03:04:05.0"),    # not a dot: ignored
])
def test_datetime_milliseconds(text: str, ms: int, shown: str) -> None:
    srv = _dt_server(datetime_ms=True)
    assert _set(srv, text) == H("bfff")
    now = srv.device.rtc.get()
    assert now is not None
    assert now.ms == ms
    assert _get(srv) == {"datetime": shown}


@pytest.mark.parametrize("text", ["2024-01-02T03:04:05.1000", "2024-01-02T03:04:05.-1"])
def test_datetime_milliseconds_out_of_range(text: str) -> None:
    assert _set(_dt_server(datetime_ms=True), text) == H("bf62726303ff")


def test_datetime_milliseconds_advance_with_the_clock() -> None:
    srv = _dt_server(datetime_ms=True)
    _set(srv, "2024-01-02T03:04:05.875")
    srv.device.clock.advance(0.25)
    assert _get(srv) == {"datetime": "2024-01-02T03:04:06.125"}


def test_datetime_is_absent_from_builds_without_it() -> None:
    # os.datetime.set.valid on native_sim_udp
    unit = "0a00001e00001d04a1686461746574696d6573323032352d30312d30325430333a30343a3035"
    assert exchange(server(), unit) == ["0b00000600001d04bf62726308ff"]


# ----------------------------------------------------------------------------- reset


@pytest.mark.parametrize("payload_hex", [
    "a0",                       # os.reset.plain.v2
    "",                         # header only (mcumgr-web)
    "a165666f726365f5",         # force: true
    "a165666f726365 01",        # force: 1 (not a bool: ignored)
    "a169626f6f745f6d6f646501",  # boot_mode: 1
    "fffefdfc",                 # not CBOR
    "a16178 01",                # unknown key
])
@pytest.mark.parametrize("name", ["native_sim_udp", "nrf52840dk"])
def test_reset_answers_empty_map_and_asks_for_a_reboot(payload_hex: str, name: str) -> None:
    srv = server(name)
    reply = srv.handle(frame(WRITE, 0, RESET, H(payload_hex.replace(" ", "")), seq=2))
    assert [f.hex() for f in reply.frames] == ["0b00000200000205bfff"]
    assert reply.effects == [ResetEffect(0.25)]
    assert srv.device.running  # the transport reboots it, after the delay
    assert srv.device.boot_count == 1


def test_reset_v1() -> None:
    reply = server().handle(frame(WRITE, 0, RESET, H("a0"), version=V1))
    assert reply.frames == [H("0300000200000005bfff")]
    assert reply.effects == [ResetEffect(0.25)]


def test_reset_delay_comes_from_the_profile() -> None:
    reply = server(os_profile(profile(), reset_ms=1000)).handle(frame(WRITE, 0, RESET, {}))
    assert reply.effects == [ResetEffect(1.0)]


def test_reset_is_write_only() -> None:
    reply = server().handle(H("0800000100003c05a0"))  # os.reset.read_op
    assert reply.frames == [H("0900000600003c05bf62726308ff")]
    assert reply.effects == []


def test_reset_boot_mode_is_retained_when_the_build_decodes_it() -> None:
    srv = server("nrf52840dk")
    srv.handle(frame(WRITE, 0, RESET, {"boot_mode": 1}))
    assert srv.device.boot_mode == 1


@pytest.mark.parametrize("payload", [{"boot_mode": -1}, {"boot_mode": "1"},
                                     {"boot_mode": True}, {"force": 1}, b"\xa1"])
def test_reset_payload_errors_are_ignored(payload: Any) -> None:
    srv = server("nrf52840dk")
    reply = srv.handle(frame(WRITE, 0, RESET, payload))
    assert reply.frames == [H("0b00000200000005bfff")]
    assert reply.effects == [ResetEffect(0.25)]
    assert srv.device.boot_mode == 0


def test_reset_boot_mode_ignored_without_the_kconfig() -> None:
    srv = server("native_sim_udp")
    srv.handle(frame(WRITE, 0, RESET, {"boot_mode": 1}))
    assert srv.device.boot_mode == 0


def test_every_reset_request_asks_for_its_own_reboot() -> None:
    reply = server().handle(frame(WRITE, 0, RESET, {}, seq=1) + frame(WRITE, 0, RESET, {}, seq=2))
    assert len(reply.frames) == 2
    assert reply.effects == [ResetEffect(0.25), ResetEffect(0.25)]


# ----------------------------------------------------------------------------- params


@pytest.mark.parametrize(("name", "unit", "expected"), [
    ("native_sim_udp", "0000000100001f06a0",
     "0100001900001f06bf686275665f73697a65190800696275665f636f756e7402ff"),
    ("native_sim_udp", "0800000100002006a0",
     "0900001900002006bf686275665f73697a65190800696275665f636f756e7402ff"),
    ("qemu_cortex_m0_img", "0800000100000506a0",
     "0900001900000506bf686275665f73697a65190180696275665f636f756e7404ff"),
    ("native_sim_serial_buf96", "0800000100001e06a0",
     "0900001800001e06bf686275665f73697a651860696275665f636f756e7404ff"),
    ("native_sim_serial_noparams", "0800000100000306a0", "0900000600000306bf62726308ff"),
    ("native_sim_udp", "0a00000100002106a0", "0b00000600002106bf62726308ff"),  # write_op
])
def test_params(name: str, unit: str, expected: str) -> None:
    assert exchange(server(name), unit) == [expected]


def test_params_follow_the_profile() -> None:
    srv = server(profile(buf_size=2475, buf_count=4))
    assert call(srv, READ, 0, PARAMS) == {"buf_size": 2475, "buf_count": 4}


# ----------------------------------------------------------------------------- info

ALL_UDP = ("Zephyr unknown 684c9e8f32e4 4.4.0 Wed Jun  3 22:19:37 2026 posix x86 "
           "native_sim/native Zephyr")


def _info(srv: Server, fmt: Any = None, version: int = V2) -> bytes:
    return _body(srv, READ, INFO, {} if fmt is None else {"format": fmt}, version)


@pytest.mark.parametrize(("fmt", "output"), [
    ("s", "Zephyr"), ("n", "unknown"), ("r", "684c9e8f32e4"), ("v", "4.4.0"),
    ("b", "Wed Jun  3 22:19:37 2026"), ("m", "posix"), ("p", "x86"),
    ("i", "native_sim/native"), ("o", "Zephyr"),
    ("vs", "Zephyr 4.4.0"), ("oi", "native_sim/native Zephyr"), ("ss", "Zephyr"),
    ("pm", "posix x86"), ("snrvbmpio", ALL_UDP), ("oipmbvrns", ALL_UDP),
    ("a", ALL_UDP), ("aa", ALL_UDP), ("sa", ALL_UDP), ("as", ALL_UDP), ("", "Zephyr"),
    (None, "Zephyr"),
])
def test_info_fields_in_fixed_order(fmt: str | None, output: str) -> None:
    assert _info(server(), fmt) == encode({"output": output})


def test_info_recorded_answers() -> None:
    srv = server()
    assert exchange(srv, "0000000100002207a0") == [  # os.info.no_format.v1
        "0100001000002207bf666f7574707574665a6570687972ff"]
    assert exchange(srv, "0800000b00003507a166666f726d6174627673") == [  # os.info.fmt_vs
        "0900001600003507bf666f75747075746c5a657068797220342e342e30ff"]


def test_info_on_another_board() -> None:
    assert _info(server("nrf52840dk"), "a") == encode({"output": (
        "Zephyr Zephyr v4.4.0 4.4.0 Sat Nov 21 12:00:00 2026 arm cortex-m4 nrf52840dk/nrf52840 "
        "Zephyr")})


@pytest.mark.parametrize("fmt", ["h", "x", "snrvbhpio", "S", "a ", " ", "aé", "\x00"])
def test_info_unknown_letter_is_invalid_format(fmt: str) -> None:
    srv = server()
    assert _info(srv, fmt) == err_body(0, 2)
    assert _info(srv, fmt, V1) == H("bf62726303ff")  # EINVAL


def test_info_b_needs_a_build_date() -> None:
    srv = server(profile(build_date=None))
    assert _info(srv, "b") == err_body(0, 2)
    assert _info(srv, "sb") == err_body(0, 2)
    assert _info(srv, "a") == encode({"output": (
        "Zephyr unknown 684c9e8f32e4 4.4.0 posix x86 native_sim/native Zephyr")})


@pytest.mark.parametrize("payload", [{"format": 1}, {"format": b"s"}, {"format": ["s"]}])
def test_info_non_text_format_is_rc_3(payload: dict[str, Any]) -> None:
    assert _body(server(), READ, INFO, payload) == H("bf62726303ff")


def test_info_with_no_payload_is_rc_3() -> None:
    assert _body(server(), READ, INFO) == H("bf62726303ff")


def _named(name: str) -> Server:
    return server(profile(node_name=name))


def test_info_output_up_to_255_bytes_fits() -> None:
    assert _info(_named("n" * 255), "n") == encode({"output": "n" * 255})
    assert _info(_named("n" * 248), "sn") == encode({"output": "Zephyr " + "n" * 248})


def test_info_output_of_256_bytes_or_more_is_rc_7() -> None:
    assert _info(_named("n" * 256), "n") == H("bf62726307ff")
    assert _info(_named("n" * 249), "sn") == H("bf62726307ff")
    assert _info(_named("é" * 128), "n") == H("bf62726307ff")  # 256 bytes, 128 characters


def test_info_max_response_comes_from_the_profile() -> None:
    srv = server(os_profile(profile(), info_max_response=7))
    assert _info(srv, "s") == encode({"output": "Zephyr"})
    assert _info(srv, "v") == encode({"output": "4.4.0"})
    assert _info(srv, "sv") == H("bf62726307ff")


# ----------------------------------------------------------------------------- bootloader info


def _bl(prof: Profile | str = "nrf52840dk") -> Server:
    return server(prof)


@pytest.mark.parametrize("payload", [{}, {"x": 1}, {"mode": "query"}])
def test_bootloader_info_without_a_query(payload: dict[str, Any]) -> None:
    assert _body(_bl(), READ, BOOTLOADER_INFO, payload) == H(
        "bf 6a626f6f746c6f61646572 674d4355626f6f74 ff")


def test_bootloader_info_mode() -> None:
    assert _body(_bl(), READ, BOOTLOADER_INFO, {"query": "mode"}) == H("bf 646d6f6465 03 ff")


def test_bootloader_info_mode_with_downgrade_prevention() -> None:
    srv = _bl(os_profile(profile("nrf52840dk"), bootloader_mode=9, no_downgrade=True))
    assert _body(srv, READ, BOOTLOADER_INFO, {"query": "mode"}) == encode(
        {"mode": 9, "no-downgrade": True})


def test_bootloader_info_negative_mode() -> None:
    srv = _bl(os_profile(profile("nrf52840dk"), bootloader_mode=-1))
    assert _body(srv, READ, BOOTLOADER_INFO, {"query": "mode"}) == H("bf 646d6f6465 20 ff")


@pytest.mark.parametrize("version", [V1, V2])
@pytest.mark.parametrize("query", ["bogus", "", "MODE", "active_b0_slot"])
def test_bootloader_info_unknown_query_is_a_plain_rc_3(query: str, version: int) -> None:
    assert _body(_bl(), READ, BOOTLOADER_INFO, {"query": query}, version) == H("bf62726303ff")


@pytest.mark.parametrize("payload", [{"query": 1}, {"query": b"mode"}, b""])
def test_bootloader_info_decode_errors(payload: Any) -> None:
    assert _body(_bl(), READ, BOOTLOADER_INFO, payload) == H("bf62726303ff")


def test_bootloader_info_is_read_only_and_absent_from_builds_without_it() -> None:
    assert _body(_bl(), WRITE, BOOTLOADER_INFO, {}) == H("bf62726308ff")
    assert exchange(server("native_sim_udp6"), "0800000100003808a0") == [  # bootloader_info.v2
        "0900000600003808bf62726308ff"]


# ----------------------------------------------------------------------------- no handler


@pytest.mark.parametrize(("op", "cmd"), [(READ, 1), (WRITE, 1), (READ, 3), (READ, 9)])
def test_commands_zephyr_never_implemented_answer_rc_8(op: int, cmd: int) -> None:
    assert _body(server("nrf52840dk"), op, cmd, {}) == H("bf62726308ff")
