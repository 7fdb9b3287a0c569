"""The rollback demo over real UDP with smpclient, on nrf52840dk (swap-move): a test image that
crashes (or hangs) at boot is reverted by MCUboot without any client; a self-confirming image
stays; an image nobody confirms goes back at the second reset; a crashing image confirmed
straight away ("permanent") never comes back.

The images are the samples of ``flash_images/`` (see its README), plus one that hangs, made
here with imgtool as that README shows.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest
from smpclient import SMPClient
from smpclient.generics import success
from smpclient.mcuboot import IMAGE_TLV, ImageInfo
from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import ResetWrite

from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import smp_session, wait_until

IMAGES = Path(__file__).resolve().parents[2] / "flash_images"
KEY = IMAGES / "keys" / "insecure-test-ecdsa-p256.pem"
FLAGS = ("pending", "confirmed", "active", "permanent")
Slots = dict[int, tuple[str, bytes, frozenset[str]]]


def image_hash(path: Path) -> bytes:
    return bytes(ImageInfo.load_file(str(path)).get_tlv(IMAGE_TLV.SHA256).value)


FACTORY = image_hash(IMAGES / "factory-1.0.0.bin")


def flags(*names: str) -> frozenset[str]:
    return frozenset(names)


def slots(answer: Any) -> Slots:
    assert success(answer), answer
    return {image.slot: (image.version, bytes(image.hash),
                         frozenset(f for f in FLAGS if getattr(image, f)))
            for image in answer.images}


def session(device: EmulatedDevice, body: Callable[[SMPClient], Awaitable[Any]]) -> Any:
    return smp_session(device.host, device.port, body)


def read_state(device: EmulatedDevice) -> Slots:
    return slots(session(device, lambda c: c.request(ImageStatesRead())))


def upload_and_mark(device: EmulatedDevice, path: Path, *, confirm: bool = False) -> Slots:
    """Upload an image and ask for a test (or, with ``confirm``, a permanent) swap; returns the
    state the state write answers."""
    image = path.read_bytes()

    async def body(client: SMPClient) -> Any:
        offsets = [off async for off in client.upload(image)]
        assert offsets[-1] == len(image)
        return await client.request(ImageStatesWrite(hash=image_hash(path), confirm=confirm))
    return slots(session(device, body))


def send_reset(device: EmulatedDevice) -> None:
    answer = session(device, lambda c: c.request(ResetWrite()))
    assert success(answer), answer


def wait_up(device: EmulatedDevice, boots: int, timeout_s: float = 10.0) -> None:
    """Wait (bounded) until the board has booted ``boots`` times in all and answers."""
    def up() -> bool:
        state = device.state()
        return state.online and state.boot_count >= boots
    wait_until(up, timeout_s=timeout_s)


def console(device: EmulatedDevice) -> list[str]:
    lines: list[str] = []
    device.call(lambda d: d.console.subscribe(lines.append))
    return lines


def index(lines: list[str], text: str, start: int = 0) -> int:
    """Position of the first line from ``start`` containing ``text``."""
    for position in range(start, len(lines)):
        if text in lines[position]:
            return position
    raise AssertionError(f"{text!r} not in the console after line {start}: {lines}")


@pytest.fixture(scope="module")
def hang_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2.1.0 that hangs at boot, signed as the README's "Make your own image" says."""
    tmp = tmp_path_factory.mktemp("hang")
    raw, signed = tmp / "zephyr.bin", tmp / "app-2.1.0-hang.bin"
    raw.write_bytes(bytes(0x200) + bytes(range(256)) * 64)
    tlv = cbor2.dumps({"boot": "hang", "version": "2.1.0"}).hex()
    subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--version", "2.1.0",
                    "--header-size", "0x200", "--align", "4", "--slot-size", "0x76000",
                    "-k", str(KEY), "--custom-tlv", "0x53A5", "0x" + tlv, str(raw), str(signed)],
                   check=True, capture_output=True, timeout=60)
    return signed


