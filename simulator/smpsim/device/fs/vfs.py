"""Zephyr's file system layer (``subsys/fs/fs.c``) with littlefs on the storage partition.

littlefs is the real one (littlefs-python, the same littlefs 2.11 as the recorded builds), on a
block device whose reads, programs and erases are those of the partition's
:class:`~smpsim.device.partitions.FlashArea`: every erase and program is a NOR flash operation
with its time and its place in the flash statistics, and a power cut falls between two of them.
Paths never reach anything else: the only storage littlefs has is that partition.

The virtual file system keeps Zephyr's rules and log lines: absolute paths only, the mount
point matched as ``fs_get_mnt_point`` does, the mount point itself and ``/`` as directories,
littlefs errors as negative errno values (``lfs_to_errno``), and the ``<err> fs: ...`` lines.
Mounting logs what ``littlefs_fs.c`` logs, and formats what cannot be mounted.

Paths are ``str`` as the CBOR layer hands them (bytes that are not UTF-8 as surrogate escapes)
and go to littlefs as the same raw bytes, cut at the first NUL as C strings are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from smpsim.config import FsConfig
from smpsim.device.clock import Clock
from smpsim.device.console import Console
from smpsim.device.errno import (
    EBADF,
    EEXIST,
    EFAULT,
    EFBIG,
    EINVAL,
    EIO,
    EISDIR,
    ENOENT,
    ENOMEM,
    ENOSPC,
    ENOTDIR,
    ENOTEMPTY,
)
from smpsim.device.fs.littlefs import (
    CORRUPT_LINE,
    LFS_ERR_CORRUPT,
    EarlyMount,
    LittleFs,
    LittleFSError,
    lfs,
)
from smpsim.device.partitions import FlashArea
from smpsim.errors import SmpsimError
from smpsim.records import Frozen, frozen

T = TypeVar("T")

LFS_O_RDONLY, LFS_O_WRONLY, LFS_O_CREAT, LFS_O_APPEND = 0x1, 0x2, 0x100, 0x800
"""littlefs open flags."""

_LFS_TO_ERRNO = {
    LFS_ERR_CORRUPT: EFAULT, -2: ENOENT, -17: EEXIST, -20: ENOTDIR, -21: EISDIR,
    -39: ENOTEMPTY, -9: EBADF, -27: EFBIG, -22: EINVAL, -28: ENOSPC, -12: ENOMEM,
}
"""``lfs_to_errno``: anything else (I/O errors, names too long) is -EIO."""

# fs_open flags (zephyr/fs/fs_interface.h).
FS_O_READ, FS_O_WRITE, FS_O_CREATE, FS_O_APPEND = 0x01, 0x02, 0x10, 0x20
FS_SEEK_SET, FS_SEEK_CUR, FS_SEEK_END = 0, 1, 2


class FsError(SmpsimError):
    """A file system call failed with Zephyr errno ``-errno``."""

    def __init__(self, errno: int) -> None:
        super().__init__(f"file system error {-errno}")
        self.errno = -errno
        """The negative errno Zephyr's call returned."""


@frozen
class DirEntry(Frozen):
    """``struct fs_dirent``."""

    is_dir: bool
    """``FS_DIR_ENTRY_DIR`` (else a file)."""
    name: str
    """Entry name (no path)."""
    size: int
    """File size in bytes (0 for directories)."""


def raw_path(path: str) -> bytes:
    """The C string a path is on the MCU: its bytes up to the first NUL."""
    data = path.encode("utf-8", "surrogateescape")
    return data.split(b"\0", 1)[0]


def _lfs_name(path: bytes) -> str:
    # littlefs-python takes str: latin-1 carries every byte through unchanged.
    return path.decode("latin-1")


_ENC = {"filename_encoding": "latin-1"}


