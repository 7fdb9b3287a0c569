"""The chip's flash, backed byte for byte by the flash file (or by memory when there is none)."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

ERASED = 0xFF


class Flash:
    """Flash contents. A new file is created erased (0xFF) at the profile's size."""

    def __init__(self, size: int, path: str | Path | None = None) -> None:
        self.size = size
        self.path = Path(path) if path is not None else None
        self._file: int | None = None
        if self.path is None:
            self._mem: mmap.mmap | bytearray = bytearray([ERASED]) * size
            return
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(bytes([ERASED]) * size)
        actual = self.path.stat().st_size
        if actual != size:
            raise ValueError(f"flash file {self.path} has {actual} bytes; the profile's "
                             f"flash has {size}")
        self._file = os.open(self.path, os.O_RDWR)
        self._mem = mmap.mmap(self._file, size)

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise IndexError(f"flash read {offset:#x}+{length} outside {self.size:#x}")
        return bytes(self._mem[offset:offset + length])

    def close(self) -> None:
        """Flush and release the file."""
        if isinstance(self._mem, mmap.mmap):
            self._mem.flush()
            self._mem.close()
        if self._file is not None:
            os.close(self._file)
            self._file = None
