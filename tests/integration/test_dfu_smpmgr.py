"""A firmware update with the smpmgr 0.19.1 CLI, each step a new process, as a user types it:
``image upload``, ``image state-read``, ``image state-write``, ``os reset``, and ``upgrade``.

smpmgr's UDP port is fixed at 1337, so every board lives on its own 127.0.0.N:1337. smpmgr
exits 0 on SMP errors: everything is asserted on the text it prints (pydantic reprs).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from smpclient.mcuboot import IMAGE_TLV, ImageInfo

from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import BIN, device_on_port_1337, wait_until

IMAGES = Path(__file__).resolve().parents[2] / "flash_images"
FLAGS = ("pending", "confirmed", "active", "permanent")
Slots = dict[int, tuple[str, str, frozenset[str]]]


def image_hash(name: str) -> str:
    """The SHA-256 TLV of a sample image, as hex."""
    return bytes(ImageInfo.load_file(str(IMAGES / name)).get_tlv(IMAGE_TLV.SHA256).value).hex()


FACTORY = image_hash("factory-1.0.0.bin")
APP_110 = image_hash("app-1.1.0.bin")


def flags(*names: str) -> frozenset[str]:
    return frozenset(names)


def smpmgr(host: str, *args: str, ok: bool = True) -> str:
    """Run smpmgr; its stdout. ``ok``: exit code 0 and no SMP error printed."""
    result = subprocess.run([str(BIN / "smpmgr"), "--ip", host, "--timeout", "5", *args],
                            capture_output=True, text=True, timeout=120, check=False)
    if ok:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert "Error" not in result.stdout, (args, result.stdout)
    return result.stdout


IMAGE_STATE = re.compile(r"ImageState\((.*?)\n\)", re.DOTALL)


def parse_states(text: str) -> Slots:
    """{slot: (version, hash hex, set flags)} from the ``ImageState(...)`` reprs printed by
    ``image state-read`` (rich may spread one over several lines)."""
    table: Slots = {}
    for block in IMAGE_STATE.findall(text):
        slot = re.search(r"\bslot=(\d+)", block)
        version = re.search(r"\bversion='([^']*)'", block)
        digest = re.search(r"\bhash=HashBytes\(\s*'([0-9A-Fa-f]+)'", block)
        assert slot and version and digest, block
        assert re.search(r"\bbootable=True", block), block
        set_flags = frozenset(name for name in FLAGS if re.search(rf"\b{name}=True", block))
        for name in FLAGS:
            assert re.search(rf"\b{name}=(True|False)", block), (name, block)
        table[int(slot[1])] = (version[1], digest[1].lower(), set_flags)
    return table


def state_read(host: str) -> Slots:
    text = smpmgr(host, "image", "state-read")
    assert "splitStatus: 0" in text
    return parse_states(text)


def reset(device: EmulatedDevice, boots: int) -> None:
    """``smpmgr os reset``, then wait until the board has booted ``boots`` times and answers."""
    assert "ResetWriteResponse(" in smpmgr(device.host, "os", "reset")
    wait_booted(device, boots)


def wait_booted(device: EmulatedDevice, boots: int) -> None:
    def up() -> bool:
        state = device.state()
        return state.online and state.boot_count == boots
    wait_until(up, timeout_s=10)


def test_full_update_with_the_cli(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    device = device_on_port_1337(smp_device_factory)
    host = device.host
    assert state_read(host) == {0: ("1.0.0", FACTORY, flags("active", "confirmed"))}

    uploaded = smpmgr(host, "image", "upload", str(IMAGES / "app-1.1.0.bin"))
    assert "100.0%" in uploaded
    listed = state_read(host)
    assert listed == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                      1: ("1.1.0", APP_110, flags())}

    # The hash to test, taken from what state-read printed, as a user copies it.
    denied = smpmgr(host, "image", "state-write", listed[0][1], ok=False)
    assert "ImageManagementErrorV2(" in denied
    assert "IMAGE_SETTING_TEST_TO_ACTIVE_DENIED: 33" in denied
    unknown = smpmgr(host, "image", "state-write", "ab" * 32, ok=False)
    assert "HASH_NOT_FOUND: 8" in unknown
    smpmgr(host, "image", "state-write", listed[1][1])
    assert state_read(host) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                1: ("1.1.0", APP_110, flags("pending"))}

    reset(device, boots=2)
    assert state_read(host) == {0: ("1.1.0", APP_110, flags("active")),
                                1: ("1.0.0", FACTORY, flags("confirmed"))}
    smpmgr(host, "image", "state-write", "--confirm")
    assert state_read(host) == {0: ("1.1.0", APP_110, flags("active", "confirmed")),
                                1: ("1.0.0", FACTORY, flags())}

    reset(device, boots=3)
    assert state_read(host) == {0: ("1.1.0", APP_110, flags("active", "confirmed")),
                                1: ("1.0.0", FACTORY, flags())}


def test_upgrade_without_slot_or_confirm_only_uploads_and_resets(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """smpmgr ``upgrade`` marks the image only with ``--slot`` != 0 or ``--confirm``: here it
    uploads and resets, and MCUboot has nothing to do."""
    device = device_on_port_1337(smp_device_factory)
    smpmgr(device.host, "upgrade", str(IMAGES / "app-1.1.0.bin"))
    wait_booted(device, 2)
    assert state_read(device.host) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                       1: ("1.1.0", APP_110, flags())}
    # Not wanted after all: erase it.
    smpmgr(device.host, "image", "erase", "1")
    assert state_read(device.host) == {0: ("1.0.0", FACTORY, flags("active", "confirmed"))}
    # The running slot cannot be erased.
    refused = smpmgr(device.host, "image", "erase", "0", ok=False)
    assert "NO_FREE_SLOT: 9" in refused


def test_upgrade_slot_1_tests_the_image_and_it_reverts(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    device = device_on_port_1337(smp_device_factory)
    # ``--slot 1`` sends "image": 1, which a single-image build ignores (upload goes to the
    # secondary slot), and makes smpmgr mark the image for a test.
    smpmgr(device.host, "upgrade", "--slot", "1", str(IMAGES / "app-1.1.0.bin"))
    wait_booted(device, 2)
    assert state_read(device.host) == {0: ("1.1.0", APP_110, flags("active")),
                                       1: ("1.0.0", FACTORY, flags("confirmed"))}
    reset(device, boots=3)  # nobody confirmed it
    assert state_read(device.host) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                       1: ("1.1.0", APP_110, flags())}


def test_upgrade_confirm_is_permanent(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    device = device_on_port_1337(smp_device_factory)
    smpmgr(device.host, "upgrade", "--confirm", str(IMAGES / "app-1.1.0.bin"))
    wait_booted(device, 2)
    assert state_read(device.host) == {0: ("1.1.0", APP_110, flags("active", "confirmed")),
                                       1: ("1.0.0", FACTORY, flags())}
    reset(device, boots=3)
    assert state_read(device.host) == {0: ("1.1.0", APP_110, flags("active", "confirmed")),
                                       1: ("1.0.0", FACTORY, flags())}


def test_rollback_demo_with_the_cli(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """The README's rollback demo, step by step: 2.0.0 crashes at boot and the board goes back
    to 1.0.0 by itself."""
    device = device_on_port_1337(smp_device_factory)
    crash = image_hash("app-2.0.0-crash.bin")
    smpmgr(device.host, "image", "upload", str(IMAGES / "app-2.0.0-crash.bin"))
    smpmgr(device.host, "image", "state-write", state_read(device.host)[1][1])
    assert state_read(device.host)[1] == ("2.0.0", crash, flags("pending"))
    reset(device, boots=3)  # the test boot crashes; the revert boot answers
    assert state_read(device.host) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                       1: ("2.0.0", crash, flags())}
    assert device.state().boot_count == 3
