"""The fs and zephyr-basic groups with real clients: the smpmgr CLI over UDP and over the serial
PTY (a 100 KB file up and down, byte for byte; read-size; get-hash), mcumgr-toolkit in a child
process, and smpclient's upload_file / download_file. Instant time (``time_scale=0``).

The 100 KB round trips run on the esp32c3 profile, whose storage partition is Zephyr's 192 KiB
one: the default board (nRF52840 DK) has the DK's 32 KiB storage partition, too small for
100 KB, and says so (disk full) as the board would.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from smpclient import SMPClient

from smpsim.device.mcu import Device
from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import (
    BIN,
    WRITE,
    device_on_port_1337,
    parse_frame,
    run_toolkit,
    smp_frame,
    smp_session,
    udp_socket,
)
from .serial_support import run_toolkit_serial

BIG = hashlib.sha256(b"smpsim fs").digest() * 3200
"""102400 bytes that are not all alike."""


def smpmgr(link: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "smpmgr"), *link, "--timeout", "10", *args],
                          capture_output=True, text=True, timeout=180, check=False)


def round_trip(link: list[str], tmp_path: Path) -> None:
    """smpmgr: upload BIG, its size and crc32, download it, all byte for byte."""
    source, back = tmp_path / "big.bin", tmp_path / "back.bin"
    source.write_bytes(BIG)
    upload = smpmgr(link, "file", "upload", str(source), "/lfs1/big.bin")
    assert upload.returncode == 0, upload.stdout + upload.stderr
    assert "100.0%" in upload.stdout and "Error" not in upload.stdout
    size = smpmgr(link, "file", "read-size", "/lfs1/big.bin")
    assert size.returncode == 0, size.stderr
    assert size.stdout.strip().splitlines()[-1] == "102400"
    digest = smpmgr(link, "file", "get-hash", "/lfs1/big.bin")
    assert digest.returncode == 0, digest.stderr
    assert re.search(rf"output={zlib.crc32(BIG)}\b", digest.stdout), digest.stdout
    assert "type='crc32'" in digest.stdout and "len=102400" in digest.stdout
    download = smpmgr(link, "file", "download", "/lfs1/big.bin", str(back))
    assert download.returncode == 0, download.stdout + download.stderr
    assert back.read_bytes() == BIG


def on_board(device: EmulatedDevice, path: str) -> bytes:
    """A file's content read on the board itself (in its thread)."""
    def read(board: Device) -> bytes:
        file = board.fs.open(path, 0x01)
        data = file.read(1 << 20)
        file.close()
        return data
    return device.call(read)


def test_smpmgr_100k_over_udp(smp_device_factory: Callable[..., EmulatedDevice],
                              tmp_path: Path) -> None:
    device = device_on_port_1337(smp_device_factory, "esp32c3")
    round_trip(["--ip", device.host], tmp_path)
    assert on_board(device, "/lfs1/big.bin") == BIG


def test_smpmgr_100k_over_serial(smp_device_factory: Callable[..., EmulatedDevice],
                                 tmp_path: Path) -> None:
    device = smp_device_factory("esp32c3", serial=True)
    assert device.serial_path is not None
    round_trip(["--port", device.serial_path], tmp_path)
    assert on_board(device, "/lfs1/big.bin") == BIG


def test_smpmgr_on_the_default_boards_small_storage(
        smp_device_factory: Callable[..., EmulatedDevice], tmp_path: Path) -> None:
    device = device_on_port_1337(smp_device_factory)
    source = tmp_path / "big.bin"
    source.write_bytes(BIG)
    upload = smpmgr(["--ip", device.host], "file", "upload", str(source), "/lfs1/big.bin")
    assert "FILE_WRITE_FAILED" in upload.stdout + upload.stderr  # disk full: err {8, 10}
    small = tmp_path / "small.bin"
    small.write_bytes(BIG[:5000])
    assert smpmgr(["--ip", device.host], "file", "upload", str(small),
                  "/lfs1/small.bin").returncode == 0
    assert on_board(device, "/lfs1/small.bin") == BIG[:5000]


