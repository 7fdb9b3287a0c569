"""The SMP characteristic as a client sees it, across MTUs 23, 247 and 498: the MTU smpclient is
given, echo payloads of every size, notifications of exactly MTU - 3 bytes, an MTU the client
states itself; and Zephyr's reassembly rules for writes (split header, overshoot, oversize, a
partial packet dropped with the connection, reassembly off)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from dbus_fast import Message, Variant
from smpclient import SMPClient
from smpclient.generics import success
from smpclient.requests.os_management import EchoWrite
from smpclient.transport.ble import SMPBLETransport

from smpsim.pytest_plugin import EmulatedDevice
from smpsim.testing.mockbus import PERIPHERAL
from smpsim.transports.ble.endpoint import SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID

from .ble_support import (
    SCAN_TIMEOUT_S,
    WRITE,
    RawLink,
    echo_frame,
    parse_frame,
    raw_link,
    run,
    smp_ble_session,
    smp_frame,
    wait_until,
)
from .conftest import ble_profile

# Echo texts around every chunk boundary of the three MTUs, up to what the 2475-byte netbuf takes.
SIZES = (0, 1, 19, 20, 21, 243, 244, 245, 494, 495, 496, 1000, 2400)


@pytest.mark.parametrize("mtu", [23, 247, 498])
def test_echo_sizes_at_mtu(mtu: int, ble_board: Callable[..., EmulatedDevice],
                           tmp_path: Path) -> None:
    board = ble_board(ble_profile(tmp_path, mtu=mtu))

    async def body(client: SMPClient, transport: SMPBLETransport) -> tuple[int, list[str]]:
        echoed = []
        for size in SIZES:
            text = "".join(chr(0x41 + (i * 7 + size) % 26) for i in range(size))
            answer = await client.request(EchoWrite(d=text))
            assert success(answer), answer
            echoed.append(answer.r)
        return transport.mtu, echoed

    smp_mtu, echoed = smp_ble_session(body)
    assert smp_mtu == mtu - 3  # the MTU smpclient got from AcquireWrite
    assert [len(text) for text in echoed] == list(SIZES)
    assert board.ble_endpoint().mtu == mtu


def _chunks(frame: bytes, size: int) -> list[bytes]:
    return [frame[i:i + size] for i in range(0, len(frame), size)]


@pytest.mark.parametrize("mtu", [23, 247, 498])
def test_notifications_are_mtu_minus_3(mtu: int, ble_board: Callable[..., EmulatedDevice],
                                       tmp_path: Path) -> None:
    ble_board(ble_profile(tmp_path, mtu=mtu))
    request = echo_frame(1, "n" * 1200)

    async def main(link: RawLink) -> tuple[list[bytes], bytes]:
        await link.write(*_chunks(request, mtu - 3))
        frame = await link.frame()
        return link.notifications_seen, frame

    seen, frame = run(_with_link(main))
    header, body = parse_frame(frame)
    assert (header["seq"], body) == (1, {"r": "n" * 1200})
    assert [len(n) for n in seen] == [len(c) for c in _chunks(frame, mtu - 3)]
    assert max(len(n) for n in seen) == mtu - 3


async def _with_link(main: Callable[[RawLink], Any]) -> Any:
    async with raw_link() as link:
        return await main(link)


def test_client_states_a_smaller_mtu(ble_board: Callable[..., EmulatedDevice]) -> None:
    """A client that says MTU 100 in AcquireWrite (as BlueZ says the link's with each write)
    gets 97-byte notifications from the 498-MTU board."""
    board = ble_board()

    async def main(link: RawLink) -> tuple[int, list[bytes], bytes]:
        client = link.client
        char = client.services.get_characteristic(SMP_CHARACTERISTIC_UUID)
        assert char is not None
        reply = await client._backend._bus.call(Message(
            destination="org.bluez", path=char.obj[0],
            interface="org.bluez.GattCharacteristic1", member="AcquireWrite",
            signature="a{sv}", body=[{"mtu": Variant("q", 100)}]))
        os.close(reply.unix_fds[0])
        await link.write(*_chunks(echo_frame(2, "m" * 500), 97))
        frame = await link.frame()
        return reply.body[1], link.notifications_seen, frame

    mtu, seen, frame = run(_with_link(main))
    assert mtu == 100
    assert parse_frame(frame)[1] == {"r": "m" * 500}
    assert max(len(n) for n in seen) == 97
    # The central has gone: the next connection starts from the profile's MTU again.
    wait_until(lambda: not board.ble_endpoint().connected)
    assert board.ble_endpoint().mtu == 498


# --- reassembly ---------------------------------------------------------------------------


def test_request_split_anywhere_after_the_header(
        ble_board: Callable[..., EmulatedDevice]) -> None:
    ble_board()
    byte_by_byte, ten_then_rest, whole = (echo_frame(seq, "split") for seq in (3, 4, 5))
    splits = [
        [byte_by_byte[:8], *(byte_by_byte[i:i + 1] for i in range(8, len(byte_by_byte)))],
        [ten_then_rest[:10], ten_then_rest[10:]],
        [whole],
    ]

    async def main(link: RawLink) -> list[Any]:
        answers = []
        for pieces in splits:
            await link.write(*pieces)
            answers.append(parse_frame(await link.frame()))
        return answers

    answers = run(_with_link(main))
    assert [(header["seq"], body) for header, body in answers] == \
        [(3, {"r": "split"}), (4, {"r": "split"}), (5, {"r": "split"})]


def test_first_write_shorter_than_the_header_is_dropped(
        ble_board: Callable[..., EmulatedDevice]) -> None:
    ble_board()
    request = echo_frame(6, "short")

    async def main(link: RawLink) -> tuple[list[bytes], dict[str, Any]]:
        await link.write(request[:5])  # Zephyr: -ENODATA, the write is refused
        lost = await link.silence(0.2)
        await link.write(echo_frame(7, "after"))
        return lost, parse_frame(await link.frame())[1]

    lost, answer = run(_with_link(main))
    assert lost == []
    assert answer == {"r": "after"}


def test_header_split_across_writes_loses_the_request(
        ble_board: Callable[..., EmulatedDevice]) -> None:
    """As on Zephyr: the first 5 bytes are refused, the rest is taken for a new packet whose
    "header" asks for bytes that never come, and swallows what follows; turning notifications
    off (CCC 0) drops it, and the board answers again."""
    ble_board()
    request = echo_frame(16, "split header")

    async def main(link: RawLink) -> tuple[list[bytes], dict[str, Any]]:
        await link.write(request[:5], request[5:])
        await link.write(echo_frame(17, "swallowed"))
        lost = await link.silence(0.2)
        await link.client.stop_notify(SMP_CHARACTERISTIC_UUID)
        await link.client.start_notify(SMP_CHARACTERISTIC_UUID, link._on_notify)
        await link.write(echo_frame(18, "again"))
        return lost, parse_frame(await link.frame())[1]

    lost, answer = run(_with_link(main))
    assert lost == []
    assert answer == {"r": "again"}


def test_overshoot_drops_the_packet(ble_board: Callable[..., EmulatedDevice]) -> None:
    ble_board()
    request = echo_frame(8, "overshoot")

    async def main(link: RawLink) -> tuple[list[bytes], list[bytes], dict[str, Any]]:
        # The second write goes 3 bytes past the length the header gave: the whole packet
        # (its first write too) is dropped, and the next write starts a new one.
        await link.write(request[:12], request[12:] + b"\xff\xff\xff")
        overshoot = await link.silence(0.2)
        # A first write longer than its own packet: refused as well.
        await link.write(echo_frame(9, "first") + b"\x00")
        first = await link.silence(0.2)
        await link.write(echo_frame(10, "fine"))
        return overshoot, first, parse_frame(await link.frame())[1]

    overshoot, first, answer = run(_with_link(main))
    assert overshoot == [] and first == []
    assert answer == {"r": "fine"}


def test_packet_larger_than_the_netbuf_is_dropped(
        ble_board: Callable[..., EmulatedDevice]) -> None:
    ble_board()

    async def main(link: RawLink) -> tuple[list[bytes], dict[str, Any]]:
        # A header announcing 2468 bytes of CBOR: 2476 in all, one more than the netbuf.
        header = smp_frame(WRITE, 0, 0, 11, {"d": "x"})[:2] + (2468).to_bytes(2, "big") + \
            bytes([0, 0, 11, 0])
        await link.write(header + b"\xa1")
        lost = await link.silence(0.2)
        await link.write(echo_frame(12, "next"))
        return lost, parse_frame(await link.frame())[1]

    lost, answer = run(_with_link(main))
    assert lost == []
    assert answer == {"r": "next"}


def test_partial_packet_dies_with_the_connection(
        ble_board: Callable[..., EmulatedDevice]) -> None:
    ble_board()
    request = echo_frame(13, "half")

    async def half() -> None:
        async with raw_link() as link:
            await link.write(request[:10])  # the rest never comes: the central goes away

    async def whole() -> dict[str, Any]:
        async with raw_link() as link:
            await link.write(echo_frame(14, "whole"))
            return parse_frame(await link.frame())[1]

    run(half())
    # Had the half packet survived, this request would complete it and be lost.
    assert run(whole()) == {"r": "whole"}


def test_without_reassembly_each_write_is_a_unit(
        ble_board: Callable[..., EmulatedDevice], tmp_path: Path) -> None:
    ble_board(ble_profile(tmp_path, reassembly=False))
    request = echo_frame(15, "unit")

    async def main(link: RawLink) -> tuple[dict[str, Any], tuple[dict[str, int], Any]]:
        await link.write(request)
        whole = parse_frame(await link.frame())[1]
        # Half a packet is a packet shorter than its header says: SMP answers rc 9
        # (MGMT_ERR_ECORRUPT); the other half is too short for a header and vanishes.
        await link.write(request[:10], request[10:])
        return whole, parse_frame(await link.frame())

    whole, (header, body) = run(_with_link(main))
    assert whole == {"r": "unit"}
    assert header["seq"] == 15 and body == {"rc": 9}


# --- advertising ----------------------------------------------------------------------------


def test_advertises_the_profiles_name_and_the_smp_service(
        ble_board: Callable[..., EmulatedDevice], tmp_path: Path) -> None:
    ble_board(ble_profile(tmp_path, name="smpsim bench 7"))

    async def scan() -> tuple[str, list[str]]:
        seen: list[AdvertisementData] = []

        def named(_: BLEDevice, adv: AdvertisementData) -> bool:
            # BlueZ keeps the name it last heard for a known address: wait for the new one.
            seen.append(adv)
            return adv.local_name == "smpsim bench 7"

        device = await BleakScanner.find_device_by_filter(named, timeout=SCAN_TIMEOUT_S)
        assert device is not None, f"the profile's name was never advertised: {seen[-3:]}"
        return device.address, seen[-1].service_uuids

    address, uuids = run(scan())
    assert address == PERIPHERAL
    assert uuids == [SMP_SERVICE_UUID]
