"""Firmware updates with mcumgr-toolkit 0.20.0 (Rust) over real UDP on nrf52840dk: its
``firmware_update`` routine, and the image commands one by one with their errors.

The toolkit holds the GIL while it waits, so it runs in a child process (see
``itsupport.run_toolkit``); the worker here also passes image files and keyword arguments and
records progress callbacks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from smpclient.mcuboot import IMAGE_TLV, ImageInfo

from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import HERE, wait_until

IMAGES = Path(__file__).resolve().parents[2] / "flash_images"
FLAGS = ("pending", "confirmed", "active", "permanent")
Slots = dict[int, tuple[str, str, frozenset[str]]]

WORKER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from toolkit_worker import plain
from mcumgr_toolkit import MCUmgrClient

def value(arg):
    if isinstance(arg, dict) and "file" in arg:
        with open(arg["file"], "rb") as f:
            return f.read()
    if isinstance(arg, dict) and "hex" in arg:
        return bytes.fromhex(arg["hex"])
    return arg

client = MCUmgrClient.udp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
results = []
for method, args, kwargs in json.loads(sys.argv[5]):
    progress = []
    if kwargs.pop("progress", False):
        kwargs["progress"] = lambda *a: progress.append(plain(list(a)))
    kwargs = {key: value(arg) for key, arg in kwargs.items()}
    try:
        result = {"value": plain(getattr(client, method)(*map(value, args), **kwargs))}
    except RuntimeError as exc:
        result = {"error": str(exc)}
    result["progress"] = progress
    results.append(result)
print(json.dumps(results))
"""


def toolkit(device: EmulatedDevice, *ops: tuple[str, list[Any], dict[str, Any]],
            timeout_ms: int = 2000) -> list[dict[str, Any]]:
    """Run toolkit calls in a child process: ``(method, args, kwargs)``; ``{"file": path}``
    stands for that file's bytes, ``{"hex": ...}`` for bytes; ``"progress": True`` records the
    progress callbacks. One ``{"value"|"error", "progress"}`` per op."""
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, str(HERE), device.host, str(device.port), str(timeout_ms),
         json.dumps(ops)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"toolkit worker failed:\n{proc.stdout}\n{proc.stderr}"
    results: list[dict[str, Any]] = json.loads(proc.stdout.splitlines()[-1])
    return results


def value(result: dict[str, Any]) -> Any:
    assert "error" not in result, result["error"]
    return result["value"]


def error(result: dict[str, Any]) -> str:
    assert "error" in result, f"expected an error, got {result}"
    return " ".join(result["error"].split())  # the message is wrapped over lines


def image_file(name: str) -> dict[str, str]:
    return {"file": str(IMAGES / name)}


def image_hash(name: str) -> str:
    return bytes(ImageInfo.load_file(str(IMAGES / name)).get_tlv(IMAGE_TLV.SHA256).value).hex()


FACTORY = image_hash("factory-1.0.0.bin")
APP_110 = image_hash("app-1.1.0.bin")


def flags(*names: str) -> frozenset[str]:
    return frozenset(names)


def slots(states: list[dict[str, Any]]) -> Slots:
    """{slot: (version, hash hex, set flags)} of ``image_get_state``/``image_set_state``."""
    table: Slots = {}
    for state in states:
        assert state["image"] == 0 and state["bootable"] is True, state
        table[state["slot"]] = (state["version"], state["hash"],
                                frozenset(f for f in FLAGS if state[f]))
    return table


def get_state(device: EmulatedDevice) -> Slots:
    return slots(value(toolkit(device, ("image_get_state", [], {}))[0]))


def wait_booted(device: EmulatedDevice, boots: int) -> None:
    def up() -> bool:
        state = device.state()
        return state.online and state.boot_count == boots
    wait_until(up, timeout_s=10)


def test_firmware_update_then_confirm(smp_device: EmulatedDevice) -> None:
    size = (IMAGES / "app-1.1.0.bin").stat().st_size
    result = toolkit(smp_device, ("firmware_update", [image_file("app-1.1.0.bin")],
                                  {"progress": True}))[0]
    assert value(result) is None
    messages = [message for message, _ in result["progress"]]
    for step in ("Found bootloader: MCUboot", "Update: 1.0.0-b69ecbaa -> 1.1.0-1ba753ee",
                 "Uploading new firmware ...", "Activating new firmware ...",
                 "Triggering device reboot ..."):
        assert step in messages, (step, messages)
    uploaded = [tuple(done) for message, done in result["progress"] if done is not None]
    assert uploaded[-1] == (size, size)
    assert [sent for sent, _ in uploaded] == sorted(sent for sent, _ in uploaded)

    wait_booted(smp_device, 2)
    assert get_state(smp_device) == {0: ("1.1.0", APP_110, flags("active")),
                                     1: ("1.0.0", FACTORY, flags("confirmed"))}
    confirmed, again = toolkit(smp_device, ("image_set_state", [], {"confirm": True}),
                               ("firmware_update", [image_file("app-1.1.0.bin")], {}))
    assert slots(value(confirmed)) == {0: ("1.1.0", APP_110, flags("active", "confirmed")),
                                       1: ("1.0.0", FACTORY, flags())}
    assert "already running the given firmware" in error(again)

    value(toolkit(smp_device, ("os_system_reset", [], {}))[0])
    wait_booted(smp_device, 3)
    assert get_state(smp_device) == {0: ("1.1.0", APP_110, flags("active", "confirmed")),
                                     1: ("1.0.0", FACTORY, flags())}