class File:
    """An open file (``struct fs_file_t``)."""

    def __init__(self, vfs: Vfs, mount: LittleFs, handle: Any) -> None:
        self._vfs = vfs
        self._mount = mount
        self._handle = handle
        self.closed = False

    def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        if self.closed:
            raise FsError(EBADF)
        return self._vfs.lfs_call(self._mount, what, fn, self._handle, *args)

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes from the position (fewer at the end)."""
        return self._call("file read error", lfs.file_read, size)

    def write(self, data: bytes) -> int:
        """Write all of ``data`` at the position."""
        return self._call("file write error", lfs.file_write, data)

    def seek(self, offset: int, whence: int = FS_SEEK_SET) -> None:
        """Move the position (past the end is allowed, as in littlefs). ``offset`` is an
        ``off_t``: 32 bits on every target here, so larger values wrap as the C cast does."""
        offset = (offset + 0x80000000) % 0x100000000 - 0x80000000
        if offset < 0 and whence == FS_SEEK_SET:
            self._vfs.log_error(f"file seek error ({-EINVAL})")  # littlefs: LFS_ERR_INVAL
            raise FsError(EINVAL)
        self._call("file seek error", lfs.file_seek, offset, whence)

    def tell(self) -> int:
        """The position."""
        return self._call("file tell error", lfs.file_tell)

    def truncate(self, length: int) -> None:
        """Cut or extend the file to ``length`` bytes."""
        self._call("file truncate error", lfs.file_truncate, length)

    def sync(self) -> None:
        """Commit what was written."""
        self._call("file sync error", lfs.file_sync)

    def size(self) -> int:
        """Size as this handle sees it (unsynced writes included)."""
        return self._call("file size error", lfs.file_size)

    def close(self) -> None:
        """Commit and release; the handle is released even when the commit fails."""
        if self.closed:
            return
        try:
            self._call("file close error", lfs.file_close)
        finally:
            self.closed = True


def stat_ahead(fs: LittleFs, point: str, path: str) -> lfs.LFSStat | None:
    """Make ahead (:meth:`LittleFs.call_ahead`) the ``lfs_stat`` that :meth:`Vfs.stat` of
    ``path`` makes with ``fs`` alone mounted at ``point``: what it found, ``None`` if nothing
    (or that stat makes no littlefs call)."""
    inner = _inner_ahead(point, path)
    if inner is None:
        return None
    found: lfs.LFSStat | None = fs.call_ahead(lfs.stat, inner, **_ENC)
    return found


def open_ahead(fs: LittleFs, point: str, path: str, flags: int) -> None:
    """Make ahead the ``lfs_file_open`` that :meth:`Vfs.open` makes (``path`` must exist: opening
    a file that is not there creates it)."""
    inner = _inner_ahead(point, path)
    if inner is not None:
        fs.call_ahead(lfs.file_open, inner, _lfs_mode(flags), **_ENC)


def _inner_ahead(point: str, path: str) -> str | None:
    raw, mount = raw_path(path), raw_path(point)
    if not raw.startswith(mount + b"/") or len(raw) <= len(mount) + 1:
        return None
    return Vfs._inner(raw, mount)


def _lfs_mode(flags: int) -> lfs.LFSFileFlag:
    """``lfs_flags_from_zephyr``: RDONLY and WRONLY together are RDWR."""
    mode = 0
    for zephyr, lfs_flag in ((FS_O_CREATE, LFS_O_CREAT), (FS_O_READ, LFS_O_RDONLY),
                             (FS_O_WRITE, LFS_O_WRONLY), (FS_O_APPEND, LFS_O_APPEND)):
        if flags & zephyr:
            mode |= lfs_flag
    return lfs.LFSFileFlag(mode)


class Vfs:
    """Zephyr's VFS: the mount table and the checks of ``fs.c``, logging as Zephyr does.

    Deferred work (``k_work_delayable`` items of the application and the fs group: closing an
    idle file, appending to a log) runs lazily: when due, before the next file system call.
    """

    def __init__(self, console: Console, clock: Clock) -> None:
        self._console = console
        self._clock = clock
        self.mounts: dict[bytes, LittleFs] = {}
        """Mount point -> file system."""
        self._timers: dict[str, tuple[float, Callable[[], None]]] = {}
        self._running_timers = False

    # -- mounting and lazy work ----------------------------------------------------------------

    def reset(self) -> None:
        """A reboot: nothing mounted, no work pending (RAM is gone)."""
        for fs in self.mounts.values():
            fs.release()
        self.mounts.clear()
        self._timers.clear()

    def mount(self, point: str, area: FlashArea, config: FsConfig, controller: str, *,
              early: EarlyMount | None = None) -> bool:
        """``fs_mount`` of littlefs at ``point``, formatting when it cannot be mounted, with
        ``littlefs_fs.c``'s log lines. Returns whether it is mounted. ``early``: its
        ``lfs_mount`` done ahead, used if the flash is unchanged since."""
        ahead = early.take(area, config) if early is not None else None
        fs = LittleFs(area, config) if ahead is None else ahead[0]
        major, minor = lfs.__LFS_VERSION__
        disk_major, disk_minor = lfs.__LFS_DISK_VERSION__
        self._log("inf", "littlefs", f"LittleFS version {major}.{minor}, disk version "
                                     f"{disk_major}.{disk_minor}")
        self._log("inf", "littlefs", f"FS at {controller}:0x{area.offset:x} is "
                                     f"{fs.block_count} 0x{fs.block_size:x}-byte blocks with "
                                     f"{config.block_cycles} cycle")
        self._log("inf", "littlefs", f"partition sizes: rd {config.read_size} ; pr "
                                     f"{config.prog_size} ; ca {config.cache_size} ; la "
                                     f"{config.lookahead_size}")
        rc = fs.mount() if ahead is None else ahead[1]
        formatted = rc < 0
        if rc < 0:
            if rc == LFS_ERR_CORRUPT:
                self._log("err", "littlefs", CORRUPT_LINE)
            self._log("wrn", "littlefs", f"can't mount (LFS {rc}); formatting")
            rc = fs.format()
            if rc < 0:
                self._log("err", "littlefs", f"format failed (LFS {rc})")
                return False
            rc = fs.mount()
            if rc < 0:
                self._log("err", "littlefs", f"remount after format failed (LFS {rc})")
                return False
        if formatted or not config.mounted_log_after_format_only:
            self._log("inf", "littlefs", f"{point} mounted")
        self.mounts[raw_path(point)] = fs
        return True

    def call_later(self, key: str, delay_s: float, fn: Callable[[], None]) -> None:
        """(Re)schedule ``fn`` to run ``delay_s`` emulated seconds from now."""
        self._timers[key] = (self._clock.now() + delay_s, fn)

    def cancel(self, key: str) -> None:
        """Unschedule ``key``."""
        self._timers.pop(key, None)

    def run_due(self) -> None:
        """Run the deferred work whose time has come (oldest first)."""
        if self._running_timers:
            return
        self._running_timers = True
        try:
            now = self._clock.now()
            for key, (due, fn) in sorted(self._timers.items(), key=lambda kv: kv[1][0]):
                if due <= now and self._timers.get(key) == (due, fn):
                    del self._timers[key]
                    fn()
        finally:
            self._running_timers = False

    # -- helpers -------------------------------------------------------------------------------

    def _log(self, level: str, module: str, text: str) -> None:
        self._console.log(level, module, text)

    def log_error(self, text: str) -> None:
        """An ``<err> fs:`` line."""
        self._log("err", "fs", text)

    def lfs_call(self, fs: LittleFs, what: str | None, fn: Callable[..., T], *args: Any,
                 **kwargs: Any) -> T:
        """A littlefs call: its error as :class:`FsError` (logged as ``<what> (<err>)``)."""
        try:
            return fs.call(fn, *args, **kwargs)
        except LittleFSError as exc:
            code = int(exc.code)
        if code == LFS_ERR_CORRUPT:
            self._log("err", "littlefs", CORRUPT_LINE)
        errno = _LFS_TO_ERRNO.get(code, EIO)
        if what is not None:
            self._log("err", "fs", f"{what} ({-errno})")
        raise FsError(errno)

    def _find(self, path: bytes) -> tuple[bytes, LittleFs]:
        """``fs_get_mnt_point``: the longest mount point that is a whole prefix of ``path``."""
        best: tuple[bytes, LittleFs] | None = None
        for point, fs in self.mounts.items():
            if len(point) > len(path) or (best is not None and len(point) < len(best[0])):
                continue
            if len(point) > 1 and path[len(point):len(point) + 1] not in (b"/", b""):
                continue
            if path.startswith(point):
                best = (point, fs)
        if best is None:
            self._log("err", "fs", "mount point not found!!")
            raise FsError(ENOENT)
        return best

    @staticmethod
    def _inner(path: bytes, point: bytes) -> str:
        """``fs_impl_strip_prefix``: the path inside the mounted file system."""
        return _lfs_name(path[len(point):] or b"/")

    # -- the API ---------------------------------------------------------------------------

    def stat(self, path: str) -> DirEntry:
        """``fs_stat``."""
        self.run_due()
        raw = raw_path(path)
        if not raw.startswith(b"/"):
            self._log("err", "fs", "invalid file or dir name!!")
            raise FsError(EINVAL)
        if raw == b"/":
            return DirEntry(True, "/", 0)
        point, fs = self._find(raw)
        if len(raw) - len(point) <= 1:  # the mount point itself (a trailing / allowed)
            return DirEntry(True, _lfs_name(point[1:]), 0)
        try:
            info = self.lfs_call(fs, None, lfs.stat, self._inner(raw, point), **_ENC)
        except FsError as exc:
            if exc.errno != -ENOENT:
                self._log("err", "fs", f"failed get file or dir stat ({exc.errno})")
            raise
        return DirEntry(info.type == lfs.LFSStat.TYPE_DIR, info.name, info.size)

    def open(self, path: str, flags: int) -> File:
        """``fs_open`` with ``FS_O_*`` flags."""
        self.run_due()
        raw = raw_path(path)
        if len(raw) <= 1 or not raw.startswith(b"/"):
            self._log("err", "fs", "invalid file name!!")
            raise FsError(EINVAL)
        point, fs = self._find(raw)
        handle = self.lfs_call(fs, "file open error", lfs.file_open, self._inner(raw, point),
                               _lfs_mode(flags), **_ENC)
        return File(self, fs, handle)

    def listdir(self, path: str) -> list[DirEntry]:
        """``fs_opendir`` + ``fs_readdir`` until the end: the entries, ``.`` and ``..`` left
        out as Zephyr does; ``/`` lists the mount points."""
        self.run_due()
        raw = raw_path(path)
        if not raw.startswith(b"/"):
            self._log("err", "fs", "invalid file name!!")
            raise FsError(EINVAL)
        if raw == b"/":
            return [DirEntry(True, _lfs_name(p[1:]), 0) for p in self.mounts]
        point, fs = self._find(raw)
        handle = self.lfs_call(fs, "directory open error", lfs.dir_open,
                               self._inner(raw, point), **_ENC)
        entries = []
        try:
            while True:
                info = self.lfs_call(fs, "directory read error", lfs.dir_read, handle, **_ENC)
                if info is None:
                    break
                if info.name not in (".", ".."):
                    entries.append(DirEntry(info.type == lfs.LFSStat.TYPE_DIR, info.name,
                                            info.size))
        finally:
            self.lfs_call(fs, "directory close error", lfs.dir_close, handle)
        return entries

    def mkdir(self, path: str) -> None:
        """``fs_mkdir``."""
        _, fs, inner = self._target(path)
        self.lfs_call(fs, "failed to create directory", lfs.mkdir, inner, **_ENC)

    def unlink(self, path: str) -> None:
        """``fs_unlink`` (a file or an empty directory)."""
        _, fs, inner = self._target(path)
        self.lfs_call(fs, "failed to unlink path", lfs.remove, inner, **_ENC)

    def rename(self, old: str, new: str) -> None:
        """``fs_rename`` within one mount (replacing ``new``)."""
        point, fs, inner_old = self._target(old)
        raw_new = raw_path(new)
        if not raw_new.startswith(point):
            self._log("err", "fs", "mount point not same!!")
            raise FsError(EINVAL)
        self.lfs_call(fs, "failed to rename file or dir", lfs.rename, inner_old,
                      self._inner(raw_new, point), **_ENC)

    def statvfs(self, path: str) -> tuple[int, int, int, int]:
        """``fs_statvfs``: (bsize, frsize, blocks, bfree)."""
        _, fs, _ = self._target(path)
        used = self.lfs_call(fs, "failed get file or dir stat", lfs.fs_size)
        config = fs.config
        return config.prog_size, fs.block_size, fs.block_count, fs.block_count - used

    def _target(self, path: str) -> tuple[bytes, LittleFs, str]:
        self.run_due()
        raw = raw_path(path)
        if len(raw) <= 1 or not raw.startswith(b"/"):
            self._log("err", "fs", "invalid file name!!")
            raise FsError(EINVAL)
        point, fs = self._find(raw)
        return point, fs, self._inner(raw, point)
