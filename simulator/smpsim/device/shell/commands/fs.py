"""The shell's ``fs`` command (``FILE_SYSTEM_SHELL``, ``subsys/fs/shell.c``): browse littlefs.

``cd``, ``ls``, ``pwd``, ``cat``, ``mkdir``, ``rm`` and ``statvfs``, with Zephyr's texts. The
working directory is a static of the firmware (RAM), shared by every shell instance.
"""

from __future__ import annotations

from smpsim.device.errno import ENOEXEC
from smpsim.device.fs.vfs import FS_O_READ, FsError
from smpsim.device.shell.core import NORMAL, OPT_CHECK_SKIP, Command, Shell, shell_ram

MAX_PATH_LEN = 128
"""Path buffer of the fs shell, terminator included."""
BUF_CNT = 64
"""Read buffer of ``fs cat``."""


def _cwd(shell: Shell) -> str:
    return shell_ram(shell.device).cwd


def _abs_path(shell: Shell, name: str) -> str:
    """``create_abs_path``: relative names are taken from the working directory."""
    cwd = _cwd(shell)
    if name.startswith("/"):
        path = name
    elif cwd == "/":
        path = "/" + name
    else:
        path = f"{cwd}/{name}"
    raw = path.encode("utf-8", "surrogateescape")[:MAX_PATH_LEN - 1]
    return raw.decode("utf-8", "surrogateescape")


def _cmd_cd(shell: Shell, argv: list[str]) -> int:
    ram = shell_ram(shell.device)
    if len(argv) < 2:
        ram.cwd = "/"
        return 0
    if argv[1] == "..":
        cwd = _cwd(shell)
        ram.cwd = cwd[:cwd.rindex("/")] or "/"
        return 0
    path = _abs_path(shell, argv[1])
    try:
        entry = shell.device.fs.stat(path)
    except FsError:
        shell.error(f"{path} doesn't exist")
        return -ENOEXEC
    if not entry.is_dir:
        shell.error(f"{path} is not a directory")
        return -ENOEXEC
    ram.cwd = path
    return 0


def _cmd_ls(shell: Shell, argv: list[str]) -> int:
    path = _cwd(shell) if len(argv) < 2 else _abs_path(shell, argv[1])
    try:
        entries = shell.device.fs.listdir(path)
    except FsError as exc:
        shell.error(f"Unable to open {path} (err {exc.errno})")
        return -ENOEXEC
    for entry in entries:
        shell.print(f"{entry.name}{'/' if entry.is_dir else ''}")
    return 0


def _cmd_pwd(shell: Shell, argv: list[str]) -> int:
    shell.print(_cwd(shell))
    return 0


def _cmd_cat(shell: Shell, argv: list[str]) -> int:
    fs = shell.device.fs
    for name in argv[1:]:
        path = _abs_path(shell, name)
        try:
            entry = fs.stat(path)
        except FsError as exc:
            shell.error(f"Failed to obtain file {path} (err: {exc.errno})")
            continue
        if entry.is_dir:
            shell.error(f"Not a file {path}")
            continue
        try:
            file = fs.open(path, FS_O_READ)
        except FsError as exc:
            shell.error(f"Failed to open {path} ({exc.errno})")
            continue
        try:
            while chunk := file.read(BUF_CNT):
                # Byte by byte with %c in Zephyr: newlines become CRLF like any output.
                shell.fprintf(NORMAL, chunk.decode("utf-8", "surrogateescape"))
        except FsError as exc:
            shell.error(f"Failed to read from file {path} (err: {exc.errno})")
        finally:
            file.close()
    return 0


def _cmd_mkdir(shell: Shell, argv: list[str]) -> int:
    try:
        shell.device.fs.mkdir(_abs_path(shell, argv[1]))
    except FsError as exc:
        shell.error(f"Error creating dir[{exc.errno}]")
        return -ENOEXEC
    return 0


def _cmd_rm(shell: Shell, argv: list[str]) -> int:
    path = _abs_path(shell, argv[1])
    try:
        shell.device.fs.unlink(path)
    except FsError as exc:
        shell.error(f"Failed to remove {path} ({exc.errno})")
        return -ENOEXEC
    return 0


def _cmd_statvfs(shell: Shell, argv: list[str]) -> int:
    path = _abs_path(shell, argv[1])
    try:
        bsize, frsize, blocks, bfree = shell.device.fs.statvfs(path)
    except FsError as exc:
        shell.error(f"Failed to statvfs {path} ({exc.errno})")
        return -ENOEXEC
    shell.print(f"bsize {bsize}, frsize {frsize}, blocks {blocks}, bfree {bfree}")
    return 0


FS = (Command("fs", "File system commands", subcmds=(
    Command("cd", "Change working directory", _cmd_cd),
    Command("ls", "List files in current directory", _cmd_ls),
    Command("mkdir", "Create directory", _cmd_mkdir, mandatory=2),
    Command("pwd", "Print current working directory", _cmd_pwd),
    Command("cat", "Concatenate files and print on the standard output", _cmd_cat,
            mandatory=2, optional=OPT_CHECK_SKIP),
    Command("rm", "Remove file", _cmd_rm, mandatory=2),
    Command("statvfs", "Show file system state", _cmd_statvfs, mandatory=2),
)))