def test_firmware_update_force_confirm_then_no_downgrade(smp_device: EmulatedDevice) -> None:
    value(toolkit(smp_device, ("firmware_update", [image_file("app-1.1.0.bin")],
                               {"force_confirm": True}))[0])
    wait_booted(smp_device, 2)
    assert get_state(smp_device) == {0: ("1.1.0", APP_110, flags("active", "confirmed")),
                                     1: ("1.0.0", FACTORY, flags())}
    # Back to the factory image with upgrade_only: the device refuses the older version.
    downgrade = toolkit(smp_device, ("firmware_update", [image_file("factory-1.0.0.bin")],
                                     {"upgrade_only": True}))[0]
    assert "IMG_MGMT_ERR_CURRENT_VERSION_IS_NEWER" in error(downgrade)
    assert smp_device.state().boot_count == 2


def test_firmware_update_skip_reboot(smp_device: EmulatedDevice) -> None:
    value(toolkit(smp_device, ("firmware_update", [image_file("app-1.1.0.bin")],
                               {"skip_reboot": True}))[0])
    assert get_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                     1: ("1.1.0", APP_110, flags("pending"))}
    assert smp_device.state().boot_count == 1
    value(toolkit(smp_device, ("os_system_reset", [], {}))[0])
    wait_booted(smp_device, 2)
    assert get_state(smp_device) == {0: ("1.1.0", APP_110, flags("active")),
                                     1: ("1.0.0", FACTORY, flags("confirmed"))}


def test_image_commands_one_by_one(smp_device: EmulatedDevice, tmp_path: Path) -> None:
    good = (IMAGES / "app-1.1.0.bin").read_bytes()
    no_magic, too_large = tmp_path / "no-magic.bin", tmp_path / "too-large.bin"
    no_magic.write_bytes(bytes(4) + good[4:])
    too_large.write_bytes(good + bytes(0x76000 - len(good) + 4))  # one word past the slot
    (slot_info, upload, listed, test_active, unknown, tested, erase_active, erase_pending,
     after_erase, bad_slot, bad_magic, large, downgrade, final) = toolkit(
        smp_device,
        ("image_slot_info", [], {}),
        ("image_upload", [image_file("app-1.1.0.bin")], {"progress": True}),
        ("image_get_state", [], {}),
        ("image_set_state", [{"hex": FACTORY}], {"confirm": False}),
        ("image_set_state", [{"hex": "00" * 32}], {"confirm": False}),
        ("image_set_state", [{"hex": APP_110}], {"confirm": False}),
        ("image_erase", [0], {}),
        ("image_erase", [], {}),  # slot 1, pending: Zephyr's ALLOW_ERASE_PENDING default
        ("image_get_state", [], {}),
        ("image_erase", [7], {}),
        ("image_upload", [{"file": str(no_magic)}], {}),
        ("image_upload", [{"file": str(too_large)}], {}),
        ("image_upload", [image_file("factory-1.0.0.bin")], {"upgrade_only": True}),
        ("image_get_state", [], {}),
    )
    assert value(slot_info) == [{"image": 0, "max_image_size": None, "slots": [
        {"slot": 0, "size": 0x76000, "upload_image_id": None},
        {"slot": 1, "size": 0x76000, "upload_image_id": 0}]}]
    assert value(upload) is None
    assert upload["progress"][-1] == [len(good), len(good)]
    assert slots(value(listed)) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                    1: ("1.1.0", APP_110, flags())}
    assert "IMG_MGMT_ERR_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED" in error(test_active)
    assert "IMG_MGMT_ERR_HASH_NOT_FOUND" in error(unknown)
    assert slots(value(tested))[1] == ("1.1.0", APP_110, flags("pending"))
    assert "IMG_MGMT_ERR_NO_FREE_SLOT" in error(erase_active)
    assert value(erase_pending) is None
    assert slots(value(after_erase)) == {0: ("1.0.0", FACTORY, flags("active", "confirmed"))}
    assert "IMG_MGMT_ERR_FLASH_OPEN_FAILED" in error(bad_slot)
    assert "IMG_MGMT_ERR_INVALID_IMAGE_HEADER_MAGIC" in error(bad_magic)
    assert "IMG_MGMT_ERR_INVALID_IMAGE_TOO_LARGE" in error(large)
    assert "IMG_MGMT_ERR_CURRENT_VERSION_IS_NEWER" in error(downgrade)
    assert slots(value(final)) == {0: ("1.0.0", FACTORY, flags("active", "confirmed"))}
    assert smp_device.state().boot_count == 1


def test_image_commands_while_running_a_test_image(smp_device: EmulatedDevice) -> None:
    """While 1.1.0 runs on trial, slot 1 holds the image to go back to: no upload, no erase,
    no other test; confirming the running image is what is left."""
    value(toolkit(smp_device, ("firmware_update", [image_file("app-1.1.0.bin")], {}))[0])
    wait_booted(smp_device, 2)
    upload, erase, test_old, confirm = toolkit(
        smp_device,
        ("image_upload", [image_file("app-1.1.0-selfconfirm.bin")], {}),
        ("image_erase", [1], {}),
        ("image_set_state", [{"hex": FACTORY}], {"confirm": False}),
        ("image_set_state", [], {"confirm": True}),
    )
    assert "IMG_MGMT_ERR_NO_FREE_SLOT" in error(upload)
    assert "IMG_MGMT_ERR_NO_FREE_SLOT" in error(erase)
    assert "IMG_MGMT_ERR_IMAGE_ALREADY_PENDING" in error(test_old)
    assert slots(value(confirm)) == {0: ("1.1.0", APP_110, flags("active", "confirmed")),
                                     1: ("1.0.0", FACTORY, flags())}
    # Confirmed: slot 1 is free again.
    erased = toolkit(smp_device, ("image_erase", [1], {}), ("image_get_state", [], {}))
    assert value(erased[0]) is None
    assert slots(value(erased[1])) == {0: ("1.1.0", APP_110, flags("active", "confirmed"))}
