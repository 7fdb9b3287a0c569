"""Profiles: every built-in one loads, ``extends`` merges, and every mistake names file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from smpsim.config import (
    DEFAULT_PROFILE,
    Firmware,
    OsConfig,
    Thread,
    builtin_profiles,
    load_profile,
)
from smpsim.config.catalog import GROUPS
from smpsim.config.schema import MCUBOOT_MODES, SIGNATURES
from smpsim.device.mcuboot import keys
from smpsim.device.mcuboot.trailer import Mode
from smpsim.errors import ConfigError, SmpsimError

BUILTIN = ["esp32c3", "fast", "mps2_an385_serial_recovery", "mps2_an385_serial_recovery_buf1024",
           "mps2_an385_serial_recovery_raw", "native_sim_serial", "native_sim_serial_bigrx",
           "native_sim_serial_buf2048", "native_sim_serial_buf96", "native_sim_serial_fs",
           "native_sim_serial_noparams", "native_sim_serial_raw", "native_sim_shell",
           "native_sim_udp", "native_sim_udp6", "nrf52840dk", "nrf5340dk", "qemu_cortex_m0_img",
           "stm32f4"]

MINIMAL = """
[board]
target = "t/x"
arch = "arm"
processor = "cortex-m0"
[board.flash]
size = 65536
[firmware]
kernel_version = "4.4.0"
build_version = "v1"
buf_size = 384
buf_count = 4
[firmware.groups]
os = ["echo"]
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str, name: str = "bad.toml") -> str:
    path = _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    message = str(info.value)
    assert str(path) in message  # every error names the file
    return message


# ----------------------------------------------------------------------------- built-ins


def test_the_builtin_list() -> None:
    assert builtin_profiles() == BUILTIN
    assert DEFAULT_PROFILE in BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_profile_loads(name: str) -> None:
    prof = load_profile(name)
    assert prof.name == name
    assert prof.source == f"<built-in {name}>"
    assert prof.description
    assert prof.firmware.buf_size >= 16
    for group, commands in prof.firmware.groups.items():
        assert set(commands) <= set(GROUPS[group].commands)
    assert prof.firmware.threads


@pytest.mark.parametrize(("name", "buf_size", "buf_count"), [
    ("native_sim_udp", 2048, 2), ("native_sim_udp6", 2048, 2),
    ("native_sim_serial_bigrx", 384, 4), ("native_sim_serial_buf96", 96, 4),
    ("native_sim_serial_buf2048", 2048, 4), ("native_sim_serial_fs", 1024, 4),
    ("qemu_cortex_m0_img", 384, 4), ("nrf52840dk", 2475, 4),
])
def test_buffers_match_the_recorded_builds(name: str, buf_size: int, buf_count: int) -> None:
    fw = load_profile(name).firmware
    assert (fw.buf_size, fw.buf_count) == (buf_size, buf_count)


def test_profile_enabled() -> None:
    prof = load_profile("native_sim_serial_noparams")
    assert prof.enabled("os", "echo")
    assert not prof.enabled("os", "params")
    assert not prof.enabled("img", "state")


# ----------------------------------------------------------------------------- extends


def test_extends_merges_tables_and_replaces_groups_and_arrays() -> None:
    base, child = load_profile("native_sim_udp"), load_profile("native_sim_udp6")
    assert child.board == base.board  # inherited whole
    assert child.firmware.kernel_version == base.firmware.kernel_version
    assert child.firmware.build_date == "Wed Jun  3 22:18:40 2026"  # overridden
    assert set(child.firmware.groups) == {"os", "stat", "enum"}  # replaced, not merged
    assert child.firmware.os.taskstat_key == "prio"  # merged key by key ...
    assert child.firmware.os.reset_ms == base.firmware.os.reset_ms  # ... keeping the rest
    assert [t.name for t in child.firmware.threads][1] == "smp_udp6"  # arrays replace
    assert len(child.firmware.threads) == 8


def test_extends_chains() -> None:
    prof = load_profile("native_sim_serial_buf96")  # -> serial_bigrx -> udp
    assert prof.firmware.buf_size == 96
    assert prof.firmware.buf_count == 4  # from serial_bigrx
    assert prof.board.target == "native_sim/native"  # from udp


