"""A firmware update with smpclient 7.3.0 over real UDP on nrf52840dk (swap-move, ECDSA P-256):
upload, test, reset, reconnect, confirm; SMP v1 requests; interrupted and restarted uploads;
images padded with their own trailer mark; and the images MCUboot refuses.

Expected flags follow Zephyr's img_mgmt (``img_mgmt_state.c``: ``img_mgmt_state_flags``); the
sample images are described in ``flash_images/README.md``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from smp.error import MGMT_ERR
from smp.header import Version
from smp.image_management import IMG_MGMT_ERR
from smpclient import SMPClient
from smpclient.exceptions import SMPUploadError
from smpclient.generics import error_v1, error_v2, success
from smpclient.mcuboot import IMAGE_TLV, ImageInfo
from smpclient.requests.image_management import (
    ImageErase,
    ImageStatesRead,
    ImageStatesWrite,
    ImageUploadWrite,
)
from smpclient.requests.os_management import ResetWrite

from smpsim.device.mcu import Device
from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import smp_session, wait_until

IMAGES = Path(__file__).resolve().parents[2] / "flash_images"
KEY = IMAGES / "keys" / "insecure-test-ecdsa-p256.pem"
FLAGS = ("pending", "confirmed", "active", "permanent")
Slots = dict[int, tuple[str, bytes, frozenset[str]]]


def image_hash(name: str | Path) -> bytes:
    """The SHA-256 TLV of an image (a sample's name, or a path): what img_mgmt lists and a
    state write names."""
    return bytes(ImageInfo.load_file(str(IMAGES / name)).get_tlv(IMAGE_TLV.SHA256).value)


FACTORY = image_hash("factory-1.0.0.bin")
APP_110 = image_hash("app-1.1.0.bin")


def flags(*names: str) -> frozenset[str]:
    return frozenset(names)


def slots(answer: Any) -> Slots:
    """{slot: (version, hash, set flags)} of a state read (or state write) answer."""
    assert success(answer), answer
    table: Slots = {}
    for image in answer.images:
        assert image.image in (None, 0)  # a single-image board lists no "image" key
        assert image.bootable is True
        table[image.slot] = (image.version, bytes(image.hash),
                             frozenset(f for f in FLAGS if getattr(image, f)))
    return table


def session(device: EmulatedDevice, body: Callable[[SMPClient], Awaitable[Any]]) -> Any:
    return smp_session(device.host, device.port, body)


def read_state(device: EmulatedDevice) -> Slots:
    return slots(session(device, lambda c: c.request(ImageStatesRead())))


async def upload(client: SMPClient, image: bytes) -> list[int]:
    return [off async for off in client.upload(image)]


def slot1_erased(device: Device) -> bool:
    """Every byte of slot 1 reads erased (MCUboot scrambles a refused image entirely)."""
    area = device.partitions.secondary(0)
    assert area is not None
    return area.is_erased()


def reset_and_wait(device: EmulatedDevice, boots: int) -> None:
    """os reset from a client, then wait until the board has booted ``boots`` times in all
    and answers again."""
    answer = session(device, lambda c: c.request(ResetWrite()))
    assert success(answer), answer

    def up() -> bool:
        state = device.state()
        return state.online and state.boot_count == boots
    wait_until(up, timeout_s=10)


def test_full_update_test_reset_confirm(smp_device: EmulatedDevice) -> None:
    image = (IMAGES / "app-1.1.0.bin").read_bytes()
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed"))}

    async def send(client: SMPClient) -> tuple[list[int], Any, Any]:
        offsets = await upload(client, image)
        listed = await client.request(ImageStatesRead())
        tested = await client.request(ImageStatesWrite(hash=APP_110, confirm=False))
        return offsets, listed, tested
    offsets, listed, tested = session(smp_device, send)
    assert offsets == sorted(set(offsets)) and offsets[-1] == len(image)
    assert slots(listed) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                             1: ("1.1.0", APP_110, flags())}
    # The state write answers the new state: slot 1 pending (a test swap).
    assert slots(tested) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                             1: ("1.1.0", APP_110, flags("pending"))}

    reset_and_wait(smp_device, boots=2)
    # A new connection, as a client makes after the reboot: 1.1.0 runs, on trial.
    assert read_state(smp_device) == {0: ("1.1.0", APP_110, flags("active")),
                                      1: ("1.0.0", FACTORY, flags("confirmed"))}
    confirmed = session(smp_device, lambda c: c.request(ImageStatesWrite(confirm=True)))
    assert slots(confirmed) == {0: ("1.1.0", APP_110, flags("active", "confirmed")),
                                1: ("1.0.0", FACTORY, flags())}

    reset_and_wait(smp_device, boots=3)
    assert read_state(smp_device) == {0: ("1.1.0", APP_110, flags("active", "confirmed")),
                                      1: ("1.0.0", FACTORY, flags())}


def test_v1_requests_get_v1_answers_with_translated_rc(smp_device: EmulatedDevice) -> None:
    header = (IMAGES / "app-1.1.0.bin").read_bytes()[:64]
    v1 = Version.V1

    async def body(client: SMPClient) -> dict[str, Any]:
        return {
            "read": await client.request(ImageStatesRead(version=v1)),
            # Testing the running image: 33 TEST_TO_ACTIVE_DENIED, untranslated -> EUNKNOWN.
            "test_active": await client.request(ImageStatesWrite(hash=FACTORY, confirm=False,
                                                                 version=v1)),
            "test_active_v2": await client.request(ImageStatesWrite(hash=FACTORY,
                                                                    confirm=False)),
            "unknown": await client.request(ImageStatesWrite(hash=bytes(32), version=v1)),
            "short": await client.request(ImageStatesWrite(hash=bytes(31), version=v1)),
            "erase_active": await client.request(ImageErase(slot=0, version=v1)),
            "no_len": await client.request(ImageUploadWrite(off=0, data=header, image=0,
                                                            version=v1)),
            "no_magic": await client.request(ImageUploadWrite(
                off=0, data=bytes(64), image=0, len=64, version=v1)),
        }
    answers = session(smp_device, body)
    read = answers.pop("read")
    assert success(read), read
    assert read.header.version == Version.V1
    assert slots(read) == {0: ("1.0.0", FACTORY, flags("active", "confirmed"))}
    v2 = answers.pop("test_active_v2")
    assert error_v2(v2), v2
    assert v2.err.rc == IMG_MGMT_ERR.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED
    expected = {
        "test_active": MGMT_ERR.EUNKNOWN,
        "unknown": MGMT_ERR.EUNKNOWN,  # 8 HASH_NOT_FOUND
        "short": MGMT_ERR.EINVAL,  # 24 INVALID_HASH
        "erase_active": MGMT_ERR.EBADSTATE,  # 9 NO_FREE_SLOT
        "no_len": MGMT_ERR.EINVAL,  # 21 INVALID_LENGTH
        "no_magic": MGMT_ERR.EUNKNOWN,  # 23 INVALID_IMAGE_HEADER_MAGIC
    }
    for name, rc in expected.items():
        answer = answers[name]
        if name.startswith("no_"):
            # smpclient's upload answer model has an optional rc of its own: no offset, an rc.
            assert answer.off is None, (name, answer)
        else:
            assert error_v1(answer), (name, answer)
        assert answer.header.version == Version.V1, name
        assert answer.rc == rc, (name, answer)
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed"))}


def test_bad_magic_upload_is_rejected_before_the_erase(smp_device: EmulatedDevice) -> None:
    good = (IMAGES / "app-1.1.0.bin").read_bytes()
    bad = b"\x00\x00\x00\x00" + good[4:]  # no IMAGE_MAGIC (0x96f3b83d)

    async def body(client: SMPClient) -> Any:
        await upload(client, good)
        with pytest.raises(SMPUploadError) as failure:
            await upload(client, bad)
        return failure.value.args[0]
    answer = session(smp_device, body)
    assert error_v2(answer), answer
    assert answer.err.group == 1
    assert answer.err.rc == IMG_MGMT_ERR.INVALID_IMAGE_HEADER_MAGIC
    # Checked before the slot is touched: the earlier upload is still there.
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                      1: ("1.1.0", APP_110, flags())}


@pytest.mark.parametrize("name, version", [("app-9.0.0-too-big.bin", "9.0.0"),
                                           ("app-1.2.0-badhash.bin", "1.2.0"),
                                           ("app-1.3.0-unknown-key.bin", "1.3.0")])
def test_image_mcuboot_refuses(smp_device: EmulatedDevice, name: str, version: str) -> None:
    """img_mgmt takes the image (it only reads the header and the hash TLV); MCUboot validates
    it at the next boot, finds it invalid, erases slot 1 and boots the old image."""
    image = (IMAGES / name).read_bytes()
    digest = image_hash(name)
    lines: list[str] = []
    smp_device.call(lambda device: device.console.subscribe(lines.append))

    async def send(client: SMPClient) -> tuple[list[int], Any]:
        offsets = await upload(client, image)
        return offsets, await client.request(ImageStatesWrite(hash=digest, confirm=False))
    offsets, tested = session(smp_device, send)
    assert offsets[-1] == len(image)
    assert slots(tested) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                             1: (version, digest, flags("pending"))}

    reset_and_wait(smp_device, boots=2)
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed"))}
    assert smp_device.call(slot1_erased)
    assert "I: Image index: 0, Swap type: test" in lines
    assert "E: Image in the secondary slot is not valid!" in lines
    assert "I: Image version: v1.0.0" in lines
    assert not any("Starting swap" in line for line in lines), lines
    # Nothing is left to try: the next reset is an ordinary boot of 1.0.0.
    lines.clear()
    reset_and_wait(smp_device, boots=3)
    assert "I: Image index: 0, Swap type: none" in lines
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed"))}


def test_interrupted_upload_resumes_where_it_stopped(smp_device: EmulatedDevice) -> None:
    """A client that gives up half-way and starts again with the same file (same ``sha``) is
    told where the upload stands and goes on from there."""
    image = (IMAGES / "app-1.1.0.bin").read_bytes()

    async def half(client: SMPClient) -> int:
        async for off in client.upload(image):
            if off >= len(image) // 2:
                return off
        raise AssertionError("the upload ended before half-way")

    async def again(client: SMPClient) -> list[int]:
        return await upload(client, image)
    stopped = session(smp_device, half)
    resumed = session(smp_device, again)
    assert resumed[0] == stopped  # the first answer is the offset already reached
    assert resumed[-1] == len(image)
    assert read_state(smp_device)[1] == ("1.1.0", APP_110, flags())


def test_reset_in_the_middle_of_an_upload_starts_it_over(smp_device: EmulatedDevice) -> None:
    """The upload in progress lives in RAM: after a reset the same file starts from 0 (the
    half-written slot is erased again) and ends with a valid image."""
    image = (IMAGES / "app-1.1.0.bin").read_bytes()

    async def half(client: SMPClient) -> int:
        async for off in client.upload(image):
            if off >= len(image) // 2:
                return off
        raise AssertionError("the upload ended before half-way")
    session(smp_device, half)
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed"))}
    reset_and_wait(smp_device, boots=2)
    erases = smp_device.call(lambda device: device.flash.erases)
    offsets = session(smp_device, lambda c: upload(c, image))
    assert offsets[0] < len(image) // 4
    assert offsets[-1] == len(image)
    assert smp_device.call(lambda device: device.flash.erases) > erases
    assert read_state(smp_device)[1] == ("1.1.0", APP_110, flags())


def test_new_upload_while_a_test_is_pending_cancels_the_test(smp_device: EmulatedDevice) -> None:
    """Zephyr's default ALLOW_ERASE_PENDING: the slot (its trailer too) is erased for the new
    upload, so the next boot is an ordinary one."""
    first = (IMAGES / "app-1.1.0.bin").read_bytes()
    second = (IMAGES / "app-1.1.0-selfconfirm.bin").read_bytes()
    second_hash = image_hash("app-1.1.0-selfconfirm.bin")

    async def body(client: SMPClient) -> tuple[Any, Any]:
        await upload(client, first)
        tested = await client.request(ImageStatesWrite(hash=APP_110, confirm=False))
        await upload(client, second)
        return tested, await client.request(ImageStatesRead())
    tested, after = session(smp_device, body)
    assert slots(tested)[1] == ("1.1.0", APP_110, flags("pending"))
    assert slots(after) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                            1: ("1.1.0", second_hash, flags())}
    reset_and_wait(smp_device, boots=2)
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                      1: ("1.1.0", second_hash, flags())}


PADDED = {  # imgtool option: flags of slot 1 after the upload; of slots 0 and 1 after the reset
    "--pad": (flags("pending"), flags("active"), flags("confirmed")),
    "--confirm": (flags("pending", "permanent"), flags("active", "confirmed"), flags()),
}


@pytest.mark.parametrize("mark", PADDED)
def test_padded_image_carries_its_own_mark(smp_device: EmulatedDevice, tmp_path: Path,
                                           mark: str) -> None:
    """``imgtool sign --pad`` writes the trailer magic into the file (``--confirm`` image_ok as
    well): uploaded whole into slot 1, it is pending at once, with no state write, and MCUboot
    swaps it at the next reset (test or permanent, as the table of swap types says)."""
    raw, signed = tmp_path / "zephyr.bin", tmp_path / "app-1.4.0-padded.bin"
    raw.write_bytes(bytes(0x200) + hashlib.shake_256(b"padded").digest(20000))
    subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--version", "1.4.0",
                    "--header-size", "0x200", "--align", "4", "--slot-size", "0x76000",
                    "-k", str(KEY), mark, str(raw), str(signed)],
                   check=True, capture_output=True, timeout=60)
    pending, running, old = PADDED[mark]
    image, digest = signed.read_bytes(), image_hash(signed)
    assert len(image) == 0x76000  # the whole slot, trailer included

    async def send(client: SMPClient) -> Any:
        assert (await upload(client, image))[-1] == len(image)
        return await client.request(ImageStatesRead())
    assert slots(session(smp_device, send)) == {
        0: ("1.0.0", FACTORY, flags("active", "confirmed")), 1: ("1.4.0", digest, pending)}
    reset_and_wait(smp_device, boots=2)
    assert read_state(smp_device) == {0: ("1.4.0", digest, running), 1: ("1.0.0", FACTORY, old)}
