"""Helpers of the file system tests: a booted board with littlefs, and fs group requests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from smpsim.config import Profile, load_profile

from .smp_frames import BootedBoard

READ, WRITE = 0, 2
V1, V2 = 0, 1
FS_GROUP, ZBASIC_GROUP = 8, 63
FILE, STATUS, HASH, SUPPORTED, CLOSE = 0, 1, 2, 3, 4


def fs_profile(name: str = "native_sim_udp", **fs: Any) -> Profile:
    """A built-in profile with ``firmware.fs`` fields replaced."""
    prof = load_profile(name)
    if fs:
        firmware = prof.firmware
        prof = dataclasses.replace(prof, firmware=dataclasses.replace(
            firmware, fs=dataclasses.replace(firmware.fs, **fs)))
    return prof


def err(rc: int) -> dict[str, Any]:
    """A v2 fs group error."""
    return {"err": {"group": FS_GROUP, "rc": rc}}


class FsBoard(BootedBoard):
    """A booted board with fs group shortcuts."""

    group = FS_GROUP
    seq = 9

    def __init__(self, prof: Profile | str = "native_sim_udp",
                 flash_path: Path | None = None) -> None:
        super().__init__(prof if isinstance(prof, Profile) else load_profile(prof), flash_path)

    def chunk(self, name: str, off: int, data: bytes | None = None, **extra: Any) -> Any:
        """One upload request."""
        payload: dict[str, Any] = {"name": name, "off": off}
        if data is not None:
            payload["data"] = data
        payload.update(extra)
        return self.call(WRITE, FILE, payload)

    def upload(self, name: str, data: bytes, chunk: int = 512) -> Any:
        """Upload all of ``data`` in ``chunk``-byte pieces; the last answer."""
        answer = self.chunk(name, 0, data[:chunk], len=len(data))
        while "err" not in answer and answer["off"] < len(data):
            off = answer["off"]
            answer = self.chunk(name, off, data[off:off + chunk])
        return answer

    def download(self, name: str) -> bytes:
        """Download a whole file."""
        first = self.call(READ, FILE, {"name": name, "off": 0})
        assert "err" not in first, first
        data, size = first["data"], first["len"]
        while len(data) < size:
            answer = self.call(READ, FILE, {"name": name, "off": len(data)})
            assert answer["off"] == len(data) and answer["data"], answer
            data += answer["data"]
        return bytes(data)

    def status(self, name: str) -> Any:
        """File status."""
        return self.call(READ, STATUS, {"name": name})

    def lines(self, text: str) -> list[str]:
        """Console lines containing ``text``."""
        return [line for line in self.console if text in line]
