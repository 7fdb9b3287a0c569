"""Group 3, settings: read, write, delete, commit, load and save, and every error code.

Cases named like ``settings.save.v1`` are recorded answers of real Zephyr 4.4.0 builds in
tests/golden/ (native_sim_udp: settings enabled, no handler, no storage backend). The
handler cases run on a native_sim build given the default board's settings handlers and a
settings partition; they follow settings_mgmt.c and the settings subsystem.
"""

from __future__ import annotations

import dataclasses

import cbor2
import pytest

from smpsim.config import Partition, Profile, SettingsConfig, load_profile
from smpsim.mcumgr.header import Header
from smpsim.mcumgr.server import Server

from .smp_frames import READ, V1, V2, WRITE, err_body, exchange, frame, profile, rc_body, server

SETTINGS, RW, DELETE, COMMIT, LOAD_SAVE = 3, 0, 1, 2, 3
H = bytes.fromhex


def handlers_profile(partition: bool = True) -> Profile:
    """native_sim_udp with the nRF52840 DK's settings handlers, in a settings partition."""
    base = profile()
    dk = load_profile("nrf52840dk").firmware.settings
    parts = (Partition("settings", 0xF0000, 0x2000),) if partition else ()
    settings = dataclasses.replace(dk, partition="settings" if partition else "")
    return dataclasses.replace(
        base, board=dataclasses.replace(base.board, partitions=base.board.partitions + parts),
        firmware=dataclasses.replace(base.firmware, settings=settings))


def _body(srv: Server, op: int, cmd: int, payload: object = b"", version: int = V2) -> bytes:
    frames = srv.handle(frame(op, SETTINGS, cmd, payload, version=version)).frames
    assert len(frames) == 1
    assert Header.parse(frames[0]).length == len(frames[0]) - 8
    return frames[0][8:]


def read(srv: Server, name: str, **extra: object) -> object:
    return cbor2.loads(_body(srv, READ, RW, {"name": name, **extra}))


def write(srv: Server, name: str, val: bytes) -> object:
    return cbor2.loads(_body(srv, WRITE, RW, {"name": name, "val": val}))


def save(srv: Server) -> object:
    return cbor2.loads(_body(srv, WRITE, LOAD_SAVE, {}))


# ----------------------------------------------------------------------------- no handler


@pytest.mark.parametrize(("unit", "expected"), [
    ("0000001200036500a1646e616d656b6f7261636c652f6e6f6e65",
     "0100000600036500bf62726301ff"),  # settings.read.missing.v1
    ("0800001200036600a1646e616d656b6f7261636c652f6e6f6e65",
     "0900001300036600bf63657272bf6567726f75700362726305ffff"),  # read.missing.v2
    ("0a00001900036800a2646e616d656a6f7261636c652f76616c6376616c43010203",
     "0b00001300036800bf63657272bf6567726f75700362726305ffff"),  # write.v2
    ("0800001b00036a00a2646e616d656a6f7261636c652f76616c686d61785f73697a6501",
     "0900001300036a00bf63657272bf6567726f75700362726305ffff"),  # read.max_size
    ("0a00001100036b00a1646e616d656a6f7261636c652f76616c",
     "0b00001300036b00bf63657272bf6567726f75700362726305ffff"),  # write.no_val
    ("0a00000700036c00a16376616c4101", "0b00000600036c00bf62726303ff"),  # write.no_name
    ("0a00001a00036d00a2646e616d656a6f7261636c652f76616c6376616c6474657874",
     "0b00000600036d00bf62726303ff"),  # write.val_text
    ("0a00001200037001a1646e616d656b6f7261636c652f6e6f6e65",
     "0b00001300037001bf63657272bf6567726f75700362726303ffff"),  # delete.missing
    ("0200000100037102a0", "0300000200037102bfff"),  # commit.v1
    ("0a00000100037202a0", "0b00000200037202bfff"),  # commit.v2
    ("0800000100037403a0", "0900000200037403bfff"),  # load.v2
    ("0200000100037503a0", "0300000600037503bf62726301ff"),  # save.v1
    ("0a00000100037603a0", "0b00001300037603bf63657272bf6567726f75700362726308ffff"),  # save.v2
])
def test_recorded_answers_without_handlers(unit: str, expected: str) -> None:
    assert exchange(server(), unit) == [expected]


