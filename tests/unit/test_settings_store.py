"""The settings store in flash: the log format, garbage collection, and what survives a reset and
a power cut at every flash operation (the old value or the new one, never anything else)."""

from __future__ import annotations

import dataclasses
import functools
import os

import pytest

from smpsim.config import Partition, Profile, SettingsConfig, SettingsHandler, SettingsKey
from smpsim.device.flash import PowerLoss
from smpsim.device.mcu import Device
from smpsim.device.settings.log import NoSpace, SettingsLog
from smpsim.device.settings.store import Settings, SettingsError, name_steq
from smpsim.errors import ConfigError

from .smp_frames import profile

SECTOR = 0x1000


def store_profile(sectors: int = 2, keys: int = 3, max_size: int = 32) -> Profile:
    """native_sim_udp with an ``app`` handler of ``keys`` keys in a settings partition."""
    base = profile()
    handler = SettingsHandler("app", tuple(SettingsKey(f"k{i}", max_size, f"d{i}")
                                           for i in range(keys)))
    return dataclasses.replace(
        base,
        board=dataclasses.replace(base.board, partitions=(
            Partition("settings", 0xE0000, sectors * SECTOR),)),
        firmware=dataclasses.replace(base.firmware, settings=SettingsConfig(
            partition="settings", handlers=(handler,))))


def booted(prof: Profile) -> Device:
    device = Device(prof)
    device.boot()
    return device


def settings(device: Device) -> Settings:
    return device.settings


def log(device: Device) -> SettingsLog:
    store = device.settings.store
    assert store is not None
    return store


def reboot(device: Device) -> None:
    """Power cycle: RAM lost, flash kept."""
    device.power_off()
    device.boot()


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize(("name", "key", "expected"), [
    ("app/greeting", "app", (True, "greeting")),
    ("app", "app", (True, None)),
    ("app=1", "app", (True, None)),
    ("application", "app", (False, None)),
    ("ap", "app", (False, None)),
    ("app/net/ip", "app/net", (True, "ip")),
    ("a=p/x", "a=p", (False, None)),  # '=' ends the name before the key is matched
])
def test_name_steq(name: str, key: str, expected: tuple[bool, str | None]) -> None:
    assert name_steq(name, key) == expected


# ----------------------------------------------------------------------------- the log


def test_values_survive_a_reset() -> None:
    device = booted(store_profile())
    settings(device).set("app/k0", b"\x00\x01new")
    settings(device).save()
    reboot(device)
    assert settings(device).get("app/k0", 32) == b"\x00\x01new"
    assert settings(device).get("app/k1", 32) == b"d1"


def test_the_log_is_in_the_flash_file(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "flash.bin")
    device = Device(store_profile(), flash_path=path)
    device.boot()
    settings(device).set("app/k2", b"on disk")
    settings(device).save()
    device.close()
    again = Device(store_profile(), flash_path=path)
    again.boot()
    assert settings(again).get("app/k2", 32) == b"on disk"
    again.close()


def test_saving_unchanged_values_writes_nothing() -> None:
    device = booted(store_profile())
    settings(device).save()
    writes = device.flash.writes
    settings(device).save()
    settings(device).delete("app/nothing-stored")
    assert device.flash.writes == writes


def test_one_record_per_changed_value() -> None:
    device = booted(store_profile())
    settings(device).save()
    writes = device.flash.writes
    settings(device).set("app/k1", b"x")
    settings(device).save()
    assert device.flash.writes == writes + 1


def test_garbage_collection_keeps_every_live_value() -> None:
    device = booted(store_profile(sectors=2))
    for round_ in range(2000):  # about ten sectors' worth of records
        settings(device).set("app/k0", f"value {round_}".encode())
        settings(device).save()
    store = log(device)
    assert store.gc_runs >= 8
    settings(device).delete("app/k2")
    reboot(device)
    assert settings(device).get("app/k0", 32) == b"value 1999"
    assert settings(device).get("app/k1", 32) == b"d1"
    assert settings(device).get("app/k2", 32) == b"d2"  # deleted: the default again
    assert sorted(n for n, _ in log(device).items()) == [b"app/k0", b"app/k1"]


