"""MCUboot's serial recovery server (``smpsim.mcumgr.boot_serial``), sans-IO: its header,
dispatch, CBOR and upload rules, the build options, and the boots it leads to."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import cbor2
import pytest

from smpsim.config import Profile, load_profile
from smpsim.device.mcu import Device
from smpsim.mcumgr.boot_serial import BootSerialServer
from smpsim.mcumgr.dispatcher import ResetEffect

READ, WRITE = 0, 2
RECOVERY = "mps2_an385_serial_recovery"


def frame(op: int, group: int, cmd: int, body: Any = None, *, seq: int = 1, version: int = 1,
          raw: bytes | None = None, length: int | None = None) -> bytes:
    payload = raw if raw is not None else (cbor2.dumps(body) if body is not None else b"")
    size = len(payload) if length is None else length
    return bytes([(version << 3) | op, 0]) + size.to_bytes(2, "big") + group.to_bytes(2, "big") \
        + bytes([seq, cmd]) + payload


def answer(server: BootSerialServer, request: bytes) -> Any:
    reply = server.handle(request)
    assert len(reply.frames) == 1, reply.frames
    return cbor2.loads(reply.frames[0][8:])


def recovery_profile(name: str = RECOVERY, **changes: Any) -> Profile:
    profile = load_profile(name)
    assert profile.mcuboot is not None
    recovery = dataclasses.replace(profile.mcuboot.serial_recovery, **changes)
    return dataclasses.replace(profile, mcuboot=dataclasses.replace(
        profile.mcuboot, serial_recovery=recovery))


def server_of(profile: Profile | str = RECOVERY, *, button: bool = False) -> BootSerialServer:
    """A board in recovery: the mps2 build has nothing to boot; the default board's button is
    held at reset."""
    device = Device(load_profile(profile) if isinstance(profile, str) else profile)
    if button:
        device.hold_button()
    assert device.boot().recovery
    return BootSerialServer(device)


def ram_load_image(version: str = "1.2.3+4", payload: int = 3000) -> bytes:
    import subprocess
    import sys
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.bin"), Path(tmp, "out.bin")
        src.write_bytes(bytes(0x200) + hashlib.shake_256(version.encode()).digest(payload))
        subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--version", version,
                        "--header-size", "0x200", "--align", "4", "--slot-size", "0x80000",
                        "--load-addr", "0x20240000", str(src), str(dst)],
                       check=True, capture_output=True)
        return dst.read_bytes()


def upload_all(server: BootSerialServer, image: bytes, chunk: int = 512) -> None:
    off = 0
    while off < len(image):
        body: dict[str, Any] = {"off": off, "data": image[off:off + chunk]}
        if off == 0:
            body["len"] = len(image)
        got = answer(server, frame(WRITE, 1, 1, body))
        assert got["rc"] == 0, got
        off = got["off"]


# -- header and dispatch -----------------------------------------------------------------------

def test_response_header_copies_version_and_reserved_bits() -> None:
    server = server_of()
    request = bytearray(frame(READ, 0, 6, {}, version=3))
    request[0] |= 0xE0
    reply = server.handle(bytes(request))
    assert reply.frames[0][0] == request[0] + 1 and reply.frames[0][1] == 0
    assert reply.frames[0][4:8] == request[4:8]


@pytest.mark.parametrize("op", [1, 3, 4, 5, 6, 7])
def test_ops_other_than_read_and_write_get_no_answer(op: int) -> None:
    assert server_of().handle(frame(op, 0, 6, {})).frames == []


def test_length_rules() -> None:
    server = server_of()
    assert server.handle(frame(READ, 0, 1, {"echo": False}, length=3)).frames == []  # smaller
    assert server.handle(frame(READ, 0, 6, raw=b"")[:7]).frames == []  # under 8 bytes
    assert answer(server, frame(READ, 0, 6, raw=b"\xa0", length=50))["buf_size"] == 1024
    two = frame(READ, 0, 6, {}) + frame(READ, 0, 6, {}, seq=2)
    assert server.handle(two).frames == []  # the first length is smaller than what follows


@pytest.mark.parametrize(("group", "cmd"), [(0, 0), (0, 2), (0, 4), (0, 8), (1, 5), (1, 6),
                                            (2, 0), (8, 0), (63, 0), (64, 0), (256, 6)])
def test_what_recovery_lacks_answers_rc_8(group: int, cmd: int) -> None:
    assert answer(server_of(), frame(WRITE, group, cmd, {})) == {"rc": 8}


def test_handlers_without_arguments_ignore_the_payload() -> None:
    server = server_of()
    assert answer(server, frame(WRITE, 0, 1, raw=b"\xff\xfe")) == {"rc": 0}
    assert answer(server, frame(READ, 1, 0, raw=b"\x1f")) == {"images": []}
    reply = server.handle(frame(READ, 0, 5, raw=b"not cbor"))
    assert cbor2.loads(reply.frames[0][8:]) == {"rc": 0}
    assert reply.effects == [ResetEffect(0.25)]


def test_build_options() -> None:
    assert answer(server_of(recovery_profile(params=False)), frame(READ, 0, 6)) == {"rc": 8}
    echo = server_of(recovery_profile(echo=True))
    assert answer(echo, frame(WRITE, 0, 0, {"d": "hi"})) == {"r": "hi"}
    assert answer(echo, frame(WRITE, 0, 0, {"d": "hi", "x": 1})) == {"rc": 3}  # d must end it
    assert answer(echo, frame(WRITE, 0, 0, {"x": 1, "d": "hi"})) == {"r": "hi"}
    assert answer(echo, frame(WRITE, 0, 0, {})) == {"rc": 3}


def test_storage_erase_when_built() -> None:
    server = server_of(recovery_profile(storage_erase=True))
    storage = server.device.partitions.get("storage")
    assert storage is not None
    storage.write(0, b"\x00" * 4)
    assert answer(server, frame(WRITE, 63, 0)) == {"rc": 0}
    assert storage.is_erased()
    assert answer(server, frame(READ, 63, 0)) == {"rc": 8}
    assert answer(server, frame(WRITE, 64, 0)) == {"rc": 8}


def test_slot_info_answers_twice_to_a_write() -> None:
    """bs_slot_info answers ENOTSUP to a non-READ op and carries on: a second output with the
    op incremented again and the group byte-swapped."""
    server = server_of(recovery_profile(slot_info=True))
    info = answer(server, frame(READ, 1, 6))
    assert info["images"][0]["slots"][1] == {"slot": 1, "size": 0x80000, "upload_image_id": 1}
    assert "max_image_size" in info["images"][0]
    first, second = server.handle(frame(WRITE, 1, 6)).frames
    assert first[0] & 7 == 3 and second[0] & 7 == 4 and second[4:6] == b"\x01\x00"


# -- upload --------------------------------------------------------------------------------------

def test_upload_rules() -> None:
    server = server_of()
    up = lambda body: answer(server, frame(WRITE, 1, 1, body))  # noqa: E731
    data = bytes(range(200))
    assert up({"off": 0, "data": data}) == {"rc": 3}  # len needed at 0
    assert up({"off": 0, "len": 0x80001, "data": data}) == {"rc": 3}
    assert up({"off": 0, "len": 1000, "data": data[:101]}) == {"rc": 0, "off": 100}
    assert up({"off": 100, "data": data}) == {"rc": 0, "off": 300}
    assert up({"off": 100, "data": data}) == {"rc": 0, "off": 300}  # resend: expected offset
    assert up({"off": 900, "data": data[:150]}) == {"rc": 0, "off": 300}  # gap
    assert up({"off": 300, "data": b""}) == {"rc": 0, "off": 300}
    assert up({"off": 300, "data": bytes(701)}) == {"rc": 3}  # past len
    assert up({"off": 300, "data": bytes(700)}) == {"rc": 0, "off": 1000}
    assert up({"off": 1000, "data": b"x"}) == {"rc": 3}  # after completion
    assert up({"off": 0, "data": data}) == {"rc": 3}
    assert up({"off": 300, "data": data}) == {"rc": 0, "off": 0}  # the failed off 0 reset it
    for bad in ({"off": -1, "len": 5, "data": b"1234"}, {"off": "0", "len": 5, "data": b""},
                {"off": 0, "len": 5, "data": "text"}, {"off": 0, "len": 5},
                {"off": 0, "len": 5, "data": b"", "image": 1}, {"len": 5, "data": b""}):
        assert up(bad) == {"rc": 3}, bad
    dup = frame(WRITE, 1, 1, raw=bytes.fromhex("a3636f666600636f666600646461746140"))
    assert answer(server, dup) == {"rc": 3}


def test_final_chunk_is_padded_and_slot_0_written() -> None:
    server = server_of()
    got = answer(server, frame(WRITE, 1, 1, {"off": 0, "len": 7, "data": b"ABCDEFG",
                                              "sha": b"\x33" * 32, "upgrade": True}))
    assert got == {"rc": 0, "off": 7}
    slot0 = server.device.partitions.primary(0)
    assert slot0 is not None and slot0.read(0, 8) == b"ABCDEFG\xff"


def test_first_chunk_erases_the_whole_slot_in_real_time() -> None:
    """On the default board (swap-move, whole-slot erase at offset 0): 118 pages of 85 ms."""
    server = server_of(_button_profile(), button=True)
    reply = server.handle(frame(WRITE, 1, 1, {"off": 0, "len": 1000, "data": bytes(512)}))
    assert cbor2.loads(reply.frames[0][8:]) == {"rc": 0, "off": 512}
    assert reply.busy_s == pytest.approx(118 * 0.085, rel=0.01)
    later = server.handle(frame(WRITE, 1, 1, {"off": 512, "data": bytes(488)}))
    assert later.busy_s < 0.05


def test_progressive_erase() -> None:
    server = server_of(_button_profile(erase_progressively=True), button=True)
    slot0 = server.device.partitions.primary(0)
    assert slot0 is not None
    reply = server.handle(frame(WRITE, 1, 1, {"off": 0, "len": 5000, "data": bytes(512)}))
    assert 0.085 <= reply.busy_s < 2 * 0.085  # the first page (and the writes) only
    assert not slot0.is_erased(0x1000, 0x1000)  # the factory image goes on there


def _button_profile(**changes: Any) -> Profile:
    return recovery_profile("nrf52840dk", **changes)


# -- boots -----------------------------------------------------------------------------------

def test_ram_load_listing_quirk_and_boots() -> None:
    """RAM_LOAD validates the RAM copy: an uploaded image is listed only after it booted."""
    server = server_of()
    device = server.device
    image = ram_load_image()
    upload_all(server, image)
    assert answer(server, frame(READ, 1, 0)) == {"images": []}
    assert device.reset().running
    device.boot_mode = 1
    assert device.reset().recovery and device.boot_mode == 0
    listed = answer(BootSerialServer(device), frame(READ, 1, 0))
    tlv = image[-32:]
    assert listed == {"images": [{"slot": 0, "hash": tlv, "version": "1.2.3.4"}]}
    assert device.reset().running  # the boot mode was used once


def test_invalid_and_partial_images_are_erased_then_recovery() -> None:
    server = server_of()
    device = server.device
    image = bytearray(ram_load_image())
    image[0x400] ^= 0xFF
    upload_all(server, bytes(image))
    lines: list[str] = []
    device.console.subscribe(lines.append)
    assert device.reset().recovery
    assert "E: Image in the primary slot is not valid!" in lines
    slot0 = device.partitions.primary(0)
    assert slot0 is not None and slot0.is_erased()
    server = BootSerialServer(device)
    answer(server, frame(WRITE, 1, 1, {"off": 0, "len": len(image), "data": bytes(image[:512])}))
    assert device.reset().recovery
    assert "I: Removing image 0 slot 0 from flash" in lines and slot0.is_erased()


def test_button_enters_recovery_on_the_default_board() -> None:
    device = Device(load_profile("nrf52840dk"))
    lines: list[str] = []
    device.console.subscribe(lines.append)
    device.hold_button()
    assert device.boot().recovery
    assert lines[-2:] == ["I: Starting bootloader", "I: Enter the serial recovery mode"]
    device.release_button()
    assert device.reset().running


def test_a_header_claiming_a_huge_image_is_not_listed() -> None:
    server = server_of()
    header = bytes.fromhex("3db8f396") + (0x20240000).to_bytes(4, "little") + (0x200).to_bytes(
        2, "little") + bytes(2) + (0xFFFFFF00).to_bytes(4, "little") + (0x20).to_bytes(4, "little")
    data = header + bytes(32 - len(header))
    assert answer(server, frame(WRITE, 1, 1, {"off": 0, "len": 32, "data": data}))["rc"] == 0
    assert answer(server, frame(READ, 1, 0)) == {"images": []}
    assert server.device.reset().recovery  # and MCUboot does not boot it either
