"""smpclient 7.3.0's BLE transport (bleak on BlueZ's D-Bus API) against the default board on the
mock bus: echo, MCUmgr params, a 200 KB image upload checked in the slot, and a reset that drops
the connection and brings the board back for a new one."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smpclient import SMPClient
from smpclient.generics import success
from smpclient.mcuboot import IMAGE_TLV, ImageInfo
from smpclient.requests.image_management import ImageStatesRead
from smpclient.requests.os_management import EchoWrite, MCUMgrParametersRead, ResetWrite
from smpclient.transport.ble import SMPBLETransport

from smpsim.device.mcu import Device
from smpsim.pytest_plugin import EmulatedDevice
from smpsim.testing.mockbus import PERIPHERAL

from .ble_support import SCAN_TIMEOUT_S, signed_image, smp_ble_session

IMAGE_SIZE = 200 * 1024


def test_echo_params_and_mtu(ble_board: Callable[..., EmulatedDevice]) -> None:
    board = ble_board()

    async def body(client: SMPClient, transport: SMPBLETransport) -> tuple[Any, Any, int]:
        echo = await client.request(EchoWrite(d="hello over BLE"))
        params = await client.request(MCUMgrParametersRead())
        return echo, params, transport.mtu

    echo, params, mtu = smp_ble_session(body)
    assert success(echo) and echo.r == "hello over BLE"
    assert success(params) and (params.buf_size, params.buf_count) == (2475, 4)
    # AcquireWrite answered the profile's MTU 498: smpclient writes 495-byte chunks.
    assert mtu == 495
    endpoint = board.ble_endpoint()
    assert endpoint.writes >= 2 and endpoint.notifications >= 2


def slot1(device: Device, length: int) -> bytes:
    area = device.partitions.secondary(0)
    assert area is not None
    return area.read(0, length)


def test_upload_200k_image(ble_board: Callable[..., EmulatedDevice], tmp_path: Path) -> None:
    board = ble_board()
    signed = signed_image(tmp_path, IMAGE_SIZE)
    image = signed.read_bytes()
    assert 200_000 < len(image) < 210_000

    async def body(client: SMPClient, transport: SMPBLETransport) -> tuple[list[int], Any]:
        offsets = [off async for off in client.upload(image)]
        return offsets, await client.request(ImageStatesRead())

    started = time.monotonic()
    offsets, state = smp_ble_session(body, timeout_s=10.0)
    elapsed = time.monotonic() - started
    print(f"\n{len(image)} B uploaded over BLE in {elapsed:.2f} s (time scale 0)")
    assert offsets[-1] == len(image)
    # smpclient fills each request to the 2475-byte netbuf: 5 writes of up to 495 bytes.
    assert len(offsets) < len(image) / 2300
    written = board.call(lambda device: slot1(device, len(image)))
    assert hashlib.sha256(written).digest() == hashlib.sha256(image).digest()
    assert success(state)
    secondary = [s for s in state.images if s.slot == 1]
    assert secondary and secondary[0].version == "1.2.3"
    sha_tlv = ImageInfo.load_file(str(signed)).get_tlv(IMAGE_TLV.SHA256).value
    assert bytes(secondary[0].hash) == bytes(sha_tlv)


def test_reset_disconnects_then_board_comes_back(
        ble_board: Callable[..., EmulatedDevice]) -> None:
    board = ble_board()

    async def main() -> tuple[float, float, str]:
        transport = SMPBLETransport()
        async with SMPClient(transport, PERIPHERAL, timeout_s=5.0) as client:
            answer = await client.request(ResetWrite())
            assert success(answer), answer
            asked = time.monotonic()
            # The board drops the link: bleak reports the disconnect, smpclient sees it.
            await asyncio.wait_for(transport._disconnected_event.wait(), 5.0)
            dropped = time.monotonic() - asked
        started = time.monotonic()
        transport = SMPBLETransport()
        async with SMPClient(transport, PERIPHERAL, timeout_s=5.0) as client:
            reconnect = time.monotonic() - started
            echo = await client.request(EchoWrite(d="back"))
            assert success(echo)
            return dropped, reconnect, echo.r

    dropped, reconnect, echoed = asyncio.run(main())
    print(f"\ndisconnect {dropped * 1000:.0f} ms after the answer, reconnect in "
          f"{reconnect * 1000:.0f} ms")
    assert echoed == "back"
    assert dropped < 2.0 and reconnect < SCAN_TIMEOUT_S
    state = board.state()
    assert state.online and state.boot_count == 2
