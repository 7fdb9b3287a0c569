"""One owner per flash file, and flash files that appear only when they are whole.

A flash file is a board: two processes writing one would mix two boards' flash (one's upload
landing in the other's slot). So whoever opens one takes an OS lock (``flock``) on it and keeps
it while it works: ``smpsim run`` and ``flash import`` exclusively, ``flash info`` shared. The
lock goes with the process, however it ends (a kill -9 included), so it is never stale. A second
owner is refused with the holder's PID (from ``/proc/locks``, where Linux lists every lock).

A new flash file is built beside its final name, as ``.NAME.part``: erased, programmed by the
factory, booted, and moved to its final name only when the board is up (:meth:`FlashFile.commit`),
so a start that fails later (a UDP port taken) or a kill during it leaves no half-made board. The
part file is itself locked, so two processes creating one file do not build it twice; one left
by a killed process is taken over and rebuilt by the next.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from smpsim.errors import ConfigError

ERASED = b"\xff"
_CHUNK = 1 << 20


class FlashBusy(ConfigError):
    """Another process owns the flash file."""


def part_path(path: Path) -> Path:
    """Where a new flash file ``path`` is built until it is whole."""
    return path.with_name(f".{path.name}.part")


def lock_holder(fd: int) -> int | None:
    """PID of a process holding a ``flock`` on the file open as ``fd`` (``None``: unknown)."""
    st = os.fstat(fd)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii") as locks:
            for line in locks:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 3584 fe:00:2222893 0 EOF"; waiters carry "->".
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
                    pid = int(fields[4])
                    if pid > 0 and pid != os.getpid():
                        return pid
    except (OSError, ValueError):
        pass
    return None


def _holder_text(fd: int) -> str:
    pid = lock_holder(fd)
    return f"process {pid}" if pid is not None else "another process"


@dataclass
class FlashFile:
    """A flash file this process owns, until :meth:`close`."""

    path: Path
    """The flash file's name."""
    open_path: Path
    """What to open now: ``path``, or its part file while it is being built."""
    created: bool
    """The file is new: erased, not yet programmed by the factory nor in place."""
    _fd: int | None = field(repr=False)
    _made_dirs: list[Path] = field(default_factory=list, repr=False)

    def commit(self) -> None:
        """The board is whole: move the new file to its name (nothing if it existed)."""
        if not self.created:
            return
        try:
            os.link(self.open_path, self.path)  # unlike rename, never replaces a file
        except FileExistsError:
            raise ConfigError(f"flash file {self.path} appeared while this board was being "
                              "made; it is left alone") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
                raise ConfigError(f"cannot create flash file {self.path}: {exc.strerror}") \
                    from None
            os.replace(self.open_path, self.path)  # a file system without hard links
        else:
            os.unlink(self.open_path)
        self.created = False
        self.open_path = self.path
        self._made_dirs.clear()

    def close(self) -> None:
        """Release the lock; a file never committed is removed (and folders made for it)."""
        if self.created:
            with contextlib.suppress(OSError):
                os.unlink(self.open_path)
            for folder in reversed(self._made_dirs):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            self.created = False
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None


def acquire(path: Path, size: int, *, exclusive: bool = True,
            create: bool = True) -> FlashFile:
    """Own the flash file ``path`` of ``size`` bytes: exclusively to write it (``run``,
    ``flash import``), shared to read it (``flash info``). A missing file is built as a part
    file (``create``), else refused. Raises :class:`ConfigError` naming what is wrong."""
    while True:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if not create:
                raise ConfigError(f"no flash file {path}") from None
            made = _new(path, size)
            if made is not None:
                return made
            continue  # someone finished making it meanwhile: open theirs
        except OSError as exc:  # ENOTDIR: a parent is a file; EACCES
            raise ConfigError(f"cannot use flash file {path}: {exc.strerror}") from None
        return _existing(path, st, size, exclusive)


def _existing(path: Path, st: os.stat_result, size: int, exclusive: bool) -> FlashFile:
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"--flash {path} is a folder; name a file in it (a missing file is "
                          "created)")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"--flash {path} is not a regular file (a device, a pipe...); "
                          "a flash file is a plain file")
    if exclusive and not st.st_mode & 0o222:
        raise ConfigError(f"flash file {path} is read-only (mode {st.st_mode & 0o777:o}); "
                          "the board writes to its flash: make it writable, or copy it")
    try:
        fd = os.open(path, (os.O_RDWR if exclusive else os.O_RDONLY) | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot open flash file {path} for "
                          f"{'writing' if exclusive else 'reading'}: {exc.strerror}") from None
    try:
        _lock(fd, exclusive, f"flash file {path} is in use by")
        actual = os.fstat(fd).st_size
        if actual != size:
            raise ConfigError(f"flash file {path} has {actual} bytes, but this profile's flash "
                              f"has {size}: give the profile it was made with, or another "
                              "--flash (a missing file is created)")
    except BaseException:
        os.close(fd)
        raise
    return FlashFile(path, path, False, fd)


def _new(path: Path, size: int) -> FlashFile | None:
    """Build a new erased file as ``path``'s part file; ``None`` if ``path`` appeared."""
    made = _make_parents(path.parent)
    part = part_path(path)
    try:
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        _remove_dirs(made)
        raise ConfigError(f"cannot create flash file {path}: {exc.strerror}") from None
    try:
        _lock(fd, True, f"flash file {path} is being created by")
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(part))
        except FileNotFoundError:
            same = False
        if not same or path.exists():  # the part file was finished meanwhile
            os.close(fd)
            _remove_dirs(made)
            return None
        os.ftruncate(fd, 0)  # a part file left by a killed process: start again
        erased = ERASED * min(size, _CHUNK)
        for start in range(0, size, _CHUNK):
            os.write(fd, erased[:min(_CHUNK, size - start)])
    except ConfigError:
        os.close(fd)
        _remove_dirs(made)
        raise
    except OSError as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(part)
        _remove_dirs(made)
        raise ConfigError(f"cannot create flash file {path}: {exc.strerror}") from None
    return FlashFile(path, part, True, fd, made)


def _lock(fd: int, exclusive: bool, busy: str) -> None:
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FlashBusy(f"{busy} {_holder_text(fd)}; one board per flash file "
                        "(stop that one, or give another --flash)") from None


def _make_parents(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; returns those made, outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made: list[Path] = []
    for each in reversed(missing):
        try:
            each.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            _remove_dirs(made)
            raise ConfigError(f"cannot make the folder {each} for the flash file: "
                              f"{exc.strerror}") from None
        made.append(each)
    return made


def _remove_dirs(made: list[Path]) -> None:
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            folder.rmdir()