@pytest.mark.parametrize("kind", ["crash", "hang"])
def test_failing_test_image_is_reverted_by_mcuboot(smp_device: EmulatedDevice, kind: str,
                                                   request: pytest.FixtureRequest) -> None:
    path = IMAGES / "app-2.0.0-crash.bin" if kind == "crash" \
        else request.getfixturevalue("hang_image")
    version = "2.0.0" if kind == "crash" else "2.1.0"
    digest = image_hash(path)
    lines = console(smp_device)
    assert smp_device.state().boot_count == 1

    assert upload_and_mark(smp_device, path) == {
        0: ("1.0.0", FACTORY, flags("active", "confirmed")),
        1: (version, digest, flags("pending"))}
    send_reset(smp_device)
    # No client does anything more: the board boots the new image, which fails; the board
    # resets by itself (fault handler, or the watchdog) and MCUboot reverts.
    wait_up(smp_device, boots=3)
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                      1: (version, digest, flags())}
    # Exactly two boots: the test boot of the new image, then the revert. No third.
    assert smp_device.state().boot_count == 3
    test = index(lines, "I: Image index: 0, Swap type: test")
    booted = index(lines, f"*** Booting Zephyr OS build {version} ***", test)
    if kind == "crash":
        booted = index(lines, "ZEPHYR FATAL ERROR", booted)
    revert = index(lines, "I: Image index: 0, Swap type: revert", booted)
    index(lines, "I: Image version: v1.0.0", revert)
    index(lines, "*** Booting Zephyr OS build v4.4.0 ***", revert)
    assert sum("Starting bootloader" in line for line in lines) == 2

    # The revert is final: the next reset is an ordinary boot of 1.0.0.
    lines.clear()
    send_reset(smp_device)
    wait_up(smp_device, boots=4)
    index(lines, "I: Image index: 0, Swap type: none")
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                      1: (version, digest, flags())}
    assert smp_device.state().boot_count == 4


def test_self_confirming_image_stays(smp_device: EmulatedDevice) -> None:
    path = IMAGES / "app-1.1.0-selfconfirm.bin"
    digest = image_hash(path)
    lines = console(smp_device)
    assert upload_and_mark(smp_device, path)[1] == ("1.1.0", digest, flags("pending"))
    send_reset(smp_device)
    wait_up(smp_device, boots=2)
    # No client confirmed it: the application did, at boot.
    index(lines, "<inf> smp_sample: Image confirmed")
    assert read_state(smp_device) == {0: ("1.1.0", digest, flags("active", "confirmed")),
                                      1: ("1.0.0", FACTORY, flags())}
    lines.clear()
    send_reset(smp_device)
    wait_up(smp_device, boots=3)
    index(lines, "I: Image index: 0, Swap type: none")
    assert read_state(smp_device) == {0: ("1.1.0", digest, flags("active", "confirmed")),
                                      1: ("1.0.0", FACTORY, flags())}
    assert smp_device.state().boot_count == 3


def test_unconfirmed_image_reverts_on_the_second_reset(smp_device: EmulatedDevice) -> None:
    path = IMAGES / "app-1.1.0.bin"
    digest = image_hash(path)
    lines = console(smp_device)
    upload_and_mark(smp_device, path)
    send_reset(smp_device)
    wait_up(smp_device, boots=2)
    assert read_state(smp_device) == {0: ("1.1.0", digest, flags("active")),
                                      1: ("1.0.0", FACTORY, flags("confirmed"))}
    assert not any("Image confirmed" in line for line in lines)
    send_reset(smp_device)
    wait_up(smp_device, boots=3)
    index(lines, "I: Image index: 0, Swap type: revert")
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                      1: ("1.1.0", digest, flags())}
    assert smp_device.state().boot_count == 3


def test_crashing_image_confirmed_permanently_never_comes_back(
        smp_device: EmulatedDevice) -> None:
    """``confirm`` with a hash skips the trial: MCUboot has nothing to revert to, and the board
    crash-loops (what smpmgr's ``--confirm`` warning is about)."""
    path = IMAGES / "app-2.0.0-crash.bin"
    lines = console(smp_device)
    assert upload_and_mark(smp_device, path, confirm=True)[1] == (
        "2.0.0", image_hash(path), flags("pending", "permanent"))
    send_reset(smp_device)
    wait_until(lambda: smp_device.state().boot_count >= 6, timeout_s=10)
    assert not smp_device.state().online
    assert index(lines, "I: Image index: 0, Swap type: perm") >= 0
    after_swap = index(lines, "ZEPHYR FATAL ERROR")
    # Every later boot is an ordinary one of 2.0.0, crashing again; never a revert.
    assert any("Swap type: none" in line for line in lines[after_swap:])
    assert not any("Swap type: revert" in line for line in lines)
    assert not any("Image version: v1.0.0" in line for line in lines[after_swap:])
