"""Server.handle: Zephyr's request-processing rules, byte for byte.

Request/response pairs marked with a case name come from the recorded answers of real Zephyr
4.4.0 builds in tests/golden/ (native_sim_udp unless stated).
"""

from __future__ import annotations

import logging

import pytest

from smpsim.mcumgr.dispatcher import Body, GroupHandlers, Request, ResetEffect
from smpsim.mcumgr.errors import GroupError, MgmtErr, MgmtError
from smpsim.mcumgr.groups.os_mgmt import OS
from smpsim.mcumgr.header import Header
from smpsim.mcumgr.server import Server

from .smp_frames import READ, V1, V2, WRITE, exchange, frame, profile, rc_body, server

H = bytes.fromhex
ECHO_HI = "a16164626869"  # {"d": "hi"}


def _one(unit: str, expected: str, prof: str = "native_sim_udp") -> None:
    assert exchange(server(prof), unit) == [expected]


# ----------------------------------------------------------------------------- versions


@pytest.mark.parametrize(("unit", "expected"), [
    ("120000060000d800a16164626869", "0b0000060000d800bf6272630dff"),  # proto.version2
    ("1a0000060000d900a16164626869", "0b0000060000d900bf6272630dff"),  # proto.version3
    ("100000010000da06a0", "090000060000da06bf6272630dff"),  # proto.version2.params
    ("180000010000da06a0", "090000060000da06bf6272630dff"),  # version 3 READ
])
def test_versions_2_and_3_get_rc_13_in_a_v2_header(unit: str, expected: str) -> None:
    _one(unit, expected)


def test_v1_and_v2_are_both_served_and_echoed() -> None:
    srv = server()
    assert exchange(srv, "0000000900000400a161646568656c6c6f") == [  # os.echo.read.v1
        "0100000a00000400bf61726568656c6c6fff"]
    assert exchange(srv, "0800000900000500a161646568656c6c6f") == [  # os.echo.read.v2
        "0900000a00000500bf61726568656c6c6fff"]


def test_v1_refused_with_rc_12_without_the_original_protocol() -> None:
    srv = server(profile(original_protocol=False))
    assert exchange(srv, "0200000900000300a161646568656c6c6f") == ["0300000600000300bf6272630cff"]
    # v2 still works, and versions 2/3 still get rc 13
    assert exchange(srv, "0a00000900000300a161646568656c6c6f") == [
        "0b00000a00000300bf61726568656c6c6fff"]
    assert exchange(srv, "120000060000d800a16164626869") == ["0b0000060000d800bf6272630dff"]


def test_the_op_is_checked_before_the_version() -> None:
    # op 4 with version 3: Zephyr rejects the op before looking at the version.
    _one("1c0000060000c500a16164626869", "0b0000060000c500bf62726308ff")
    srv = server(profile(original_protocol=False))
    assert exchange(srv, "040000060000c500a16164626869") == ["030000060000c500bf62726308ff"]


# ----------------------------------------------------------------------------- ops and lookup


@pytest.mark.parametrize(("unit", "expected"), [
    ("090000060000c300a16164626869", "0b0000060000c300bf62726308ff"),  # proto.op1
    ("0b0000060000c400a16164626869", "0b0000060000c400bf62726308ff"),  # proto.op3
    ("0c0000060000c500a16164626869", "0b0000060000c500bf62726308ff"),  # proto.op4
    ("0d0000060000c600a16164626869", "0b0000060000c600bf62726308ff"),  # proto.op5
    ("0e0000060000c700a16164626869", "0b0000060000c700bf62726308ff"),  # proto.op6
    ("0f0000060000c800a16164626869", "0b0000060000c800bf62726308ff"),  # proto.op7
    ("010000060000c300a16164626869", "030000060000c300bf62726308ff"),  # v1 op 1
    ("070000060000c800a16164626869", "030000060000c800bf62726308ff"),  # v1 op 7
])
def test_response_ops_and_undefined_ops_get_rc_8_with_op_3(unit: str, expected: str) -> None:
    _one(unit, expected)


