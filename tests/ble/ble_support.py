"""Clients of the BLE tests: smpclient's BLE transport, and a raw bleak link for the writes and
notifications smpclient would never send or would hide."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import cbor2
from bleak import BleakClient, BleakScanner
from smpclient import SMPClient
from smpclient.transport.ble import SMPBLETransport

from smpsim.testing.mockbus import PERIPHERAL
from smpsim.transports.ble.endpoint import SMP_CHARACTERISTIC_UUID

T = TypeVar("T")
KEY = Path(__file__).resolve().parents[2] / "flash_images" / "keys" / \
    "insecure-test-ecdsa-p256.pem"
SCAN_TIMEOUT_S = 5.0
WRITE = 2
_HEADER = struct.Struct(">BBHHBB")


def smp_frame(op: int, group: int, cmd: int, seq: int, body: Any) -> bytes:
    """One SMP v2 frame: header + CBOR body."""
    payload = cbor2.dumps(body)
    return _HEADER.pack(op | 1 << 3, 0, len(payload), group, seq, cmd) + payload


def echo_frame(seq: int, text: str) -> bytes:
    """An os echo request."""
    return smp_frame(WRITE, 0, 0, seq, {"d": text})


def parse_frame(frame: bytes) -> tuple[dict[str, int], Any]:
    """(header fields, decoded body) of one whole response frame."""
    _byte0, _flags, length, group, seq, cmd = _HEADER.unpack_from(frame)
    assert len(frame) == 8 + length, f"frame of {len(frame)} B, header says {8 + length}"
    return {"group": group, "seq": seq, "cmd": cmd}, cbor2.loads(frame[8:])


def signed_image(tmp_path: Path, size: int) -> Path:
    """An application image of about ``size`` bytes for the default board, signed with the
    insecure ECDSA P-256 key it trusts (imgtool's own command line)."""
    raw = tmp_path / "app.bin"
    body = hashlib.shake_256(b"smpsim ble upload").digest(size - 0x200)
    raw.write_bytes(bytes(0x200) + body)
    signed = tmp_path / "app-signed.bin"
    subprocess.run(
        [sys.executable, "-m", "imgtool.main", "sign", "--key", str(KEY), "--header-size", "0x200",
         "--align", "4", "--version", "1.2.3", "--slot-size", "0x76000", str(raw), str(signed)],
        check=True, capture_output=True, timeout=60)
    return signed


def smp_ble_session(body: Callable[[SMPClient, SMPBLETransport], Awaitable[T]],
                    timeout_s: float = 5.0) -> T:
    """Connect smpclient over BLE to the board on hci1 (it reads MCUmgr params first), run
    ``body(client, transport)``, disconnect."""
    async def main() -> T:
        transport = SMPBLETransport()
        async with SMPClient(transport, PERIPHERAL, timeout_s=timeout_s) as client:
            return await body(client, transport)
    return asyncio.run(main())


class RawLink:
    """A bleak connection to the SMP characteristic: writes exactly as given, and every
    notification as it came."""

    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self.notifications: list[bytes] = []
        """Notifications not yet taken by :meth:`frame` or :meth:`silence`."""
        self.notifications_seen: list[bytes] = []
        """Every notification, as it came."""
        self._arrived = asyncio.Event()

    def _on_notify(self, _: Any, data: bytearray) -> None:
        self.notifications.append(bytes(data))
        self.notifications_seen.append(bytes(data))
        self._arrived.set()

    async def write(self, *pieces: bytes) -> None:
        """Write commands (without response), one per piece."""
        for piece in pieces:
            await self.client.write_gatt_char(SMP_CHARACTERISTIC_UUID, piece, response=False)

    async def frame(self, timeout_s: float = 2.0) -> bytes:
        """The next response, joined from notifications by its header length (as clients do)."""
        deadline = time.monotonic() + timeout_s
        buffer = b""
        while True:
            while self.notifications:
                buffer += self.notifications.pop(0)
            if len(buffer) >= 8 and len(buffer) >= 8 + int.from_bytes(buffer[2:4], "big"):
                return buffer
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete response in {timeout_s} s (have {buffer!r})")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    async def silence(self, seconds: float = 0.3) -> list[bytes]:
        """Wait ``seconds``; returns the notifications that came meanwhile (none, hopefully)."""
        await asyncio.sleep(seconds)
        got, self.notifications = self.notifications, []
        return got


@contextlib.asynccontextmanager
async def raw_link(notify: bool = True) -> AsyncIterator[RawLink]:
    """Scan for the board, connect from hci0, turn notifications on."""
    device = await BleakScanner.find_device_by_address(PERIPHERAL, timeout=SCAN_TIMEOUT_S)
    assert device is not None, f"{PERIPHERAL} not found"
    async with BleakClient(device) as client:
        link = RawLink(client)
        if notify:
            await client.start_notify(SMP_CHARACTERISTIC_UUID, link._on_notify)
        yield link


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.005)


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine in a new loop (each test gets its own bleak bus connection)."""
    async def main() -> T:
        return await coro
    return asyncio.run(main())
