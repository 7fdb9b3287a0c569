"""At a time scale above 0 a boot mounts littlefs, looks up the application's files and opens its
log while it waits out the kernel's start (they only read): the boot must come out exactly as if
each call were made at its moment (same flash reads, console, flash), including when the flash
changes in between."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from smpsim.config import load_profile
from smpsim.device.fs import app as fs_app
from smpsim.device.fs.littlefs import LittleFs
from smpsim.device.mcu import Device

PROFILE = load_profile("nrf52840dk")
KERNEL_START_S = PROFILE.board.boot_time_ms / 1000
STAMP = re.compile(r"\[\d\d:\d\d:\d\d\.\d{3},\d{3}\]")


def _boots(path: Path, count: int,
           at_kernel_start: Callable[[Device], None] | None = None) -> tuple[int, list[str], bytes]:
    """``count`` boots at time scale 1 (each wait returns at once): flash reads, console lines
    (timestamps masked: host time), the flash at the end."""
    device = Device(PROFILE, time_scale=1.0, flash_path=path)
    lines: list[str] = []
    device.console.subscribe(lambda line: lines.append(STAMP.sub("[T]", line)))

    def pace(seconds: float) -> None:
        if seconds == KERNEL_START_S and at_kernel_start is not None:
            at_kernel_start(device)

    device.clock.pacer = pace
    for _ in range(count):
        device.power_off()
        device.boot()
    result = device.flash.reads, lines, device.flash.snapshot()
    device.close()
    return result


def _at_their_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs_app, "mount_early", lambda fw, area, boot: None)


def test_calls_made_ahead_answer_as_the_calls_at_their_moment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answered: list[str] = []
    call = LittleFs.call

    def counting(self: LittleFs, fn: Callable[..., object], *args: object,
                 **kwargs: object) -> object:
        if self._ahead:
            answered.append(fn.__name__)
        return call(self, fn, *args, **kwargs)

    monkeypatch.setattr(LittleFs, "call", counting)
    boots = 70  # the 2 KiB log is moved aside once meanwhile (no open ahead at that boot)
    ahead = _boots(tmp_path / "ahead.bin", boots)
    assert answered.count("stat") == boots - 1  # the first boot formats: nothing ahead
    assert boots - 3 <= answered.count("file_open") < boots - 1
    _at_their_moment(monkeypatch)
    assert _boots(tmp_path / "moment.bin", boots) == ahead


def test_a_flash_changed_during_the_kernel_start_is_mounted_as_it_is_then(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def damage(device: Device) -> None:
        if device.boot_count == 3:  # the storage's first block pair, both copies
            storage = device.partitions.get("storage")
            assert storage is not None
            base = storage.offset * 8
            device.flash.flip_bits([base + 100, base + 4096 * 8 + 100])

    ahead = _boots(tmp_path / "ahead.bin", 4, damage)
    _at_their_moment(monkeypatch)
    moment = _boots(tmp_path / "moment.bin", 4, damage)
    assert moment == ahead
    assert any("formatting" in line for line in moment[1])