@pytest.mark.parametrize(("unit", "expected"), [
    ("000000010063b600a0", "010000060063b600bf62726308ff"),  # proto.unknown_group.v1
    ("080000010063b700a0", "090000060063b700bf62726308ff"),  # proto.unknown_group.v2
    ("020000040063b800a1617801", "030000060063b800bf62726308ff"),  # unknown_group_write.v1
    ("0a0000040063b900a1617801", "0b0000060063b900bf62726308ff"),  # unknown_group_write.v2
    ("000000010001ba00a0", "010000060001ba00bf62726308ff"),  # proto.img_group_absent.v1
    ("000000010000bc63a0", "010000060000bc63bf62726308ff"),  # proto.unknown_cmd_os.v1
    ("080000010000bd63a0", "090000060000bd63bf62726308ff"),  # proto.unknown_cmd_os.v2
    ("0a0000010000c002a0", "0b0000060000c002bf62726308ff"),  # write_on_read_only (taskstat)
    ("0800000100003c05a0", "0900000600003c05bf62726308ff"),  # os.reset.read_op
    ("0a00000100002106a0", "0b00000600002106bf62726308ff"),  # os.params.write_op
    ("0800000100001a03a0", "0900000600001a03bf62726308ff"),  # os.mpstat.v2
    ("0a00000700003b01a1646563686ff4", "0b00000600003b01bf62726308ff"),  # console_echo_ctrl
    ("0800000100001c04a0", "0900000600001c04bf62726308ff"),  # os.datetime.get (not built)
    ("0200000000006e63", "0300000600006e63bf62726308ff"),  # header-only v1 unknown os cmd
])
def test_unknown_group_command_or_op_gets_rc_8(unit: str, expected: str) -> None:
    _one(unit, expected)


def test_enabled_group_without_an_implementation_answers_rc_8() -> None:
    srv = server("native_sim_udp", implemented={"os": OS})
    # stat list (2/1), settings commit (3/2), fs close (8/4), shell exec (9/0),
    # enum count (10/0), zephyr basic erase (63/0): all enabled in this build.
    for op, group, cmd in [(READ, 2, 1), (WRITE, 3, 2), (WRITE, 8, 4), (WRITE, 9, 0),
                           (READ, 10, 0), (WRITE, 63, 0)]:
        response = srv.handle(frame(op, group, cmd, {}, seq=group)).frames
        assert response == [Header(op, V2, 0, 0, group, group, cmd).response(6) + rc_body(8)]


# ----------------------------------------------------------------------------- decode errors


@pytest.mark.parametrize(("unit", "expected"), [
    ("0200000400000900a1616405", "0300000600000900bf62726303ff"),  # os.echo.d_int.v1
    ("0a00000400000a00a1616405", "0b00000600000a00bf62726303ff"),  # os.echo.d_int.v2
    ("0a00000900000b00a161644568656c6c6f", "0b00000600000b00bf62726303ff"),  # d_bytes (udp6)
    ("0a00000a00000d00a2616461316164613261", "0b00000600000d00bf62726303ff"),  # d_twice
    ("0a0000060000d100826164626869", "0b0000060000d100bf62726303ff"),  # proto.cbor_array
    ("0a0000010000720005", "0b00000600007200bf62726303ff"),  # proto.cbor_int (udp6)
    ("0a0000040000d300a2616462", "0b0000060000d300bf62726303ff"),  # proto.cbor_truncated_map
    ("0a0000040000cf00fffefdfc", "0b0000060000cf00bf62726303ff"),  # proto.non_cbor
    ("0a0000000000cd00", "0b0000060000cd00bf62726303ff"),  # proto.header_only_len0.echo
    ("0800000900003807a166666f726d617401", "0900000600003807bf62726303ff"),  # info fmt_int
])
def test_decode_and_type_errors_get_rc_3_in_both_versions(unit: str, expected: str) -> None:
    _one(unit, expected)


def test_leniency_unknown_keys_indefinite_maps_trailing_bytes() -> None:
    srv = server()
    assert exchange(srv, "0a00000900000c00a261646178627a7a01") == [  # os.echo.extra_key
        "0b00000600000c00bf61726178ff"]
    assert exchange(srv, "0a00000700000e00bf6164626869ff") == [  # indefinite_request
        "0b00000700000e00bf6172626869ff"]
    assert exchange(srv, "0a00000800007400a161646268690000") == [  # proto.cbor_trailing
        "0b00000700007400bf6172626869ff"]


