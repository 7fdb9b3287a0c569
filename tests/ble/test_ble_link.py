"""The BLE link model: connection events, packets per event, link-layer packets per PDU; and
uploads at time scale 1 taking as long as the profile's link (and flash) make them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from smpclient import SMPClient
from smpclient.transport.ble import SMPBLETransport

from smpsim.config import Ble
from smpsim.errors import ConfigError
from smpsim.pytest_plugin import EmulatedDevice
from smpsim.testing.mockbus import BOARD_ADAPTER, PERIPHERAL, MockBus
from smpsim.transports.ble.bluez import AdapterControl
from smpsim.transports.ble.link import CENTRALS, Central, LinkModel, central, connection_mtu

from .ble_support import signed_image

MS = 0.001
IMAGE = Path(__file__).resolve().parents[2] / "flash_images" / "app-1.1.0-hashonly.bin"


def test_link_layer_packets_per_pdu() -> None:
    link = LinkModel(Ble(data_length=251), scale=1.0)
    # ATT header (3) and L2CAP header (4) ride along: 244 B of value fill one 251-byte packet.
    assert [link.packets(n) for n in (1, 244, 245, 495)] == [1, 1, 2, 2]
    short = LinkModel(Ble(data_length=27), scale=1.0)
    assert [short.packets(n) for n in (20, 21, 244)] == [1, 2, 10]


def test_pdus_fill_connection_events_in_order() -> None:
    link = LinkModel(Ble(conn_interval_ms=7.5, packets_per_interval=3), scale=1.0)
    # Five 495-byte writes (two packets each) at t=0: three packets in each of the events at
    # 7.5, 15 and 22.5 ms, the last one at 30 ms; a write is in when its last packet is.
    arrivals = [link.book("rx", 0.0, 495) for _ in range(5)]
    assert arrivals == pytest.approx([7.5 * MS, 15 * MS, 15 * MS, 22.5 * MS, 30 * MS])
    # The answer, ready when the last write is in, leaves in the next event; the other
    # direction is booked on its own.
    assert link.book("tx", 30 * MS, 100) == pytest.approx(37.5 * MS)
    # A later write waits for the event after "now", even if an earlier one had room.
    assert link.book("rx", 31 * MS, 20) == pytest.approx(37.5 * MS)
    link.reset()
    assert link.book("rx", 0.0, 20) == pytest.approx(7.5 * MS)


def test_the_central_decides_interval_and_mtu() -> None:
    """A phone grants smp_svr's 7.5 ms; a desktop's stack keeps its 30 ms whatever the board
    asks. The connection's MTU is the smaller of both sides'; packets and their size too."""
    board = Ble()
    assert LinkModel(board, 1.0, CENTRALS["phone"]).interval_ms == 7.5
    chrome = LinkModel(board, 1.0, CENTRALS["desktop-chrome"])
    assert chrome.interval_ms == 30.0
    assert chrome.book("rx", 0.0, 100) == pytest.approx(30 * MS)
    assert connection_mtu(board, CENTRALS["desktop-chrome"]) == 498  # asks 517, board has 498
    small = Central("small", "", mtu=247, data_length=27, packets_per_interval=1)
    assert connection_mtu(board, small) == 247
    link = LinkModel(board, 1.0, small)
    assert (link.interval_ms, link.data_length, link.per_event) == (7.5, 27, 1)
    with pytest.raises(ConfigError, match="no BLE central 'tablet': known are desktop-chrome, "
                                          "phone"):
        central("tablet")


def test_time_scale_stretches_the_link() -> None:
    link = LinkModel(Ble(conn_interval_ms=10.0, packets_per_interval=1), scale=0.5)
    assert [link.book("tx", 0.0, 20) for _ in range(3)] == \
        pytest.approx([5 * MS, 10 * MS, 15 * MS])


def upload_seconds(image: bytes, slot: int = 0) -> tuple[float, int]:
    """(seconds, requests) of an upload with smpclient."""
    async def main() -> tuple[float, int]:
        async with SMPClient(SMPBLETransport(), PERIPHERAL, timeout_s=10.0) as client:
            started = time.monotonic()
            requests = 0
            async for _ in client.upload(image, slot=slot):
                requests += 1
            return time.monotonic() - started, requests
    return asyncio.run(main())


def test_upload_paced_by_the_link(ble_board: Callable[..., EmulatedDevice]) -> None:
    """``fast`` (no flash time) with the default BLE link: each 2475-byte request is 5 writes,
    10 packets, 4 connection events of 7.5 ms, and its answer takes the next: 37.5 ms for about
    2.45 KB of image, some 65 kB/s. Never faster than that; on an idle host, that to the event
    (every write crosses three processes on D-Bus: a busy host makes requests miss
    events, so the best of up to three uploads counts)."""
    image = IMAGE.read_bytes()[:24 * 1024]
    board = ble_board("fast", time_scale=1.0)
    best = float("inf")
    for _ in range(3):
        elapsed, requests = upload_seconds(image)  # the same slot again: erasing it is free
        # Every request but the last (one short write: 2 events) is 5 events.
        floor = ((requests - 1) * 5 + 2) * 7.5 * MS
        assert elapsed >= floor - 7.5 * MS, "faster than the link allows"
        best = min(best, elapsed)
        if best <= floor * 1.25:
            break
    print(f"\n{len(image)} B in {requests} requests over the modelled link in {best:.3f} s "
          f"= {len(image) / best / 1000:.1f} kB/s ({best / floor - 1:+.1%} over the model)")
    assert best <= floor * 1.25
    # Writes crossing in one connection event keep their order.
    assert board.call(lambda d: d.partitions.secondary(0).read(0, len(image))) == image


def test_default_board_upload_rate(ble_board: Callable[..., EmulatedDevice],
                                   tmp_path: Path) -> None:
    """nrf52840dk at time scale 1: the link (37.5 ms a request) plus programming 2.45 KB of
    flash (25 ms) give about 41 kB/s: the 'tens of kB/s' phones and smpmgr reach with SMP
    reassembly on a real board (nRF Connect Device Manager and smpmgr report 30-60 kB/s on an
    nRF52840 with a 2M PHY and SMP reassembly)."""
    board = ble_board(time_scale=1.0)
    image = signed_image(tmp_path, 48 * 1024).read_bytes()
    elapsed, _ = upload_seconds(image)
    rate = len(image) / elapsed
    print(f"\n{len(image)} B to nrf52840dk over BLE in {elapsed:.3f} s = {rate / 1000:.1f} kB/s")
    assert rate < 43_000, "faster than link and flash allow"
    assert rate > 20_000  # 41 kB/s on an idle host; a busy one loses events
    assert board.call(lambda d: d.partitions.secondary(0).read(0, len(image))) == image


def test_a_real_radio_is_not_paced_twice(ble_bus: MockBus,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The model stands in for the radio BlueZoo lacks; on a controller's adapter (not the
    mock) the radio sets the pace, and the model stays out of it."""
    with EmulatedDevice("fast", time_scale=1.0, ble_adapter=BOARD_ADAPTER) as board:
        endpoint = board.ble_endpoint()
        assert endpoint.link is not None
        assert "BlueZoo mock, phone central, link model 7.5 ms x 3 packets" in \
            endpoint.describe()

    with EmulatedDevice("fast", time_scale=1.0, ble_adapter=BOARD_ADAPTER,
                        ble_central="desktop-chrome") as board:
        assert "desktop-chrome central, link model 30 ms x 3 packets" in \
            board.ble_endpoint().describe()

    async def not_bluezoo(self: AdapterControl) -> bool:
        return False
    monkeypatch.setattr(AdapterControl, "_is_bluezoo", not_bluezoo)
    with EmulatedDevice("fast", time_scale=1.0, ble_adapter=BOARD_ADAPTER) as board:
        endpoint = board.ble_endpoint()
        assert endpoint.link is None
        assert endpoint.describe().endswith("reassembly on, paced by the radio)")