def test_three_sectors_rotate_through_all_of_them() -> None:
    device = booted(store_profile(sectors=3))
    erased_before = list(device.flash.sector_erases)
    for round_ in range(3000):
        settings(device).set("app/k1", round_.to_bytes(2, "little"))
        settings(device).save()
    first = 0xE0000 // SECTOR
    wear = [device.flash.sector_erases[first + i] - erased_before[first + i] for i in range(3)]
    assert min(wear) >= 3 and max(wear) - min(wear) <= 1  # every sector takes its turn
    reboot(device)
    assert settings(device).get("app/k1", 32) == (2999).to_bytes(2, "little")


def test_live_data_larger_than_a_sector_is_no_space() -> None:
    device = booted(store_profile(sectors=2, keys=100, max_size=64))
    for index in range(100):
        settings(device).set(f"app/k{index}", bytes([index]) * 64)
    with pytest.raises(SettingsError) as exc:
        settings(device).save()
    assert exc.value.errno == 28  # -ENOSPC
    reboot(device)  # what was stored is still readable
    stored = dict(log(device).items())
    assert stored and all(value == bytes([int(name[5:])]) * 64 for name, value in stored.items())


def test_one_sector_partition_fills_up_without_garbage_collection() -> None:
    device = booted(store_profile(sectors=1))
    with pytest.raises(SettingsError):
        for round_ in range(200):
            settings(device).set("app/k0", f"value {round_}".encode())
            settings(device).save()
    reboot(device)
    assert settings(device).get("app/k0", 32).startswith(b"value ")


def test_garbage_in_the_partition_is_erased_before_use() -> None:
    prof = store_profile()
    device = Device(prof)
    device.flash.program(0xE0000, bytes(range(256)) * 32)  # whatever was there before
    device.boot()
    assert log(device).items() == []
    settings(device).set("app/k0", b"fresh")
    settings(device).save()
    reboot(device)
    assert settings(device).get("app/k0", 32) == b"fresh"


def test_a_damaged_record_is_ignored_and_the_previous_value_stays() -> None:
    device = booted(store_profile())
    settings(device).set("app/k0", b"first")
    settings(device).save()
    settings(device).set("app/k0", b"second")
    settings(device).save()
    # Flip one bit of the last record's value (a bit can always be cleared on NOR flash).
    raw = device.flash.read(0xE0000, SECTOR)
    at = raw.rindex(b"second")
    device.flash.program(0xE0000, raw[:at] + bytes([raw[at] & 0xFE]) + raw[at + 1:])
    reboot(device)
    assert settings(device).get("app/k0", 32) == b"first"
    settings(device).set("app/k0", b"third")  # the damaged sector is closed: a new one opens
    settings(device).save()
    reboot(device)
    assert settings(device).get("app/k0", 32) == b"third"


def test_records_are_aligned_to_the_write_block() -> None:
    prof = store_profile()
    prof = dataclasses.replace(prof, board=dataclasses.replace(
        prof.board, flash=dataclasses.replace(prof.board.flash, write_block=8)))
    device = booted(prof)
    for value in (b"a", b"abc", b"abcdefghi"):
        settings(device).set("app/k0", value)
        settings(device).save()  # NorFlash refuses a misaligned write
    reboot(device)
    assert settings(device).get("app/k0", 32) == b"abcdefghi"


def test_settings_load_reports_values_the_handler_refuses() -> None:
    device = booted(store_profile(max_size=32))
    log(device).save(b"app/k0", b"x" * 40)  # longer than the key allows
    log(device).save(b"other/key", b"nobody's")  # no handler: skipped quietly
    lines: list[str] = []
    device.console.subscribe(lines.append)
    reboot(device)
    assert [line.split("> ", 1)[1] for line in lines if "<err>" in line] == [
        "settings: set-value failure. key: app/k0 error(-22)"]
    assert settings(device).get("app/k0", 32) == b"d0"


def test_direct_log_api() -> None:
    device = booted(store_profile())
    store = log(device)
    store.save(b"a", b"1")
    store.save(b"b", b"2")
    store.save(b"a", None)
    assert store.get(b"a") is None and store.get(b"b") == b"2"
    with pytest.raises(NoSpace):
        store.save(b"n" * 300, b"x")


# ----------------------------------------------------------------------------- power cuts


def _prepared(fill: int) -> Device:
    """A device whose log holds ``fill`` saves of k0 after one of everything."""
    device = booted(store_profile(sectors=2))
    settings(device).set("app/k1", b"other")
    settings(device).save()
    for round_ in range(fill):
        settings(device).set("app/k0", f"old {round_:04d}".encode())
        settings(device).save()
    return device


def _clone(device: Device) -> Device:
    """A powered-off copy of ``device`` with the same flash contents."""
    copy = Device(device.profile)
    copy.flash.program(0, device.flash.read(0, device.flash.size))
    return copy


