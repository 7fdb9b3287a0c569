"""The emulated microcontroller: clock, RTC, console, flash and MCUboot; boot and reset."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smpsim.config import Profile
from smpsim.device.clock import Clock
from smpsim.device.console import Console
from smpsim.device.dfu import Dfu
from smpsim.device.events import Events
from smpsim.device.flash import NorFlash
from smpsim.device.fs import app as fs_app
from smpsim.device.fs.vfs import Vfs
from smpsim.device.mcuboot.bootloader import Bootloader
from smpsim.device.mcuboot.builtin import factory_image, key_pem
from smpsim.device.mcuboot.image import AppBehaviour, KeyRing
from smpsim.device.partitions import PartitionTable
from smpsim.device.ram import Ram
from smpsim.device.rtc import Rtc
from smpsim.device.settings.store import Settings
from smpsim.device.stats import Stats
from smpsim.records import Frozen, frozen

CRASH_RESET_S = 0.01
"""From a fatal error to the reset (``CONFIG_RESET_ON_FATAL_ERROR``)."""


@frozen
class BootOutcome(Frozen):
    """How a boot ended."""

    running: bool
    """The application is up and answering."""
    reset_after_s: float | None = None
    """The board resets itself after this long (a crash, or the watchdog on a hang)."""
    reason: str = ""
    """Why it is not running."""
    recovery: bool = False
    """MCUboot stays in serial recovery: it answers SMP on the UART, the application is not
    running."""


class Device:
    """One board running the profile's firmware. Knows nothing of SMP.

    ``boot()`` and ``reset()`` report the time they take through ``clock.spend``; a transport
    runner keeps the device silent for that long.
    """

    def __init__(self, profile: Profile, *, time_scale: float = 0.0,
                 flash_path: str | Path | None = None, read_only: bool = False,
                 host_time: Callable[[], float] = time.monotonic) -> None:
        self.profile = profile
        self.clock = Clock(time_scale, host_time)
        self.rtc = Rtc(self.clock)
        self.console = Console(self.clock)
        self.flash = NorFlash(profile.board.flash, self.clock, flash_path, read_only=read_only)
        self.partitions = PartitionTable(self.flash, profile.board.partitions)
        self.fs = Vfs(self.console, self.clock)
        """The file system (littlefs on the storage partition, mounted at every boot)."""
        self.stats = Stats(profile.firmware.stats, self.flash, self._ticks)
        """Statistics groups (RAM counters, zeroed when the application starts)."""
        settings = profile.firmware.settings
        self.settings = Settings(settings, self.partitions.get(settings.partition)
                                 if settings.partition else None, self.console)
        """The settings subsystem and its storage in flash."""
        self.ram = Ram()
        """The application's RAM: state handlers keep between requests, lost at every reset."""
        self.running = False
        """True between the end of a boot and the next reset or power-off."""
        self.boot_count = 0
        """Boots since the emulator started (power-on included)."""
        self.boot_mode = 0
        """Retained boot mode requested by os reset (0 normal, 1 bootloader)."""
        self.button_held = False
        """The recovery button (MCUboot's ``BOOT_SERIAL_ENTRANCE_GPIO`` pin) is pressed."""
        self.in_recovery = False
        """MCUboot is in serial recovery (between a boot that entered it and the next reset)."""
        self.booted_at = 0.0
        """Emulated time the application started."""
        self.app = AppBehaviour()
        """What the running application does (from its image's app TLV)."""
        self.next_boot_app: dict[str, Any] = {}
        """Overrides of :class:`AppBehaviour` for the next boot only (an injected fault: the
        next boot crashes, hangs or never confirms), whatever its image says."""
        self.events = Events()
        """Where the board's story is told (MCUboot's phases, the application's start)."""
        self.bootloader: Bootloader | None = None
        """MCUboot, when the profile has one."""
        self.dfu: Dfu | None = None
        """The application's view of its image slots, when there is MCUboot."""
        mcuboot = profile.mcuboot
        if mcuboot is not None:
            keys = KeyRing(key_pem(k) for k in mcuboot.keys) if mcuboot.signature != "none" \
                else KeyRing()
            self.bootloader = Bootloader(mcuboot, self.partitions, self.clock, self.console,
                                         keys=keys,
                                         zephyr_build=profile.firmware.build_version)
            self.bootloader.events = self.events
            self.dfu = Dfu(mcuboot, self.partitions, self.bootloader.max_img_sectors)
            if self.flash.created and mcuboot.factory_image:
                self.provision()

    def provision(self) -> None:
        """Factory programming: the factory image in every primary slot, no trailer (which
        MCUboot and img_mgmt take as confirmed)."""
        assert self.profile.mcuboot is not None
        image = factory_image(self.profile.mcuboot.signature)
        for index in range(self.partitions.image_count):
            primary = self.partitions.primary(index)
            if primary is not None:
                self.flash.program(primary.offset, image)

    @property
    def build_version(self) -> str:
        """The version string the running application reports (os info ``r``, banner)."""
        return self.app.version or self.profile.firmware.build_version

    def uptime_s(self) -> float:
        """Seconds since the application started (what ``k_uptime_get`` reports)."""
        return self.clock.now() - self.booted_at

    def _ticks(self) -> int:
        """smp_svr's ``ticks`` statistic: whole seconds the application has run."""
        return int(max(self.uptime_s(), 0.0)) if self.running else 0

    def boot(self) -> BootOutcome:
        """Power-on or post-reset boot: MCUboot, then the application's banner and log.

        Raises :class:`~smpsim.device.flash.PowerLoss` if the power is cut meanwhile.
        """
        fw = self.profile.firmware
        self.ram.clear()
        self.app = AppBehaviour()
        self.boot_count += 1
        self.in_recovery = False
        if self.bootloader is not None:
            result = self.bootloader.boot(button_held=self.button_held,
                                          boot_mode=self.boot_mode)
            if result.boot_mode_used:
                self.boot_mode = 0  # io_detect_boot_mode clears it: recovery once
            if result.recovery:
                self.running = False
                self.in_recovery = True
                return BootOutcome(False, None, result.message, recovery=True)
            if not result.ok:
                self.running = False
                return BootOutcome(False, None, result.message)
            if result.image is not None:
                self.app = result.image.app
        if self.next_boot_app:
            self.app = dataclasses.replace(self.app, **self.next_boot_app)
            self.events.emit("app", phase="fault", **self.next_boot_app)
            self.next_boot_app = {}
        self.stats.reset()  # the application's RAM counters start here, after MCUboot's work
        storage = self.partitions.get("storage")
        # Mounting littlefs and the application's first look-ups only read: made before the
        # kernel's start is waited out, they answer at their moment below if the flash has not
        # changed meanwhile (the work after a paced boot's last wait is what a fleet reset
        # together queues).
        boot_line = f"boot {self.boot_count}, build {self.build_version}"
        early = fs_app.mount_early(fw, storage, boot_line) if self.clock.time_scale > 0 \
            else None
        try:
            self.clock.spend(self.profile.board.boot_time_ms / 1000)
        except BaseException:
            if early is not None:
                early.discard()
            raise
        self.booted_at = self.console.booted_at = self.clock.now()
        self.console.print(f"*** Booting Zephyr OS build {self.build_version} ***")
        # main() mounts littlefs before its first log line
        fs_app.start(self.fs, fw, storage, self.uptime_s,
                     boot_line, early=early)
        for line in fw.boot_log:
            self.console.log(line.level, line.module, line.text)
        if self.app.boot == "crash":
            self._fatal_error()
            self.events.emit("app", phase="crash", version=self.build_version)
            return BootOutcome(False, CRASH_RESET_S, "the application crashed")
        if self.app.boot == "hang":
            self.events.emit("app", phase="hang", version=self.build_version)
            return BootOutcome(False, self.profile.board.watchdog_ms / 1000,
                               "the application hangs; the watchdog resets the board")
        if self.app.confirm and self.dfu is not None:
            self.dfu.set_confirmed(0)
            self.console.log("inf", "smp_sample", "Image confirmed")
        self.settings.boot()
        self.running = True
        self.events.emit("app", phase="running", version=self.build_version,
                         boot_count=self.boot_count)
        return BootOutcome(True)

    def _fatal_error(self) -> None:
        for text in ("***** HARD FAULT *****", "  Fault escalation (see below)",
                     ">>> ZEPHYR FATAL ERROR 0: CPU exception on CPU 0",
                     "Current thread: 0x20000b38 (main)", "Resetting system"):
            self.console.log("err", "os", text)

    def power_off(self) -> None:
        """Stop running (reset line asserted, or power cut)."""
        self.running = False
        self.in_recovery = False

    def hold_button(self) -> None:
        """Press the recovery button and keep it pressed: the next boots enter serial recovery
        on builds with ``BOOT_SERIAL_ENTRANCE_GPIO``."""
        self.button_held = True

    def release_button(self) -> None:
        """Let go of the recovery button."""
        self.button_held = False

    def reset(self) -> BootOutcome:
        """Warm reset: the RTC, the flash and the retained boot mode survive it."""
        self.power_off()
        return self.boot()

    def close(self) -> None:
        """Release the file system's memory and the flash file."""
        self.fs.reset()
        self.flash.close()