def test_no_handler_v1_translations() -> None:
    srv = server()
    assert _body(srv, WRITE, DELETE, {"name": "a/b"}, V1) == rc_body(5)  # KEY_NOT_FOUND
    assert _body(srv, WRITE, RW, {"name": "a/b", "val": b""}, V1) == rc_body(1)
    assert _body(srv, READ, LOAD_SAVE, b"", V1) == H("bfff")


@pytest.mark.parametrize(("op", "cmd", "payload"), [
    (READ, RW, {"name": ""}),
    (READ, RW, {}),
    (READ, RW, {"name": 1}),
    (READ, RW, {"name": "app/greeting", "max_size": -1}),
    (READ, RW, {"name": "app/greeting", "max_size": 2 ** 32}),
    (READ, RW, {"name": "app/greeting", "max_size": "1"}),
    (WRITE, RW, {"name": "app/greeting", "val": "text"}),
    (WRITE, RW, {"name": b"app/greeting", "val": b""}),
    (WRITE, DELETE, {"name": ""}),
    (WRITE, DELETE, {}),
    (READ, RW, H("a2646e616d6561786e616d656179")),  # "name" twice
    (READ, RW, b""),
    (WRITE, DELETE, [1]),
])
def test_malformed_requests_are_rc_3(op: int, cmd: int, payload: object) -> None:
    assert _body(server(handlers_profile()), op, cmd, payload) == rc_body(3)


@pytest.mark.parametrize(("op", "cmd", "extra"), [
    (READ, RW, {}), (WRITE, RW, {"val": b"x"}), (WRITE, DELETE, {})])
def test_a_name_of_name_len_bytes_is_key_too_long(op: int, cmd: int, extra: dict[str, object]
                                                  ) -> None:
    srv = server(handlers_profile())
    assert _body(srv, op, cmd, {"name": "app/" + "g" * 28, **extra}) == err_body(3, 2)
    assert _body(srv, op, cmd, {"name": "app/" + "g" * 28, **extra}, V1) == rc_body(3)
    # 31 bytes still fit the buffer with its terminator: looked up (no such key).
    assert _body(srv, op, cmd, {"name": "app/" + "g" * 27, **extra}) != err_body(3, 2)


def test_commit_and_load_ignore_the_payload_save_decodes_it() -> None:
    srv = server()
    for payload in (b"", b"\x00\xff", {"name": 5}, {"name": ""}):
        assert _body(srv, WRITE, COMMIT, payload) == H("bfff")
        assert _body(srv, READ, LOAD_SAVE, payload) == H("bfff")
        assert _body(srv, WRITE, LOAD_SAVE, payload) == rc_body(3)
    assert _body(srv, WRITE, LOAD_SAVE, {"other": 1}) == err_body(3, 8)
    assert _body(srv, WRITE, LOAD_SAVE, {"name": "oracle"}) == err_body(3, 8)
    assert _body(srv, WRITE, LOAD_SAVE, {"name": "o" * 32}) == err_body(3, 2)


def test_unknown_ops_are_rc_8() -> None:
    srv = server()
    assert _body(srv, READ, DELETE, {"name": "a"}) == rc_body(8)
    assert _body(srv, READ, COMMIT) == rc_body(8)


# ----------------------------------------------------------------------------- handlers


def test_read_the_defaults() -> None:
    srv = server(handlers_profile())
    assert read(srv, "app/greeting") == {"val": b"hello"}
    assert read(srv, "app/interval") == {"val": b"60"}
    assert read(srv, "id/serial") == {"val": b"SMPSIM-0001"}
    assert read(srv, "secret/token") == {"err": {"group": 3, "rc": 4}}  # no h_get