@functools.cache
def _collecting_fill() -> int:
    """The fill after which the next save of k0 must collect the other sector."""
    device = _prepared(0)
    for fill in range(1000):
        runs = log(device).gc_runs
        settings(device).set("app/k0", b"NEW VALUE")
        probe = _clone(device)
        probe.boot()
        probe.settings.set("app/k0", b"NEW VALUE")
        probe.settings.save()
        if log(probe).gc_runs > 0:
            return fill
        assert log(device).gc_runs == runs
        settings(device).set("app/k0", f"old {fill:04d}".encode())
        settings(device).save()
    raise AssertionError("no garbage collection in 1000 saves")


def _save_with_cuts(origin: Device) -> int:
    """Save a new k0 with the power cut before each of the save's flash operations in turn;
    after each cut, boot and check every value. Returns how many operations the save takes."""
    old = settings(origin).get("app/k0", 32)
    probe = _clone(origin)
    probe.boot()
    probe.settings.set("app/k0", b"NEW VALUE")
    start = probe.flash.ops
    probe.settings.save()
    total = probe.flash.ops - start
    for cut in range(1, total + 1):
        device = _clone(origin)
        device.boot()
        device.settings.set("app/k0", b"NEW VALUE")
        device.flash.cut_power_before(cut)
        with pytest.raises(PowerLoss):
            device.settings.save()
        device.power_off()
        device.boot()
        assert settings(device).get("app/k0", 32) in (old, b"NEW VALUE"), cut
        assert settings(device).get("app/k1", 32) == b"other", cut
        assert settings(device).get("app/k2", 32) == b"d2", cut
        device.settings.set("app/k0", b"after")  # and the store still works
        device.settings.save()
        reboot(device)
        assert settings(device).get("app/k0", 32) == b"after", cut
    return total


@pytest.mark.parametrize("fill", [0, 1, 2, 50])
def test_power_cut_at_every_flash_operation_of_a_plain_save(fill: int) -> None:
    assert _save_with_cuts(_prepared(fill)) == 1  # one record, one write


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_power_cut_at_every_flash_operation_of_a_collecting_save(offset: int) -> None:
    total = _save_with_cuts(_prepared(_collecting_fill() + offset))
    # The save that collects: the new sector's header, copies of k0 (its old value must not
    # be lost before the new one is written), k1 and k2, the erase, the record.
    assert total == (6 if offset == 0 else 1)


def test_a_collection_cut_before_its_erase_is_finished_at_boot() -> None:
    origin = _prepared(_collecting_fill())
    old = settings(origin).get("app/k0", 32)
    device = _clone(origin)
    device.boot()
    device.settings.set("app/k0", b"NEW VALUE")
    device.flash.cut_power_before(5)  # header, k0, k1, k2 copied; the erase does not happen
    with pytest.raises(PowerLoss):
        device.settings.save()
    erases = device.flash.erase_calls
    device.power_off()
    device.boot()
    assert device.flash.erase_calls == erases + 1  # mount erased the collected sector
    assert settings(device).get("app/k0", 32) == old
    assert settings(device).get("app/k1", 32) == b"other"


# ----------------------------------------------------------------------------- config


def test_config_rejects_a_missing_partition_and_bad_handlers(tmp_path: object) -> None:
    from smpsim.config import load_profile

    base = os.path.join(str(tmp_path), "p.toml")

    def write(text: str) -> None:
        with open(base, "w", encoding="utf-8") as handle:
            handle.write('extends = "native_sim_udp6"\n' + text)

    write('[firmware.settings]\npartition = "nosuch"\n')
    with pytest.raises(ConfigError, match="no partition 'nosuch'"):
        load_profile(base)
    write('[[firmware.settings.handlers]]\nname = "a"\n[[firmware.settings.handlers]]\n'
          'name = "a"\n')
    with pytest.raises(ConfigError, match=r"handlers\[1\]\.name must be non-empty and unique"):
        load_profile(base)
    write('[[firmware.settings.handlers]]\nname = "a"\n'
          'keys = [{ name = "k", max_size = 2, default = "abc" }]\n')
    with pytest.raises(ConfigError, match="the default must fit max_size"):
        load_profile(base)
    write('[[firmware.settings.handlers]]\nname = "a"\nkeys = [{ name = "k" }]\n')
    assert load_profile(base).firmware.settings.handlers[0].keys[0].max_size == 32
