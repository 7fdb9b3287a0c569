"""Statistics groups on the device: what the profile declares, what counts, the shell's
``stats list``, and the profile checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from smpsim.config import StatsGroup, load_profile
from smpsim.device.mcu import Device
from smpsim.device.shell.dummy import execute
from smpsim.errors import ConfigError

from .smp_frames import profile


def booted(name: str = "native_sim_udp", **firmware: object) -> Device:
    prof = profile(name, **firmware)
    # A dummy shell buffer big enough for whole listings (the build's keeps 511 bytes).
    shell = dataclasses.replace(prof.firmware.shell, dummy_buf_size=8192)
    device = Device(dataclasses.replace(prof, firmware=dataclasses.replace(prof.firmware,
                                                                           shell=shell)))
    device.boot()
    return device


def test_profiles_declare_their_groups_in_registration_order() -> None:
    fs_build = [g.name for g in load_profile("native_sim_serial_fs").firmware.stats]
    assert fs_build == ["flash_sim_stats", "flash_sim_thresholds", "smp_svr_stats"]
    for name in ("native_sim_udp6", "native_sim_serial_raw", "qemu_cortex_m0_img", "nrf52840dk"):
        assert [g.name for g in load_profile(name).firmware.stats] == ["smp_svr_stats"]


def test_flash_sim_fields_are_the_drivers() -> None:
    group = load_profile("native_sim_udp").firmware.stats[0]
    names = group.field_names
    assert len(names) == 9 + 2 * 256
    assert names[:9] == ("bytes_read", "bytes_written", "double_writes", "flash_read_calls",
                         "flash_read_time_us", "flash_write_calls", "flash_write_time_us",
                         "flash_erase_calls", "flash_erase_time_us")
    assert names[9] == "erase_cycles_unit0" and names[264] == "erase_cycles_unit255"
    assert names[265] == "dirty_read_unit0" and names[-1] == "dirty_read_unit255"


def test_values_come_from_the_flash_model_since_the_application_started() -> None:
    device = booted()
    flash_stats = device.stats.find("flash_sim_stats")
    assert flash_stats is not None
    # The first boot formatted littlefs on the storage partition (units 252-255): counted.
    boot = dict(device.stats.values(flash_stats))
    assert boot["flash_erase_calls"] > 0 and boot["erase_cycles_unit252"] > 0
    assert boot["flash_read_calls"] > 0 and boot["bytes_written"] > 0
    device.flash.erase(0x3000, 0x1000)
    device.flash.erase(0x3000, 0x1000)
    device.flash.write(0x3000, b"\x00" * 8)
    values = dict(device.stats.values(flash_stats))
    assert values["erase_cycles_unit3"] == 2
    assert values["flash_erase_calls"] == boot["flash_erase_calls"] + 2
    assert values["flash_write_calls"] == boot["flash_write_calls"] + 1
    assert values["bytes_written"] == boot["bytes_written"] + 8
    assert values["dirty_read_unit3"] == 0 and values["double_writes"] == 0
    device.reset()
    again = dict(device.stats.values(flash_stats))
    assert again["erase_cycles_unit3"] == 0  # RAM counters: only this boot's mount counts
    assert again["flash_erase_calls"] == 0 and again["flash_read_calls"] > 0


def test_a_kind_none_group_counts_nothing() -> None:
    device = booted(stats=(StatsGroup("mine", "none", ("a", "b")),))
    group = device.stats.find("mine")
    assert group is not None
    device.clock.advance(100)
    assert device.stats.values(group) == [("a", 0), ("b", 0)]
    assert device.stats.find("smp_svr_stats") is None


def test_ticks_wrap_at_32_bits() -> None:
    device = booted()
    device.clock.advance(2 ** 32 + 5)
    group = device.stats.find("smp_svr_stats")
    assert group is not None
    assert device.stats.values(group) == [("ticks", 5)]


# ----------------------------------------------------------------------------- shell


def test_shell_stats_list_prints_every_group_as_zephyr() -> None:
    device = booted("native_sim_udp6")
    device.clock.advance(5.5)
    out, ret = execute(device, ["stats", "list"])
    assert ret == 0
    # ram_base 0x080a4000; a 24-byte header, then the 4-byte counters
    assert out == ("\r\nStats Group smp_svr_stats (hdr addr: 0x80a5400)\r\n"
                   "\tticks (offset: 24, addr: 0x80a5418): 5\r\n")


def test_shell_stats_list_lays_the_groups_out_one_after_the_other() -> None:
    small = tuple(dataclasses.replace(g, units=2) if g.kind == "flash_sim" else g
                  for g in profile().firmware.stats)
    device = booted(stats=small)
    out, _ = execute(device, ["stats", "list"])
    lines = out.split("\r\n")
    assert lines[1] == "Stats Group flash_sim_stats (hdr addr: 0x80a5400)"
    assert lines[2].startswith("\tbytes_read (offset: 24, addr: 0x80a5418): ")
    assert "\terase_cycles_unit1 (offset: 64, addr: 0x80a5440): 0" in lines
    assert "\tdirty_read_unit1 (offset: 72, addr: 0x80a5448): 0" in lines
    # flash_sim_stats: 24 + 13 * 4 = 76 bytes, so the next group starts at 0x80a544c
    assert "Stats Group flash_sim_thresholds (hdr addr: 0x80a544c)" in lines
    assert "\tmax_write_calls (offset: 24, addr: 0x80a5464): 0" in lines
    # thresholds: 24 + 3 * 4 = 36 bytes, so smp_svr_stats starts at 0x80a5470
    assert lines[-2] == "\tticks (offset: 24, addr: 0x80a5488): 0"


def test_shell_stats_help() -> None:
    device = booted("native_sim_udp6")
    out, _ = execute(device, ["stats"])
    assert "list  : List all statistics groups" in out
    out, _ = execute(device, ["help"])
    assert "  stats    : Stats commands" in out


# ----------------------------------------------------------------------------- profile checks


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "p.toml"
    path.write_text('extends = "native_sim_udp6"\n' + text, encoding="utf-8")
    return load_profile(path)


@pytest.mark.parametrize(("text", "message"), [
    ('[[firmware.stats]]\nname = "a"\nkind = "bogus"\n', r"stats\[0\]\.kind must be one of"),
    ('[[firmware.stats]]\nname = "a"\nkind = "smp_svr"\nfields = ["tocks"]\n',
     "tocks not counted by kind 'smp_svr'"),
    ('[[firmware.stats]]\nname = "a"\n[[firmware.stats]]\nname = "a"\n', "registered twice"),
    ('[[firmware.stats]]\nname = "a"\nkind = "smp_svr"\nunits = 2\n', "'flash_sim' kind only"),
    ('[[firmware.stats]]\nname = "a"\nkind = "flash_sim"\nunits = 257\n', "units must be 0 to 256"),
    ('[[firmware.stats]]\nname = ""\n', r"name must not be empty"),
    ('[[firmware.stats]]\nname = "a"\nfields = ["x", "x"]\n', "a field is named twice"),
    ('[[firmware.stats]]\nname = "a"\nsource = "x"\n', r"unknown key firmware\.stats\[0\]"),
])
def test_bad_stats_declarations(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, text)


def test_missing_stats_means_smp_svr_stats_alone() -> None:
    # The QEMU profile declares none: the sample's own group is the default.
    text = (Path(__file__).parents[2] / "simulator/smpsim/profiles/qemu_cortex_m0_img.toml")
    assert "firmware.stats" not in text.read_text(encoding="utf-8")
    assert load_profile("qemu_cortex_m0_img").firmware.stats == (
        StatsGroup("smp_svr_stats", "smp_svr"),)
