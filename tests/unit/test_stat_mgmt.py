"""Group 2, statistics: show and list, byte for byte where a real answer was recorded.

Cases named like ``stat.group.missing.v1`` are recorded answers of real Zephyr 4.4.0 builds in
tests/golden/ (native_sim_udp unless stated).
"""

from __future__ import annotations

import dataclasses

import cbor2
import pytest

from smpsim.config import StatsGroup
from smpsim.mcumgr.codec import encode
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
    rc_body,
    server,
)

STAT, SHOW, LIST = 2, 0, 1
H = bytes.fromhex


def _body(srv: Server, op: int, cmd: int, payload: object = b"", version: int = V2) -> bytes:
    frames = srv.handle(frame(op, STAT, cmd, payload, version=version)).frames
    assert len(frames) == 1
    assert Header.parse(frames[0]).length == len(frames[0]) - 8
    return frames[0][8:]


# ----------------------------------------------------------------------------- list


@pytest.mark.parametrize(("prof", "unit", "expected"), [
    ("native_sim_udp", "0000000100023f01a0",  # stat.list.v1
     "0100004100023f01bf69737461745f6c6973749f6f666c6173685f73696d5f737461747374666c6173685f"
     "73696d5f7468726573686f6c64736d736d705f7376725f7374617473ffff"),
    ("native_sim_udp6", "0800000100023e01a0",  # stat.list.v2
     "0900001c00023e01bf69737461745f6c6973749f6d736d705f7376725f7374617473ffff"),
    ("native_sim_udp", "0000001400024300a1646e616d656d6e6f5f737563685f67726f7570",
     "0100000600024300bf62726305ff"),  # stat.group.missing.v1
    ("native_sim_udp", "0800001400024400a1646e616d656d6e6f5f737563685f67726f7570",
     "0900001300024400bf63657272bf6567726f75700262726303ffff"),  # stat.group.missing.v2
    ("native_sim_udp", "0800000700024700a1646e616d6501",
     "0900000600024700bf62726303ff"),  # stat.group.name_int
    ("native_sim_udp", "0a00001400024800a1646e616d656d736d705f7376725f7374617473",
     "0b00000600024800bf62726308ff"),  # stat.group.write_op
])
def test_recorded_answers(prof: str, unit: str, expected: str) -> None:
    assert exchange(server(prof), unit) == [expected]


def test_list_ignores_the_payload() -> None:
    srv = server()
    for payload in (b"", b"\x01\x02", H("a1646e616d6501")):
        assert cbor2.loads(_body(srv, READ, LIST, payload)) == {
            "stat_list": ["flash_sim_stats", "flash_sim_thresholds", "smp_svr_stats"]}


def test_list_follows_the_profiles_registration_order() -> None:
    groups = (StatsGroup("zeta", "none", ("a",)), StatsGroup("alpha", "smp_svr"))
    srv = server(profile(stats=groups))
    assert call(srv, READ, STAT, LIST) == {"stat_list": ["zeta", "alpha"]}


def test_write_op_is_rc_8() -> None:
    srv = server()
    assert _body(srv, WRITE, LIST) == rc_body(8)
    assert _body(srv, WRITE, SHOW, {"name": "smp_svr_stats"}) == rc_body(8)  # stat.group.write_op


# ----------------------------------------------------------------------------- show


def test_show_smp_svr_stats_counts_whole_seconds_since_boot() -> None:
    srv = server()
    assert call(srv, READ, STAT, SHOW, {"name": "smp_svr_stats"}) == {
        "name": "smp_svr_stats", "fields": {"ticks": 0}}
    srv.device.clock.advance(16.9)
    body = _body(srv, READ, SHOW, {"name": "smp_svr_stats"}, version=V1)
    assert body == encode({"name": "smp_svr_stats", "fields": {"ticks": 16}})
    srv.device.clock.advance(0.1)
    assert call(srv, READ, STAT, SHOW, {"name": "smp_svr_stats"})["fields"]["ticks"] == 17


def test_ticks_start_again_at_every_boot() -> None:
    srv = server()
    srv.device.clock.advance(30)
    srv.device.reset()
    srv.device.clock.advance(2.5)
    assert call(srv, READ, STAT, SHOW, {"name": "smp_svr_stats"})["fields"] == {"ticks": 2}


def test_show_answer_layout_byte_for_byte() -> None:
    srv = server("native_sim_udp6")
    srv.device.clock.advance(16)
    # stat.group.smp_svr_stats.v1 of native_sim_udp6 (ticks 16), header included
    assert exchange(srv, "0000001400023f00a1646e616d656d736d705f7376725f7374617473") == [
        "0100002500023f00bf646e616d656d736d705f7376725f7374617473666669656c6473bf657469636b73"
        "10ffff"]


