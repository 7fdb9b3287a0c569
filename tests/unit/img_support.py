"""Helpers for the img group tests: images made by imgtool, and a booted board to drive."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from smpsim.config import Profile, load_profile
from smpsim.device.mcu import BootOutcome
from smpsim.device.mcuboot.image import APP_TLV, AppBehaviour
from smpsim.mcumgr.dispatcher import ResetEffect

from .smp_frames import BootedBoard

REPO = Path(__file__).resolve().parents[2]
FLASH_IMAGES = REPO / "flash_images"
"""The sample images, made for the nRF52840 DK (ECDSA P-256, header 0x200)."""

IMG = 1
STATE, UPLOAD, ERASE, SLOT_INFO = 0, 1, 5, 6
READ, WRITE = 0, 2
V1, V2 = 0, 1


@functools.cache
def make_image(version: str, payload: int, slot_size: int = 0xA000,
               app: AppBehaviour | None = None, header_size: int = 0x200) -> bytes:
    """A hash-only image signed by imgtool's command line: a zeroed header region, then
    ``payload`` deterministic bytes (seeded by the version), optionally an app TLV."""
    body = bytes(header_size) + hashlib.shake_256(f"img {version}".encode()).digest(payload)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.bin"), Path(tmp, "out.bin")
        src.write_bytes(body)
        args = ["sign", "--version", version, "--header-size", hex(header_size),
                "--align", "4", "--slot-size", hex(slot_size)]
        if app is not None:
            args += ["--custom-tlv", f"{APP_TLV:#06x}", "0x" + app.to_tlv().hex()]
        subprocess.run([sys.executable, "-m", "imgtool.main", *args, str(src), str(dst)],
                       check=True, capture_output=True)
        return dst.read_bytes()


def sample(name: str) -> bytes:
    """One of the sample images in ``flash_images/``."""
    return (FLASH_IMAGES / name).read_bytes()


class Board(BootedBoard):
    """A booted device and its server, with img group shortcuts."""

    group = IMG
    seq = 7

    def __init__(self, prof: Profile | str = "fast", **img: Any) -> None:
        prof = prof if isinstance(prof, Profile) else load_profile(prof)
        if img:
            fw = prof.firmware
            prof = dataclasses.replace(prof, firmware=dataclasses.replace(
                fw, img=dataclasses.replace(fw.img, **img)))
        super().__init__(prof)

    @property
    def dfu(self) -> Any:
        """The device's slot view."""
        return self.device.dfu

    def state(self) -> Any:
        """State read."""
        return self.call(READ, STATE, {})

    def write_state(self, hash_: bytes | None = None, confirm: bool = False,
                    version: int = V2) -> Any:
        """State write (test, or confirm with ``confirm``)."""
        payload: dict[str, Any] = {"confirm": confirm}
        if hash_ is not None:
            payload = {"hash": hash_, **payload}
        return self.call(WRITE, STATE, payload, version=version)

    def erase(self, payload: Any = None, version: int = V2) -> Any:
        """Image erase."""
        return self.call(WRITE, ERASE, {} if payload is None else payload, version=version)

    def chunk(self, payload: dict[str, Any], version: int = V2) -> Any:
        """One upload request."""
        return self.call(WRITE, UPLOAD, payload, version=version)

    def first(self, file: bytes, size: int = 200, **extra: Any) -> Any:
        """The first upload chunk of ``file`` (with ``len`` and the file's ``sha``)."""
        payload = {"image": 0, "len": len(file), "off": 0,
                   "sha": hashlib.sha256(file).digest(), "data": file[:size], **extra}
        return self.chunk(payload)

    def upload(self, file: bytes, chunk: int = 1024, **extra: Any) -> Any:
        """Upload the whole of ``file``; the last response."""
        answer = self.first(file, chunk, **extra)
        while "err" not in answer and answer["off"] < len(file):
            off = answer["off"]
            answer = self.chunk({"off": off, "data": file[off:off + chunk]})
        return answer

    def hash_in(self, slot: int, image: int = 0) -> bytes:
        """The image hash the slot lists."""
        found = self.device.dfu.find(image, slot)
        assert found is not None, f"no image in slot {slot} of image {image}"
        h: bytes = found.hash
        return h

    def reset_request(self) -> BootOutcome:
        """os reset over SMP, then the reboot the transport would do."""
        frame = self.raw(WRITE, 5, {}, group=0)
        assert frame[8:] == b"\xbf\xff"
        assert self.last is not None
        assert any(isinstance(e, ResetEffect) for e in self.last.effects)
        return self.reset()

    def reset(self) -> BootOutcome:
        """A reset (console captured from here)."""
        self.console.clear()
        return self.device.reset()


def flags(entry: dict[str, Any]) -> str:
    """The five flags as a ``BPCAp``-style string (``-`` for false)."""
    letters = (("bootable", "B"), ("pending", "P"), ("confirmed", "C"), ("active", "A"),
               ("permanent", "p"))
    return "".join(letter if entry.get(key) else "-" for key, letter in letters)


def summary(state: dict[str, Any]) -> list[tuple[int, str, str]]:
    """A state read as (slot, version, flags) per listed slot."""
    return [(e["slot"], e["version"], flags(e)) for e in state["images"]]