def test_payload_ignoring_commands_accept_anything() -> None:
    srv = server()
    params = "bf686275665f73697a65190800696275665f636f756e7402ff"
    assert exchange(srv, "080000040000d006fffefdfc") == [  # proto.non_cbor.params
        "090000190000d006" + params]
    assert exchange(srv, "080000000000cc06") == ["090000190000cc06" + params]  # header only


# ----------------------------------------------------------------------------- framing


def test_length_larger_than_the_data_gets_rc_9() -> None:
    _one("0a00001000006900a16164626869", "0b00000600006900bf62726309ff")  # proto.len_larger


def test_rc_9_answers_the_garbage_header_as_it_is() -> None:
    # udp.split_header_part: a header alone whose length promises a payload
    _one("0a0000090000df00", "0b0000060000df00bf62726309ff")
    # udp.split_payload_part: a payload alone is parsed as a header (op 1, length 0x6465)
    _one("a161646573706c6974", "0300000673706c69bf62726309ff")
    # udp.garbage_then_frame: a v1 READ header with length 10 and only 8 bytes after it
    _one("0000000a0000050000e100a161646167", "0100000600000500bf62726309ff")


def test_rc_9_stops_processing_of_the_unit() -> None:
    good = frame(WRITE, 0, 0, H(ECHO_HI), seq=1)
    bad = Header(WRITE, V2, 0, 100, 0, 2, 0).pack() + frame(WRITE, 0, 0, H(ECHO_HI), seq=3)
    assert exchange(server(), good + bad) == [
        "0b00000700000100bf6172626869ff",
        "0b00000600000200bf62726309ff",
    ]


def test_two_frames_in_one_unit_get_two_responses() -> None:
    # proto.two_requests_one_unit
    unit = "0a0000070000db00a16164636f6e65" "0a0000070000dc00a161646374776f"
    assert exchange(server(), unit) == [
        "0b0000080000db00bf6172636f6e65ff", "0b0000080000dc00bf61726374776fff"]


def test_frames_of_every_kind_in_one_unit_are_answered_in_order() -> None:
    unit = (frame(READ, 0, 6, seq=1)                       # params, header only
            + frame(WRITE, 0, 0, {"d": "x"}, seq=2, version=V1)
            + frame(READ, 0, 7, {"format": "h"}, seq=3))   # a v2 group error goes on
    frames = server().handle(unit + frame(READ, 0, 0, {"d": "y"}, seq=4)).frames
    assert [Header.parse(f).seq for f in frames] == [1, 2, 3, 4]
    assert frames[2][8:] == H("bf63657272bf6567726f75700062726302ffff")


@pytest.mark.parametrize(("first", "answer"), [
    ("0a00000400000a00a1616405", "0b00000600000a00bf62726303ff"),  # decode error: rc 3
    ("0c0000060000c500a16164626869", "0b0000060000c500bf62726308ff"),  # op 4: rc 8
    ("120000060000d800a16164626869", "0b0000060000d800bf6272630dff"),  # version 2: rc 13
    ("0000000100000704a0", "0100000600000704bf62726308ff"),  # datetime not built: rc 8
    ("0000000a00000707a166666f726d61746168", "0100000600000707bf62726303ff"),  # v1 group err
])
def test_an_rc_error_stops_processing_of_the_unit(first: str, answer: str) -> None:
    assert exchange(server(), H(first) + frame(WRITE, 0, 0, {"d": "x"}, seq=9)) == [answer]


@pytest.mark.parametrize("unit", ["", "0a", "0a00000000", "0a000000000000"])  # udp.empty, ...
def test_fewer_than_8_bytes_get_no_answer(unit: str) -> None:
    assert exchange(server(), unit) == []


def test_trailing_bytes_under_8_after_a_frame_are_dropped() -> None:
    assert exchange(server(), "0a0000070000db00a16164636f6e65" "0a000000000000") == [
        "0b0000080000db00bf6172636f6e65ff"]


def test_length_smaller_than_the_payload_still_decodes_it() -> None:
    _one("0a0000040000ca00a16164626869", "0b0000070000ca00bf6172626869ff")  # proto.len_smaller
    _one("0a00000000006b00a16164626869", "0b00000700006b00bf6172626869ff")  # len_zero (udp6)