def test_read_max_size_truncates_and_is_capped_at_value_len() -> None:
    srv = server(handlers_profile())
    assert read(srv, "app/greeting", max_size=2) == {"val": b"he"}
    assert read(srv, "app/greeting", max_size=0) == {"val": b""}
    assert read(srv, "app/greeting", max_size=32) == {"val": b"hello"}
    # More than MCUMGR_GRP_SETTINGS_VALUE_LEN: capped, and the cap is reported after val.
    assert _body(srv, READ, RW, {"name": "app/greeting", "max_size": 33}) == H(
        "bf6376616c4568656c6c6f686d61785f73697a651820ff")


def test_write_changes_the_ram_value() -> None:
    srv = server(handlers_profile())
    assert write(srv, "app/greeting", b"\x00bonjour\xff") == {}
    assert read(srv, "app/greeting") == {"val": b"\x00bonjour\xff"}
    assert write(srv, "app/greeting", b"") == {}  # a missing val writes an empty value too
    assert read(srv, "app/greeting") == {"val": b""}


@pytest.mark.parametrize(("name", "val", "v2", "v1"), [
    ("app/greeting", b"x" * 33, 5, 1),  # h_set refuses the length: -EINVAL, ROOT_KEY_NOT_FOUND
    ("app/nosuch", b"x", 3, 5),         # -ENOENT: KEY_NOT_FOUND
    ("app", b"x", 3, 5),                # the subtree itself is no key
    ("app/greeting/more", b"x", 3, 5),
    ("nosuch/key", b"x", 5, 1),         # no handler: -EINVAL
    ("id/serial", b"x", 6, 1),          # no h_set: WRITE_NOT_SUPPORTED
])
def test_write_errors(name: str, val: bytes, v2: int, v1: int) -> None:
    srv = server(handlers_profile())
    assert _body(srv, WRITE, RW, {"name": name, "val": val}) == err_body(3, v2)
    assert _body(srv, WRITE, RW, {"name": name, "val": val}, V1) == rc_body(v1)


@pytest.mark.parametrize(("name", "v2", "v1"), [
    ("app/nosuch", 3, 5), ("nosuch", 5, 1), ("secret/token", 4, 5)])
def test_read_errors(name: str, v2: int, v1: int) -> None:
    srv = server(handlers_profile())
    assert _body(srv, READ, RW, {"name": name}) == err_body(3, v2)
    assert _body(srv, READ, RW, {"name": name}, V1) == rc_body(v1)


def test_names_end_at_nul_and_at_the_equals_sign() -> None:
    srv = server(handlers_profile())
    assert read(srv, "app/greeting\0junk") == {"val": b"hello"}
    assert read(srv, "app/greeting=junk") == {"val": b"hello"}
    assert read(srv, "app/greet") == {"err": {"group": 3, "rc": 3}}


def test_the_most_specific_handler_wins() -> None:
    prof = handlers_profile()
    settings = prof.firmware.settings
    nested = dataclasses.replace(settings.handlers[0], name="app/net", keys=(
        dataclasses.replace(settings.handlers[0].keys[0], name="ip", default="10.0.0.1"),))
    prof = dataclasses.replace(prof, firmware=dataclasses.replace(
        prof.firmware, settings=dataclasses.replace(settings,
                                                    handlers=(nested, *settings.handlers))))
    srv = server(prof)
    assert read(srv, "app/net/ip") == {"val": b"10.0.0.1"}
    assert read(srv, "app/greeting") == {"val": b"hello"}


def test_save_persists_across_a_reset_and_unsaved_writes_do_not() -> None:
    srv = server(handlers_profile())
    assert write(srv, "app/greeting", b"saved") == {}
    assert save(srv) == {}
    assert write(srv, "app/greeting", b"unsaved") == {}
    srv.device.reset()
    assert read(srv, "app/greeting") == {"val": b"saved"}
    assert read(srv, "app/interval") == {"val": b"60"}  # saved too: the default


