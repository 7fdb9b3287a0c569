"""The fleet's plan, before anything runs: board specs, ids, identities, addresses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smpsim.config import load_profile
from smpsim.device.mcu import Device
from smpsim.errors import ConfigError
from smpsim.fleet.addressing import Addressing, check_distinct
from smpsim.fleet.identity import identity_of, personalise
from smpsim.fleet.spec import BoardSpec, parse_spec, plan
from smpsim.fleet.workers import shares
from smpsim.mcumgr.server import Server

from .smp_frames import READ, call


@pytest.mark.parametrize(("text", "spec"), [
    ("nrf52840dk:100", BoardSpec("nrf52840dk", 100)),
    ("boards/my.toml:3", BoardSpec("boards/my.toml", 3)),
    ("stm32f4:20@127.0.2.1", BoardSpec("stm32f4", 20, "127.0.2.1")),
    ("fast:1@21000", BoardSpec("fast", 1, "21000")),
])
def test_board_specs(text: str, spec: BoardSpec) -> None:
    assert parse_spec(text) == spec


@pytest.mark.parametrize("text", ["nrf52840dk", ":5", "fast:x", "fast:0", "fast:-2", "fast:2@"])
def test_bad_board_specs(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_spec(text)


def test_boards_of_a_profile_are_numbered_across_specs(tmp_path: Path) -> None:
    boards = plan([parse_spec("fast:2"), parse_spec("stm32f4:1"), parse_spec("fast:1")],
                  tmp_path)
    assert [b.board_id for b in boards] == ["fast-0001", "fast-0002", "stm32f4-0001",
                                            "fast-0003"]
    assert boards[3].flash == tmp_path / "fast-0003.bin" and boards[3].spec == 2
    assert boards[2].profile.board.target == "stm32f4_disco/stm32f407xx"


def test_an_unknown_profile_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no built-in profile 'nosuch'"):
        plan([parse_spec("fast:1"), parse_spec("nosuch:2")], tmp_path)


def test_identity_is_stable_and_distinct() -> None:
    profile = load_profile("nrf52840dk")
    one, two = identity_of("nrf52840dk-0001", profile), identity_of("nrf52840dk-0002", profile)
    assert one == identity_of("nrf52840dk-0001", profile)
    assert one.serial_number != two.serial_number and len(one.serial_number) == 16
    assert one.hostname == "nrf52840dk-0001" and one.ble_name == "Zephyr-nrf52840dk-0001"


def test_a_personalised_board_reports_its_identity() -> None:
    profile = load_profile("nrf52840dk")
    identity = identity_of("nrf52840dk-0042", profile)
    server = Server(Device(personalise(profile, identity)))
    server.device.boot()
    assert call(server, READ, 0, 7, {"format": "n"}) == {"output": "nrf52840dk-0042"}
    assert call(server, READ, 3, 0, {"name": "id/serial"}) == {
        "val": identity.serial_number.encode()}
    assert server.device.profile.firmware.ble.name == "Zephyr-nrf52840dk-0042"
    assert profile.firmware.node_name == "Zephyr"  # the shared profile is left as it was


def test_one_address_per_board_on_port_1337() -> None:
    where = Addressing(first="127.0.1.250")
    assert where.assign([(3, None), (2, None)]) == [
        ("127.0.1.250", 1337), ("127.0.1.251", 1337), ("127.0.1.252", 1337),
        ("127.0.1.253", 1337), ("127.0.1.254", 1337)]
    assert where.assign([(1, None), (2, "127.0.9.1"), (1, None)]) == [
        ("127.0.1.250", 1337), ("127.0.9.1", 1337), ("127.0.9.2", 1337), ("127.0.9.3", 1337)]
    ten_thousand = Addressing(first="127.0.1.1").assign([(10_000, None)])
    assert ten_thousand[-1] == ("127.0.40.16", 1337)


def test_one_port_per_board_on_one_address() -> None:
    where = Addressing(host="::1", base_port=20000)
    assert where.assign([(2, None), (1, "30000"), (1, None)]) == [
        ("::1", 20000), ("::1", 20001), ("::1", 30000), ("::1", 30001)]


@pytest.mark.parametrize(("where", "counts", "message"), [
    (Addressing(first="127.255.255.250"), [(6, None)], "only 5 are left"),
    (Addressing(first="not-an-ip"), [(1, None)], "not an IP address"),
    (Addressing(host="127.0.0.1", base_port=65530), [(7, None)], "the last port is 65535"),
    (Addressing(host="127.0.0.1", base_port=2000), [(1, "70000")], "out of range"),
])
def test_more_boards_than_addresses_or_ports(where: Addressing, counts: list[tuple[int, None]],
                                             message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        where.assign(counts)


def test_overlapping_specs_are_found() -> None:
    endpoints = Addressing(first="127.0.1.1").assign([(3, None), (2, "127.0.1.3")])
    with pytest.raises(ConfigError, match=re.escape(
            "fast-0003 and stm32f4-0001 would both serve 127.0.1.3:1337")):
        check_distinct(endpoints, ["fast-0001", "fast-0002", "fast-0003", "stm32f4-0001",
                                   "stm32f4-0002"])


def test_workers_get_contiguous_shares() -> None:
    assert shares(10, 3) == [range(0, 4), range(4, 7), range(7, 10)]
    assert shares(10_000, 2) == [range(0, 5000), range(5000, 10_000)]