def test_next_frame_starts_at_8_plus_length() -> None:
    # An echo whose header says 4 bytes: its CBOR is read past that (the map is 6 bytes), and
    # the next frame starts at offset 12, inside the map: "68 69" + 6 more bytes make a v2
    # READ header (byte0 0x68: res 3, ver 1, op 0) for params (0/6), length 0, seq 7.
    unit = "0a00000400000100" "a1616462" "6869" "000000000706"
    assert exchange(server(), unit) == [
        "0b00000700000100bf6172626869ff",
        "0900001900000706bf686275665f73697a65190800696275665f636f756e7402ff",
    ]


@pytest.mark.parametrize(("seq", "flags"), [(0, 0), (255, 0), (0x4D, 1), (0xD6, 0xFF)])
def test_seq_is_copied_and_flags_are_cleared(seq: int, flags: int) -> None:
    response = server().handle(frame(WRITE, 0, 0, H(ECHO_HI), seq=seq, flags=flags)).frames
    assert response == [bytes([0x0B, 0, 0, 7, 0, 0, seq, 0]) + H("bf6172626869ff")]


def test_reserved_bits_are_ignored() -> None:
    _one("ea00000600007700a16164626869", "0b00000700007700bf6172626869ff")  # proto.reserved_bits


# ----------------------------------------------------------------------------- buffer size


@pytest.mark.parametrize(("unit", "expected"), [
    ("0800000100001602a0", "0900000600001602bf62726307ff"),  # os.taskstat.v2
    ("0800000a00002307a166666f726d61746161", "0900000600002307bf62726307ff"),  # os.info.fmt_a
    ("0800001200002d07a166666f726d617469736e7276626d70696f",
     "0900000600002d07bf62726307ff"),  # os.info.fmt_snrvbmpio
])
def test_response_too_big_for_the_buffer_gets_rc_7(unit: str, expected: str) -> None:
    _one(unit, expected, "native_sim_serial_buf96")


def test_response_body_may_fill_the_buffer_exactly() -> None:
    # buf 96: header 8 + body 88. Echo of n >= 24 chars has a body of n + 6 bytes.
    srv = server("native_sim_serial_buf96")
    fits = srv.handle(frame(WRITE, 0, 0, {"d": "x" * 82})).frames
    assert len(fits) == 1
    assert len(fits[0]) == 96
    too_big = srv.handle(frame(WRITE, 0, 0, {"d": "x" * 83})).frames
    assert too_big == [H("0b00000600000000") + rc_body(7)]


def test_the_same_request_fits_a_bigger_buffer() -> None:
    srv = server("native_sim_serial_buf2048")
    response = srv.handle(frame(WRITE, 0, 0, {"d": "x" * 1000})).frames
    assert response == [H("0b0003ef00000000 bf6172 7903e8") + b"x" * 1000 + b"\xff"]


# ----------------------------------------------------------------------------- group errors


def test_group_error_v2_is_an_err_map_and_v1_a_translated_rc() -> None:
    srv = server()
    assert exchange(srv, "0800000a00003107a166666f726d61746168") == [  # os.info.fmt_h
        "0900001300003107bf63657272bf6567726f75700062726302ffff"]
    v1 = frame(READ, 0, 7, {"format": "h"}, seq=0x31, version=V1)
    assert exchange(srv, v1) == ["0100000600003107bf62726303ff"]


# ----------------------------------------------------------------------------- rsn, extras


def _img_group(error: Exception) -> GroupHandlers:
    img = GroupHandlers("img")

    @img.write("upload")
    def upload(req: Request) -> Body:
        raise error

    return img


def _img_server(verbose: bool, error: Exception) -> Server:
    prof = profile("qemu_cortex_m0_img", verbose_errors=verbose)
    return server(prof, implemented={"os": OS, "img": _img_group(error)})


def test_rsn_follows_rc_on_verbose_builds() -> None:
    # img.upload.len_too_big.v1 (qemu_cortex_m0_img, a verbose build)
    srv = _img_server(True, MgmtError(1, "img too large"))
    assert exchange(srv, frame(WRITE, 1, 1, {}, seq=0x32, version=V1)) == [
        "0300001800013201bf627263016372736e6d696d6720746f6f206c61726765ff"]


def test_rsn_is_dropped_on_non_verbose_builds() -> None:
    srv = _img_server(False, MgmtError(1, "img too large"))
    assert exchange(srv, frame(WRITE, 1, 1, {}, seq=0x32, version=V1)) == [
        "0300000600013201bf62726301ff"]


