"""``make bench-ble``: an image upload with smpclient over BLE, at a time scale, on the mock bus.

What a client sees of the default board's BLE link (``[firmware.ble]``: connection interval,
packets per interval, MTU, reassembly) plus its flash: the whole upload (the first request waits
for the slot's erase) and the steady rate after it. Runs the BlueZoo mock of ``tests/ble``; no
Bluetooth hardware is involved, so the figures are smpsim's link model, not a radio's.

    .venv/bin/python bench/bench_ble.py [--profile NAME|FILE] [--kib 200] [--time-scale 1]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smpclient import SMPClient  # noqa: E402
from smpclient.transport.ble import SMPBLETransport  # noqa: E402

from smpsim.pytest_plugin import EmulatedDevice  # noqa: E402
from smpsim.testing import mockbus  # noqa: E402

KEY = ROOT / "flash_images" / "keys" / "insecure-test-ecdsa-p256.pem"


def signed_image(folder: Path, size: int) -> bytes:
    """A signed application image of about ``size`` bytes for the default board."""
    raw, signed = folder / "app.bin", folder / "app-signed.bin"
    raw.write_bytes(bytes(0x200) + hashlib.shake_256(b"bench ble").digest(size - 0x200))
    subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--key", str(KEY),
                    "--header-size", "0x200", "--align", "4", "--version", "1.0.1",
                    "--slot-size", "0x76000", str(raw), str(signed)], check=True)
    return signed.read_bytes()


async def upload(image: bytes) -> tuple[float, float, int]:
    """(seconds in all, seconds after the first answer, bytes after the first answer)."""
    async with SMPClient(SMPBLETransport(), mockbus.PERIPHERAL, timeout_s=10.0) as client:
        started = time.monotonic()
        first_at, first_off = 0.0, 0
        async for offset in client.upload(image):
            if not first_off:
                first_at, first_off = time.monotonic(), offset
        done = time.monotonic()
    return done - started, done - first_at, len(image) - first_off


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="nrf52840dk")
    parser.add_argument("--kib", type=int, default=200, help="image size (default 200 KiB)")
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, mockbus.start() as bus:
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
        image = signed_image(Path(tmp), args.kib * 1024)
        with EmulatedDevice(args.profile, time_scale=args.time_scale,
                            ble_adapter=mockbus.BOARD_ADAPTER) as board:
            ble = board.profile.firmware.ble
            total, steady, steady_bytes = asyncio.run(upload(image))
    print(f"profile {args.profile}: MTU {ble.mtu}, {ble.conn_interval_ms:g} ms x "
          f"{ble.packets_per_interval} packets of {ble.data_length} B, reassembly "
          f"{'on' if ble.reassembly else 'off'}, time scale {args.time_scale:g}")
    print(f"upload of {len(image)} B: {total:.2f} s = {len(image) / total / 1000:.1f} kB/s "
          f"overall; after the first answer (slot erase) "
          f"{steady_bytes / steady / 1000:.1f} kB/s")


if __name__ == "__main__":
    main()
