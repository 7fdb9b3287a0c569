"""One fault of each family, and a power cut, injected through the HTTP API of a running
``smpsim run --control`` while smpclient works on the board over UDP: what the client sees, and
what the board did (read back through the API)."""

from __future__ import annotations

import asyncio
from hashlib import sha256
from pathlib import Path
from typing import Any

from smp.image_management import IMG_MGMT_ERR
from smpclient import SMPClient
from smpclient.generics import error, success
from smpclient.requests.image_management import (
    ImageStatesRead,
    ImageStatesWrite,
    ImageUploadWrite,
)
from smpclient.requests.os_management import ResetWrite

from .control_support import Served, control_board
from .itsupport import PortUDP, wait_until

IMAGES = Path(__file__).resolve().parents[2] / "flash_images"
APP = (IMAGES / "app-1.1.0.bin").read_bytes()
CHUNK = 512


def chunk(image: bytes, off: int) -> ImageUploadWrite:
    first = off == 0
    return ImageUploadWrite(off=off, data=image[off:off + CHUNK], image=0 if first else None,
                            len=len(image) if first else None,
                            sha=sha256(image).digest() if first else None)


async def upload(client: SMPClient, image: bytes, log: list[str],
                 before: dict[int, Any] | None = None) -> Any:
    """Upload from the offset the board asks for, sending a chunk again when no answer comes;
    ``before[off]()`` runs just before the chunk at ``off``. The board's last answer."""
    off = 0
    while True:
        if before and off in before:
            await asyncio.to_thread(before.pop(off))
        try:
            answer = await client.request(chunk(image, off), timeout_s=0.5)
        except TimeoutError:
            log.append(f"{off}: timeout")
            continue
        if error(answer):
            return answer
        log.append(f"{off}: next {answer.off}")
        off = answer.off
        if off == len(image):
            return answer


def session(served: Served, body: Any) -> Any:
    async def main() -> Any:
        async with SMPClient(PortUDP(served.udp[1]), served.udp[0], timeout_s=2.0) as client:
            return await body(client)
    return asyncio.run(main())


def add_fault(served: Served, **spec: Any) -> dict[str, Any]:
    status, fault = served.call("POST", "/api/faults", spec)
    assert status == 201, fault
    return fault


def test_link_a_dropped_response_is_sent_again_and_written_once() -> None:
    log: list[str] = []
    with control_board() as served:
        written = served.get("/api/stats")["flash"]["bytes_written"]
        drop = {8192: lambda: add_fault(served, family="link", kind="drop_responses", count=1)}
        answer = session(served, lambda c: upload(c, APP, log, drop))
        assert success(answer) and answer.off == len(APP)
        assert log[log.index("8192: timeout") + 1] == "8192: next 8704"  # the board had it
        # Every byte of the image went to the flash once: the chunk sent twice was not
        # written twice.
        assert served.get("/api/stats")["flash"]["bytes_written"] - written == len(APP)
        fault = served.get("/api/faults")[0]
        assert (fault["hits"], fault["active"]) == (1, False)
        assert served.get("/api/slots")[1]["valid"] is True


def test_flash_a_write_error_is_img_mgmt_flash_write_failed() -> None:
    log: list[str] = []
    with control_board() as served:
        add_fault(served, family="flash", kind="write_error", partition="slot1", count=1)
        refused = session(served, lambda c: upload(c, APP, log))
        assert refused.err.group == 1
        assert refused.err.rc == IMG_MGMT_ERR.FLASH_WRITE_FAILED
        fired = [e for e in served.get("/api/events?since=0") if e["kind"] == "fault"
                 and e.get("hits") == 1]
        assert fired and "write at 0x82000" in fired[0]["what"]
        assert success(session(served, lambda c: upload(c, APP, log)))  # count=1: spent


def test_flash_flipped_bits_make_mcuboot_erase_the_image() -> None:
    log: list[str] = []
    with control_board() as served:
        assert success(session(served, lambda c: upload(c, APP, log)))
        add_fault(served, family="flash", kind="bit_flip", partition="slot1", offset=0x1000,
                  length=0x100, flips=1, seed=3)
        slot1 = served.get("/api/slots")[1]
        assert slot1["valid"] is False and "hash" in slot1["validity"]

        async def test_and_reset(client: SMPClient) -> None:
            assert success(await client.request(ImageStatesWrite(hash=bytes.fromhex(
                slot1["hash"]))))
            assert success(await client.request(ResetWrite()))

        session(served, test_and_reset)
        wait_until(lambda: served.get("/api/board")["boot_count"] == 2
                   and served.get("/api/board")["state"] == "online")
        events = served.get("/api/events?since=0")
        phases = [(e["phase"], e.get("slot")) for e in events if e["kind"] == "image"]
        assert ("invalid", 1) in phases and ("erased", 1) in phases
        assert served.get("/api/slots")[1]["present"] is False
        states = session(served, lambda c: c.request(ImageStatesRead()))
        assert [(i.slot, i.version) for i in states.images] == [(0, "1.0.0")]


def test_app_the_next_boot_crashes_and_mcuboot_reverts() -> None:
    log: list[str] = []
    with control_board() as served:
        add_fault(served, family="app", kind="crash")

        async def upgrade(client: SMPClient) -> None:
            await upload(client, APP, log)
            states = await client.request(ImageStatesRead())
            assert success(await client.request(ImageStatesWrite(hash=states.images[1].hash)))
            assert success(await client.request(ResetWrite()))

        session(served, upgrade)
        wait_until(lambda: served.get("/api/board")["boot_count"] == 3
                   and served.get("/api/board")["state"] == "online")
        events = served.get("/api/events?since=0")
        swaps = [e["swap_type"] for e in events if e["kind"] == "swap" and e["phase"] == "start"]
        assert swaps == ["test", "revert"]
        assert [e["version"] for e in events if e["kind"] == "mcuboot"
                and e["phase"] == "jump"] == ["1.0.0", "1.1.0", "1.0.0"]
        assert served.get("/api/faults")[0]["hits"] == 1
        assert served.get("/api/slots")[0]["version"] == "1.0.0"


def test_power_cut_mid_upload_the_upload_goes_on_from_the_offset_the_board_reports() -> None:
    log: list[str] = []
    with control_board() as served:
        def cut() -> None:
            status, armed = served.call("POST", "/api/actions/power-cut",
                                        {"before_op": 10, "restore_after_s": 0.5})
            assert status == 200 and armed["before_op"] == 10

        answer = session(served, lambda c: upload(c, APP, log, {4096: cut}))
        assert success(answer) and answer.off == len(APP)
        board = served.get("/api/board")
        assert (board["boot_count"], board["state"]) == (2, "online")
        lost = log.index(next(line for line in log if line.endswith("timeout")))
        after = next(line for line in log[lost:] if "next" in line)
        assert after.endswith("next 0")  # the upload lived in RAM: the board asks from 0
        assert served.get("/api/slots")[1]["valid"] is True