def test_delete_removes_from_storage_only() -> None:
    srv = server(handlers_profile())
    write(srv, "app/greeting", b"saved")
    save(srv)
    assert cbor2.loads(_body(srv, WRITE, DELETE, {"name": "app/greeting"})) == {}
    assert read(srv, "app/greeting") == {"val": b"saved"}  # RAM untouched
    srv.device.reset()
    assert read(srv, "app/greeting") == {"val": b"hello"}  # back to the default
    # Deleting what storage does not hold is fine, even for a name no handler owns.
    assert _body(srv, WRITE, DELETE, {"name": "nosuch/key"}) == H("bfff")


def test_delete_refused_by_the_handler() -> None:
    srv = server(handlers_profile())
    assert _body(srv, WRITE, DELETE, {"name": "id/serial"}) == err_body(3, 7)
    assert _body(srv, WRITE, DELETE, {"name": "id/serial"}, V1) == rc_body(1)


def test_load_brings_back_what_storage_holds() -> None:
    srv = server(handlers_profile())
    write(srv, "app/greeting", b"stored")
    write(srv, "secret/token", b"t0k3n")
    save(srv)
    write(srv, "app/greeting", b"changed")
    write(srv, "secret/token", b"other")
    assert cbor2.loads(_body(srv, READ, LOAD_SAVE)) == {}
    assert read(srv, "app/greeting") == {"val": b"stored"}
    assert srv.device.settings.values["secret", "token"] == b"t0k3n"  # write-only: no read


def test_handlers_that_do_not_export_are_not_saved() -> None:
    srv = server(handlers_profile())
    save(srv)
    store = srv.device.settings.store
    assert store is not None
    assert sorted(name for name, _ in store.items()) == [b"app/greeting", b"app/interval"]
    # secret/token is empty: saving an empty value stores nothing (it is a deletion)


def test_commit_calls_the_handlers() -> None:
    srv = server(handlers_profile())
    before = srv.device.settings.commits
    assert _body(srv, WRITE, COMMIT) == H("bfff")
    assert srv.device.settings.commits == before + 1


def test_handlers_without_storage_backend() -> None:
    srv = server(handlers_profile(partition=False))
    assert write(srv, "app/greeting", b"ram") == {}
    assert read(srv, "app/greeting") == {"val": b"ram"}
    assert save(srv) == {"err": {"group": 3, "rc": 8}}
    assert _body(srv, WRITE, DELETE, {"name": "app/greeting"}) == err_body(3, 3)
    srv.device.reset()
    assert read(srv, "app/greeting") == {"val": b"hello"}


def test_a_full_store_makes_save_fail_with_unknown() -> None:
    prof = handlers_profile()
    settings = prof.firmware.settings
    many = dataclasses.replace(settings.handlers[0], keys=tuple(
        dataclasses.replace(settings.handlers[0].keys[0], name=f"k{i:03d}", default="v" * 32)
        for i in range(200)))
    prof = dataclasses.replace(prof, firmware=dataclasses.replace(
        prof.firmware, settings=SettingsConfig(partition="settings", handlers=(many,))))
    srv = server(prof)
    assert save(srv) == {"err": {"group": 3, "rc": 1}}
    assert _body(srv, WRITE, LOAD_SAVE, {}, V1) == rc_body(1)


def test_save_with_a_name_saves_that_subtree_only() -> None:
    srv = server(handlers_profile())
    write(srv, "app/greeting", b"app value")
    write(srv, "secret/token", b"secret value")
    assert cbor2.loads(_body(srv, WRITE, LOAD_SAVE, {"name": "secret"})) == {}
    store = srv.device.settings.store
    assert store is not None
    assert dict(store.items()) == {b"secret/token": b"secret value"}
    # A name below a handler's subtree matches no handler: nothing to save, no error.
    assert cbor2.loads(_body(srv, WRITE, LOAD_SAVE, {"name": "app/greeting"})) == {}
    assert dict(store.items()) == {b"secret/token": b"secret value"}
    assert cbor2.loads(_body(srv, WRITE, LOAD_SAVE, {"name": "app"})) == {}
    assert dict(store.items())[b"app/greeting"] == b"app value"
