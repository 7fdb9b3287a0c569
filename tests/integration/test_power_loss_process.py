"""Killing the real ``smpsim run`` with SIGKILL in the middle of a real-time swap is a power cut:
started again on the same flash file, MCUboot finishes the swap and a valid image runs."""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from smpsim.config import load_profile
from smpsim.device.mcu import Device
from smpsim.device.mcuboot.image import read_image
from smpsim.device.mcuboot.trailer import Flag, Magic

from .itsupport import BIN, echo_frame, parse_frame, udp_socket

REPO = Path(__file__).resolve().parents[2]
KEY = REPO / "flash_images" / "keys" / "insecure-test-ecdsa-p256.pem"
SLOT_SIZE = 0x76000


def padded_test_image(tmp_path: Path) -> bytes:
    """A signed 1.1.0 image padded to the slot with a test request in its trailer (imgtool
    --pad): copied into slot 1, MCUboot swaps it in at the next boot."""
    payload = bytes(0x200) + hashlib.shake_256(b"power-loss").digest(64 * 1024)
    raw, out = tmp_path / "app.bin", tmp_path / "app.signed.bin"
    raw.write_bytes(payload)
    subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--version", "1.1.0",
                    "--header-size", "0x200", "--align", "4", "--slot-size", hex(SLOT_SIZE),
                    "--pad", "-k", str(KEY), str(raw), str(out)], check=True,
                   capture_output=True)
    return out.read_bytes()


def slot_state(flash: Path) -> tuple[str | None, Magic, Flag]:
    """Version in slot 0 (None if unreadable) and the primary trailer's magic and copy_done."""
    device = Device(load_profile("nrf52840dk"), flash_path=flash)
    try:
        assert device.dfu is not None
        try:
            version: str | None = str(device.dfu.read(0, 0).version)
        except Exception:
            version = None
        state = device.dfu.trailer_state(0, 0)
        return version, state.magic, state.copy_done
    finally:
        device.close()


def test_sigkill_mid_swap_then_restart_finds_a_valid_image(tmp_path: Path) -> None:
    flash = tmp_path / "flash.bin"
    image = padded_test_image(tmp_path)
    subprocess.run([str(BIN / "smpsim"), "flash", "import", str(tmp_path / "app.signed.bin"),
                    "--profile", "nrf52840dk", "--flash", str(flash), "--address", "slot1"],
                   check=True, capture_output=True)
    old = Device(load_profile("nrf52840dk"), flash_path=flash)
    factory = old.flash.read(0xC000, 0x8000)
    old.close()

    # Real time: the swap of this 64 KiB image takes several seconds of erases and writes.
    with subprocess.Popen([str(BIN / "smpsim"), "run", "--profile", "nrf52840dk", "--flash",
                           str(flash), "--time-scale", "1", "--udp", "127.0.0.1:0"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr or ()],
                                  daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 30
            while "Starting swap using move algorithm" not in lines.get(
                    timeout=max(0.1, deadline - time.monotonic())):
                pass
            time.sleep(1.5)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(5)
    assert proc.returncode == -signal.SIGKILL

    version, magic, copy_done = slot_state(flash)
    # Cut mid-swap: the primary trailer says a swap is under way and not done.
    assert magic is Magic.GOOD and copy_done is Flag.UNSET

    with subprocess.Popen([str(BIN / "smpsim"), "run", "--profile", "nrf52840dk", "--flash",
                           str(flash), "--time-scale", "0", "--udp", "127.0.0.1:0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as restarted:
        try:
            assert restarted.stdout is not None
            ready = restarted.stdout.readline().rstrip("\n")
            port = int(ready.rsplit(":", 1)[1])
            with udp_socket(("127.0.0.1", port), timeout_s=10) as sock:
                sock.send(echo_frame(7, "alive"))
                _, body = parse_frame(sock.recv(2048))
            assert body == {"r": "alive"}
        finally:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(10)

    version, magic, copy_done = slot_state(flash)
    assert version == "1.1.0" and magic is Magic.GOOD and copy_done is Flag.SET
    device = Device(load_profile("nrf52840dk"), flash_path=flash)
    try:
        new = read_image(lambda off, n: image[off:off + n], SLOT_SIZE)
        assert device.flash.read(0xC000, new.size) == image[:new.size]  # exactly the new image
        old_image = read_image(lambda off, n: factory[off:off + n], len(factory))
        assert device.flash.read(0x82000, old_image.size) == factory[:old_image.size]
    finally:
        device.close()
