"""littlefs on a flash area: littlefs-python's block device wired to the NOR flash model.

Zephyr's ``littlefs_fs.c`` gives littlefs the partition's flash area (``lfs_api_read``,
``lfs_api_prog``, ``lfs_api_erase``) with the largest erase page as the block size; so does
this, so every program and erase littlefs does is a flash operation of
:class:`~smpsim.device.flash.NorFlash`, timed, counted, and interruptible by a power cut.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from smpsim.config import FsConfig
from smpsim.device.flash import FlashError
from smpsim.device.partitions import FlashArea
from smpsim.errors import ConfigError


@contextlib.contextmanager
def _package_unexecuted(name: str) -> Iterator[None]:
    """Let submodules of package ``name`` import without running the package's ``__init__``.

    littlefs-python's ``__init__`` asks ``importlib.metadata`` for its own version, which imports
    email, zipfile and csv and parses its installed METADATA: a ninth of ``smpsim run``'s
    start-up (issue 15), for nothing smpsim uses. smpsim needs only the binding (``littlefs.lfs``)
    and its errors, so while they import the package stands in ``sys.modules`` unexecuted; it is
    taken out after, and a later ``import littlefs`` runs the package as usual (finding its
    submodules loaded). Already imported, the package is left as it is.
    """
    if name in sys.modules:
        yield
        return
    spec = importlib.machinery.PathFinder.find_spec(name)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.modules[name] = importlib.util.module_from_spec(spec)
    try:
        yield
    finally:
        del sys.modules[name]


with _package_unexecuted("littlefs"):  # re-exported: vfs may not import the package itself
    from littlefs import lfs as lfs  # noqa: PLC0414
    from littlefs.errors import LittleFSError as LittleFSError  # noqa: PLC0414

log = logging.getLogger(__name__)

T = TypeVar("T")

LFS_ERR_IO, LFS_ERR_CORRUPT = -5, -84
"""littlefs error codes."""

CORRUPT_LINE = "WEST_TOPDIR/modules/fs/littlefs/lfs.c:1386: Corrupted dir pair at {0x0, 0x1}"
"""littlefs's own error line when the root pair holds no valid commit (an erased partition),
as the recorded boots print it. littlefs-python does not surface littlefs's log, so the line is
printed whenever littlefs answers LFS_ERR_CORRUPT."""


class _BlockDevice:
    """littlefs's block device (``lfs_api_read``/``prog``/``erase``) on a flash area.

    littlefs-python calls these from C and swallows exceptions, so none may escape: a power
    cut (or any fault) is kept in :attr:`fault`, the call and every later one fails with an I/O
    error, and :class:`LittleFs` raises the fault once littlefs has returned.
    """

    def __init__(self, area: FlashArea, block_size: int) -> None:
        self.area = area
        self.block_size = block_size
        self.fault: BaseException | None = None
        """What interrupted an operation (a :class:`~smpsim.device.flash.PowerLoss`)."""
        self._flash_read = area.flash.read
        self._base = area.offset

    def read(self, cfg: Any, block: int, off: int, size: int) -> bytes:
        # Straight to the flash: littlefs refuses a block or a range outside its geometry
        # (LFS_ERR_CORRUPT) before it reads, so the area's bounds are never crossed here, and a
        # boot's mount and log append read a hundred times, 64 bytes each.
        if self.fault is None:
            try:
                return self._flash_read(self._base + block * self.block_size + off, size)
            except BaseException as exc:  # must not unwind through C
                self.fault = exc
        return b"\xff" * size

    def prog(self, cfg: Any, block: int, off: int, data: bytes) -> int:
        return self._op(self.area.write, block * self.block_size + off, bytes(data))

    def erase(self, cfg: Any, block: int) -> int:
        return self._op(self.area.erase, block * self.block_size, self.block_size)

    def sync(self, cfg: Any) -> int:
        return 0

    def _op(self, fn: Callable[..., None], *args: Any) -> int:
        if self.fault is not None:
            return LFS_ERR_IO
        try:
            fn(*args)
        except FlashError as exc:
            # The driver refuses it (-EIO); littlefs gives up the operation.
            log.warning("littlefs on %s: %s", self.area.name, exc)
            return LFS_ERR_IO
        except BaseException as exc:  # must not unwind through C
            self.fault = exc
            return LFS_ERR_IO
        return 0


class LittleFs:
    """One littlefs instance on a flash area (Zephyr's ``struct fs_littlefs``)."""

    def __init__(self, area: FlashArea, config: FsConfig) -> None:
        self.area = area
        self.config = config
        self.block_size = max(s.size for s in area.sectors)  # littlefs_fs.c get_block_size
        self.block_count = area.size // self.block_size
        if self.block_count < 2 or self.block_size % config.cache_size:
            raise ConfigError(f"littlefs on {area.name}: {self.block_count} blocks of "
                              f"{self.block_size} bytes (need 2, and cache_size dividing it)")
        self.device = _BlockDevice(area, self.block_size)
        self.cfg = lfs.LFSConfig(
            self.device, block_size=self.block_size, block_count=self.block_count,
            read_size=config.read_size, prog_size=config.prog_size,
            cache_size=config.cache_size, lookahead_size=config.lookahead_size,
            block_cycles=config.block_cycles)
        self.fs = lfs.LFSFilesystem()
        self.released = False
        """:meth:`release` ran: littlefs's buffers are gone, every call fails with -EIO."""
        self._ahead: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], Any,
                                int | None]] = []
        """Calls made ahead by :meth:`call_ahead`, in order: (function, arguments, keyword
        arguments, result, error code)."""

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a littlefs call; a fault of the block device is raised, an error becomes
        :class:`LittleFSError`. The next call made ahead, if it is this one, answers it."""
        if self._ahead:
            ahead_fn, ahead_args, ahead_kwargs, result, code = self._ahead[0]
            if ahead_fn is fn and ahead_args == args and ahead_kwargs == kwargs:
                del self._ahead[0]
                if code is not None:
                    raise LittleFSError(code)
                return cast("T", result)
            # Not the call foreseen: made now. Those made ahead only read; a file they opened
            # is closed (closing a file nothing was written to writes nothing).
            self.drop_ahead()
        return self._call(fn, *args, **kwargs)

    def call_ahead(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Make a call that only reads now, for :meth:`call` to answer the same call with later
        (on an early mount: the flash it read is unchanged). Its result, ``None`` if it
        failed."""
        try:
            result = self._call(fn, *args, **kwargs)
        except LittleFSError as exc:
            self._ahead.append((fn, args, kwargs, None, int(exc.code)))
            return None
        self._ahead.append((fn, args, kwargs, result, None))
        return result

    def drop_ahead(self) -> None:
        """Forget the calls made ahead that were not asked for (a file they opened is
        closed)."""
        ahead, self._ahead = self._ahead, []
        for fn, _, _, result, code in ahead:
            if fn is lfs.file_open and code is None:
                self._call(lfs.file_close, result)

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.device.fault is not None:
            raise self.device.fault
        if self.released:  # a handle kept across a reboot: its fs_t is RAM that is gone
            raise LittleFSError(LittleFSError.Error.LFS_ERR_IO)
        try:
            result = fn(self.fs, *args, **kwargs)
        except LittleFSError:
            if self.device.fault is not None:  # the I/O error littlefs saw was this
                raise self.device.fault from None
            raise
        if self.device.fault is not None:
            raise self.device.fault
        return result

    def mount(self) -> int:
        """``lfs_mount``: 0 or the littlefs error."""
        try:
            self._call(lfs.mount, self.cfg)
        except LittleFSError as exc:
            return int(exc.code)
        return 0

    def release(self) -> None:
        """Free the caches ``lfs_mount`` allocated (``lfs_unmount`` only frees; it writes
        nothing, so a reboot stays a reboot). Without it every boot leaked them in C memory."""
        if not self.released:
            self.drop_ahead()
            self.released = True
            lfs.unmount(self.fs)

    def format(self) -> int:
        """``lfs_format``: 0 or the littlefs error."""
        try:
            self._call(lfs.format, self.cfg)
        except LittleFSError as exc:
            return int(exc.code)
        return 0