@pytest.mark.parametrize(("version", "expected"), [
    (V1, rc_body(5)),                # stat.group.missing.v1
    (V2, err_body(2, 3)),            # stat.group.missing.v2
])
def test_unknown_group(version: int, expected: bytes) -> None:
    srv = server()
    lines: list[str] = []
    srv.device.console.subscribe(lines.append)
    assert _body(srv, READ, SHOW, {"name": "no_such_group"}, version=version) == expected
    assert lines == ["[00:00:00.000,000] <err> mcumgr_stat_grp: Invalid stat name: no_such_group"]


@pytest.mark.parametrize("payload", [
    {},                               # stat.group.no_name
    {"name": 1},                      # stat.group.name_int
    {"name": ""},                     # empty
    {"name": "x" * 32},               # 32 bytes: no room for the terminator
    {"name": b"smp_svr_stats"},       # bytes, not text
    [1, 2],                           # not a map
    b"",                              # no payload
])
def test_bad_name_is_rc_3(payload: object) -> None:
    assert _body(server(), READ, SHOW, payload) == rc_body(3)


def test_unknown_keys_are_skipped() -> None:
    body = _body(server(), READ, SHOW, {"x": [1, {"y": 2}], "name": "smp_svr_stats", "z": 1})
    assert cbor2.loads(body) == {"name": "smp_svr_stats", "fields": {"ticks": 0}}


def test_repeated_name_key_is_rc_3() -> None:
    srv = server()
    # {"name": "smp_svr_stats", "name": "smp_svr_stats"}
    raw = H("a2646e616d656d736d705f7376725f7374617473646e616d656d736d705f7376725f7374617473")
    assert _body(srv, READ, SHOW, raw) == rc_body(3)


def test_a_31_byte_name_is_looked_up() -> None:
    srv = server()
    assert _body(srv, READ, SHOW, {"name": "x" * 31}) == err_body(2, 3)


def test_name_is_a_c_string_to_the_lookup_but_echoed_whole() -> None:
    srv = server()
    body = cbor2.loads(_body(srv, READ, SHOW, {"name": "smp_svr_stats\0junk"}))
    assert body == {"name": "smp_svr_stats\0junk", "fields": {"ticks": 0}}


def test_thresholds_are_zero() -> None:
    srv = server()
    assert call(srv, READ, STAT, SHOW, {"name": "flash_sim_thresholds"})["fields"] == {
        "max_write_calls": 0, "max_erase_calls": 0, "max_len": 0}


def test_flash_sim_stats_of_256_units_do_not_fit_the_buffer() -> None:
    # 9 + 2 x 256 fields: about 11 KB, far over the 2048-byte buffer, as on the real build.
    assert _body(server(), READ, SHOW, {"name": "flash_sim_stats"}) == rc_body(7)


def _small_flash_stats() -> Server:
    prof = profile()
    stats = tuple(dataclasses.replace(g, units=4) if g.kind == "flash_sim" else g
                  for g in prof.firmware.stats)
    return server(dataclasses.replace(prof, firmware=dataclasses.replace(prof.firmware,
                                                                         stats=stats)))


def test_flash_sim_stats_count_the_flash_models_operations() -> None:
    srv = _small_flash_stats()
    flash = srv.device.flash
    before = call(srv, READ, STAT, SHOW, {"name": "flash_sim_stats"})["fields"]
    assert list(before) == [
        "bytes_read", "bytes_written", "double_writes", "flash_read_calls", "flash_read_time_us",
        "flash_write_calls", "flash_write_time_us", "flash_erase_calls", "flash_erase_time_us",
        "erase_cycles_unit0", "erase_cycles_unit1", "erase_cycles_unit2", "erase_cycles_unit3",
        "dirty_read_unit0", "dirty_read_unit1", "dirty_read_unit2", "dirty_read_unit3"]
    flash.erase(0x1000, 0x2000)  # units 1 and 2, one call
    flash.write(0x1000, b"abcd" * 4)
    flash.read(0x1000, 10)
    after = call(srv, READ, STAT, SHOW, {"name": "flash_sim_stats"})["fields"]
    delta = {k: after[k] - before[k] for k in after}
    assert delta == {**dict.fromkeys(after, 0), "bytes_read": 10, "bytes_written": 16,
                     "flash_read_calls": 1, "flash_write_calls": 1, "flash_erase_calls": 1,
                     "erase_cycles_unit1": 1, "erase_cycles_unit2": 1}


def test_flash_sim_stats_are_ram_counters() -> None:
    srv = _small_flash_stats()
    flash = srv.device.flash
    flash.erase(0, 0x1000)
    assert call(srv, READ, STAT, SHOW, {"name": "flash_sim_stats"})["fields"][
        "erase_cycles_unit0"] == 1
    srv.device.reset()
    fields = call(srv, READ, STAT, SHOW, {"name": "flash_sim_stats"})["fields"]
    assert fields["erase_cycles_unit0"] == 0 and fields["flash_erase_calls"] == 0
