"""What smp_svr's ``main`` does with the file system: mount littlefs at every boot, and (as the
profile describes the application) create its files and keep a log file growing.

smp_svr mounts littlefs on the storage partition only in builds with the fs group
(``CONFIG_MCUMGR_GRP_FS``); so does this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from smpsim.config import Firmware, FsConfig, FsLog
from smpsim.device.console import log_timestamp
from smpsim.device.errno import ENOENT
from smpsim.device.fs.littlefs import EarlyMount
from smpsim.device.fs.vfs import (
    FS_O_APPEND,
    FS_O_CREATE,
    FS_O_WRITE,
    FsError,
    Vfs,
    open_ahead,
    stat_ahead,
)
from smpsim.device.partitions import FlashArea
from smpsim.errors import ConfigError

Uptime = Callable[[], float]
"""Seconds since the application started (``k_uptime_get``)."""

log = logging.getLogger(__name__)

LOG_TIMER = "app.log"
APPEND = FS_O_CREATE | FS_O_WRITE | FS_O_APPEND
"""How the log is opened."""
"""The application's log-append work item."""


def mounts(fw: Firmware, area: FlashArea | None) -> bool:
    """Whether :func:`start` mounts littlefs on ``area`` in this build."""
    return bool(fw.fs.mount_point) and "fs" in fw.groups and area is not None


def mount_early(fw: Firmware, area: FlashArea | None, boot: str) -> EarlyMount | None:
    """``lfs_mount`` of what :func:`start` will mount, and its first look-ups, done ahead (they
    only read; see :class:`~smpsim.device.fs.littlefs.EarlyMount`), for :func:`start` to use;
    ``boot`` as :func:`start` gets it."""
    if area is None or not mounts(fw, area):
        return None
    try:
        early = EarlyMount(area, fw.fs)
    except ConfigError:
        return None  # raised again at the mount's moment, after the lines before it
    if early.rc == 0:
        _look_up_early(early, fw.fs, boot)
        early.looked_up()
    return early


def _look_up_early(early: EarlyMount, config: FsConfig, boot: str) -> None:
    # start()'s calls up to the first that may write: a seeded file missing is written, and
    # the log is opened ahead only if it is there and stays under its size with this boot's
    # line (else it is moved aside, or created).
    point = config.mount_point
    for seeded in config.files:
        if stat_ahead(early.fs, point, seeded.path) is None:
            return
    log = config.log
    if log is None:
        return
    found = stat_ahead(early.fs, point, log.path)
    if found is not None and not _rotates(log, found.size, len(_line(0.0, boot))):
        open_ahead(early.fs, point, log.path, APPEND)


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
            _append(vfs, config.log, _line(uptime(), boot))
            _schedule(vfs, config.log, uptime)
    except FsError as exc:
        # The application carries on without its files (a full or broken file system).
        log.warning("application files: %s", exc)
    finally:
        if early is not None:  # nothing made ahead may answer a later caller
            early.fs.drop_ahead()


def _schedule(vfs: Vfs, config: FsLog, uptime: Uptime) -> None:
    if config.interval_s <= 0:
        return

    def tick() -> None:
        try:
            now = uptime()
            _append(vfs, config, _line(now, f"uptime {int(now)} s"))
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


def _line(uptime_s: float, text: str) -> bytes:
    """A log line: its timestamp (always 18 characters below 100 hours) and ``text``."""
    return f"{log_timestamp(uptime_s)} {text}\n".encode()


def _rotates(config: FsLog, size: int, adding: int) -> bool:
    """Whether a log of ``size`` bytes is moved aside before ``adding`` more."""
    return bool(size) and size + adding > config.max_size


def _append(vfs: Vfs, config: FsLog, data: bytes) -> None:
    """Append ``data``, first moving a file that would outgrow ``max_size`` to ``<path>.1``."""
    try:
        size = vfs.stat(config.path).size
    except FsError as exc:
        if exc.errno != -ENOENT:
            raise
        size = 0
    if _rotates(config, size, len(data)):
        vfs.rename(config.path, config.path + ".1")
    _write(vfs, config.path, data, APPEND)