def test_rsn_of_a_group_error_only_reaches_v1_answers() -> None:
    # img.upload.bad_magic.v1 / .v2 (qemu_cortex_m0_img)
    srv = _img_server(True, GroupError(23, "magic mismatch"))
    assert exchange(srv, frame(WRITE, 1, 1, {}, seq=0x35, version=V1)) == [
        "0300001900013501bf627263016372736e6e6d61676963206d69736d61746368ff"]
    assert exchange(srv, frame(WRITE, 1, 1, {}, seq=0x36, version=V2)) == [
        "0b00001300013601bf63657272bf6567726f75700162726317ffff"]


def test_no_rsn_without_a_reason_even_on_verbose_builds() -> None:
    srv = server(profile("qemu_cortex_m0_img"))
    assert exchange(srv, "0a00000400000a00a1616405") == ["0b00000600000a00bf62726303ff"]


def test_group_error_extra_keys_follow_err() -> None:
    fs = GroupHandlers("fs")

    @fs.write("file")
    def upload(req: Request) -> Body:
        raise GroupError(11, extra={"len": 0})

    srv = server("native_sim_udp", implemented={"os": OS, "fs": fs})
    # fs.upload.bad_off_first: {"err": {"group": 8, "rc": 11}, "len": 0}; v1: rc 1
    assert exchange(srv, frame(WRITE, 8, 0, {}, seq=0x93)) == [
        "0b00001800089300bf63657272bf6567726f7570086272630bff636c656e00ff"]
    assert exchange(srv, frame(WRITE, 8, 0, {}, seq=0x93, version=V1)) == [
        "0300000600089300bf62726301ff"]


def test_a_crashing_handler_answers_rc_1_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    img = _img_group(ZeroDivisionError("bug"))
    srv = server(profile("qemu_cortex_m0_img"), implemented={"img": img})
    with caplog.at_level(logging.ERROR, logger="smpsim.mcumgr.server"):
        frames = exchange(srv, frame(WRITE, 1, 1, {}) + frame(WRITE, 1, 1, {}))
    assert frames == ["0b00000600010001bf62726301ff"]
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


# ----------------------------------------------------------------------------- effects, busy


def test_reset_effect_is_handed_to_the_transport() -> None:
    reply = server().handle(H("0a00000100000205a0"))
    assert [f.hex() for f in reply.frames] == ["0b00000200000205bfff"]
    assert reply.effects == [ResetEffect(0.25)]


def test_effects_of_answered_frames_survive_a_later_error() -> None:
    reply = server().handle(H("0a00000100000205a0") + H("0a00000400000a00a1616405"))
    assert len(reply.frames) == 2
    assert reply.effects == [ResetEffect(0.25)]


def test_no_effect_when_the_answer_does_not_fit() -> None:
    img = GroupHandlers("img")

    @img.write("upload")
    def upload(req: Request) -> Body:
        req.effects.append(ResetEffect(1.0))
        return {"data": b"x" * 400}

    srv = server(profile("qemu_cortex_m0_img"), implemented={"img": img})
    reply = srv.handle(frame(WRITE, 1, 1, {}))
    assert reply.frames == [H("0b00000600010001") + rc_body(MgmtErr.EMSGSIZE)]
    assert reply.effects == []


def test_busy_time_is_the_clock_time_spent_on_the_unit() -> None:
    img = GroupHandlers("img")

    @img.write("erase")
    def erase(req: Request) -> Body:
        req.device.clock.spend(0.125)
        return None

    srv = server(profile("qemu_cortex_m0_img"), implemented={"img": img})
    assert srv.handle(frame(WRITE, 1, 5, {})).busy_s == 0.125
    assert srv.handle(frame(WRITE, 1, 5, {}) + frame(WRITE, 1, 5, {})).busy_s \
        == pytest.approx(0.25)
    assert srv.handle(frame(READ, 0, 0, {"d": "x"})).busy_s == 0.0


def test_an_empty_result_is_the_empty_map() -> None:
    img = GroupHandlers("img")

    @img.write("erase")
    def erase(req: Request) -> Body:
        return {}

    srv = server(profile("qemu_cortex_m0_img"), implemented={"img": img})
    assert exchange(srv, frame(WRITE, 1, 5, {})) == ["0b00000200010005bfff"]