def test_smpmgr_errors_and_hash_types(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    device = device_on_port_1337(smp_device_factory, "native_sim_udp")
    missing = smpmgr(["--ip", device.host], "file", "read-size", "/lfs1/missing")
    assert "FILE_NOT_FOUND" in missing.stdout + missing.stderr
    types = smpmgr(["--ip", device.host], "file", "get-supported-hash-types")
    assert types.returncode == 0, types.stderr
    assert "crc32" in types.stdout and "sha256" in types.stdout


def test_mcumgr_toolkit_fs_and_storage_erase(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    device = smp_device_factory("esp32c3")
    data = BIG[:20000]
    upload, status, crc, sha, part, types, download, close = run_toolkit(
        device.host, device.port,
        ["fs_file_upload", "/lfs1/t.bin", data.hex()], ["fs_file_status", "/lfs1/t.bin"],
        ["fs_file_checksum", "/lfs1/t.bin", None, 0, None],
        ["fs_file_checksum", "/lfs1/t.bin", "sha256", 0, None],
        ["fs_file_checksum", "/lfs1/t.bin", "sha256", 100, 50],
        ["fs_supported_checksum_types"], ["fs_file_download", "/lfs1/t.bin"],
        ["fs_file_close"], timeout_ms=3000)
    assert upload is None and close is None
    assert status["length"] == 20000
    assert crc["type"] == "crc32" and crc["length"] == 20000
    assert crc["output"] == zlib.crc32(data).to_bytes(4, "big").hex()
    assert sha["output"] == hashlib.sha256(data).hexdigest()
    assert part["output"] == hashlib.sha256(data[100:150]).hexdigest()
    assert part["length"] == 50
    assert types == {"crc32": {"format": "FileChecksumDataFormat.Numerical", "size": 4},
                     "sha256": {"format": "FileChecksumDataFormat.ByteArray", "size": 32}}
    assert download == data.hex()
    erase, after, missing = run_toolkit(
        device.host, device.port, ["zephyr_erase_storage"], ["fs_file_status", "/lfs1/t.bin"],
        ["fs_file_status", "/lfs1/none"])
    assert erase is None
    assert "error" in after and "error" in missing  # littlefs is corrupt until a reboot
    device.reset()
    (gone,) = run_toolkit(device.host, device.port, ["fs_file_status", "/lfs1/t.bin"])
    assert "error" in gone  # formatted at boot: the file is gone


def test_mcumgr_toolkit_fs_over_serial(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    device = smp_device_factory("nrf52840dk", serial=True)
    assert device.serial_path is not None
    data = BIG[:6000]
    upload, status, download = run_toolkit_serial(
        device.serial_path, ["fs_file_upload", "/lfs1/s.bin", data.hex()],
        ["fs_file_status", "/lfs1/s.bin"], ["fs_file_download", "/lfs1/s.bin"],
        timeout_ms=5000)
    assert upload is None and status["length"] == 6000 and download == data.hex()


def test_smpclient_upload_and_download_file(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    device = smp_device_factory("nrf52840dk")
    data = BIG[:12345]

    async def body(client: SMPClient) -> bytes:
        offsets = [off async for off in client.upload_file(data, "/lfs1/c.bin")]
        assert offsets[-1] == len(data) and offsets == sorted(offsets)
        return await client.download_file("/lfs1/c.bin")

    assert smp_session(device.host, device.port, body) == data
    assert on_board(device, "/lfs1/c.bin") == data


def test_a_log_file_to_download(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """The default board's application keeps /lfs1/app.log: something real to download."""
    device = smp_device_factory("nrf52840dk")
    device.reset()

    async def body(client: SMPClient) -> bytes:
        return await client.download_file("/lfs1/app.log")

    log = smp_session(device.host, device.port, body).decode()
    assert re.fullmatch(r"(\[[\d:.,]+\] boot [12], build v4\.4\.0\n){2}", log), log


@pytest.mark.parametrize("profile", ["native_sim_udp", "native_sim_serial_raw"])
def test_storage_erase_with_the_toolkit(smp_device_factory: Callable[..., EmulatedDevice],
                                        profile: str) -> None:
    """zephyr basic storage erase over UDP: the storage partition reads erased; where littlefs
    is mounted (builds with the fs group) it answers corruption, with littlefs's line."""
    device = smp_device_factory(profile)
    lines: list[str] = []
    device.call(lambda board: board.console.subscribe(lines.append))

    def storage_erased(board: Device) -> bool:
        area = board.partitions.get("storage")
        return area is not None and area.is_erased()
    has_fs = profile == "native_sim_udp"
    assert device.call(storage_erased) is not has_fs  # formatted at boot where mounted
    erase, status = run_toolkit(device.host, device.port, ["zephyr_erase_storage"],
                                ["fs_file_status", "/lfs1/x"])
    assert erase is None
    assert device.call(storage_erased)
    if has_fs:
        assert "UNKNOWN" in status["error"]  # err {8, 1}
        assert any(line.endswith("Corrupted dir pair at {0x0, 0x1}") for line in lines)
    else:
        assert "error" in status  # no fs group: rc 8


def test_a_power_cut_mid_upload_keeps_the_files(
        smp_device_factory: Callable[..., EmulatedDevice], tmp_path: Path) -> None:
    """The board loses power in the middle of a chunk (a flash operation of its write): it
    answers nothing more; powered on again from the same flash file, littlefs mounts without
    formatting and the files written before are intact."""
    flash = tmp_path / "flash.bin"
    device = smp_device_factory("nrf52840dk", flash_path=flash)
    kept = BIG[:7000]

    async def before(client: SMPClient) -> None:
        async for _ in client.upload_file(kept, "/lfs1/kept.bin"):
            pass
    smp_session(device.host, device.port, before)
    with udp_socket(device.address) as sock:
        sock.send(smp_frame(WRITE, 8, 0, 1, {"name": "/lfs1/new.bin", "off": 0,
                                             "len": 8000, "data": BIG[:1000]}))
        assert parse_frame(sock.recv(4096))[1] == {"off": 1000}
        device.call(lambda board: board.flash.cut_power_before(4))
        sock.send(smp_frame(WRITE, 8, 0, 2, {"name": "/lfs1/new.bin", "off": 1000,
                                             "data": BIG[1000:2200]}))
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
    assert not device.state().online
    device.stop()
    again = smp_device_factory("nrf52840dk", flash_path=flash)
    lines: list[str] = []
    again.call(lambda board: lines.extend(f"{e.name} {e.size}"
                                          for e in board.fs.listdir("/lfs1")))
    assert on_board(again, "/lfs1/kept.bin") == kept
    assert "new.bin 0" in lines  # created by the first chunk; its data never committed
