"""Group 9, shell management: exec, every rc, and the recorded answers of real Zephyr 4.4.0.

The ``shell.*`` records of the golden folder (UDP, console UART with a big RX
buffer, raw UART) are replayed here through ``Server.handle`` on the profile of the build they
were recorded from, so the SMP-level bytes are held to them whatever transport carries them.
"""

from __future__ import annotations

import re
from typing import Any

import cbor2
import pytest

import golden
from smpsim.config import load_profile
from smpsim.device.mcu import Device
from smpsim.mcumgr.dispatcher import ResetEffect
from smpsim.mcumgr.header import Header
from smpsim.mcumgr.server import Server

from .smp_frames import READ, V1, V2, WRITE, call, err_body, frame, rc_body, server

SHELL_GROUP, EXEC = 9, 0
KERNEL_HELP = (
    "\r\nkernel - Kernel commands\r\nSubcommands:\r\n"
    "  cycles     : Kernel cycles.\r\n"
    "  log_level  : <module name> <severity (0-4)>\r\n"
    "  reboot     : Reboot.\r\n"
    "  sleep      : ms\r\n"
    "  thread     : Kernel threads.\r\n"
    "  uptime     : Kernel uptime. Can be called with the -p or --pretty options\r\n"
    "  version    : Kernel version.\r\n")


def _shell_records() -> list[tuple[str, dict[str, Any]]]:
    found = []
    index = golden.index()
    smp_svr = sorted(f for build in index.values() if "recovery" not in build
                     for f in build["transcripts"])  # MCUboot's recovery server has no shell
    for name in smp_svr:
        for record in golden.records(name):
            request = bytes.fromhex(record.get("request_hex") or "")
            if len(request) >= 8 and Header.parse(request).group == SHELL_GROUP:
                found.append((f"{name[:-6]}::{record['case']}", record))
    return found


RECORDS = _shell_records()


def test_the_shell_records_are_there() -> None:
    names = [name for name, _ in RECORDS]
    assert len(names) >= 20, names
    assert "native_sim_udp::shell.help" in names
    assert "native_sim_serial_bigrx::shell.help" in names


@pytest.mark.parametrize(("name", "record"), RECORDS, ids=[n for n, _ in RECORDS])
def test_recorded_answer(name: str, record: dict[str, Any]) -> None:
    srv = server(load_profile(record["build"]))
    got = srv.handle(bytes.fromhex(record["request_hex"])).frames
    want = [bytes.fromhex(h) for h in record["responses_hex"]]
    assert len(got) == len(want)
    for mine, theirs in zip(got, want, strict=True):
        if "uptime" in record["case"]:
            # The milliseconds differ by nature: same header and map, "Uptime: <n> ms".
            assert mine[:2] == theirs[:2] and mine[4:8] == theirs[4:8]
            body, real = cbor2.loads(mine[8:]), cbor2.loads(theirs[8:])
            assert list(body) == list(real) == ["o", "ret"]
            assert re.fullmatch(r"\r\nUptime: \d+ ms\r\n", body["o"])
            assert body["ret"] == real["ret"] == 0
        else:
            assert mine.hex() == theirs.hex()


# ----------------------------------------------------------------------------- exec


def _exec(srv: Server, payload: Any, version: int = V2) -> Any:
    return call(srv, WRITE, SHELL_GROUP, EXEC, payload, version=version)


def _raw(srv: Server, payload: bytes, version: int = V2) -> bytes:
    frames = srv.handle(frame(WRITE, SHELL_GROUP, EXEC, payload, version=version)).frames
    assert len(frames) == 1
    return frames[0][8:]


def test_kernel_version_is_the_profiles() -> None:
    assert _exec(server(), {"argv": ["kernel", "version"]}) == {
        "o": "\r\nZephyr version 4.4.0\r\n", "ret": 0}


def test_output_keys_in_zephyrs_order_indefinite_map() -> None:
    body = _raw(server(), cbor2.dumps({"argv": ["retval"]}))
    assert body == b"\xbfao" + cbor2.dumps("\r\n0\r\n") + b"cret\x00\xff"


def test_unknown_command_is_ret_minus_8_in_red() -> None:
    assert _exec(server(), {"argv": ["nosuchcmd"]}) == {
        "o": "\r\n\x1b[1;31mnosuchcmd: command not found\r\n\x1b[m", "ret": -8}


def test_argv_words_are_joined_with_single_spaces() -> None:
    assert _exec(server(), {"argv": ["kernel", "uptime", "-p"]})["o"].startswith(
        "\r\nuptime: 0 days, 0 hours")


def test_first_non_text_element_ends_the_command() -> None:
    srv = server()
    assert _exec(srv, {"argv": ["kernel", 1, "version"]}) == {"o": KERNEL_HELP, "ret": 1}
    assert _exec(srv, {"argv": ["kernel", b"version"]}) == {"o": KERNEL_HELP, "ret": 1}


def test_leading_non_text_element_is_an_empty_command() -> None:
    srv = server()
    assert _raw(srv, cbor2.dumps({"argv": [1, "kernel"]})) == err_body(9, 3)
    assert _raw(srv, cbor2.dumps({"argv": [1, "kernel"]}), V1) == rc_body(3)


def test_nul_in_a_word_ends_the_line() -> None:
    assert _exec(server(), {"argv": ["kernel\0version"]}) == {"o": KERNEL_HELP, "ret": 1}


def test_empty_string_word_runs_an_empty_line() -> None:
    assert _exec(server(), {"argv": [""]}) == {"o": "\r\n", "ret": -8}


