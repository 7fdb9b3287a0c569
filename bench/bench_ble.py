"""``make bench-ble``: image uploads over BLE on the mock bus, as the link model paces them.

Two clients, each on the central it runs on:

1. smpclient (Python, what smpmgr uses) from a phone-like central that grants the board's
   7.5 ms interval: the whole upload (the first request waits for the slot's erase) and the
   steady rate after it, at a time scale (default 1).
2. A Web Bluetooth DFU page (``tests/webbt/www``: one write per request, stop and wait) on a
   desktop-Chrome central (the OS stack keeps its 30 ms interval), at chunks of 64, 128 and 244
   bytes, beside the figures browser tools publish for a ~200 KB image. The modelled time is
   the link model and the board's flash times added up request by request (no waiting: it is
   the arithmetic the transport's timers carry out). ``--browser`` also runs the page in
   headless Chromium against the board at ``--time-scale`` and reports the time it took,
   divided by the time scale.

No Bluetooth hardware is involved: the figures are smpsim's model, not a radio's.

    .venv/bin/python bench/bench_ble.py [--profile NAME|FILE] [--kib 200] [--time-scale 1]
                                        [--browser] [--browser-time-scale 0.25]
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

import cbor2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smpclient import SMPClient  # noqa: E402
from smpclient.transport.ble import SMPBLETransport  # noqa: E402

from smpsim.config import Profile, load_profile  # noqa: E402
from smpsim.device.mcu import Device  # noqa: E402
from smpsim.mcumgr.server import Server  # noqa: E402
from smpsim.pytest_plugin import EmulatedDevice  # noqa: E402
from smpsim.testing import mockbus  # noqa: E402
from smpsim.transports.ble.link import (  # noqa: E402
    ATT_HEADER,
    CENTRALS,
    Central,
    LinkModel,
    connection_mtu,
)

KEY = ROOT / "flash_images" / "keys" / "insecure-test-ecdsa-p256.pem"
DFU_PAGE = ROOT / "tests" / "webbt" / "www"
PUBLISHED_S = {64: 180.0, 128: 90.0, 244: 52.0}
"""What browser DFU tools report for a ~200 KB image over Web Bluetooth on desktop Chrome:
about 3 min at 64-byte chunks, 1.5 min at 128, 52 s at 244."""
PUBLISHED_ERASE = "30-60 s on most MCUs"


def signed_image(folder: Path, size: int) -> bytes:
    """A signed application image of about ``size`` bytes for the default board."""
    raw, signed = folder / "app.bin", folder / "app-signed.bin"
    raw.write_bytes(bytes(0x200) + hashlib.shake_256(b"bench ble").digest(size - 0x200))
    subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--key", str(KEY),
                    "--header-size", "0x200", "--align", "4", "--version", "1.0.1",
                    "--slot-size", "0x76000", str(raw), str(signed)], check=True)
    return signed.read_bytes()


# -- 1. smpclient ---------------------------------------------------------------------------

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


def bench_smpclient(profile: str, image: bytes, scale: float) -> None:
    with mockbus.start() as bus:
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
        with EmulatedDevice(profile, time_scale=scale,
                            ble_adapter=mockbus.BOARD_ADAPTER) as board:
            ble = board.profile.firmware.ble
            total, steady, steady_bytes = asyncio.run(upload(image))
    print(f"smpclient, phone central, profile {profile}: MTU {ble.mtu}, "
          f"{ble.conn_interval_ms:g} ms x {ble.packets_per_interval} packets of "
          f"{ble.data_length} B, reassembly {'on' if ble.reassembly else 'off'}, "
          f"time scale {scale:g}")
    print(f"  upload of {len(image)} B: {total:.2f} s = {len(image) / total / 1000:.1f} kB/s "
          f"overall; after the first answer (slot erase) "
          f"{steady_bytes / steady / 1000:.1f} kB/s")


# -- 2. the Web Bluetooth page on a desktop-Chrome central ------------------------------------

def _request(group: int, command: int, body: dict[str, object], seq: int) -> bytes:
    """An SMP v1 write request, as the page builds it."""
    payload = cbor2.dumps(body)
    return bytes([2, 0, len(payload) >> 8, len(payload) & 0xFF, group >> 8, group & 0xFF,
                  seq & 0xFF, command]) + payload


class ModelledLink:
    """The page's exchanges with a board, timed as the BLE transport times them: each write
    crosses the link model, the board is busy for its flash time, each notification crosses
    back; the page writes its next request when the last notification is in."""

    def __init__(self, profile: Profile, central: Central, slot1: bytes = b"") -> None:
        self.device = Device(profile, time_scale=0.0)
        self.device.boot()
        if slot1:  # what an earlier update left there: the erase has pages to erase then
            area = self.device.partitions.secondary(0)
            assert area is not None
            area.write(0, slot1 + bytes(-len(slot1) % 8))  # whole write blocks
        self.server = Server(self.device)
        self.link = LinkModel(profile.firmware.ble, 1.0, central)
        self.notify_size = connection_mtu(profile.firmware.ble, central) - ATT_HEADER
        self.now = 0.0
        self.seq = 0

    def exchange(self, group: int, command: int, body: dict[str, object]) -> dict[str, object]:
        frame = _request(group, command, body, self.seq)
        self.seq += 1
        assert len(frame) <= self.notify_size, "the page writes a request in one write"
        arrived = self.link.book("rx", self.now, len(frame))
        reply = self.server.handle(frame)
        (answer,) = reply.frames
        ready = arrived + reply.busy_s
        for start in range(0, len(answer), self.notify_size):
            self.now = self.link.book("tx", ready, len(answer[start:start + self.notify_size]))
        decoded: dict[str, object] = cbor2.loads(answer[8:])
        return decoded

    def dfu(self, image: bytes, chunk: int) -> tuple[float, float, int]:
        """(erase seconds, upload seconds, requests) of the page's erase and upload."""
        started = self.now
        self.exchange(1, 5, {"slot": 1})
        erased = self.now
        sha = hashlib.sha256(image).digest()
        offset = requests = 0
        while offset < len(image):
            data = image[offset:offset + chunk]
            body: dict[str, object] = ({"image": 0, "len": len(image), "off": 0, "sha": sha,
                                        "data": data} if offset == 0 else
                                       {"off": offset, "data": data})
            answer = self.exchange(1, 1, body)
            assert answer.get("rc", 0) == 0, answer
            offset = int(str(answer["off"]))
            requests += 1
        return erased - started, self.now - erased, requests


