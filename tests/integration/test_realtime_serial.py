"""Real time (``time_scale=1``) on a 115200-baud serial line: an upload runs at the speed the baud
rate allows, and a reset keeps the port open while the line goes quiet for the boot.

The baud rate is the floor: 10 bit times a byte, in each direction, for every byte the client
wrote and the board wrote back (the line is stop-and-wait: request, then answer). smpclient polls
its port every 5 ms, which is all the slack above that floor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from smpclient import SMPClient
from smpclient.transport.serial import Auto, SMPSerialTransport

from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import RESET, WRITE, echo_frame, smp_frame
from .serial_support import Port

pytestmark = pytest.mark.smpsim(time_scale=1.0)

BAUD = 115200
IMAGE = Path(__file__).resolve().parents[2] / "flash_images" / "app-1.1.0-hashonly.bin"
UPLOAD_BYTES = 20 * 1024


def test_upload_runs_at_the_baud_rate(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    # fast: hash-only MCUboot, instant flash (so only the line takes time), 115200 baud.
    board = smp_device_factory("fast", serial=True, time_scale=1.0)
    assert board.profile.firmware.serial.baud == BAUD
    assert board.serial_path is not None
    image = IMAGE.read_bytes()[:UPLOAD_BYTES]

    async def upload() -> tuple[float, int]:
        async with SMPClient(SMPSerialTransport(Auto()), board.serial_path or "",
                             timeout_s=5.0) as client:
            before = sum(board.serial_traffic())
            started = time.monotonic()
            async for _ in client.upload(image, slot=1):
                pass
            return time.monotonic() - started, sum(board.serial_traffic()) - before

    elapsed, wire_bytes = asyncio.run(upload())
    floor = wire_bytes * 10 / BAUD
    rate = len(image) / elapsed
    print(f"\n{len(image)} B uploaded in {elapsed:.3f} s = {rate:.0f} B/s of image data; "
          f"{wire_bytes} B on the line need {floor:.3f} s at {BAUD} baud "
          f"({elapsed / floor - 1:+.1%})")
    assert elapsed >= floor * 0.99, "faster than the line allows"
    assert elapsed <= floor * 1.05, "more than 5% over what the baud rate allows"
    assert 7_000 < rate < 8_600  # ~8.4 KB/s of SMP data at 115200


def test_reset_over_serial_in_real_time(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """nrf52840dk: the answer, 250 ms of the application still running, then MCUboot's lines,
    350 ms of boot with the line quiet and requests unanswered, the banner, and answers again;
    the port stays open throughout."""
    board = smp_device_factory("nrf52840dk", serial=True, time_scale=1.0)
    assert board.serial_path is not None
    reset_s = board.profile.firmware.os.reset_ms / 1000
    boot_s = board.profile.board.boot_time_ms / 1000
    with Port(board.serial_path, flush=False) as port:
        # The power-on boot log is still on its way out at 115200 baud: let it all arrive.
        port.wait_for(lambda: b"Advertising successfully started" in port.received)
        port.received = b""
        port.send(smp_frame(WRITE, *RESET, 1, {}))
        port.frame()
        answered = time.monotonic()
        port.wait_for(lambda: b"*** Booting MCUboot" in port.received, timeout=5)
        mcuboot = time.monotonic()
        port.send(echo_frame(2, "booting?"))  # while it boots: lost, as on a board
        port.wait_for(lambda: b"*** Booting Zephyr OS" in port.received, timeout=5)
        banner = time.monotonic()
        port.wait_for(lambda: b"Advertising successfully started" in port.received)
        port.send(echo_frame(3, "up"))
        assert port.answer(3) == {"r": "up"}
    assert mcuboot - answered >= reset_s * 0.9
    assert banner - mcuboot >= boot_s * 0.9
    assert b'"booting?"' not in port.received and not _saw_seq(port.received, 2)


def _saw_seq(received: bytes, seq: int) -> bool:
    from smpsim.mcumgr.framing.serial import ConsoleReceiver, Packet
    rx = ConsoleReceiver(65536, rx_buf_size=65536, rx_buf_count=10_000)
    return any(isinstance(e, Packet) and e.data[6] == seq for e in rx.feed(received))
