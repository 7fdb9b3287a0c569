"""What smp_svr's ``main`` does with the file system: mount littlefs at every boot, and (as the
profile describes the application) create its files and keep a log file growing.

smp_svr mounts littlefs on the storage partition only in builds with the fs group
(``CONFIG_MCUMGR_GRP_FS``); so does this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from smpsim.config import Firmware, FsLog
from smpsim.device.console import log_timestamp
from smpsim.device.errno import ENOENT
from smpsim.device.fs.littlefs import EarlyMount
from smpsim.device.fs.vfs import FS_O_APPEND, FS_O_CREATE, FS_O_WRITE, FsError, Vfs, stat_ahead
from smpsim.device.partitions import FlashArea
from smpsim.errors import ConfigError

Uptime = Callable[[], float]
"""Seconds since the application started (``k_uptime_get``)."""

log = logging.getLogger(__name__)

LOG_TIMER = "app.log"
"""The application's log-append work item."""


def mounts(fw: Firmware, area: FlashArea | None) -> bool:
    """Whether :func:`start` mounts littlefs on ``area`` in this build."""
    return bool(fw.fs.mount_point) and "fs" in fw.groups and area is not None


def mount_early(fw: Firmware, area: FlashArea | None) -> EarlyMount | None:
    """``lfs_mount`` of what :func:`start` will mount, done ahead (it only reads; see
    :class:`~smpsim.device.fs.littlefs.EarlyMount`), for :func:`start` to use."""
    if area is None or not mounts(fw, area):
        return None
    try:
        early = EarlyMount(area, fw.fs)
    except ConfigError:
        return None  # raised again at the mount's moment, after the lines before it
    if early.rc == 0:
        # start()'s first look-ups, up to the first that something other than a look-up
        # follows (a seeded file missing is written).
        config = fw.fs
        looked_up = [seeded.path for seeded in config.files]
        if config.log is not None:
            looked_up.append(config.log.path)
        for path in looked_up:
            if not stat_ahead(early.fs, config.mount_point, path):
                break
    return early


def start(vfs: Vfs, fw: Firmware, area: FlashArea | None, uptime: Uptime, boot: str, *,
          early: EarlyMount | None = None) -> None:
    """At boot, after the banner: mount ``area`` (formatting if need be), then the application's
    files; ``boot`` is what the log's boot line says (``boot 3, build v3.7.0``). ``early``:
    the mount done ahead by :func:`mount_early`."""
    vfs.reset()
    config = fw.fs
    if area is None or not mounts(fw, area):
        return
    if not vfs.mount(config.mount_point, area, config, config.flash_controller,
                     early=early):
        return
    try:
        for seeded in config.files:
            if not _exists(vfs, seeded.path):
                _write(vfs, seeded.path, seeded.text.encode(), FS_O_CREATE | FS_O_WRITE)
        if config.log is not None:
            _append(vfs, config.log, f"{log_timestamp(uptime())} {boot}\n")
            _schedule(vfs, config.log, uptime)
    except FsError as exc:
        # The application carries on without its files (a full or broken file system).
        log.warning("application files: %s", exc)


def _schedule(vfs: Vfs, config: FsLog, uptime: Uptime) -> None:
    if config.interval_s <= 0:
        return

    def tick() -> None:
        try:
            now = uptime()
            _append(vfs, config, f"{log_timestamp(now)} uptime {int(now)} s\n")
        except FsError as exc:
            log.warning("application log: %s", exc)
        _schedule(vfs, config, uptime)
    vfs.call_later(LOG_TIMER, config.interval_s, tick)


def _exists(vfs: Vfs, path: str) -> bool:
    try:
        vfs.stat(path)
    except FsError as exc:
        if exc.errno == -ENOENT:
            return False
        raise
    return True


def _write(vfs: Vfs, path: str, data: bytes, flags: int) -> None:
    file = vfs.open(path, flags)
    try:
        file.write(data)
    finally:
        file.close()


def _append(vfs: Vfs, config: FsLog, line: str) -> None:
    """Append ``line``, first moving a file that would outgrow ``max_size`` to ``<path>.1``."""
    data = line.encode()
    try:
        size = vfs.stat(config.path).size
    except FsError as exc:
        if exc.errno != -ENOENT:
            raise
        size = 0
    if size and size + len(data) > config.max_size:
        vfs.rename(config.path, config.path + ".1")
    _write(vfs, config.path, data, FS_O_CREATE | FS_O_WRITE | FS_O_APPEND)
