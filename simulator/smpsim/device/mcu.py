"""The emulated microcontroller: composes clock, RTC, console and flash; boots and resets."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from smpsim.config import Profile
from smpsim.device.clock import Clock
from smpsim.device.console import Console
from smpsim.device.flash import NorFlash
from smpsim.device.partitions import PartitionTable
from smpsim.device.rtc import Rtc


class Device:
    """One board running the profile's firmware. Knows nothing of SMP.

    ``boot()`` and ``reset()`` report the time they take through ``clock.spend``; a transport
    runner keeps the device silent for that long.
    """

    def __init__(self, profile: Profile, *, time_scale: float = 0.0,
                 flash_path: str | Path | None = None,
                 host_time: Callable[[], float] = time.monotonic) -> None:
        self.profile = profile
        self.clock = Clock(time_scale, host_time)
        self.rtc = Rtc(self.clock)
        self.console = Console(self.clock)
        self.flash = NorFlash(profile.board.flash, self.clock, flash_path)
        self.partitions = PartitionTable(self.flash, profile.board.partitions)
        self.running = False
        """True between the end of a boot and the next reset or power-off."""
        self.boot_count = 0
        """Boots since the emulator started (power-on included)."""
        self.boot_mode = 0
        """Retained boot mode requested by os reset (0 normal, 1 bootloader)."""
        self.booted_at = 0.0
        """Emulated time of the last boot."""

    def uptime_s(self) -> float:
        """Seconds since the last boot (what ``k_uptime_get`` reports)."""
        return self.clock.now() - self.booted_at

    def boot(self) -> None:
        """Power-on or post-reset boot: the banner, the application's log, then ready."""
        fw = self.profile.firmware
        self.clock.spend(self.profile.board.boot_time_ms / 1000)
        self.booted_at = self.console.booted_at = self.clock.now()
        self.boot_count += 1
        if self.boot_mode:
            # MCUboot's serial recovery is not emulated: say so, and boot the application.
            self.console.print(f"smpsim: boot mode {self.boot_mode} requested; "
                               "serial recovery is not emulated")
            self.boot_mode = 0
        self.console.print(f"*** Booting Zephyr OS build {fw.build_version} ***")
        for line in fw.boot_log:
            self.console.log(line.level, line.module, line.text)
        self.running = True

    def power_off(self) -> None:
        """Stop running (reset line asserted, or power cut)."""
        self.running = False

    def reset(self) -> None:
        """Warm reset: the RTC, the flash and the retained boot mode survive it."""
        self.power_off()
        self.boot()

    def close(self) -> None:
        """Release the flash file."""
        self.flash.close()
