"""Profile keys of MCUboot's serial recovery (``[mcuboot.serial_recovery]``): MCUboot's
Kconfig defaults, and load-time checks that name the key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from smpsim.config import SerialRecovery, load_profile
from smpsim.errors import ConfigError


def test_kconfig_defaults() -> None:
    rec = SerialRecovery()
    assert not rec.enabled and rec.framing == "console"
    assert (rec.max_receive_size, rec.max_line_input_len, rec.raw_input_timeout_ms) == \
        (1024, 128, 3000)
    assert not (rec.params or rec.echo or rec.image_state or rec.storage_erase)
    assert rec.image_hash and rec.entrance_gpio and rec.slot_info is None
    assert not (rec.boot_mode or rec.no_application or rec.erase_progressively)


def test_the_default_board_has_recovery() -> None:
    mcuboot = load_profile("nrf52840dk").mcuboot
    assert mcuboot is not None and mcuboot.mode == "swap-move"
    rec = mcuboot.serial_recovery
    assert rec.enabled and rec.entrance_gpio and rec.boot_mode and rec.params


def _error(tmp_path: Path, table: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(f'extends = "nrf52840dk"\n{table}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    return str(info.value)


@pytest.mark.parametrize(("table", "expected"), [
    ('[mcuboot.serial_recovery]\nframing = "cobs"',
     "mcuboot.serial_recovery.framing must be one of 'console', 'raw', not 'cobs'"),
    ("[mcuboot.serial_recovery]\nmax_receive_size = 64",
     "mcuboot.serial_recovery.max_receive_size must be from max_line_input_len (128) to 65535"),
    ("[mcuboot.serial_recovery]\nmax_line_input_len = 256",
     "mcuboot.serial_recovery.params needs max_line_input_len = 128"),
    ("[mcuboot.serial_recovery]\nraw_input_timeout_ms = -1",
     "mcuboot.serial_recovery.raw_input_timeout_ms must be from 0 to 4294967295, not -1"),
    ("[mcuboot.serial_recovery]\nbootmode = true", "unknown key mcuboot.serial_recovery.bootmode"),
    ('[mcuboot.serial_recovery]\nboot_mode = "yes"',
     "mcuboot.serial_recovery.boot_mode must be bool, not str"),
    ('[mcuboot]\nmode = "direct-xip"', "mcuboot.mode must be one of 'swap-move', "),
    ('[mcuboot]\nlog_level = "wrn"', "mcuboot.log_level must be one of 'inf', 'dbg', not 'wrn'"),
])
def test_bad_keys_are_named(tmp_path: Path, table: str, expected: str) -> None:
    assert expected in _error(tmp_path, table)


def test_storage_erase_needs_a_storage_partition(tmp_path: Path) -> None:
    table = "\n".join([
        "[mcuboot.serial_recovery]", "storage_erase = true", "[firmware.fs]",
        'mount_point = ""', "[firmware.settings]", 'partition = ""',
        *[f"[[board.partitions]]\nname = '{n}'\noffset = {o}\nsize = 0x76000"
          for n, o in (("slot0", 0xC000), ("slot1", 0x82000))]])
    assert "mcuboot.serial_recovery.storage_erase needs a 'storage' partition" in \
        _error(tmp_path, table)