def browser_upload(profile: str, image: bytes, chunk: int, scale: float) -> tuple[float, float]:
    """(erase, upload) seconds of the page in headless Chromium, divided by the time scale."""
    from smpsim.testing.webbt import WebBluetooth
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.bin"
        path.write_bytes(image)
        with WebBluetooth(DFU_PAGE, files={"app.bin": path}, profile=profile,
                          time_scale=scale) as bench:
            page = bench.open("index.html", click="#connect")
            page.wait_for_console("^connected$")
            report = page.evaluate(f"dfu.update({{url: 'app.bin', chunk: {chunk}, "
                                   f"install: false, timeoutMs: 20000}})", 3600)
    assert not report["halvings"], report["halvings"]
    return report["eraseMs"] / 1000 / scale, report["uploadMs"] / 1000 / scale


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def bench_web_bluetooth(profile_name: str, image: bytes, browser: bool, scale: float) -> None:
    profile = load_profile(profile_name)
    central = CENTRALS["desktop-chrome"]
    link = LinkModel(profile.firmware.ble, 1.0, central)
    print(f"\nWeb Bluetooth DFU page, {central.name} central ({central.description}), "
          f"profile {profile_name}: {link.interval_ms:g} ms interval, MTU "
          f"{connection_mtu(profile.firmware.ble, central)}; {len(image)} B image")
    header = f"  {'chunk':>5} {'requests':>8} {'modelled':>9} {'published':>9} {'ratio':>6}"
    if browser:
        header += f" {'in Chromium':>12} (time scale {scale:g})"
    print(header)
    for chunk, published in PUBLISHED_S.items():
        _, upload_s, requests = ModelledLink(profile, central).dfu(image, chunk)
        line = (f"  {chunk:>5} {requests:>8} {minutes(upload_s):>9} {minutes(published):>9} "
                f"{upload_s / published:>6.2f}")
        if browser:
            _, ran_s = browser_upload(profile_name, image, chunk, scale)
            line += f" {minutes(ran_s):>12} ({ran_s / upload_s - 1:+.1%} over the model)"
        print(line, flush=True)
    blank_s, _, _ = ModelledLink(profile, central).dfu(image[:4096], 244)
    full_s, _, _ = ModelledLink(profile, central, slot1=image).dfu(image[:4096], 244)
    print(f"  erase slot 1: modelled {full_s:.1f} s holding an image, {blank_s:.1f} s blank "
          f"(Zephyr erases only a slot that is not); published {PUBLISHED_ERASE}")
    print("  (modelled: one request per round trip, the upload after the erase; ratio = "
          "modelled / published)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="nrf52840dk")
    parser.add_argument("--kib", type=int, default=200, help="image size (default 200 KiB)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="of the smpclient upload (default 1)")
    parser.add_argument("--browser", action="store_true",
                        help="also run the Web Bluetooth page in headless Chromium")
    parser.add_argument("--browser-time-scale", type=float, default=0.25,
                        help="of the Chromium runs (default 0.25: 7.5 ms a 30 ms interval)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = signed_image(Path(tmp), args.kib * 1024)
    bench_smpclient(args.profile, image, args.time_scale)
    bench_web_bluetooth(args.profile, image, args.browser, args.browser_time_scale)


if __name__ == "__main__":
    main()