def test_a_file_extending_a_builtin(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.toml", """
extends = "native_sim_udp"
description = "mine"
[firmware]
node_name = "board-7"
[firmware.os]
datetime_ms = true
[firmware.groups]
os = ["echo", "datetime"]
""")
    prof = load_profile(path)
    assert prof.name == "mine"
    assert prof.source == str(path)
    assert prof.firmware.node_name == "board-7"
    assert prof.firmware.os == OsConfig(datetime_ms=True)  # the rest from the parent
    assert prof.firmware.groups == {"os": ("echo", "datetime")}
    assert prof.firmware.buf_size == 2048


def test_a_file_extending_a_file_by_relative_path(tmp_path: Path) -> None:
    _write(tmp_path, "base.toml", MINIMAL)
    sub = tmp_path / "sub"
    sub.mkdir()
    child = _write(sub, "child.toml", 'extends = "../base.toml"\n[firmware]\nbuf_count = 8\n')
    prof = load_profile(child)
    assert (prof.firmware.buf_size, prof.firmware.buf_count) == (384, 8)
    assert prof.name == "child"


def test_minimal_profile_gets_the_defaults(tmp_path: Path) -> None:
    prof = load_profile(_write(tmp_path, "mini.toml", MINIMAL))
    fw = prof.firmware
    assert fw.build_date is None
    assert fw.original_protocol
    assert not fw.verbose_errors
    assert fw.os == OsConfig()
    assert fw.threads == ()
    assert prof.board.boot_time_ms == 300.0
    assert prof.board.flash.erase_block == 4096


def test_explicit_name_wins(tmp_path: Path) -> None:
    assert load_profile(_write(tmp_path, "f.toml", 'name = "given"\n' + MINIMAL)).name == "given"


def test_ints_are_accepted_for_floats(tmp_path: Path) -> None:
    prof = load_profile(_write(tmp_path, "f.toml", MINIMAL.replace(
        'processor = "cortex-m0"', 'processor = "cortex-m0"\nboot_time_ms = 10')))
    assert prof.board.boot_time_ms == 10.0
    assert type(prof.board.boot_time_ms) is float


def test_threads_are_typed(tmp_path: Path) -> None:
    prof = load_profile(_write(tmp_path, "f.toml", MINIMAL + """
[[firmware.threads]]
name = "main"
prio = -2
state = 4
"""))
    assert prof.firmware.threads == (Thread("main", -2, 4),)
    assert isinstance(prof.firmware, Firmware)


# ----------------------------------------------------------------------------- errors


def test_unknown_key(tmp_path: Path) -> None:
    message = _error(tmp_path, MINIMAL.replace("buf_count = 4", "buf_count = 4\nbogus = 1"))
    assert "unknown key firmware.bogus" in message
    message = _error(tmp_path, MINIMAL.replace("[board.flash]", "[board.flash]\nbogus = 1"))
    assert "unknown key board.flash.bogus" in message
    message = _error(tmp_path, "colour = 'red'\n" + MINIMAL)
    assert "unknown key colour" in message


def test_source_is_not_a_settable_key(tmp_path: Path) -> None:
    assert "unknown key source" in _error(tmp_path, "source = 'x'\n" + MINIMAL)


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("buf_size = 384", 'buf_size = "384"', "firmware.buf_size must be int, not str"),
    ("buf_size = 384", "buf_size = true", "firmware.buf_size must be an integer, not a boolean"),
    ("buf_size = 384", "buf_size = 384.0", "firmware.buf_size must be int, not float"),
    ('arch = "arm"', "arch = 1", "board.arch must be str, not int"),
    ("size = 65536", 'size = "64k"', "board.flash.size must be int, not str"),
    ('os = ["echo"]', 'os = "echo"', "firmware.groups.os must be an array"),
    ('os = ["echo"]', "os = [1]", "firmware.groups.os[0] must be str, not int"),
    ("[board.flash]", "flash = 1\n[firmware.x]", "board.flash must be a table"),
])
def test_wrong_type(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in _error(tmp_path, MINIMAL.replace(old, new))


def test_wrong_type_in_an_array_of_tables(tmp_path: Path) -> None:
    message = _error(tmp_path, MINIMAL.replace("[firmware.groups]", "threads = [1]\n"
                                                "[firmware.groups]"))
    assert "firmware.threads[0] must be a table" in message
    message = _error(tmp_path, MINIMAL + '[[firmware.threads]]\nname = "a"\nprio = "high"\n'
                     "state = 0\n")
    assert "firmware.threads[0].prio must be int" in message


def test_groups_must_be_a_table(tmp_path: Path) -> None:
    text = MINIMAL.replace('[firmware.groups]\nos = ["echo"]', 'groups = ["os"]')
    assert "firmware.groups must be a table" in _error(tmp_path, text)


def test_unknown_group(tmp_path: Path) -> None:
    message = _error(tmp_path, MINIMAL + 'mcu = ["x"]\n')
    assert "firmware.groups: unknown group 'mcu'" in message
    assert "os, img" in message  # the known ones are listed


def test_unknown_command(tmp_path: Path) -> None:
    message = _error(tmp_path, MINIMAL.replace('os = ["echo"]', 'os = ["echo", "mpstat"]'))
    assert "firmware.groups.os: unknown command 'mpstat'" in message
    assert "echo, taskstat" in message


def test_missing_key(tmp_path: Path) -> None:
    assert "missing key board.target" in _error(tmp_path, MINIMAL.replace('target = "t/x"', ""))
    assert "missing key firmware.buf_size" in _error(tmp_path,
                                                     MINIMAL.replace("buf_size = 384", ""))
    assert "missing key board.flash.size" in _error(tmp_path, MINIMAL.replace("size = 65536", ""))
    assert "missing key firmware.threads[0].state" in _error(
        tmp_path, MINIMAL + '[[firmware.threads]]\nname = "a"\nprio = 1\n')


def test_bad_option_values(tmp_path: Path) -> None:
    message = _error(tmp_path, MINIMAL + '[firmware.os]\ntaskstat_key = "tid"\n')
    assert "firmware.os.taskstat_key" in message
    assert "firmware.buf_size must be at least 16" in _error(
        tmp_path, MINIMAL.replace("buf_size = 384", "buf_size = 8"))


@pytest.mark.parametrize(("table", "key", "allowed"), [
    ('[mcuboot]\nmode = "swap-sideways"\n', "mcuboot.mode", "'swap-move'"),
    ('[mcuboot]\nsignature = "dsa"\n', "mcuboot.signature", "'ecdsa-p256'"),
    ('[mcuboot]\nkeys = ["nokey"]\n', "mcuboot.keys[0]", "insecure-test-ed25519"),
    ('[firmware.serial]\ntransport = "usb"\n', "firmware.serial.transport", "'raw'"),
    ('[[firmware.stats]]\nname = "x"\nkind = "gauge"\n', "firmware.stats[0].kind", "'smp_svr'"),
])
def test_enums_are_checked_when_the_profile_loads(tmp_path: Path, table: str, key: str,
                                                  allowed: str) -> None:
    message = _error(tmp_path, 'extends = "nrf52840dk"\n' + table)
    assert key in message and allowed in message  # the file, the key and what is allowed


def test_schema_choices_are_what_the_device_models() -> None:
    assert tuple(mode.value for mode in Mode) == MCUBOOT_MODES
    assert SIGNATURES == keys.SIGNATURES


def test_extends_loop(tmp_path: Path) -> None:
    _write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    _write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(ConfigError, match="loops back") as info:
        load_profile(tmp_path / "a.toml")
    assert str(tmp_path / "a.toml") in str(info.value)


def test_extends_itself(tmp_path: Path) -> None:
    assert "loops back" in _error(tmp_path, 'extends = "bad.toml"\n')


def test_extends_must_be_a_string(tmp_path: Path) -> None:
    assert "extends must be" in _error(tmp_path, "extends = 3\n")


def test_extends_a_missing_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "child.toml", 'extends = "nowhere.toml"\n')
    with pytest.raises(ConfigError, match="cannot read profile") as info:
        load_profile(path)
    assert "nowhere.toml" in str(info.value)


def test_unknown_builtin_name() -> None:
    with pytest.raises(ConfigError, match="no built-in profile 'nrf99'") as info:
        load_profile("nrf99")
    assert "nrf52840dk" in str(info.value)  # the known ones are listed


def test_unknown_builtin_as_parent(tmp_path: Path) -> None:
    assert "no built-in profile 'nope'" in _error_any(tmp_path, 'extends = "nope"\n')


def _error_any(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_profile(_write(tmp_path, "p.toml", text))
    return str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read profile"):
        load_profile(tmp_path / "absent.toml")


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    _error(tmp_path, "[board\n")


def test_config_error_is_an_smpsim_error() -> None:
    assert issubclass(ConfigError, SmpsimError)
