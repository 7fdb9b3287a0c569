"""Real clients through MCUboot's serial recovery, over the board's PTY: smpmgr (a CLI in a
child process) and mcumgr-toolkit (a child process: it holds the GIL while it waits) upload
an image into the primary slot, reset, and the board boots it. On the mps2/an385 recovery
build (RAM_LOAD, nothing in slot 0 at power-on) and on the default board (a bricked
application, the recovery button or the boot mode). Instant time (``time_scale=0``)."""

from __future__ import annotations

import base64
import hashlib
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smpsim.mcumgr.boot_serial.framing import crc16
from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import BIN, wait_until
from .serial_support import Port, run_toolkit_serial

IMAGES = Path(__file__).resolve().parents[2] / "flash_images"
GOOD_APP = IMAGES / "app-1.1.0.bin"
CRASH_APP = IMAGES / "app-2.0.0-crash.bin"
RECOVERY = "mps2_an385_serial_recovery"


@pytest.fixture(scope="module")
def ram_load_app() -> Iterator[Path]:
    """A RAM_LOAD image for the mps2/an385 build, hash only, version 1.2.3+4."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.bin"), Path(tmp, "app-ramload.bin")
        src.write_bytes(bytes(0x200) + hashlib.shake_256(b"ramload app").digest(40_000))
        subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--version", "1.2.3+4",
                        "--header-size", "0x200", "--align", "4", "--slot-size", "0x80000",
                        "--load-addr", "0x20240000", str(src), str(dst)],
                       check=True, capture_output=True)
        yield dst


def smpmgr(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "smpmgr"), "--port", path, "--timeout", "5", *args],
                          capture_output=True, text=True, timeout=180, check=False)


def board(factory: Callable[..., EmulatedDevice], profile: str) -> tuple[EmulatedDevice, str]:
    device = factory(profile, serial=True)
    assert device.serial_path is not None
    return device, device.serial_path


def booted_app(device: EmulatedDevice, boots: int) -> None:
    """The board reset and now runs the application (MCUboot jumped to it)."""
    wait_until(lambda: device.state().boot_count > boots and device.state().online
               and not device.in_recovery(), timeout_s=20)
    assert "I: Jumping to the first image slot" in device.console


def test_smpmgr_uploads_through_recovery(smp_device_factory: Callable[..., EmulatedDevice],
                                         ram_load_app: Path) -> None:
    device, path = board(smp_device_factory, RECOVERY)
    assert device.in_recovery()  # nothing in slot 0: BOOT_SERIAL_NO_APPLICATION
    upload = smpmgr(path, "image", "upload", str(ram_load_app))
    assert upload.returncode == 0, upload.stdout + upload.stderr
    listed = smpmgr(path, "image", "state-read")
    assert "No images on device" in listed.stdout, listed.stdout  # the RAM_LOAD quirk
    boots = device.state().boot_count
    smpmgr(path, "os", "reset")
    booted_app(device, boots)
    assert "I: Image version: v1.2.3" in device.console
    echo = smpmgr(path, "os", "echo", "booted")
    assert "r='booted'" in echo.stdout, echo.stdout + echo.stderr


def test_mcumgr_toolkit_uploads_through_recovery(
        smp_device_factory: Callable[..., EmulatedDevice], ram_load_app: Path) -> None:
    device, path = board(smp_device_factory, RECOVERY)
    boots = device.state().boot_count
    params, upload, reset = run_toolkit_serial(
        path, ["os_mcumgr_parameters"], ["image_upload", str(ram_load_app)],
        ["os_system_reset"], timeout_ms=5000)
    assert params == {"buf_size": 1024, "buf_count": 1}
    assert upload is None and not isinstance(reset, dict), (upload, reset)
    booted_app(device, boots)
    [echo] = run_toolkit_serial(path, ["os_echo", "booted"])
    assert echo == "booted"


def test_default_board_unbricked_with_the_button(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """The README's recovery: an application that crashes at every boot, the button held at
    reset, a good image uploaded with smpmgr, a reset."""
    device, path = board(smp_device_factory, "nrf52840dk")

    def brick(dev: object) -> None:
        slot0 = dev.partitions.primary(0)  # type: ignore[attr-defined]
        dev.flash.program(slot0.offset, CRASH_APP.read_bytes())  # type: ignore[attr-defined]
    device.call(brick)
    device.reset()  # hard fault, reset, hard fault...: no SMP answers anymore
    wait_until(lambda: sum("HARD FAULT" in line for line in device.console) >= 2)
    device.reset(hold_button=True)
    assert device.in_recovery()
    upload = smpmgr(path, "image", "upload", str(GOOD_APP))
    assert upload.returncode == 0, upload.stdout + upload.stderr
    boots = device.state().boot_count
    smpmgr(path, "os", "reset")
    booted_app(device, boots)
    state = smpmgr(path, "image", "state-read")
    slots = re.findall(r"slot=(\d),\s+version='([\d.]+)'", state.stdout)
    assert slots == [("0", "1.1.0")], state.stdout


def test_default_board_boot_mode_with_mcumgr_toolkit(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """smp_svr's os reset with boot_mode 1 enters recovery once; mcumgr-toolkit uploads there."""
    device, path = board(smp_device_factory, "nrf52840dk")
    run_toolkit_serial(path, ["os_system_reset", False, 1])
    wait_until(device.in_recovery, timeout_s=10)
    [upload] = run_toolkit_serial(path, ["image_upload", str(GOOD_APP)], timeout_ms=20000)
    assert upload is None, upload
    boots = device.state().boot_count
    run_toolkit_serial(path, ["os_system_reset"])
    booted_app(device, boots)
    [state] = run_toolkit_serial(path, ["image_get_state"])
    assert [(s["slot"], s["version"]) for s in state] == [(0, "1.1.0")]


@pytest.mark.parametrize("profile", [RECOVERY, f"{RECOVERY}_raw"])
def test_recovery_answers_after_garbage(smp_device_factory: Callable[..., EmulatedDevice],
                                        profile: str) -> None:
    """Random bytes, broken lines and frames on the line: MCUboot's server neither dies nor
    stops answering (console: the next start line; raw: after its 3 s input timeout)."""
    device = smp_device_factory(profile, serial=True, time_scale=0.01)
    assert device.serial_path is not None
    raw = profile.endswith("_raw")
    rng = random.Random(13)
    params = bytes.fromhex("0800000100000706a0")
    line = b"\x06\x09" + base64.b64encode(b"\x00\x0b" + params
                                          + crc16(params).to_bytes(2, "big")) + b"\n"
    with Port(device.serial_path) as port:
        for _ in range(200):
            kind = rng.randrange(4)
            if kind == 0:
                port.write(rng.randbytes(rng.randrange(1, 300)))
            elif kind == 1:
                port.write(line[:rng.randrange(len(line))])
            elif kind == 2:
                port.write(bytes([rng.choice([0, 2, 8, 10, 0xE8])]) + rng.randbytes(7)
                           + rng.randbytes(rng.randrange(0, 40)))
            else:
                port.write(b"\x04\x14" + base64.b64encode(rng.randbytes(60)) + b"\n")
        port.quiet(0.1)  # 10 s of emulated silence: the raw input timeout passes
        port.write(params if raw else b"\n" + line)
        if raw:
            answer = bytes.fromhex("0900001900000706bf686275665f73697a6519040069"
                                   "6275665f636f756e7401ff")
            port.wait_for(lambda: port.received.endswith(answer), timeout=5)
        else:
            assert port.answer(7) == {"buf_size": 1024, "buf_count": 1}
    assert device.in_recovery() and device.state().online
