"""A reset over BLE, as on a board: the link drops when the board goes down, the board is not
advertised while it boots, and it is found and connected to again once it is up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus
from smpclient import SMPClient
from smpclient.generics import success
from smpclient.requests.os_management import EchoWrite, ResetWrite
from smpclient.transport.ble import SMPBLETransport

from smpsim.pytest_plugin import EmulatedDevice
from smpsim.testing.mockbus import BOARD_ADAPTER, PERIPHERAL


async def advertisements(bus: MessageBus) -> int:
    """The board adapter's active advertisement instances, as BlueZ counts them."""
    reply = await bus.call(Message(
        destination="org.bluez", path=f"/org/bluez/{BOARD_ADAPTER}",
        interface="org.freedesktop.DBus.Properties", member="Get", signature="ss",
        body=["org.bluez.LEAdvertisingManager1", "ActiveInstances"]))
    assert reply is not None and reply.message_type is MessageType.METHOD_RETURN, reply
    count: int = reply.body[0].value
    return count


async def wait_for(bus: MessageBus, count: int, timeout_s: float = 5.0) -> float:
    """Poll until the board's adapter has ``count`` advertisements; returns when it had."""
    deadline = time.monotonic() + timeout_s
    while await advertisements(bus) != count:
        assert time.monotonic() < deadline, f"{BOARD_ADAPTER} never had {count} advertisement(s)"
        await asyncio.sleep(0.005)
    return time.monotonic()


def test_os_reset_in_real_time(ble_board: Callable[..., EmulatedDevice]) -> None:
    """nrf52840dk at time scale 1: the answer, 250 ms (``reset_ms``) of the application still
    running, then the link drops and the advertisement goes for the boot (MCUboot and the
    application's 350 ms), then it is back and a new connection works."""
    board = ble_board(time_scale=1.0)
    reset_s = board.profile.firmware.os.reset_ms / 1000
    boot_s = board.profile.board.boot_time_ms / 1000

    async def main() -> tuple[float, float, float, str]:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            assert await advertisements(bus) == 1
            transport = SMPBLETransport()
            async with SMPClient(transport, PERIPHERAL, timeout_s=5.0) as client:
                assert success(await client.request(ResetWrite()))
                answered = time.monotonic()
                await asyncio.wait_for(transport._disconnected_event.wait(), 5.0)
                dropped = time.monotonic()
            gone = await wait_for(bus, 0)
            back = await wait_for(bus, 1)
            async with SMPClient(SMPBLETransport(), PERIPHERAL, timeout_s=5.0) as client:
                echo = await client.request(EchoWrite(d="rebooted"))
            return dropped - answered, gone - answered, back - gone, echo.r
        finally:
            bus.disconnect()
            await bus.wait_for_disconnect()

    until_drop, until_gone, down, echoed = asyncio.run(main())
    print(f"\nlink dropped {until_drop * 1000:.0f} ms after the answer, advertising stopped "
          f"at {until_gone * 1000:.0f} ms and was back {down * 1000:.0f} ms later")
    assert reset_s * 0.95 <= until_drop <= reset_s + 0.3
    assert until_gone <= reset_s + 0.3
    assert boot_s * 0.95 <= down <= boot_s + 1.0
    assert echoed == "rebooted"
    state = board.state()
    assert state.online and state.boot_count == 2


def test_any_reset_drops_the_link(ble_board: Callable[..., EmulatedDevice]) -> None:
    """The reset button (or the watchdog, or a crash) drops the link as ``os reset`` does."""
    board = ble_board()

    async def main() -> str:
        transport = SMPBLETransport()
        async with SMPClient(transport, PERIPHERAL, timeout_s=5.0) as client:
            assert success(await client.request(EchoWrite(d="before")))
            await asyncio.to_thread(board.reset)
            await asyncio.wait_for(transport._disconnected_event.wait(), 5.0)
        async with SMPClient(SMPBLETransport(), PERIPHERAL, timeout_s=5.0) as client:
            answer = await client.request(EchoWrite(d="after"))
            return str(answer.r)

    assert asyncio.run(main()) == "after"
    assert board.state().boot_count == 2
