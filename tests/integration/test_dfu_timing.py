"""The issue's "Done when" timings on nrf52840dk (118 pages of 4 KiB, 85 ms per page erase,
41 us per 4-byte word write), seen from a real client (smpclient over UDP):

* at time scale 1, the first upload chunk of a full-slot image is answered only after the
  slot erase: 118 pages x 85 ms = 10.03 s;
* at time scale 0, a full update (upload of a ~470 KB image, test, reset with its swap, confirm)
  costs the emulator well under a second, though the emulated clock charges it every erase and
  write (some 50 s of emulated time on this board).

Run with ``-s`` to see the measured figures.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, cast

import pytest
from smpclient import SMPClient
from smpclient.generics import success
from smpclient.mcuboot import IMAGE_TLV, ImageInfo
from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import ResetWrite

from smpsim.device.mcu import Device
from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import smp_session, wait_until

IMAGES = Path(__file__).resolve().parents[2] / "flash_images"
KEY = IMAGES / "keys" / "insecure-test-ecdsa-p256.pem"
PAGES = 118
ERASE_S = 0.085
WORD_S = 41e-6
FIRST_TIMEOUT_S = 40.0
"""smpclient's own first-chunk timeout."""


def image_hash(path: Path) -> bytes:
    return bytes(ImageInfo.load_file(str(path)).get_tlv(IMAGE_TLV.SHA256).value)


def slot1_size(device: Device) -> int:
    area = device.partitions.secondary(0)
    assert area is not None
    return area.size


@pytest.mark.smpsim(profile="nrf52840dk", time_scale=1.0)
def test_first_chunk_waits_for_the_real_slot_erase(smp_device: EmulatedDevice) -> None:
    flash = smp_device.profile.board.flash
    assert (flash.erase_block, flash.erase_ms) == (4096, ERASE_S * 1000)
    assert smp_device.call(slot1_size) == PAGES * 4096
    small = (IMAGES / "app-1.1.0.bin").read_bytes()
    big = (IMAGES / "app-9.0.0-too-big.bin").read_bytes()  # 0x74ECF bytes: every page
    assert len(big) > (PAGES - 1) * 4096 - 0x1000

    async def first_chunk(client: SMPClient, image: bytes) -> tuple[int, float]:
        chunks = cast(AsyncGenerator[int, None],
                      client.upload(image, first_timeout_s=FIRST_TIMEOUT_S))
        start = time.monotonic()
        off = await anext(chunks)
        took = time.monotonic() - start
        await chunks.aclose()
        return off, took

    async def body(client: SMPClient) -> tuple[float, int, float, int]:
        # A small upload into the blank slot 1: no erase, answered at once. Finish it, so that
        # slot 1 is no longer blank (an earlier update left an image there).
        start = time.monotonic()
        offsets = [off async for off in client.upload(small, first_timeout_s=FIRST_TIMEOUT_S)]
        assert offsets[-1] == len(small)
        small_first = time.monotonic() - start
        erases = smp_device.call(lambda d: d.flash.erases)
        off, took = await first_chunk(client, big)
        return small_first, erases, took, off

    small_total, erases_before, took, off = smp_session(smp_device.host, smp_device.port, body)
    erased = smp_device.call(lambda d: d.flash.erases) - erases_before
    expected = PAGES * ERASE_S
    print(f"\nnrf52840dk, time scale 1: first chunk of a {len(big)}-byte image answered after "
          f"{took:.2f} s ({erased} pages erased, {expected:.2f} s of erase); the whole "
          f"{len(small)}-byte upload into a blank slot took {small_total:.2f} s")
    assert erased == PAGES
    assert 0 < off < len(big)
    assert took >= expected - 0.05
    assert took < expected + 5.0
    # The blank slot needed no erase: that whole upload was faster than the erase alone.
    assert small_total < expected / 2


@pytest.fixture(scope="module")
def full_slot_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 1.5.0 image as large as swap-move takes on this board (under 0x74000 bytes),
    signed with the board's test key."""
    tmp = tmp_path_factory.mktemp("full")
    raw, signed = tmp / "zephyr.bin", tmp / "app-1.5.0-full.bin"
    raw.write_bytes(bytes(0x200) + hashlib.shake_256(b"full slot").digest(0x74000 - 0x400))
    subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--version", "1.5.0",
                    "--header-size", "0x200", "--align", "4", "--slot-size", "0x76000",
                    "-k", str(KEY), str(raw), str(signed)],
                   check=True, capture_output=True, timeout=60)
    return signed


def test_full_update_at_time_scale_0_is_instant(smp_device: EmulatedDevice,
                                                full_slot_image: Path) -> None:
    image = full_slot_image.read_bytes()
    digest = image_hash(full_slot_image)
    max_size = smp_device.call(lambda d: d.dfu.max_image_size(0) if d.dfu else 0)
    assert 460_000 < len(image) <= max_size

    def figures() -> tuple[float, float]:
        # In the device's own thread: emulated seconds, and the host CPU the thread has used.
        return smp_device.call(lambda d: (d.clock.now(), time.thread_time()))

    async def update(client: SMPClient) -> Any:
        offsets = [off async for off in client.upload(image)]
        assert offsets[-1] == len(image)
        tested = await client.request(ImageStatesWrite(hash=digest, confirm=False))
        assert success(tested), tested
        assert success(await client.request(ResetWrite()))
        return tested

    async def confirm(client: SMPClient) -> Any:
        confirmed = await client.request(ImageStatesWrite(confirm=True))
        assert success(confirmed), confirmed
        return await client.request(ImageStatesRead())

    emulated_before, cpu_before = figures()
    wall_before = time.monotonic()
    smp_session(smp_device.host, smp_device.port, update)

    def booted() -> bool:
        state = smp_device.state()
        return state.online and state.boot_count == 2
    wait_until(booted, timeout_s=10)
    final = smp_session(smp_device.host, smp_device.port, confirm)
    wall = time.monotonic() - wall_before
    emulated_after, cpu_after = figures()
    emulated, cpu = emulated_after - emulated_before, cpu_after - cpu_before

    running = final.images[0]
    assert (running.slot, running.version, bytes(running.hash)) == (0, "1.5.0", digest)
    assert running.active and running.confirmed
    print(f"\nnrf52840dk, time scale 0: full update of a {len(image)}-byte image in {wall:.3f} s "
          f"of wall time ({cpu:.3f} s of the emulator thread's CPU); the emulated clock "
          f"advanced {emulated:.1f} s")
    # Instant for the host...
    assert cpu < 1.0
    assert wall < 5.0
    # ...while the emulated clock was charged at least the image's own writes and the swap's
    # erases (the swap moves each of its pages and swaps it: 3 erases per page at least).
    pages = -(-len(image) // 4096)
    assert emulated > len(image) / 4 * WORD_S + 3 * pages * ERASE_S
