"""Zephyr's errno values, one table for the whole board.

The numbers are those of Zephyr's ``lib/libc/minimal/include/errno.h`` (newlib's numbering; also
what the recorded native_sim builds return): functions return them negated, as Zephyr does.
"""

from __future__ import annotations

ENOENT = 2
EIO = 5
ENOEXEC = 8
EBADF = 9
ENOMEM = 12
EFAULT = 14
EEXIST = 17
ENOTDIR = 20
EISDIR = 21
EINVAL = 22
EFBIG = 27
ENOSPC = 28
EROFS = 30
ERANGE = 34
ENOTEMPTY = 39
ENOTSUP = 134