class EarlyMount:
    """``lfs_mount`` done ahead of its moment in the boot (and the ``lfs_stat`` calls the
    application makes first, by :meth:`LittleFs.call_ahead`): they only read, so while the flash
    holds what they read, the mounted file system (or the error) and the answers are what the
    calls at their moment give, caches included. A paced boot makes them while it waits out its
    kernel's start, so a fleet reset together does not queue every board's mount and look-ups
    behind the others' at the end."""

    def __init__(self, area: FlashArea, config: FsConfig) -> None:
        flash = area.flash
        self._from = (flash.reads, flash.bytes_read)
        self.fs = LittleFs(area, config)
        self.rc = self.fs.mount()
        self._changes = flash.changes
        self._read = (0, 0)
        self.looked_up()

    def looked_up(self) -> None:
        """The calls made ahead after the mount are done: their reads count with its."""
        flash = self.fs.area.flash
        self._read = (flash.reads - self._from[0], flash.bytes_read - self._from[1])

    def take(self, area: FlashArea, config: FsConfig) -> tuple[LittleFs, int] | None:
        """(file system, ``lfs_mount``'s result) for ``area`` and ``config`` if the flash is
        unchanged since; else ``None`` (and the early mount is let go)."""
        fs = self.fs
        if fs.area is area and fs.config is config and area.flash.changes == self._changes:
            return fs, self.rc
        self.discard()
        return None

    def discard(self) -> None:
        """Let it go unused (the boot was cut short, or the flash changed): its reads never
        happened (the flash statistics count the calls at their moment)."""
        if self.rc == 0:
            self.fs.release()
        flash = self.fs.area.flash
        flash.reads -= self._read[0]
        flash.bytes_read -= self._read[1]