@pytest.mark.parametrize("payload", [
    b"",  # no payload at all
    cbor2.dumps({}),  # argv missing
    cbor2.dumps({"argv": "kernel version"}),  # not an array
    cbor2.dumps({"argv": {"a": 1}}),
    cbor2.dumps(["argv", ["kernel"]]),  # not a map
    cbor2.dumps({1: 2, "argv": ["kernel"]}),  # a non-text key before argv
    bytes.fromhex("a1") + b"\x7f\x62ar\x62gv\xff" + cbor2.dumps(["kernel"]),  # chunked key
    bytes.fromhex("a2") + cbor2.dumps("x") + b"\x1c" + cbor2.dumps("argv"),  # bad skipped value
])
def test_decode_failures_are_rc_3(payload: bytes) -> None:
    srv = server()
    assert _raw(srv, payload) == rc_body(3)
    assert _raw(srv, payload, V1) == rc_body(3)


def test_argv_found_after_other_keys_and_first_one_wins() -> None:
    srv = server()
    payload = (b"\xa3" + cbor2.dumps("d") + cbor2.dumps([1, {"x": b"y"}])
               + cbor2.dumps("argv") + cbor2.dumps(["retval"])
               + cbor2.dumps("argv") + cbor2.dumps(5))
    assert cbor2.loads(_raw(srv, payload)) == {"o": "\r\n0\r\n", "ret": 0}


def test_bytes_after_argv_are_not_read() -> None:
    # Zephyr stops reading once the line is composed: trailing garbage does not matter.
    payload = b"\xbf" + cbor2.dumps("argv") + b"\x9f" + cbor2.dumps("retval") + b"\xff\x1c"
    assert cbor2.loads(_raw(server(), payload)) == {"o": "\r\n0\r\n", "ret": 0}
    # ... and a word cut short ends the words like any element that is not text.
    payload = b"\xa1" + cbor2.dumps("argv") + b"\x82" + cbor2.dumps("retval") + b"\x78"
    assert cbor2.loads(_raw(server(), payload)) == {"o": "\r\n0\r\n", "ret": 0}


def test_indefinite_map_and_array_are_accepted() -> None:
    payload = b"\xbf" + cbor2.dumps("argv") + b"\x9f" + cbor2.dumps("kernel") \
        + cbor2.dumps("version") + b"\xff\xff"
    assert cbor2.loads(_raw(server(), payload))["o"] == "\r\nZephyr version 4.4.0\r\n"


@pytest.mark.parametrize(("argv", "too_long"), [
    (["a" * 255], False),
    (["a" * 256], True),
    (["a" * 100, "b" * 154], False),  # 255 characters joined
    (["a" * 100, "b" * 155], True),  # 256: no room for the terminator
])
def test_line_reaching_cmd_buff_size_is_command_too_long(argv: list[str], too_long: bool) -> None:
    srv = server()
    body = _raw(srv, cbor2.dumps({"argv": argv}))
    if too_long:
        assert body == err_body(9, 2)
        assert _raw(srv, cbor2.dumps({"argv": argv}), V1) == rc_body(3)
    else:
        assert cbor2.loads(body)["ret"] == -8


def test_read_op_is_rc_8() -> None:
    frames = server().handle(frame(READ, SHELL_GROUP, EXEC, {"argv": ["help"]})).frames
    assert frames[0][8:] == rc_body(8)


def test_output_too_big_for_the_buffer_is_rc_7() -> None:
    assert _raw(server("native_sim_serial_bigrx"), cbor2.dumps({"argv": ["help"]})) == rc_body(7)
    # The same 511 bytes fit the UDP build's 2048-byte buffer.
    assert len(_exec(server("native_sim_udp"), {"argv": ["help"]})["o"]) == 511


def test_output_is_cut_at_the_dummy_buffer() -> None:
    out = _exec(server(), {"argv": ["kernel", "thread", "list"]})["o"]
    assert len(out.encode()) == 511
    assert out.startswith("\r\nScheduler: ")


def test_kernel_reboot_resets_the_board() -> None:
    srv = server()
    reply = srv.handle(frame(WRITE, SHELL_GROUP, EXEC, {"argv": ["kernel", "reboot", "warm"]}))
    assert reply.effects == [ResetEffect(0.0)]
    assert cbor2.loads(reply.frames[0][8:]) == {"o": "\r\n", "ret": 0}
    # The flag is consumed: the next command does not reset again.
    again = srv.handle(frame(WRITE, SHELL_GROUP, EXEC, {"argv": ["retval"]}))
    assert again.effects == []


def test_retval_reports_the_previous_command() -> None:
    srv = server()
    _exec(srv, {"argv": ["kernel", "uptime", "-x"]})
    assert _exec(srv, {"argv": ["retval"]}) == {"o": "\r\n-5\r\n", "ret": 0}


def test_shell_state_is_lost_at_reset() -> None:
    device = Device(load_profile("native_sim_udp"))
    device.boot()
    srv = Server(device)
    _exec(srv, {"argv": ["kernel", "uptime", "-x"]})
    device.reset()
    assert _exec(srv, {"argv": ["retval"]})["o"] == "\r\n0\r\n"
    assert _exec(srv, {"argv": ["history"]})["o"] == "\r\n[  0] history\r\n[  1] retval\r\n"


def test_group_absent_from_build_is_rc_8() -> None:
    srv = server("native_sim_shell")  # the shell transport build has no shell group
    frames = srv.handle(frame(WRITE, SHELL_GROUP, EXEC, {"argv": ["help"]})).frames
    assert frames[0][8:] == rc_body(8)
