"""The MCU model: boot, reset, retained boot mode, console and flash."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from smpsim.config import load_profile
from smpsim.device.console import log_timestamp
from smpsim.device.mcu import Device
from smpsim.device.rtc import DateTime


def _device(name: str = "native_sim_udp") -> tuple[Device, list[str]]:
    device = Device(load_profile(name))
    lines: list[str] = []
    device.console.subscribe(lines.append)
    return device, lines


def test_power_on_state() -> None:
    device, _ = _device()
    assert not device.running
    assert (device.boot_count, device.boot_mode) == (0, 0)
    assert device.rtc.get() is None


def test_boot_prints_the_banner_and_the_boot_log() -> None:
    device, lines = _device()
    device.boot()
    assert device.running
    assert device.boot_count == 1
    assert lines == [
        "*** Booting Zephyr OS build 684c9e8f32e4 ***",
        # smp_svr's main mounts littlefs first; a new flash cannot be mounted and is formatted
        "[00:00:00.000,000] <inf> littlefs: LittleFS version 2.11, disk version 2.1",
        "[00:00:00.000,000] <inf> littlefs: FS at flash-controller@0:0xfc000 is 4 0x1000-byte "
        "blocks with 512 cycle",
        "[00:00:00.000,000] <inf> littlefs: partition sizes: rd 16 ; pr 16 ; ca 64 ; la 32",
        "[00:00:00.000,000] <err> littlefs: WEST_TOPDIR/modules/fs/littlefs/lfs.c:1386: "
        "Corrupted dir pair at {0x0, 0x1}",
        "[00:00:00.000,000] <wrn> littlefs: can't mount (LFS -84); formatting",
        "[00:00:00.000,000] <inf> littlefs: /lfs1 mounted",
        "[00:00:00.000,000] <inf> smp_sample: build time: Jun  3 2026 22:19:42",
        "[00:00:00.000,000] <inf> smp_udp: Started (IPv4)",
    ]


def test_boot_takes_the_profiles_boot_time() -> None:
    device, _ = _device("native_sim_udp")  # no MCUboot: the board's boot time alone
    device.boot()
    assert device.clock.now() == device.clock.busy_total == pytest.approx(0.01)
    device, _ = _device("nrf52840dk")  # MCUboot starts and checks the image first
    device.boot()
    assert device.clock.now() == device.clock.busy_total
    assert device.clock.busy_total > 0.35 + 0.03 + 0.11
    # main() then formats littlefs on the new flash: 2 erases and their programs, on the clock
    start = device.uptime_s()
    assert 2 * 0.085 < start < 0.2
    device.clock.advance(2.0)
    assert device.uptime_s() == pytest.approx(start + 2.0)


def test_reset_reboots_and_keeps_the_rtc() -> None:
    prof = load_profile("native_sim_udp")
    device = Device(dataclasses.replace(prof, board=dataclasses.replace(prof.board,
                                                                        boot_time_ms=250.0)))
    lines: list[str] = []
    device.console.subscribe(lines.append)
    device.boot()
    device.rtc.set(DateTime(2025, 1, 1, 0, 0, 0))
    device.clock.advance(5.0)
    device.reset()
    assert device.running
    assert device.boot_count == 2
    assert device.uptime_s() == 0.0
    assert device.rtc.get() == DateTime(2025, 1, 1, 0, 0, 5, 250)  # + 250 ms of boot
    assert lines.count("*** Booting Zephyr OS build 684c9e8f32e4 ***") == 2


def test_boot_mode_is_retained_over_reset_then_consumed() -> None:
    device, lines = _device("nrf52840dk")
    device.boot()
    device.boot_mode = 1
    device.power_off()
    assert not device.running
    assert device.boot_mode == 1
    outcome = device.boot()
    assert outcome.recovery and device.in_recovery and not device.running
    assert device.boot_mode == 0
    assert lines[-1] == "I: Enter the serial recovery mode"
    assert device.reset().running  # used once: the next boot runs the application


def test_boot_mode_is_left_alone_without_the_kconfig() -> None:
    device, _ = _device("qemu_cortex_m0_img")
    device.boot()
    device.boot_mode = 1
    assert device.reset().running
    assert device.boot_mode == 1  # nothing in that MCUboot reads it


def test_log_lines_carry_the_uptime() -> None:
    device, lines = _device()
    device.boot()
    device.clock.advance(61.234567)
    device.console.log("wrn", "mod", "text")
    assert lines[-1] == "[00:01:01.234,567] <wrn> mod: text"


@pytest.mark.parametrize(("seconds", "stamp"), [
    (0, "[00:00:00.000,000]"), (1.5, "[00:00:01.500,000]"),
    (3661.000001, "[01:01:01.000,001]"), (100 * 3600, "[100:00:00.000,000]"),
])
def test_log_timestamp(seconds: float, stamp: str) -> None:
    assert log_timestamp(seconds) == stamp


def test_device_flash_has_the_profiles_size(tmp_path: Path) -> None:
    device = Device(load_profile("qemu_cortex_m0_img"), flash_path=tmp_path / "f.bin")
    try:
        assert device.flash.size == 0x40000
        assert (tmp_path / "f.bin").stat().st_size == 0x40000
    finally:
        device.close()
