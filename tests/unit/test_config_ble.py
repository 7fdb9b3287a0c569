"""``[firmware.ble]``: smp_svr's Bluetooth overlay by default, checked key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from smpsim.config import Ble, builtin_profiles, load_profile
from smpsim.errors import ConfigError


def test_default_board_serves_smp_svr_bt_conf() -> None:
    ble = load_profile("nrf52840dk").firmware.ble
    assert ble == Ble(name="Zephyr", mtu=498, data_length=251, conn_interval_ms=7.5,
                      packets_per_interval=3, reassembly=True)


def test_every_builtin_profile_has_a_valid_ble_section() -> None:
    for name in builtin_profiles():
        ble = load_profile(name).firmware.ble
        assert 23 <= ble.mtu <= 517 and ble.packets_per_interval >= 1


def test_extending_profile_changes_one_key(tmp_path: Path) -> None:
    path = tmp_path / "slow.toml"
    path.write_text('extends = "nrf52840dk"\n[firmware.ble]\nmtu = 23\nreassembly = false\n',
                    encoding="utf-8")
    ble = load_profile(path).firmware.ble
    assert (ble.mtu, ble.reassembly, ble.name, ble.conn_interval_ms) == (23, False, "Zephyr", 7.5)


@pytest.mark.parametrize(("line", "message"), [
    ("mtu = 22", "firmware.ble.mtu must be from 23 to 517"),
    ("mtu = 518", "firmware.ble.mtu must be from 23 to 517"),
    ("data_length = 26", "firmware.ble.data_length must be from 27 to 251"),
    ("conn_interval_ms = 5", "firmware.ble.conn_interval_ms must be from 7.5 to 4000"),
    ("packets_per_interval = 0", "firmware.ble.packets_per_interval must be at least 1"),
    ('name = "--"', "firmware.ble.name must contain a letter or digit"),
    ('name = ""', "firmware.ble.name must contain a letter or digit"),
    (f'name = "{"n" * 249}"', "firmware.ble.name must be at most 248 bytes"),
    ("reassembly = 1", "firmware.ble.reassembly must be bool, not int"),
    ("range = 10", "unknown key firmware.ble.range"),
])
def test_mistakes_name_file_and_key(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'extends = "nrf52840dk"\n[firmware.ble]\n{line}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert str(path.resolve()) in str(info.value)
    assert message in str(info.value)
